/**
 * ChaCha20-Poly1305 (IETF) straight from sodium-native's native binding (sodium-binding.ts), for the per-packet
 * path. Measured in a real UDP echo doing a round trip's four AEAD operations on 127-byte packets: 32.4 µs of CPU
 * per round trip through the public wrappers, 29.4 µs calling the binding (the bare echo: 18.3 µs). A forged
 * packet also costs no exception: the binding returns a negative status where the wrapper throws.
 *
 * Every length relation the binding asserts (its asserts abort the process) is checked here first: key 32
 * bytes, nonce 12, ciphertext = plaintext + 16 bytes, plaintext < 2^32 bytes. So no input reaching these
 * functions can reach an assert; a violation is a caller's bug (LP_ERR_INVALID_STATE). Without the binding, the
 * public wrappers are used, with the same contract.
 */
import sodium from 'sodium-native';
import { LpErrorCode, fail } from '../errors.js';
import { bindingFunction } from './sodium-binding.js';

type Buf = Uint8Array;
/** The binding's signatures: no `nsec`, an absent AD is `undefined`; decrypt returns < 0 on a bad tag. */
interface RawAead {
  encrypt(c: Buf, m: Buf, ad: Buf | undefined, npub: Buf, k: Buf): number;
  decrypt(m: Buf, c: Buf, ad: Buf | undefined, npub: Buf, k: Buf): number;
  /** True when the binding is called directly (false: the public wrappers). */
  direct: boolean;
}

export const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 12;
export const AEAD_TAG_BYTES = 16;
const MAX_MESSAGE = 0xffff_ffff;

/** The public wrappers, adapted to the binding's shape (used when the binding cannot be loaded). */
export function wrapperAead(): RawAead {
  return {
    encrypt: (c, m, ad, npub, k) => sodium.crypto_aead_chacha20poly1305_ietf_encrypt(c, m, ad ?? null, null, npub, k),
    decrypt: (m, c, ad, npub, k) => {
      try {
        return sodium.crypto_aead_chacha20poly1305_ietf_decrypt(m, null, c, ad ?? null, npub, k);
      } catch {
        return -1;
      }
    },
    direct: false,
  };
}

function loadRawAead(): RawAead {
  const encrypt = bindingFunction<RawAead['encrypt']>('crypto_aead_chacha20poly1305_ietf_encrypt');
  const decrypt = bindingFunction<RawAead['decrypt']>('crypto_aead_chacha20poly1305_ietf_decrypt');
  return encrypt && decrypt ? { encrypt, decrypt, direct: true } : wrapperAead();
}

const raw: RawAead = loadRawAead();

/** Whether the binding is called directly (reported by the tests; false means the wrappers are in use). */
export const aeadDirect: boolean = raw.direct;

function checkKeyNonce(key: Buf, nonce: Buf): void {
  if (key.length !== AEAD_KEY_BYTES) fail(LpErrorCode.INVALID_STATE, `AEAD key must be ${AEAD_KEY_BYTES} bytes, got ${key.length}`);
  if (nonce.length !== AEAD_NONCE_BYTES) fail(LpErrorCode.INVALID_STATE, `AEAD nonce must be ${AEAD_NONCE_BYTES} bytes, got ${nonce.length}`);
}

/**
 * Encrypts m into c (c.length must be m.length + 16: ciphertext then tag); c may be m's own bytes (the same
 * start: libsodium allows c == m). `impl` is for tests (the wrapper path); callers leave it.
 */
export function aeadEncryptInto(c: Buf, m: Buf, ad: Buf, nonce: Buf, key: Buf, impl: RawAead = raw): void {
  checkKeyNonce(key, nonce);
  if (c.length !== m.length + AEAD_TAG_BYTES || m.length > MAX_MESSAGE) fail(LpErrorCode.INVALID_STATE, 'AEAD output must be the plaintext length + 16 bytes');
  if (impl.encrypt(c, m, ad.length ? ad : undefined, nonce, key) < 0) fail(LpErrorCode.INVALID_STATE, 'AEAD encryption failed');
}

/**
 * Decrypts c (ciphertext ‖ tag) into m (c.length - 16 bytes; m may be c's own bytes). False if the tag does
 * not verify: libsodium checks it before it writes m, and zeroes m on a failure.
 */
export function aeadDecryptInto(m: Buf, c: Buf, ad: Buf, nonce: Buf, key: Buf, impl: RawAead = raw): boolean {
  checkKeyNonce(key, nonce);
  if (c.length < AEAD_TAG_BYTES || m.length !== c.length - AEAD_TAG_BYTES || m.length > MAX_MESSAGE) fail(LpErrorCode.INVALID_STATE, 'AEAD output must be the ciphertext length - 16 bytes');
  return impl.decrypt(m, c, ad.length ? ad : undefined, nonce, key) >= 0;
}
