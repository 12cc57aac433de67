// Minimal typings for the sodium-native 5 functions the project uses (the published @types are for v2).
declare module 'sodium-native' {
  type Buf = Uint8Array;
  const sodium: {
    crypto_scalarmult_base(q: Buf, n: Buf): void;
    crypto_scalarmult(q: Buf, n: Buf, p: Buf): void;
    crypto_sign_seed_keypair(pk: Buf, sk: Buf, seed: Buf): void;
    crypto_sign_detached(sig: Buf, m: Buf, sk: Buf): void;
    crypto_sign_verify_detached(sig: Buf, m: Buf, pk: Buf): boolean;
    crypto_sign_ed25519_pk_to_curve25519(x: Buf, ed: Buf): void;
    crypto_sign_ed25519_sk_to_curve25519(x: Buf, ed: Buf): void;
    crypto_aead_chacha20poly1305_ietf_encrypt(c: Buf, m: Buf, ad: Buf | null, nsec: null, npub: Buf, k: Buf): number;
    crypto_aead_chacha20poly1305_ietf_decrypt(m: Buf, nsec: null, c: Buf, ad: Buf | null, npub: Buf, k: Buf): number;
    crypto_aead_xchacha20poly1305_ietf_encrypt(c: Buf, m: Buf, ad: Buf | null, nsec: null, npub: Buf, k: Buf): number;
    crypto_aead_xchacha20poly1305_ietf_decrypt(m: Buf, nsec: null, c: Buf, ad: Buf | null, npub: Buf, k: Buf): number;
    crypto_hash_sha256(out: Buf, input: Buf): void;
    sodium_memzero(b: Buf): void;
    randombytes_buf(b: Buf): void;
  };
  export default sodium;
}
