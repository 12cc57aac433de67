/**
 * WireGuard key handling: Curve25519 key pairs clamped the way `wg genkey` clamps them, public keys from
 * private ones, preshared keys, and the base64 form `wg` and wg-quick use.
 */
import { randomFillSync } from 'node:crypto';
import sodium from 'sodium-native';
import { WgError, WgErrorCode } from './errors.js';

export interface WgKeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** Curve25519 clamping (RFC 7748 §5): what `wg genkey` stores, so `wg pubkey` round-trips. */
export function clampPrivateKey(secret: Uint8Array): Uint8Array {
  assertKey(secret, 'private key');
  const k = new Uint8Array(secret);
  k[0] = (k[0] ?? 0) & 248;
  k[31] = ((k[31] ?? 0) & 127) | 64;
  return k;
}

export function wgPublicKey(privateKey: Uint8Array): Uint8Array {
  assertKey(privateKey, 'private key');
  const pk = new Uint8Array(32);
  sodium.crypto_scalarmult_base(pk, privateKey);
  return pk;
}

/** A fresh key pair (`wg genkey | tee priv | wg pubkey`); `random` is injectable for tests. */
export function wgKeyPair(random: (n: number) => Uint8Array = (n) => randomFillSync(new Uint8Array(n))): WgKeyPair {
  const seed = random(32);
  const privateKey = clampPrivateKey(seed);
  seed.fill(0);
  return { privateKey, publicKey: wgPublicKey(privateKey) };
}

/** A fresh preshared key (`wg genpsk`). */
export function wgPresharedKey(): Uint8Array {
  return randomFillSync(new Uint8Array(32));
}

export function wgKeyToBase64(key: Uint8Array): string {
  assertKey(key, 'key');
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
}

/** Parses a base64 WireGuard key (44 characters, 32 bytes), strictly: anything else is LPWG_ERR_BAD_KEY. */
export function wgKeyFromBase64(text: string): Uint8Array {
  const s = text.trim();
  if (!/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(s)) throw new WgError(WgErrorCode.BAD_KEY, 'a WireGuard key is 32 bytes in base64 (44 characters)');
  return new Uint8Array(Buffer.from(s, 'base64'));
}

export function assertKey(k: Uint8Array, what: string): void {
  if (!(k instanceof Uint8Array) || k.length !== 32) throw new WgError(WgErrorCode.BAD_KEY, `${what} must be 32 bytes`);
}
