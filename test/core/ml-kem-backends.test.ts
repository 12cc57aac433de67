/**
 * The default ML-KEM-768 backend (libsodium 1.0.22, WebAssembly) against the reference backend
 * (@noble/post-quantum, which carries the FIPS 203 vectors in its own suite): byte-identical keys from the
 * same seeds, identical ciphertexts and secrets from the same message m, identical implicit-rejection secrets
 * for tampered ciphertexts, the same typed errors, and no secret left in libsodium's scratch memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LpError, LpErrorCode, defaultSuite } from '../../src/core/index.js';
import { mlKem768Libsodium, mlKem768ScratchIsWiped } from '../../src/core/crypto/ml-kem-libsodium.js';
import { mlKem768Noble } from '../../src/core/crypto/ml-kem-noble.js';
import type { Kem } from '../../src/core/crypto/primitives.js';

const fast: Kem = mlKem768Libsodium;
const ref: Kem = mlKem768Noble;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function assertLpError(fn: () => unknown, code: LpErrorCode): void {
  assert.throws(fn, (e: unknown) => e instanceof LpError && e.code === code);
}

test('the default suite runs on the libsodium backend', () => {
  assert.equal(defaultSuite.kem, mlKem768Libsodium);
});

test('same seeds → identical encapsulation and decapsulation keys (50 seeds)', () => {
  for (let i = 0; i < 50; i++) {
    const seed = randomBytes(64);
    const a = fast.keygen(seed);
    const b = ref.keygen(seed);
    assert.equal(hex(a.publicKey), hex(b.publicKey), `public key, seed ${hex(seed)}`);
    assert.equal(hex(a.secretKey), hex(b.secretKey), `secret key, seed ${hex(seed)}`);
  }
  assert.ok(mlKem768ScratchIsWiped());
});

test('same message m → identical ciphertext and shared secret; each decapsulates the other (100 rounds)', () => {
  const { publicKey, secretKey } = ref.keygen(randomBytes(64));
  for (let i = 0; i < 100; i++) {
    const m = randomBytes(32);
    const a = fast.encapsulate(publicKey, m);
    const b = ref.encapsulate(publicKey, m);
    assert.equal(hex(a.ciphertext), hex(b.ciphertext));
    assert.equal(hex(a.sharedSecret), hex(b.sharedSecret));
    assert.equal(hex(fast.decapsulate(b.ciphertext, secretKey)), hex(b.sharedSecret));
    assert.equal(hex(ref.decapsulate(a.ciphertext, secretKey)), hex(a.sharedSecret));
  }
  assert.ok(mlKem768ScratchIsWiped());
});

test('tampered ciphertexts → the same implicit-rejection secret from both backends, never a throw (200 cases)', () => {
  const { publicKey, secretKey } = fast.keygen(randomBytes(64));
  for (let i = 0; i < 200; i++) {
    const { ciphertext, sharedSecret } = fast.encapsulate(publicKey, randomBytes(32));
    const bad = Uint8Array.from(ciphertext);
    const at = (i * 131) % bad.length;
    bad[at] = (bad[at] as number) ^ (1 << (i % 8));
    const rejected = fast.decapsulate(bad, secretKey);
    assert.equal(rejected.length, 32);
    assert.notEqual(hex(rejected), hex(sharedSecret));
    assert.equal(hex(rejected), hex(ref.decapsulate(bad, secretKey)));
  }
  assert.ok(mlKem768ScratchIsWiped());
});

test('an encapsulation key with a coefficient ≥ q is refused by both (LP_ERR_BAD_PUBLIC_KEY)', () => {
  const { publicKey } = fast.keygen(randomBytes(64));
  const bad = Uint8Array.from(publicKey);
  bad[0] = 0xff; // first 12-bit coefficient becomes 0x?ff | 0xf00 = 4095 ≥ 3329
  bad[1] = (bad[1] as number) | 0x0f;
  for (const kem of [fast, ref]) assertLpError(() => kem.encapsulate(bad, randomBytes(32)), LpErrorCode.BAD_PUBLIC_KEY);
  assert.ok(mlKem768ScratchIsWiped());
});

test('wrong lengths are typed errors, not crashes', () => {
  const { publicKey, secretKey } = fast.keygen(randomBytes(64));
  const { ciphertext } = fast.encapsulate(publicKey, randomBytes(32));
  assertLpError(() => fast.keygen(randomBytes(63)), LpErrorCode.KEM_BAD_CIPHERTEXT);
  assertLpError(() => fast.encapsulate(publicKey.subarray(1), randomBytes(32)), LpErrorCode.KEM_BAD_CIPHERTEXT);
  assertLpError(() => fast.encapsulate(publicKey, randomBytes(31)), LpErrorCode.KEM_BAD_CIPHERTEXT);
  assertLpError(() => fast.decapsulate(ciphertext.subarray(1), secretKey), LpErrorCode.KEM_BAD_CIPHERTEXT);
  assertLpError(() => fast.decapsulate(ciphertext, secretKey.subarray(1)), LpErrorCode.KEM_BAD_CIPHERTEXT);
  assert.ok(mlKem768ScratchIsWiped());
});

test('outputs are fresh copies, not views of the WASM heap', () => {
  const { publicKey, secretKey } = fast.keygen(randomBytes(64));
  const first = fast.encapsulate(publicKey, randomBytes(32));
  const keep = hex(first.sharedSecret);
  const secret = fast.decapsulate(first.ciphertext, secretKey);
  fast.encapsulate(publicKey, randomBytes(32));
  assert.equal(hex(first.sharedSecret), keep);
  assert.equal(hex(secret), keep);
  assert.equal(first.sharedSecret.buffer.byteLength, 32);
  assert.equal(secret.buffer.byteLength, 32);
});
