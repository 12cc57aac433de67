import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { sodiumPrimitives as prims } from '../../src/core/crypto/sodium-backend.js';
import { isLpError } from '../../src/core/errors.js';
import { fromHex, toHex } from '../../src/core/bytes.js';
import { CipherState, HandshakeState, parsePattern, type HandshakeOptions } from '../../src/core/noise/index.js';

interface CacophonyVector {
  protocol_name: string;
  init_prologue: string;
  init_psks?: string[];
  init_static?: string;
  init_ephemeral: string;
  init_remote_static?: string;
  resp_prologue: string;
  resp_psks?: string[];
  resp_static?: string;
  resp_ephemeral?: string;
  resp_remote_static?: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

const file = JSON.parse(
  readFileSync(new URL('../vectors/public/noise-cacophony-25519-chachapoly-sha256.json', import.meta.url), 'utf8'),
) as { vectors: CacophonyVector[] };
const vectors = file.vectors;

function keyPair(secretHex: string | undefined): HandshakeOptions['s'] {
  return secretHex === undefined ? undefined : prims.x25519FromSecret(fromHex(secretHex));
}

function sides(v: CacophonyVector): { init: HandshakeState; resp: HandshakeState } {
  const init = new HandshakeState(prims, {
    pattern: v.protocol_name,
    initiator: true,
    prologue: fromHex(v.init_prologue),
    s: keyPair(v.init_static),
    e: keyPair(v.init_ephemeral),
    rs: v.init_remote_static === undefined ? undefined : fromHex(v.init_remote_static),
    psks: v.init_psks?.map(fromHex),
  });
  const resp = new HandshakeState(prims, {
    pattern: v.protocol_name,
    initiator: false,
    prologue: fromHex(v.resp_prologue),
    s: keyPair(v.resp_static),
    e: keyPair(v.resp_ephemeral),
    rs: v.resp_remote_static === undefined ? undefined : fromHex(v.resp_remote_static),
    psks: v.resp_psks?.map(fromHex),
  });
  return { init, resp };
}

function assertBytes(actual: Uint8Array, expected: Uint8Array): void {
  assert.equal(toHex(actual), toHex(expected));
}

function expectCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => isLpError(err) && err.code === code);
}

const ran = new Set<string>();

for (const v of vectors) {
  void test(v.protocol_name, () => {
    const pattern = parsePattern(v.protocol_name);
    const { init, resp } = sides(v);
    const hsCount = pattern.messages.length;
    assert.ok(v.messages.length > hsCount, 'vector has transport messages');

    for (let i = 0; i < hsCount; i++) {
      const m = v.messages[i];
      assert.ok(m);
      const [writer, reader] = i % 2 === 0 ? [init, resp] : [resp, init];
      assert.equal(writer.isMyTurn(), true);
      assert.equal(reader.isMyTurn(), false);
      const ct = writer.writeMessage(fromHex(m.payload));
      assert.equal(toHex(ct), m.ciphertext, `handshake message ${i} ciphertext`);
      assert.equal(toHex(reader.readMessage(fromHex(m.ciphertext))), m.payload, `handshake message ${i} payload`);
    }
    assert.equal(init.isComplete(), true);
    assert.equal(resp.isComplete(), true);
    assert.equal(toHex(init.getHandshakeHash()), v.handshake_hash);
    assert.equal(toHex(resp.getHandshakeHash()), v.handshake_hash);

    const i = init.split();
    const r = resp.split();
    const ad = new Uint8Array(0);
    // transport messages keep the handshake's alternation (message index parity), except one-way patterns
    for (let j = hsCount; j < v.messages.length; j++) {
      const m = v.messages[j];
      assert.ok(m);
      const fromInit = pattern.oneWay || j % 2 === 0;
      const [send, recv] = fromInit ? [i.send, r.recv] : [r.send, i.recv];
      assert.equal(toHex(send.encryptWithAd(ad, fromHex(m.payload))), m.ciphertext, `transport message ${j} ciphertext`);
      assert.equal(toHex(recv.decryptWithAd(ad, fromHex(m.ciphertext))), m.payload, `transport message ${j} payload`);
    }
    init.destroy();
    resp.destroy();
    ran.add(v.protocol_name);
  });
}

