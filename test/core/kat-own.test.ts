/**
 * lp-gateway's own known-answer vectors (test/vectors/lp-gateway-kat.json, published in DESIGN.md §9):
 * recomputed from fixed seeds and compared byte for byte, plus a replay of the recorded client packets
 * into a fresh gateway, which must produce the recorded replies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { defaultSuite, fromHex, gatewayKeysFromSeeds, toHex } from '../../src/core/index.js';
import { buildVectors, VECTOR_TIME } from '../helpers/lp-vectors.js';
import { MemoryGateway } from '../helpers/memory-gateway.js';
import { verifyDescriptor } from '../../src/gateway/descriptor.js';
import { verifyDirectory } from '../../src/gateway/directory-document.js';
import { fill, seededSuite } from '../helpers/fixtures.js';

interface Step {
  direction: string;
  what: string;
  hex: string;
}
const published = JSON.parse(readFileSync(new URL('../vectors/lp-gateway-kat.json', import.meta.url), 'utf8')) as {
  key_schedule: Record<string, unknown>;
  kkt_ml_kem_768: Record<string, unknown>;
  kdf_contexts: Record<string, string>;
  transcript: { steps: Step[] };
  signed_documents: Record<string, unknown>;
};
const fresh = buildVectors(defaultSuite) as typeof published;

test('KDF context strings are the published ones', () => {
  assert.deepEqual(fresh.kdf_contexts, published.kdf_contexts);
});

test('key schedule vectors (PSK, per-direction outer keys, session secret, subsession PSK, WireGuard PSK)', () => {
  assert.deepEqual(fresh.key_schedule, published.key_schedule);
  assert.notEqual(published.key_schedule.outer_key_i2r, published.key_schedule.outer_key_r2i);
});

test('ML-KEM-768 KKT response vector (1,271-byte frame)', () => {
  assert.deepEqual(fresh.kkt_ml_kem_768, published.kkt_ml_kem_768);
  assert.equal(published.kkt_ml_kem_768.kkt_response_len, 1271);
});

test('full handshake + registration transcript from fixed seeds', () => {
  assert.equal(fresh.transcript.steps.length, published.transcript.steps.length);
  fresh.transcript.steps.forEach((s, i) => assert.equal(s.hex, published.transcript.steps[i]?.hex, `step ${i}: ${s.what}`));
  assert.deepEqual(
    published.transcript.steps.slice(0, 8).map((s) => fromHex(s.hex).length),
    [134, 66, 253, 1337, 1188, 82, 98, 34],
  );
});

test('a fresh gateway answers the recorded client packets with the recorded replies', () => {
  const suite = seededSuite('lp-gateway-kat gateway');
  const keys = gatewayKeysFromSeeds(suite, { ed25519Seed: fill(2, 32), kemSeed: fill(3, 64) });
  const gw = new MemoryGateway(suite, keys, () => VECTOR_TIME);
  gw.onDeliver = () => null; // registration reply is app-level; the handshake replies are checked here
  const steps = published.transcript.steps;
  for (let i = 0; i + 1 < 8; i += 2) {
    const reply = gw.handle(fromHex((steps[i] as Step).hex));
    assert.ok(reply);
    assert.equal(toHex(reply), (steps[i + 1] as Step).hex, `reply to ${(steps[i] as Step).what}`);
  }
});

test('descriptor and directory document from fixed keys and times (DESIGN.md §7.6)', () => {
  assert.deepEqual(fresh.signed_documents, published.signed_documents);
  const d = published.signed_documents.descriptor as { issued_at: number };
  assert.deepEqual(verifyDescriptor(published.signed_documents.descriptor, defaultSuite, d.issued_at + 1), published.signed_documents.descriptor);
  const key = defaultSuite.prims.ed25519FromSeed(fromHex(published.signed_documents.directory_key_seed as string)).publicKey;
  assert.deepEqual(verifyDirectory(published.signed_documents.directory, [key], defaultSuite, { nowSec: d.issued_at + 1 }), published.signed_documents.directory);
});
