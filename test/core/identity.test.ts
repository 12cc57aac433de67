/**
 * Key derivation of client identities: the X25519 public key is computed from the converted secret (one
 * base-point multiplication) — it must be the very key the Ed25519 public key converts to, which is what a
 * gateway checks (CLIENT_KEY_MISMATCH) and what the Noise static key is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultSuite } from '../../src/core/index.js';
import { clientKeysFromSeed } from '../../src/core/handshake/identity.js';
import { seededRandom } from '../helpers/fixtures.js';

test('clientKeysFromSeed: the X25519 public key is the conversion of the Ed25519 public key', () => {
  const { prims } = defaultSuite;
  const random = seededRandom('identity-test');
  for (let i = 0; i < 64; i++) {
    const seed = random(32);
    const keys = clientKeysFromSeed(defaultSuite, seed);
    assert.deepEqual(Buffer.from(keys.x25519.publicKey), Buffer.from(prims.ed25519PkToX25519(keys.ed25519.publicKey)), `seed ${i}`);
    assert.deepEqual(Buffer.from(keys.x25519.secretKey), Buffer.from(prims.ed25519SkToX25519(keys.ed25519.secretKey)), `seed ${i}`);
  }
});