function vector(name: string): CacophonyVector {
  const v = vectors.find((x) => x.protocol_name === `Noise_${name}_25519_ChaChaPoly_SHA256`);
  assert.ok(v, name);
  return v;
}

void test('tampered handshake message fails with LP_ERR_NOISE_DECRYPT and leaves the responder state unchanged', () => {
  const v = vector('XKpsk3');
  const { init, resp } = sides(v);
  const msgs = v.messages.map((m) => ({ payload: m.payload, ct: fromHex(m.ciphertext) }));
  const [m0, m1, m2] = msgs;
  assert.ok(m0 && m1 && m2);

  assert.equal(toHex(init.writeMessage(fromHex(m0.payload))), toHex(m0.ct));
  const hashBefore = toHex(resp.getHandshakeHash());
  for (const pos of [0, 40, m0.ct.length - 1]) {
    const forged = m0.ct.slice();
    forged[pos] = (forged[pos] ?? 0) ^ 0x01;
    expectCode(() => resp.readMessage(forged), 'LP_ERR_NOISE_DECRYPT');
    assert.equal(toHex(resp.getHandshakeHash()), hashBefore);
    assert.equal(resp.isMyTurn(), false);
  }
  expectCode(() => resp.readMessage(m0.ct.subarray(0, 20)), 'LP_ERR_NOISE_BAD_MESSAGE');
  expectCode(() => resp.readMessage(m0.ct.subarray(0, 40)), 'LP_ERR_NOISE_BAD_MESSAGE');
  assert.equal(toHex(resp.getHandshakeHash()), hashBefore);

  // the genuine message still goes through, and the handshake completes to the vector's hash
  assert.equal(toHex(resp.readMessage(m0.ct)), m0.payload);
  assert.equal(toHex(resp.writeMessage(fromHex(m1.payload))), toHex(m1.ct));
  assert.equal(toHex(init.readMessage(m1.ct)), m1.payload);
  assert.equal(toHex(init.writeMessage(fromHex(m2.payload))), toHex(m2.ct));

  // a forged final message (carries the encrypted static and the psk) must not poison it either
  const forged = m2.ct.slice();
  forged[5] = (forged[5] ?? 0) ^ 0x80;
  expectCode(() => resp.readMessage(forged), 'LP_ERR_NOISE_DECRYPT');
  assert.equal(resp.getRemoteStatic(), null);
  assert.equal(resp.isComplete(), false);

  assert.equal(toHex(resp.readMessage(m2.ct)), m2.payload);
  assert.equal(toHex(resp.getHandshakeHash()), v.handshake_hash);
  assert.equal(toHex(init.getHandshakeHash()), v.handshake_hash);
  const rs = resp.getRemoteStatic();
  assert.ok(rs);
  assert.equal(toHex(rs), toHex(prims.x25519FromSecret(fromHex(v.init_static ?? '')).publicKey));
});

void test('readMessage copies what it keeps out of a (reused) Buffer frame', () => {
  const v = vector('XX');
  const { init, resp } = sides(v);
  const [m0, m1, m2] = v.messages;
  assert.ok(m0 && m1 && m2);
  const frame = Buffer.alloc(256);
  const feed = (hs: Pick<HandshakeState, 'readMessage'>, hex: string): Uint8Array => {
    const n = frame.write(hex, 'hex');
    const out = hs.readMessage(frame.subarray(0, n));
    frame.fill(0xee);
    return out;
  };
  init.writeMessage(fromHex(m0.payload));
  assert.equal(toHex(feed(resp, m0.ciphertext)), m0.payload);
  resp.writeMessage(fromHex(m1.payload));
  assert.equal(toHex(feed(init, m1.ciphertext)), m1.payload);
  init.writeMessage(fromHex(m2.payload));
  assert.equal(toHex(feed(resp, m2.ciphertext)), m2.payload);
  assert.equal(toHex(resp.getHandshakeHash()), v.handshake_hash);
  assert.equal(toHex(init.getRemoteStatic() ?? new Uint8Array(0)), toHex(prims.x25519FromSecret(fromHex(v.resp_static ?? '')).publicKey));
});

