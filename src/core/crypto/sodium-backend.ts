/**
 * Default primitive backend (measured choice, see ../shared/reference/dependency-evaluation.md):
 * sodium-native for the curve and AEAD work and for SHA-256 and HMAC-SHA-256 (both through its binding:
 * sodium-aead.ts, sodium-sha256.ts), @napi-rs/blake-hash for BLAKE3 (a gateway handshake hashes ~3.5 KiB and
 * derives 7 keys: ~95 µs with @noble/hashes, ~25 µs native; tests cross-check it against @noble/hashes and the
 * official vectors).
 * sodium-native works on raw buffers, which also sidesteps the Node 20 KeyObject JWK-export deadlock.
 */
import { randomFillSync } from 'node:crypto';
import sodium from 'sodium-native';
import { Blake3Hasher, blake3 as napiBlake3 } from '@napi-rs/blake-hash';
import { LpErrorCode, fail } from '../errors.js';
import { isAllZero } from '../bytes.js';
import { aeadDecryptInto, aeadEncryptInto } from './sodium-aead.js';
import { hmacSha256, sha256 } from './sodium-sha256.js';
import type { KeyPair, Primitives } from './primitives.js';

/** Zero-copy Buffer view (the BLAKE3 binding's typings want Buffer). */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export const sodiumPrimitives: Primitives = {
  randomBytes(n) {
    // Its own buffer: Buffer.allocUnsafe would hand out a view into Node's shared 8 KiB pool, which a
    // long-lived key would then keep alive (and callers reading `.buffer` would see other data).
    return randomFillSync(new Uint8Array(n));
  },

  x25519FromSecret(secret) {
    if (secret.length !== 32) fail(LpErrorCode.BAD_PUBLIC_KEY, 'X25519 secret must be 32 bytes');
    const publicKey = Buffer.alloc(32);
    sodium.crypto_scalarmult_base(publicKey, secret);
    return { publicKey, secretKey: Buffer.from(secret) };
  },

  x25519(secretKey, publicKey) {
    if (secretKey.length !== 32 || publicKey.length !== 32) fail(LpErrorCode.BAD_DH, 'X25519 keys must be 32 bytes');
    const out = Buffer.alloc(32);
    try {
      sodium.crypto_scalarmult(out, secretKey, publicKey);
    } catch {
      // libsodium refuses low-order points (all-zero output)
      fail(LpErrorCode.BAD_DH, 'X25519 produced a low-order result');
    }
    if (isAllZero(out)) fail(LpErrorCode.BAD_DH, 'X25519 produced an all-zero result');
    return out;
  },

  ed25519FromSeed(seed): KeyPair {
    if (seed.length !== 32) fail(LpErrorCode.BAD_PUBLIC_KEY, 'Ed25519 seed must be 32 bytes');
    const publicKey = Buffer.alloc(32);
    const secretKey = Buffer.alloc(64);
    sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
    return { publicKey, secretKey };
  },

  ed25519Sign(secretKey, message) {
    const sig = Buffer.alloc(64);
    sodium.crypto_sign_detached(sig, message, secretKey);
    return sig;
  },

  ed25519Verify(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    try {
      return sodium.crypto_sign_verify_detached(signature, message, publicKey);
    } catch {
      return false;
    }
  },

  ed25519PkToX25519(publicKey) {
    if (publicKey.length !== 32) fail(LpErrorCode.BAD_PUBLIC_KEY, 'Ed25519 public key must be 32 bytes');
    const out = Buffer.alloc(32);
    try {
      sodium.crypto_sign_ed25519_pk_to_curve25519(out, publicKey);
    } catch {
      fail(LpErrorCode.BAD_PUBLIC_KEY, 'Ed25519 public key is not a valid point');
    }
    return out;
  },

  ed25519SkToX25519(secretKey) {
    const out = Buffer.alloc(32);
    sodium.crypto_sign_ed25519_sk_to_curve25519(out, secretKey);
    return out;
  },

  aeadSeal(key, nonce, aad, plaintext) {
    const out = Buffer.allocUnsafe(plaintext.length + 16);
    aeadEncryptInto(out, plaintext, aad, nonce, key);
    return out;
  },

  aeadSealInPlace(key, nonce, aad, buf, plaintextLength) {
    if (!(plaintextLength >= 0 && plaintextLength + 16 <= buf.length)) fail(LpErrorCode.INVALID_STATE, 'AEAD buffer shorter than the plaintext and its tag');
    // libsodium allows c == m for the combined mode: ciphertext overwrites the plaintext, tag follows it.
    aeadEncryptInto(buf.subarray(0, plaintextLength + 16), buf.subarray(0, plaintextLength), aad, nonce, key);
  },

  aeadOpen(key, nonce, aad, ciphertext) {
    if (ciphertext.length < 16) return null;
    const out = Buffer.allocUnsafe(ciphertext.length - 16);
    return aeadDecryptInto(out, ciphertext, aad, nonce, key) ? out : null;
  },

  aeadOpenInPlace(key, nonce, aad, buf) {
    if (buf.length < 16) return null;
    // libsodium checks the tag before it decrypts (m == c allowed); on a failure it zeroes m.
    const plaintext = buf.subarray(0, buf.length - 16);
    return aeadDecryptInto(plaintext, buf, aad, nonce, key) ? plaintext : null;
  },

  // Exact arity: the test-only `impl` parameter must never receive a caller's extra argument.
  sha256: (data) => sha256(data),

  hmacSha256: (key, data) => hmacSha256(key, data),

  blake3(data) {
    return napiBlake3(asBuffer(data));
  },

  blake3Keyed(key, data) {
    return Blake3Hasher.newKeyed(asBuffer(key)).update(asBuffer(data)).digestBuffer();
  },

  blake3DeriveKey(context, keyMaterial) {
    return Blake3Hasher.deriveKey(context, asBuffer(keyMaterial));
  },

  zeroize(b) {
    b.fill(0);
  },
};
