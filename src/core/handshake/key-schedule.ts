/**
 * Every key this profile derives, with its exact BLAKE3 derive_key context string (PRODUCT.md §1.2, §1.4,
 * §1.12). Contexts follow BLAKE3's "[application] [date] [purpose]" convention so they are globally unique;
 * DESIGN.md §5 lists them verbatim. Changing any string is a wire break.
 */
import { concat, u64le, withJoined } from '../bytes.js';
import type { Primitives } from '../crypto/primitives.js';

export const KDF_CONTEXT = {
  msg1Binder: 'lp-gateway 2026-12-06 msg1 binder key v2',
  psk: 'lp-gateway 2026-12-06 handshake psk v2',
  outerI2R: 'lp-gateway 2026-11-21 outer aead initiator-to-responder v1',
  outerR2I: 'lp-gateway 2026-11-21 outer aead responder-to-initiator v1',
  sessionSecret: 'lp-gateway 2026-11-21 session secret v1',
  subsessionPsk: 'lp-gateway 2026-11-21 subsession psk v1',
  wireguardPsk: 'lp-gateway 2026-11-21 wireguard psk v1',
  wireguardDeregister: 'lp-gateway 2026-12-06 wireguard deregister proof v1',
} as const;

export interface PskInputs {
  /** ML-KEM-768 shared secret (client encapsulated to the gateway's KKT key). */
  kemSharedSecret: Uint8Array;
  /** X25519(client static, gateway static). */
  staticDh: Uint8Array;
  /** The KKT transcript hash T1 (`kktTranscriptHash`). */
  transcript: Uint8Array;
  kemCiphertext: Uint8Array;
}

/**
 * T1 = BLAKE3(hello content (100) ‖ token (32) ‖ KKT request frame ‖ KKT response frame ‖ gateway nonce (32)).
 * The hello carries the receiver index, both client keys and the salt; the gateway nonce is fresh per handshake,
 * so every key derived from T1 is new even when every client input is replayed (DESIGN.md §5.1).
 */
export function kktTranscriptHash(prims: Primitives, hello: Uint8Array, token: Uint8Array, kktRequestFrame: Uint8Array, kktResponseFrame: Uint8Array, gatewayNonce: Uint8Array): Uint8Array {
  return withJoined([hello, token, kktRequestFrame, kktResponseFrame, gatewayNonce], (t) => prims.blake3(t));
}

/**
 * Message 1 travels in cleartext (the gateway has no PSK before reading it), so it carries a binder:
 * BLAKE3-keyed(binder_key, content before the binder)[0..16] with binder_key = derive_key(msg1Binder, static_dh ‖ T1).
 * Only the holder of the ClientHello's static secret can make it, so a third party who sees the index cannot replace
 * message 1, and the gateway rejects junk before the costly KEM decapsulation.
 */
export function msg1Binder(prims: Primitives, staticDh: Uint8Array, transcript: Uint8Array, bound: Uint8Array): Uint8Array {
  const key = withJoined([staticDh, transcript], (m) => prims.blake3DeriveKey(KDF_CONTEXT.msg1Binder, m));
  const tag = prims.blake3Keyed(key, bound).subarray(0, 16);
  prims.zeroize(key);
  return tag;
}

/** PSK = derive_key(psk, kem_ss ‖ static_dh ‖ BLAKE3(T1 ‖ kem_ciphertext)): 96 bytes in. */
export function derivePsk(prims: Primitives, i: PskInputs): Uint8Array {
  const bound = withJoined([i.transcript, i.kemCiphertext], (m) => prims.blake3(m));
  return withJoined([i.kemSharedSecret, i.staticDh, bound], (m) => prims.blake3DeriveKey(KDF_CONTEXT.psk, m));
}

export interface DirectionalKeys {
  /** Initiator → responder. */
  i2r: Uint8Array;
  /** Responder → initiator. */
  r2i: Uint8Array;
}

/** Two outer keys, one per direction, so no (key, nonce) pair repeats although both counters start at 0. */
export function outerKeys(prims: Primitives, secret: Uint8Array): DirectionalKeys {
  return { i2r: prims.blake3DeriveKey(KDF_CONTEXT.outerI2R, secret), r2i: prims.blake3DeriveKey(KDF_CONTEXT.outerR2I, secret) };
}

/** Per-session secret binding the handshake's PSK and its Noise handshake hash. */
export function sessionSecret(prims: Primitives, psk: Uint8Array, handshakeHash: Uint8Array): Uint8Array {
  return withJoined([psk, handshakeHash], (m) => prims.blake3DeriveKey(KDF_CONTEXT.sessionSecret, m));
}

/** KKpsk0 PSK for the subsession that creates generation `generation` (parent generation + 1). */
export function subsessionPsk(prims: Primitives, parentSecret: Uint8Array, generation: number): Uint8Array {
  return prims.blake3DeriveKey(KDF_CONTEXT.subsessionPsk, concat(parentSecret, u64le(BigInt(generation))));
}

/** WireGuard preshared key for a peer registered over this session (post-quantum via the session secret). */
export function wireguardPsk(prims: Primitives, secret: Uint8Array, wgPublicKey: Uint8Array): Uint8Array {
  return prims.blake3DeriveKey(KDF_CONTEXT.wireguardPsk, concat(secret, wgPublicKey));
}

/**
 * Proof that a `Deregister` request comes from the holder of the WireGuard private key it names:
 * derive_key(wireguardDeregister, X25519(client wg sk, gateway wg pk) ‖ client wg pk ‖ gateway wg pk). The
 * gateway computes the same DH from its side. Binding both public keys keeps a proof from being used at
 * another gateway or for another peer; it travels only inside an LP session.
 */
export function wireguardDeregisterProof(prims: Primitives, dh: Uint8Array, clientWgPublicKey: Uint8Array, gatewayWgPublicKey: Uint8Array): Uint8Array {
  return prims.blake3DeriveKey(KDF_CONTEXT.wireguardDeregister, concat(dh, clientWgPublicKey, gatewayWgPublicKey));
}