void test('writeMessage out of turn throws LP_ERR_NOISE_STATE', () => {
  const { init, resp } = sides(vector('XX'));
  expectCode(() => resp.writeMessage(new Uint8Array(0)), 'LP_ERR_NOISE_STATE');
  expectCode(() => init.readMessage(new Uint8Array(32)), 'LP_ERR_NOISE_STATE');
  expectCode(() => init.split(), 'LP_ERR_NOISE_STATE');
  const m = init.writeMessage(new Uint8Array(0));
  expectCode(() => init.writeMessage(new Uint8Array(0)), 'LP_ERR_NOISE_STATE');
  resp.readMessage(m);
  expectCode(() => resp.readMessage(m), 'LP_ERR_NOISE_STATE');
});

void test('missing keys and wrong PSK count are LP_ERR_NOISE_STATE', () => {
  expectCode(() => new HandshakeState(prims, { pattern: 'XK', initiator: true }), 'LP_ERR_NOISE_STATE');
  expectCode(() => new HandshakeState(prims, { pattern: 'NNpsk0', initiator: true }), 'LP_ERR_NOISE_STATE');
  expectCode(() => new HandshakeState(prims, { pattern: 'NN', initiator: true, rs: new Uint8Array(32) }), 'LP_ERR_NOISE_STATE');
  expectCode(() => new HandshakeState(prims, { pattern: 'Noise_NN_448_AESGCM_SHA512', initiator: true }), 'LP_ERR_NOISE_STATE');
  expectCode(() => new HandshakeState(prims, { pattern: 'ZZ', initiator: true }), 'LP_ERR_NOISE_STATE');
  expectCode(() => new CipherState(prims).encryptWithAd(new Uint8Array(0), new Uint8Array(1)), 'LP_ERR_NOISE_STATE');
});

void test('generated ephemerals: XKpsk3 round trip agrees on hash and transport keys', () => {
  const is = prims.x25519FromSecret(prims.randomBytes(32));
  const rsKp = prims.x25519FromSecret(prims.randomBytes(32));
  const psk = prims.randomBytes(32);
  const prologue = Uint8Array.of(1, 2, 3);
  const init = new HandshakeState(prims, { pattern: 'Noise_XKpsk3_25519_ChaChaPoly_SHA256', initiator: true, prologue, s: is, rs: rsKp.publicKey, psks: [psk] });
  const resp = new HandshakeState(prims, { pattern: 'XKpsk3', initiator: false, prologue, s: rsKp, psks: [psk] });
  resp.readMessage(init.writeMessage(Uint8Array.of(7)));
  init.readMessage(resp.writeMessage(new Uint8Array(0)));
  assertBytes(resp.readMessage(init.writeMessage(Uint8Array.of(9, 9))), Uint8Array.of(9, 9));
  assert.equal(toHex(init.getHandshakeHash()), toHex(resp.getHandshakeHash()));
  assert.ok(init.getLocalEphemeralPublic());
  const a = init.split();
  const b = resp.split();
  expectCode(() => init.split(), 'LP_ERR_NOISE_STATE');
  const ad = Uint8Array.of(0xaa);
  assertBytes(b.recv.decryptWithAd(ad, a.send.encryptWithAd(ad, Uint8Array.of(1))), Uint8Array.of(1));
  assertBytes(a.recv.decryptWithAd(ad, b.send.encryptWithAd(ad, Uint8Array.of(2))), Uint8Array.of(2));
});

