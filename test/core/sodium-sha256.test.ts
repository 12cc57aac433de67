/**
 * SHA-256 and HMAC-SHA-256 on libsodium through sodium-native's binding (src/core/crypto/sodium-sha256.ts):
 * the published vectors (FIPS 180-4 examples, RFC 4231), byte equality with OpenSSL (node:crypto) for every
 * key length around the 64-byte block and messages that grow the scratch, and results that do not alias.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { hmacSha256, sha256, sha256Direct, wrapperHash } from '../../src/core/crypto/sodium-sha256.js';
import { defaultSuite } from '../../src/core/index.js';
import { seededRandom } from '../helpers/fixtures.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

test('the binding is called directly with the installed sodium-native (the wrapper is only a fallback)', () => {
  assert.equal(sha256Direct, true);
});

test('the default suite hashes with this module, and an extra argument cannot reach its test-only parameter', () => {
  const key = new Uint8Array(32).fill(3);
  const data = new Uint8Array(50).fill(4);
  const extra = (): number => {
    throw new Error('the implementation parameter was reached');
  };
  const callLoose = (f: unknown, ...args: unknown[]): unknown => (f as (...a: unknown[]) => unknown)(...args);
  assert.deepEqual(callLoose(defaultSuite.prims.sha256, data, extra), sha256(data));
  assert.deepEqual(callLoose(defaultSuite.prims.hmacSha256, key, data, extra), hmacSha256(key, data));
});

test('SHA-256: FIPS 180-4 example vectors', () => {
  assert.equal(hex(sha256(new Uint8Array(0))), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(hex(sha256(ascii('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(hex(sha256(ascii('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  assert.equal(hex(sha256(new Uint8Array(1_000_000).fill(0x61))), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
});

// RFC 4231 §4.2–4.8 (test case 5 is truncated to 128 bits there; its full output is checked against OpenSSL below).
const RFC4231: { key: Uint8Array; data: Uint8Array; mac: string }[] = [
  { key: new Uint8Array(20).fill(0x0b), data: ascii('Hi There'), mac: 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7' },
  { key: ascii('Jefe'), data: ascii('what do ya want for nothing?'), mac: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843' },
  { key: new Uint8Array(20).fill(0xaa), data: new Uint8Array(50).fill(0xdd), mac: '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe' },
  { key: bytes('0102030405060708090a0b0c0d0e0f10111213141516171819'), data: new Uint8Array(50).fill(0xcd), mac: '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b' },
  { key: new Uint8Array(131).fill(0xaa), data: ascii('Test Using Larger Than Block-Size Key - Hash Key First'), mac: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54' },
  {
    key: new Uint8Array(131).fill(0xaa),
    data: ascii('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.'),
    mac: '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
  },
];

test('HMAC-SHA-256: RFC 4231 test cases 1–4, 6, 7 (keys of 4–131 bytes, one longer than the block)', () => {
  for (const [i, v] of RFC4231.entries()) assert.equal(hex(hmacSha256(v.key, v.data)), v.mac, `vector ${i}`);
});

test('HMAC-SHA-256 and SHA-256 equal OpenSSL for keys of 0–130 bytes and messages of 0–10,000 bytes (past the kept scratch), through the binding and the wrapper', () => {
  const random = seededRandom('sodium-sha256');
  for (const keyLen of [0, 1, 31, 32, 33, 63, 64, 65, 100, 128, 130]) {
    for (const dataLen of [0, 1, 32, 55, 56, 63, 64, 65, 119, 120, 200, 300, 1100, 4032, 4033, 10_000]) {
      const key = random(keyLen);
      const data = random(dataLen);
      assert.equal(hex(hmacSha256(key, data)), createHmac('sha256', key).update(data).digest('hex'), `HMAC key ${keyLen}, data ${dataLen}`);
      assert.equal(hex(sha256(data)), createHash('sha256').update(data).digest('hex'), `SHA-256 of ${dataLen}`);
      if (keyLen === 32 || keyLen === 65) {
        // the fallback when binding.js cannot be loaded: sodium-native's public wrapper, same bytes
        assert.equal(hex(hmacSha256(key, data, wrapperHash)), createHmac('sha256', key).update(data).digest('hex'), `wrapper HMAC key ${keyLen}, data ${dataLen}`);
        assert.equal(hex(sha256(data, wrapperHash)), createHash('sha256').update(data).digest('hex'), `wrapper SHA-256 of ${dataLen}`);
      }
    }
  }
});

test('results are fresh arrays: a later call does not change an earlier result, nor do the inputs change', () => {
  const key = new Uint8Array(32).fill(7);
  const data = new Uint8Array(40).fill(9);
  const first = hmacSha256(key, data);
  const copy = first.slice();
  const h = sha256(data);
  const hCopy = h.slice();
  hmacSha256(new Uint8Array(32).fill(1), new Uint8Array(500).fill(2)); // grows the scratch too
  sha256(new Uint8Array(10));
  assert.deepEqual(first, copy);
  assert.deepEqual(h, hCopy);
  assert.notEqual(first.buffer, h.buffer);
  assert.deepEqual(key, new Uint8Array(32).fill(7));
  assert.deepEqual(data, new Uint8Array(40).fill(9));
  // after growing, a short message still gives OpenSSL's answer (no stale bytes from the longer one)
  assert.equal(hex(hmacSha256(key, data)), createHmac('sha256', key).update(data).digest('hex'));
});

test('views into larger buffers hash only their own bytes', () => {
  const backing = new Uint8Array(200).map((_, i) => i);
  const key = backing.subarray(10, 42);
  const data = backing.subarray(50, 150);
  assert.equal(hex(hmacSha256(key, data)), createHmac('sha256', key).update(data).digest('hex'));
  assert.equal(hex(sha256(data)), createHash('sha256').update(data).digest('hex'));
});
