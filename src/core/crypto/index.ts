/** The crypto suite a protocol endpoint runs with: primitives + KEM (both replaceable). */
import type { Kem, Primitives } from './primitives.js';
import { sodiumPrimitives } from './sodium-backend.js';
import { mlKem768Libsodium } from './ml-kem-libsodium.js';
import { mlKem768Noble } from './ml-kem-noble.js';

export type { Kem, KeyPair, Primitives } from './primitives.js';

export interface CryptoSuite {
  readonly prims: Primitives;
  readonly kem: Kem;
}

/** The ML-KEM-768 backend endpoints run with (libsodium WebAssembly; noble is the reference it is tested against). */
export const mlKem768: Kem = mlKem768Libsodium;

export const defaultSuite: CryptoSuite = { prims: sodiumPrimitives, kem: mlKem768 };

/** The ML-KEM-768 backends an operator can choose (`lp.kem_backend`); results are byte-identical. */
export const kemBackends: Readonly<Record<string, Kem>> = { libsodium: mlKem768Libsodium, noble: mlKem768Noble };

/** The default suite with the named ML-KEM backend (an unknown name is a programming error: config validates it). */
export function suiteWithKem(backend: string): CryptoSuite {
  const kem = kemBackends[backend];
  if (!kem) throw new Error(`unknown ML-KEM backend '${backend}'`);
  return { prims: sodiumPrimitives, kem };
}
export { sodiumPrimitives, mlKem768Libsodium, mlKem768Noble };

/**
 * Primitives whose randomBytes come from a caller-supplied stream: used for known-answer vectors and
 * reproducible tests, never in production.
 */
export function withRandomSource(prims: Primitives, next: (n: number) => Uint8Array): Primitives {
  return { ...prims, randomBytes: next };
}
