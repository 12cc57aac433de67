/** Deterministic keys and a seeded random source for core tests. */
import { createHash } from 'node:crypto';
import { defaultSuite, withRandomSource, type CryptoSuite } from '../../src/core/crypto/index.js';
import { clientKeysFromSeed, gatewayKeysFromSeeds } from '../../src/core/handshake/identity.js';

/** SHA-256 counter-mode stream: reproducible "randomness" for vectors and tests. */
export function seededRandom(label: string): (n: number) => Uint8Array {
  let counter = 0;
  let pool = new Uint8Array(0);
  return (n: number) => {
    while (pool.length < n) {
      const block = createHash('sha256').update(`${label}/${counter++}`).digest();
      const next = new Uint8Array(pool.length + block.length);
      next.set(pool);
      next.set(block, pool.length);
      pool = next;
    }
    const out = pool.slice(0, n);
    pool = pool.slice(n);
    return out;
  };
}

export function seededSuite(label: string): CryptoSuite {
  return { prims: withRandomSource(defaultSuite.prims, seededRandom(label)), kem: defaultSuite.kem };
}

export function fill(byte: number, n: number): Uint8Array {
  return new Uint8Array(n).fill(byte);
}

export const gatewayKeys = gatewayKeysFromSeeds(defaultSuite, { ed25519Seed: fill(2, 32), kemSeed: fill(3, 64) });
export const clientKeys = clientKeysFromSeed(defaultSuite, fill(1, 32));
export const otherGatewayKeys = gatewayKeysFromSeeds(defaultSuite, { ed25519Seed: fill(4, 32), kemSeed: fill(5, 64) });
