/**
 * The curve, AEAD and randomness the WireGuard client needs, behind one small interface so that known-answer
 * tests can inject the randomness (ephemeral keys, sender indices, jitter, cookie nonces). The default reuses
 * the project's primitive backend (sodium-native X25519 and ChaCha20-Poly1305, node:crypto randomness) and
 * adds XChaCha20-Poly1305 for cookie replies.
 */
import sodium from 'sodium-native';
import { defaultSuite, type Primitives } from '../../core/index.js';

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

const EMPTY = new Uint8Array(0);

function nonceFor(counter: number): Uint8Array {
  const n = new Uint8Array(12);
  const dv = new DataView(n.buffer);
  dv.setUint32(4, counter >>> 0, true);
  dv.setUint32(8, Math.floor(counter / 2 ** 32), true);
  return n;
}

/** The default backend built on a Primitives implementation (the project's sodium backend by default). */
export function primitivesWgCrypto(prims: Primitives = defaultSuite.prims): WgCrypto {
  return {
    randomBytes: (n) => prims.randomBytes(n),
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
    seal: (key, counter, aad, plaintext) => prims.aeadSeal(key, nonceFor(counter), aad, plaintext),
    sealInPlace: (key, counter, buf, length) => prims.aeadSealInPlace(key, nonceFor(counter), EMPTY, buf, length),
    open: (key, counter, aad, ciphertext) => prims.aeadOpen(key, nonceFor(counter), aad, ciphertext),
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
    zeroize: (b) => b.fill(0),
  };
}

export const defaultWgCrypto: WgCrypto = primitivesWgCrypto();

/** The same backend with randomness from `next` (known-answer vectors and reproducible tests only). */
export function withRandom(c: WgCrypto, next: (n: number) => Uint8Array): WgCrypto {
  return { ...c, randomBytes: next };
}
