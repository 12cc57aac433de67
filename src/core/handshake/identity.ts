/**
 * Long-term key material of the two parties. The gateway's X25519 static is the libsodium conversion of
 * its Ed25519 identity (so a client needs only the identity); its ML-KEM key is persistent and pinned by
 * BLAKE3 hash in the signed descriptor.
 */
import type { CryptoSuite } from '../crypto/index.js';
import type { KeyPair } from '../crypto/primitives.js';

export interface GatewayKeys {
  ed25519: KeyPair;
  x25519: KeyPair;
  kem: KeyPair;
  /** BLAKE3(kem.publicKey): what clients pin. */
  kemKeyHash: Uint8Array;
}

export interface GatewaySeeds {
  /** 32-byte Ed25519 seed. */
  ed25519Seed: Uint8Array;
  /** 64-byte ML-KEM keygen seed. */
  kemSeed: Uint8Array;
}

export function gatewayKeysFromSeeds(suite: CryptoSuite, seeds: GatewaySeeds): GatewayKeys {
  const { prims, kem } = suite;
  const ed25519 = prims.ed25519FromSeed(seeds.ed25519Seed);
  const x25519 = { publicKey: prims.ed25519PkToX25519(ed25519.publicKey), secretKey: prims.ed25519SkToX25519(ed25519.secretKey) };
  const kemPair = kem.keygen(seeds.kemSeed);
  return { ed25519, x25519, kem: kemPair, kemKeyHash: prims.blake3(kemPair.publicKey) };
}

export interface ClientKeys {
  ed25519: KeyPair;
  x25519: KeyPair;
}

export function clientKeysFromSeed(suite: CryptoSuite, seed: Uint8Array): ClientKeys {
  const { prims } = suite;
  const ed25519 = prims.ed25519FromSeed(seed);
  // The X25519 public key from the converted secret (one base-point multiplication) rather than by converting
  // the Ed25519 public key (point decompression and a subgroup check, ~2.5× the cost): the same key, and a
  // client makes one per connection.
  const secret = prims.ed25519SkToX25519(ed25519.secretKey);
  const x25519 = prims.x25519FromSecret(secret);
  prims.zeroize(secret);
  return { ed25519, x25519 };
}

/** What a client must know about a gateway before connecting (from its signed descriptor). */
export interface GatewayPin {
  ed25519Public: Uint8Array;
  kemKeyHash: Uint8Array;
}
