/**
 * The primitive interface the protocol core is written against. The default backend
 * (./sodium-backend.ts), chosen by measurement (../shared/reference/dependency-evaluation.md, DESIGN.md §10.8):
 * sodium-native for X25519/Ed25519/ChaCha20-Poly1305/SHA-256/HMAC-SHA-256, @napi-rs/blake-hash for BLAKE3.
 * Randomness is an input too, so tests and known-answer vectors can run the core deterministically.
 */

export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

export interface Primitives {
  /** Fill-and-return `n` random bytes. */
  randomBytes(n: number): Uint8Array;

  /** X25519 key pair from a 32-byte secret (clamped by the curve function). */
  x25519FromSecret(secret: Uint8Array): KeyPair;
  /** X25519(sk, pk). Throws LP_ERR_BAD_DH if the result is all zero (low-order point). */
  x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;

  /** Ed25519 key pair from a 32-byte seed; secretKey is the 64-byte libsodium form (seed ‖ pk). */
  ed25519FromSeed(seed: Uint8Array): KeyPair;
  ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array;
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /** libsodium crypto_sign_ed25519_pk_to_curve25519; throws LP_ERR_BAD_PUBLIC_KEY for invalid points. */
  ed25519PkToX25519(publicKey: Uint8Array): Uint8Array;
  /** libsodium crypto_sign_ed25519_sk_to_curve25519 (clamped SHA-512(seed)[0..32]). */
  ed25519SkToX25519(secretKey: Uint8Array): Uint8Array;

  /** ChaCha20-Poly1305 (RFC 8439), 12-byte nonce; returns ciphertext ‖ tag. */
  aeadSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** Encrypt buf[0..plaintextLength) in place and write the tag right after it (buf must have 16 spare bytes). */
  aeadSealInPlace(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, buf: Uint8Array, plaintextLength: number): void;
  /** Returns the plaintext, or null if authentication fails. */
  aeadOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null;
  /**
   * Opens buf (ciphertext ‖ tag) in place: returns the plaintext as buf's first length - 16 bytes, or null if
   * authentication fails — then buf's first length - 16 bytes are zeroed (libsodium wipes the output), so only
   * a buffer the caller owns and no longer needs on failure may be passed.
   */
  aeadOpenInPlace(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, buf: Uint8Array): Uint8Array | null;

  sha256(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;

  blake3(data: Uint8Array): Uint8Array;
  /** BLAKE3 keyed-hash mode (32-byte key), 32-byte output. */
  blake3Keyed(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** BLAKE3 derive_key mode with a context string, 32-byte output. */
  blake3DeriveKey(context: string, keyMaterial: Uint8Array): Uint8Array;

  /** Best-effort zeroing of secret material. */
  zeroize(b: Uint8Array): void;
}

/** Key-encapsulation mechanism, behind an interface so a faster audited backend can replace it. */
export interface Kem {
  readonly name: string;
  /** KKT KEM code (upstream §7.1): 1 = ML-KEM-768. */
  readonly kktCode: number;
  readonly publicKeyLength: number;
  readonly secretKeyLength: number;
  readonly ciphertextLength: number;
  /** Deterministic key pair from a 64-byte seed (d ‖ z). */
  keygen(seed: Uint8Array): KeyPair;
  /** `randomness` is the 32-byte message m of FIPS 203 (injected for known-answer vectors). */
  encapsulate(publicKey: Uint8Array, randomness: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array };
  /** Implicit rejection: a malformed/forged ciphertext yields an unrelated secret, never a throw for length-valid input. */
  decapsulate(ciphertext: Uint8Array, secretKey: Uint8Array): Uint8Array;
}
