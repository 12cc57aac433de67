/**
 * ChaCha20-Poly1305 through sodium-native's binding (src/core/crypto/sodium-aead.ts): the same bytes as
 * OpenSSL's (node:crypto) and as the public wrappers, in place and not, a forged tag is a false and not an
 * exception, and lengths the binding would abort on are refused with a coded error first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { aeadDecryptInto, aeadDirect, aeadEncryptInto, wrapperAead } from '../../src/core/crypto/sodium-aead.js';
import { LpErrorCode, isLpError } from '../../src/core/errors.js';
import { defaultSuite } from '../../src/core/index.js';
import { seededRandom } from '../helpers/fixtures.js';

function openssl(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, m: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  c.setAAD(ad, { plaintextLength: m.length });
  return Buffer.concat([c.update(m), c.final(), c.getAuthTag()]);
}

const invalidState = (e: unknown): boolean => isLpError(e) && e.code === LpErrorCode.INVALID_STATE;

test('the binding is called directly with the installed sodium-native (the wrappers are only a fallback)', () => {
  assert.equal(aeadDirect, true);
});

test('encrypt and decrypt agree with OpenSSL and with the public wrappers, for 0..300-byte messages', () => {
  const random = seededRandom('sodium-aead');
  const wrappers = wrapperAead();
  for (let len = 0; len <= 300; len += 7) {
    const key = random(32);
    const nonce = random(12);
    const ad = random(len % 3 === 0 ? 0 : 12);
    const m = random(len);
    const expected = openssl(key, nonce, ad, m);
    const c = new Uint8Array(len + 16);
    aeadEncryptInto(c, m, ad, nonce, key);
    assert.deepEqual(Buffer.from(c), expected, `direct, ${len} bytes`);
    const cw = new Uint8Array(len + 16);
    aeadEncryptInto(cw, m, ad, nonce, key, wrappers);
    assert.deepEqual(Buffer.from(cw), expected, `wrappers, ${len} bytes`);
    const back = new Uint8Array(len);
    assert.equal(aeadDecryptInto(back, c, ad, nonce, key), true);
    assert.deepEqual(back, m);
    const backW = new Uint8Array(len);
    assert.equal(aeadDecryptInto(backW, c, ad, nonce, key, wrappers), true);
    assert.deepEqual(backW, m);
  }
});

test('in place: ciphertext over the plaintext, then the plaintext back over it (the backend in-place forms)', () => {
  const { prims } = defaultSuite;
  const random = seededRandom('sodium-aead-inplace');
  const key = random(32);
  const nonce = random(12);
  const ad = random(12);
  const m = random(100);
  const buf = new Uint8Array(116);
  buf.set(m);
  prims.aeadSealInPlace(key, nonce, ad, buf, 100);
  assert.deepEqual(Buffer.from(buf), openssl(key, nonce, ad, m));
  const opened = prims.aeadOpenInPlace(key, nonce, ad, buf);
  assert.ok(opened);
  assert.deepEqual(Buffer.from(opened), Buffer.from(m));
});

test('a forged tag or header is false (and the output zeroed), not an exception, on both paths', () => {
  const random = seededRandom('sodium-aead-forged');
  const key = random(32);
  const nonce = random(12);
  const ad = random(12);
  const c = openssl(key, nonce, ad, random(64));
  for (const impl of [undefined, wrapperAead()]) {
    const bad = Uint8Array.from(c);
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
    const out = new Uint8Array(64).fill(0xaa);
    assert.equal(aeadDecryptInto(out, bad, ad, nonce, key, impl), false);
    assert.ok(out.every((b) => b === 0), 'libsodium zeroes the output on a bad tag');
    const badAd = Uint8Array.from(ad);
    badAd[0] = (badAd[0] as number) ^ 1;
    assert.equal(aeadDecryptInto(new Uint8Array(64), c, badAd, nonce, key, impl), false);
  }
  const { prims } = defaultSuite;
  assert.equal(prims.aeadOpen(key, nonce, ad, c.subarray(0, 15)), null, 'shorter than a tag');
  assert.equal(prims.aeadOpenInPlace(key, nonce, ad, new Uint8Array(15)), null, 'shorter than a tag');
});

test('lengths the binding asserts on (it would abort the process) are refused with LP_ERR_INVALID_STATE first', () => {
  const m = new Uint8Array(10);
  const c = new Uint8Array(26);
  const ok = { key: new Uint8Array(32), nonce: new Uint8Array(12) };
  assert.throws(() => aeadEncryptInto(c, m, new Uint8Array(0), ok.nonce, new Uint8Array(31)), invalidState);
  assert.throws(() => aeadEncryptInto(c, m, new Uint8Array(0), new Uint8Array(24), ok.key), invalidState);
  assert.throws(() => aeadEncryptInto(new Uint8Array(25), m, new Uint8Array(0), ok.nonce, ok.key), invalidState);
  assert.throws(() => aeadDecryptInto(new Uint8Array(11), c, new Uint8Array(0), ok.nonce, ok.key), invalidState);
  assert.throws(() => aeadDecryptInto(new Uint8Array(0), new Uint8Array(15), new Uint8Array(0), ok.nonce, ok.key), invalidState);
  assert.throws(() => aeadDecryptInto(m, c, new Uint8Array(0), ok.nonce, new Uint8Array(33)), invalidState);
  const { prims } = defaultSuite;
  assert.throws(() => prims.aeadSealInPlace(ok.key, ok.nonce, new Uint8Array(0), new Uint8Array(20), 10), invalidState, 'no room for the tag');
  assert.throws(() => prims.aeadOpen(new Uint8Array(16), ok.nonce, new Uint8Array(0), c), invalidState, 'short key');
});
