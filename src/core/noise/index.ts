/** Noise Protocol Framework (revision 34) engine, suite 25519_ChaChaPoly_SHA256. */
export { CipherState, NOISE_KEY_LENGTH, NOISE_MAX_NONCE, NOISE_TAG_LENGTH } from './cipher-state.js';
export { SymmetricState, NOISE_HASH_LENGTH } from './symmetric-state.js';
export { HandshakeState, NOISE_DH_LENGTH, NOISE_MAX_MESSAGE_LENGTH, NOISE_PSK_LENGTH, type HandshakeOptions } from './handshake-state.js';
export { parsePattern, BASE_PATTERN_NAMES, NOISE_SUITE, type HandshakePattern, type PreToken, type Token } from './patterns.js';
