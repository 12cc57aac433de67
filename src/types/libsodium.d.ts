/** The part of libsodium.js's raw Emscripten module (npm `libsodium`, no wrappers) that the ML-KEM backend uses. */
declare module 'libsodium' {
  export interface LibsodiumModule {
    /** A view of the WASM heap; replaced when the heap grows, so read it again after every allocation. */
    readonly HEAPU8: Uint8Array;
    _malloc(size: number): number;
    _free(ptr: number): void;
    _sodium_init(): number;
    _crypto_kem_mlkem768_seed_keypair(pk: number, sk: number, seed: number): number;
    _crypto_kem_mlkem768_enc_deterministic(ct: number, ss: number, pk: number, m: number): number;
    _crypto_kem_mlkem768_dec(ss: number, ct: number, sk: number): number;
  }
  /** The ESM build is a factory; `getRandomValue` is required under Node's ESM loader (no `window`, no `require`). */
  export default function factory(options?: { getRandomValue?: () => number }): Promise<LibsodiumModule>;
}