void test('explicit-nonce transport: encryptWithNonce(5n) opens only with nonce 5n', () => {
  const key = prims.randomBytes(32);
  const tx = new CipherState(prims, new Uint8Array(key));
  const rx = new CipherState(prims, new Uint8Array(key));
  const ad = Uint8Array.of(1, 2);
  const pt = Uint8Array.of(3, 4, 5);
  const ct = tx.encryptWithNonce(5n, ad, pt);
  assertBytes(rx.decryptWithNonce(5n, ad, ct), pt);
  expectCode(() => rx.decryptWithNonce(6n, ad, ct), 'LP_ERR_NOISE_DECRYPT');
  expectCode(() => rx.decryptWithNonce(5n, Uint8Array.of(9), ct), 'LP_ERR_NOISE_DECRYPT');
  // explicit nonces leave the implicit counter alone
  assert.equal(tx.getNonce(), 0n);
  assertBytes(rx.decryptWithNonce(0n, ad, tx.encryptWithAd(ad, pt)), pt);
  assert.equal(tx.getNonce(), 1n);
  // a failed implicit decrypt does not advance the nonce
  expectCode(() => rx.decryptWithAd(ad, ct), 'LP_ERR_NOISE_DECRYPT');
  assert.equal(rx.getNonce(), 0n);
  expectCode(() => tx.encryptWithNonce(2n ** 64n - 1n, ad, pt), 'LP_ERR_NOISE_NONCE_EXHAUSTED');
  expectCode(() => rx.decryptWithNonce(0n, ad, new Uint8Array(15)), 'LP_ERR_NOISE_BAD_MESSAGE');
  assertBytes(rx.decryptWithNonce(2n ** 64n - 2n, ad, tx.encryptWithNonce(2n ** 64n - 2n, ad, pt)), pt);
  // Rekey() on both ends keeps them in step and changes the key
  const before = toHex(tx.encryptWithNonce(7n, ad, pt));
  tx.rekey();
  rx.rekey();
  assert.notEqual(toHex(tx.encryptWithNonce(7n, ad, pt)), before);
  assertBytes(rx.decryptWithNonce(7n, ad, tx.encryptWithNonce(7n, ad, pt)), pt);
  tx.destroy();
  assert.equal(tx.hasKey(), false);
});

void test('all 59 cacophony vectors ran, including the ones the gateway relies on', () => {
  assert.equal(vectors.length, 59);
  assert.equal(ran.size, 59);
  for (const name of ['XKpsk3', 'KKpsk0', 'KK', 'XK', 'XX', 'IK', 'NN']) {
    assert.ok(ran.has(`Noise_${name}_25519_ChaChaPoly_SHA256`), name);
  }
});

void test('in-place transport forms: the same bytes as encryptWithNonce, counters as numbers, a failed open wipes', () => {
  const key = prims.randomBytes(32);
  const tx = new CipherState(prims, new Uint8Array(key));
  const rx = new CipherState(prims, new Uint8Array(key));
  const pt = prims.randomBytes(70);
  const empty = new Uint8Array(0);
  for (const counter of [0, 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
    const buf = new Uint8Array(pt.length + 16);
    buf.set(pt);
    tx.sealInPlaceAt(counter, buf, pt.length);
    assertBytes(buf, tx.encryptWithNonce(BigInt(counter), empty, pt));
    assertBytes(rx.openInPlaceAt(counter, new Uint8Array(buf)), pt);
    expectCode(() => rx.openInPlaceAt(counter + (counter === Number.MAX_SAFE_INTEGER ? -1 : 1), new Uint8Array(buf)), 'LP_ERR_NOISE_DECRYPT');
  }
  expectCode(() => tx.sealInPlaceAt(-1, new Uint8Array(32), 16), 'LP_ERR_NOISE_STATE');
  expectCode(() => tx.sealInPlaceAt(2 ** 53, new Uint8Array(32), 16), 'LP_ERR_NOISE_STATE');
  expectCode(() => rx.openInPlaceAt(0, new Uint8Array(15)), 'LP_ERR_NOISE_BAD_MESSAGE');
  // The primitive: a view of the buffer on success; null on a bad tag, with the plaintext part zeroed (libsodium).
  const nonce = new Uint8Array(12);
  const sealed = prims.aeadSeal(key, nonce, empty, pt);
  const ok = new Uint8Array(sealed);
  const opened = prims.aeadOpenInPlace(key, nonce, empty, ok);
  assert.ok(opened && opened.buffer === ok.buffer);
  assertBytes(opened, pt);
  const bad = new Uint8Array(sealed);
  (bad[bad.length - 1] as number) ^= 1;
  assert.equal(prims.aeadOpenInPlace(key, nonce, empty, bad), null);
  assert.ok(bad.subarray(0, pt.length).every((b) => b === 0));
  assert.equal(prims.aeadOpenInPlace(key, nonce, empty, new Uint8Array(15)), null);
});
