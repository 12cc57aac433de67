/**
 * The curve, AEAD and randomness the WireGuard client needs, behind one small interface so that known-answer
 * tests can inject the randomness (ephemeral keys, sender indices, jitter). Randomness defaults to the
 * project's primitives (`defaultSuite.prims`); the curve and AEADs (ChaCha20-Poly1305 for the handshake and
 * transport, XChaCha20-Poly1305 for cookie replies) are sodium-native's.
 */
import sodium from 'sodium-native';
import { defaultSuite } from '../../core/index.js';

export interface WgCrypto {
  randomBytes(n: number): Uint8Array;
  /** X25519(secret, basepoint). */
  x25519Public(secret: Uint8Array): Uint8Array;
  /** X25519(secret, public); null when the result is all zero (a low-order point). */
  x25519(secret: Uint8Array, pub: Uint8Array): Uint8Array | null;
  /** ChaCha20-Poly1305 with WireGuard's nonce: 4 zero bytes ‖ counter (64-bit little-endian). */
  seal(key: Uint8Array, counter: number, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** Encrypts buf[0, length) in place and writes the tag right after it. */
  sealInPlace(key: Uint8Array, counter: number, buf: Uint8Array, length: number): void;
  open(key: Uint8Array, counter: number, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null;
  /** XChaCha20-Poly1305 (24-byte nonce), used by cookie replies. */
  xseal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  xopen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null;
  /** Best-effort wipe of secret material. */
  zeroize(b: Uint8Array): void;
}

function nonceFor(counter: number): Uint8Array {
  const n = new Uint8Array(12);
  const dv = new DataView(n.buffer);
  dv.setUint32(4, counter >>> 0, true);
  dv.setUint32(8, Math.floor(counter / 2 ** 32), true);
  return n;
}

/**
 * The default backend: sodium-native for X25519 and both AEADs (outputs are plain Uint8Arrays of their own,
 * never views into Node's shared Buffer pool), randomness from the project's primitives unless injected.
 */
export function sodiumWgCrypto(randomBytes: (n: number) => Uint8Array = (n) => defaultSuite.prims.randomBytes(n)): WgCrypto {
  return {
    randomBytes,
    x25519Public(secret) {
      const out = new Uint8Array(32);
      sodium.crypto_scalarmult_base(out, secret);
      return out;
    },
    x25519(secret, pub) {
      const out = new Uint8Array(32);
      try {
        sodium.crypto_scalarmult(out, secret, pub);
      } catch {
        return null; // libsodium refuses low-order points (all-zero output)
      }
      let acc = 0;
      for (const b of out) acc |= b;
      return acc === 0 ? null : out;
    },
    seal(key, counter, aad, plaintext) {
      const out = new Uint8Array(plaintext.length + 16);
      sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out, plaintext, aad.length ? aad : null, null, nonceFor(counter), key);
      return out;
    },
    sealInPlace(key, counter, buf, length) {
      // libsodium allows c == m: the ciphertext overwrites the plaintext, the tag follows it
      sodium.crypto_aead_chacha20poly1305_ietf_encrypt(buf.subarray(0, length + 16), buf.subarray(0, length), null, null, nonceFor(counter), key);
    },
    open(key, counter, aad, ciphertext) {
      if (ciphertext.length < 16) return null;
      const out = new Uint8Array(ciphertext.length - 16);
      try {
        sodium.crypto_aead_chacha20poly1305_ietf_decrypt(out, null, ciphertext, aad.length ? aad : null, nonceFor(counter), key);
      } catch {
        return null;
      }
      return out;
    },
    xseal(key, nonce, aad, plaintext) {
      const out = new Uint8Array(plaintext.length + 16);
      sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, aad.length ? aad : null, null, nonce, key);
      return out;
    },
    xopen(key, nonce, aad, ciphertext) {
      if (ciphertext.length < 16 || nonce.length !== 24 || key.length !== 32) return null;
      const out = new Uint8Array(ciphertext.length - 16);
      try {
        sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, ciphertext, aad.length ? aad : null, nonce, key);
      } catch {
        return null;
      }
      return out;
    },
    zeroize: (b) => sodium.sodium_memzero(b),
  };
}

export const defaultWgCrypto: WgCrypto = sodiumWgCrypto();

/** The same backend with randomness from `next` (known-answer vectors and reproducible tests only). */
export function withRandom(c: WgCrypto, next: (n: number) => Uint8Array): WgCrypto {
  return { ...c, randomBytes: next };
}
