/**
 * The sans-I/O core against a test responder (helpers/responder.ts) with an injected clock: handshakes,
 * coded rejections of every kind of bad input, cookies (mac2), the replay window on the wire, padding,
 * staging, and every timer of wireguard-go's timers.go that the client side has.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  COOKIE_REFRESH_TIME,
  KEEPALIVE_TIMEOUT,
  MAX_STAGED_PACKETS,
  REJECT_AFTER_TIME,
  REKEY_AFTER_TIME,
  REKEY_TIMEOUT,
  WgErrorCode,
  WgPeer,
  buildEcho,
  defaultWgCrypto,
  parseInitiation,
  parseIp,
  wgKeyPair,
  type WgEvent,
  type WgOutput,
  type WgPeerOptions,
} from '../../../src/client/wireguard/index.js';
import { TestResponder } from './helpers/responder.js';

const V4 = { me: parseIp('10.9.0.2'), gw: parseIp('10.9.0.1') };
const packet = (seq = 1, size = 24): Uint8Array => buildEcho('request', V4.me, V4.gw, 7, seq, new Uint8Array(size));
const reply = (seq = 1, size = 24): Uint8Array => buildEcho('reply', V4.gw, V4.me, 7, seq, new Uint8Array(size));
const codes = Object.values(WgErrorCode) as string[];

function setup(o: Partial<WgPeerOptions> = {}, responderPsk?: Uint8Array | null): { peer: WgPeer; resp: TestResponder; psk: Uint8Array } {
  const client = wgKeyPair();
  const gw = wgKeyPair();
  const psk = new Uint8Array(randomBytes(32));
  const peer = new WgPeer({ privateKey: client.privateKey, peerPublicKey: gw.publicKey, presharedKey: psk, ...o });
  const resp = new TestResponder(defaultWgCrypto, gw.privateKey, responderPsk === undefined ? psk : responderPsk, client.publicKey);
  return { peer, resp, psk };
}

function one(o: WgOutput): Uint8Array {
  assert.equal(o.rejected, null, o.rejected?.message);
  assert.equal(o.network.length, 1, `expected one datagram, got ${o.network.length}`);
  return o.network[0] as Uint8Array;
}

const has = (o: WgOutput, type: WgEvent['type']): boolean => o.events.some((e) => e.type === type);

/** Runs a handshake at `now`; returns the keepalive the client sent for key confirmation. */
function handshake(peer: WgPeer, resp: TestResponder, now: number): Uint8Array {
  const init = one(peer.initiate(now));
  const r = resp.consumeInitiation(init);
  assert.equal(r.kind, 'response', r.kind === 'dropped' ? r.reason : r.kind);
  const out = peer.receive(r.datagram, now + 1);
  assert.ok(has(out, 'handshake-complete'));
  return one(out);
}

test('handshake with a responder, data both ways, key confirmation keepalive', () => {
  const { peer, resp } = setup();
  const ka = handshake(peer, resp, 0);
  assert.equal(resp.open(ka)?.length, 0, 'the first transport message is an empty keepalive');
  const d = one(peer.send(packet(), 10));
  assert.deepEqual(resp.open(d)?.subarray(0, packet().length), packet());
  const back = peer.receive(resp.seal(reply()), 11);
  assert.deepEqual(back.tunnel, [reply()]);
  assert.equal(peer.counters.handshakesCompleted, 1);
  assert.equal(peer.hasSession(12), true);
  peer.close();
});

test('transport plaintext is padded to a multiple of 16, never past the MTU', () => {
  const { peer, resp } = setup({ mtu: 1420 });
  handshake(peer, resp, 0);
  for (const size of [0, 1, 15, 16, 17, 100, 1371, 1380]) {
    const p = packet(1, size);
    const d = one(peer.send(p, 5));
    const expected = Math.min(Math.ceil(p.length / 16) * 16, 1420);
    assert.equal(d.length, 32 + expected, `packet of ${p.length}`);
    assert.deepEqual(resp.open(d)?.subarray(0, p.length), p);
  }
});

test('a response that does not authenticate (wrong preshared key) is LPWG_ERR_DECRYPT, then HANDSHAKE_TIMEOUT', () => {
  const { peer, resp } = setup({}, new Uint8Array(32).fill(9));
  const init = one(peer.initiate(0));
  const r = resp.consumeInitiation(init);
  assert.equal(r.kind, 'response');
  if (r.kind !== 'response') return;
  const out = peer.receive(r.datagram, 1);
  assert.equal(out.rejected?.code, WgErrorCode.DECRYPT);
  assert.notEqual(peer.handshakeIndex, null, 'the attempt stays open for a genuine response');
  let failed: WgEvent | undefined;
  let now = 1;
  for (let i = 0; i < 100 && !failed; i++) {
    now = peer.nextDeadline() ?? now;
    failed = peer.tick(now).events.find((e) => e.type === 'handshake-failed');
  }
  assert.ok(failed && failed.type === 'handshake-failed');
  assert.equal(failed.error.code, WgErrorCode.HANDSHAKE_TIMEOUT);
  assert.equal(failed.error.detail.lastRejection, WgErrorCode.DECRYPT);
  assert.match(failed.error.message, /preshared key/);
});

test('forged responses: bad mac1, unknown receiver, low-order ephemeral, no handshake in flight', () => {
  const { peer, resp } = setup();
  assert.equal(peer.receive(new Uint8Array(92).fill(0).map((_, i) => (i === 0 ? 2 : 0)), 0).rejected?.code, WgErrorCode.BAD_MAC1);
  const init = one(peer.initiate(0));
  const r = resp.consumeInitiation(init);
  if (r.kind !== 'response') throw new Error('no response');
  const badMac = new Uint8Array(r.datagram);
  badMac[70] = (badMac[70] ?? 0) ^ 1;
  assert.equal(peer.receive(badMac, 1).rejected?.code, WgErrorCode.BAD_MAC1);
  const ok = peer.receive(r.datagram, 2);
  assert.ok(has(ok, 'handshake-complete'));
  assert.equal(peer.receive(r.datagram, 3).rejected?.code, WgErrorCode.UNKNOWN_INDEX, 'a replayed response');
});

test('initiations from the gateway are refused; junk of every shape is a coded rejection, never a throw', () => {
  const { peer, resp } = setup();
  handshake(peer, resp, 0);
  const init = new Uint8Array(148);
  init[0] = 1;
  assert.equal(peer.receive(init, 1).rejected?.code, WgErrorCode.UNEXPECTED_INITIATION);
  const sizes = [0, 1, 3, 4, 31, 32, 33, 63, 64, 65, 91, 92, 93, 147, 148, 149, 1500];
  for (let i = 0; i < 4000; i++) {
    const len = sizes[i % sizes.length] as number;
    const d = new Uint8Array(randomBytes(len));
    if (len >= 4 && i % 3 !== 0) d.set([1 + (i % 4), 0, 0, 0]);
    if (len >= 8 && i % 5 === 0) d.set(new Uint8Array(new Uint32Array([peer.sessionIndex ?? 0]).buffer), 4);
    const out = peer.receive(d, 2);
    assert.ok(out.rejected && codes.includes(out.rejected.code), `input ${i} (${len} bytes) gave ${out.rejected?.code}`);
    assert.equal(out.tunnel.length, 0);
  }
  // still works
  const d = one(peer.send(packet(), 3));
  assert.ok(resp.open(d));
});

test('replay window on the wire: duplicates refused, reordering within the window accepted', () => {
  const { peer, resp } = setup();
  handshake(peer, resp, 0);
  const msgs = [0, 1, 2, 3, 4].map((i) => resp.seal(reply(i)));
  const order = [0, 2, 1, 4, 3];
  for (const i of order) assert.equal(peer.receive(msgs[i] as Uint8Array, 1).tunnel.length, 1, `message ${i}`);
  for (const i of order) assert.equal(peer.receive(msgs[i] as Uint8Array, 2).rejected?.code, WgErrorCode.REPLAY);
  assert.equal(peer.receive(resp.seal(reply(), 9000), 3).tunnel.length, 1);
  assert.equal(peer.receive(resp.seal(reply(), 10), 3).rejected?.code, WgErrorCode.REPLAY, 'behind the window');
  const tampered = resp.seal(reply(), 9001);
  tampered[40] = (tampered[40] ?? 0) ^ 0x80;
  assert.equal(peer.receive(tampered, 4).rejected?.code, WgErrorCode.DECRYPT);
  assert.equal(peer.receive(resp.seal(reply(), 9001), 5).tunnel.length, 1, 'a forgery does not burn its counter');
});

test('cookie: under load the responder answers with a cookie reply; the client retries at once with mac2', () => {
  const { peer, resp } = setup();
  resp.underLoad = true;
  const init = one(peer.initiate(0));
  assert.ok(parseInitiation(init).mac2.every((b) => b === 0), 'no cookie yet: mac2 is zero');
  const c = resp.consumeInitiation(init);
  assert.equal(c.kind, 'cookie');
  if (c.kind !== 'cookie') return;
  const out = peer.receive(c.datagram, 10);
  assert.ok(has(out, 'cookie-received'));
  const retry = one(out);
  assert.ok(out.events.some((e) => e.type === 'handshake-initiated' && e.withMac2));
  const r = resp.consumeInitiation(retry);
  assert.equal(r.kind, 'response', 'the mac2 is valid for our source');
  if (r.kind !== 'response') return;
  assert.ok(has(peer.receive(r.datagram, 20), 'handshake-complete'));
  assert.equal(peer.counters.cookieReplies, 1);
  // the same cookie reply again: no handshake it belongs to
  assert.equal(peer.receive(c.datagram, 30).rejected?.code, WgErrorCode.STALE_COOKIE);
});

test('cookie: a forged reply is LPWG_ERR_BAD_COOKIE_REPLY; a cookie older than 120 s is not used', () => {
  const { peer, resp } = setup();
  resp.underLoad = true;
  const c = resp.consumeInitiation(one(peer.initiate(0)));
  if (c.kind !== 'cookie') throw new Error('expected a cookie reply');
  const forged = new Uint8Array(c.datagram);
  forged[40] = (forged[40] ?? 0) ^ 1;
  assert.equal(peer.receive(forged, 1).rejected?.code, WgErrorCode.BAD_COOKIE_REPLY);
  const other = new Uint8Array(c.datagram);
  other[4] = (other[4] ?? 0) ^ 1;
  assert.equal(peer.receive(other, 1).rejected?.code, WgErrorCode.STALE_COOKIE, 'reply for another sender index');
  const out = peer.receive(c.datagram, 2);
  const withMac2 = parseInitiation(one(out));
  assert.ok(withMac2.mac2.some((b) => b !== 0));
  // let the cookie age past COOKIE_REFRESH_TIME: the next initiation carries no mac2
  peer.cancelHandshake();
  const later = one(peer.initiate(2 + COOKIE_REFRESH_TIME + 1));
  assert.ok(parseInitiation(later).mac2.every((b) => b === 0));
});

test('retransmission: REKEY_TIMEOUT + jitter with a fresh ephemeral and index; gives up after 20 initiations', () => {
  const { peer } = setup();
  const first = parseInitiation(one(peer.initiate(0)));
  assert.equal(peer.tick(REKEY_TIMEOUT - 1).network.length, 0);
  const at = peer.nextDeadline() ?? 0;
  assert.ok(at >= REKEY_TIMEOUT && at < REKEY_TIMEOUT + 334, `retransmit at ${at}`);
  const second = parseInitiation(one(peer.tick(at)));
  assert.notEqual(second.sender, first.sender);
  assert.notDeepEqual(second.ephemeral, first.ephemeral);
  let sent = 2;
  let failedAt = -1;
  for (let i = 0; i < 100 && failedAt < 0; i++) {
    const now = peer.nextDeadline();
    if (now === null) break;
    const out = peer.tick(now);
    sent += out.network.length;
    const f = out.events.find((e) => e.type === 'handshake-failed');
    if (f) failedAt = now;
  }
  assert.equal(sent, 20, 'wireguard-go: MaxTimerHandshakes + 2 initiations');
  assert.ok(failedAt >= 20 * REKEY_TIMEOUT && failedAt < 20 * (REKEY_TIMEOUT + 334), `gave up at ${failedAt}`);
  assert.equal(peer.handshakeIndex, null);
});

test('keepalive: sent KEEPALIVE_TIMEOUT after receiving data when we sent nothing', () => {
  const { peer, resp } = setup();
  handshake(peer, resp, 0);
  peer.receive(resp.seal(reply()), 100);
  assert.equal(peer.nextDeadline(), 100 + KEEPALIVE_TIMEOUT);
  const ka = one(peer.tick(100 + KEEPALIVE_TIMEOUT));
  assert.equal(resp.open(ka)?.length, 0);
  // but not when we answered in the meantime
  peer.receive(resp.seal(reply()), 20_000);
  one(peer.send(packet(), 20_001));
  assert.equal(peer.tick(20_000 + KEEPALIVE_TIMEOUT).network.length, 0);
});

test('persistent keepalive every N seconds of silence', () => {
  const { peer, resp } = setup({ persistentKeepaliveSec: 25 });
  handshake(peer, resp, 0);
  const due = peer.nextDeadline() ?? 0;
  assert.ok(due <= 25_001);
  const ka = one(peer.tick(25_001));
  assert.equal(resp.open(ka)?.length, 0);
  assert.equal(peer.counters.keepalivesSent, 2);
});

test('new handshake when data was sent and nothing came back for KEEPALIVE + REKEY_TIMEOUT', () => {
  const { peer, resp } = setup();
  handshake(peer, resp, 0);
  one(peer.send(packet(), 1000));
  const at = peer.nextDeadline() ?? 0;
  assert.ok(at >= 1000 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT && at < 1000 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + 334);
  const out = peer.tick(at);
  assert.ok(out.events.some((e) => e.type === 'handshake-initiated'));
});

test('rekey after REKEY_AFTER_TIME when sending; the previous session still decrypts in-flight packets', () => {
  const { peer, resp } = setup();
  handshake(peer, resp, 0);
  const oldReply = resp.seal(reply(1));
  const out = peer.send(packet(), REKEY_AFTER_TIME + 2);
  assert.equal(out.network.length, 2, 'the data and an initiation');
  const r = resp.consumeInitiation(out.network[1] as Uint8Array);
  if (r.kind !== 'response') throw new Error('no response');
  assert.ok(has(peer.receive(r.datagram, REKEY_AFTER_TIME + 3), 'handshake-complete'));
  assert.equal(peer.receive(oldReply, REKEY_AFTER_TIME + 4).tunnel.length, 1, 'previous keypair kept');
});

test('REJECT_AFTER_TIME: the session is unusable, packets are staged behind a new handshake', () => {
  const { peer, resp } = setup();
  handshake(peer, resp, 0);
  const late = resp.seal(reply());
  assert.equal(peer.receive(late, REJECT_AFTER_TIME + 1).rejected?.code, WgErrorCode.KEYS_EXPIRED);
  const out = peer.send(packet(), REJECT_AFTER_TIME + 1);
  assert.equal(out.network.length, 1);
  const r = resp.consumeInitiation(out.network[0] as Uint8Array);
  if (r.kind !== 'response') throw new Error('no response');
  const done = peer.receive(r.datagram, REJECT_AFTER_TIME + 2);
  assert.ok(has(done, 'handshake-complete'));
  assert.equal(done.network.length, 1, 'the staged packet goes out instead of a keepalive');
  assert.deepEqual(resp.open(done.network[0] as Uint8Array)?.subarray(0, packet().length), packet());
});

test('message limits: REKEY_AFTER_MESSAGES starts a handshake, REJECT_AFTER_MESSAGES stops sending', () => {
  const { peer, resp } = setup({ limits: { rekeyAfterMessages: 3, rejectAfterMessages: 6 } });
  handshake(peer, resp, 0); // counter 0 = keepalive
  let initiations = 0;
  for (let i = 0; i < 5; i++) {
    const out = peer.send(packet(), REKEY_TIMEOUT + i);
    initiations += out.events.filter((e) => e.type === 'handshake-initiated').length;
  }
  assert.equal(initiations, 1, 'one initiation (then rate-limited by REKEY_TIMEOUT)');
  const blocked = peer.send(packet(), REKEY_TIMEOUT + 20);
  assert.equal(blocked.network.length, 0, 'counter exhausted: staged, initiation rate-limited');
  assert.equal(peer.hasSession(REKEY_TIMEOUT + 20), false);
});

test('last-minute handshake when only receiving, near REJECT_AFTER_TIME', () => {
  const { peer, resp } = setup();
  handshake(peer, resp, 0);
  const t = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT + 2; // the session was created at 1
  const out = peer.receive(resp.seal(reply()), t);
  assert.equal(out.tunnel.length, 1);
  assert.ok(out.events.some((e) => e.type === 'handshake-initiated'));
  assert.equal(peer.receive(resp.seal(reply()), t + 1).events.filter((e) => e.type === 'handshake-initiated').length, 0, 'only once');
});

test('key material is zeroed 3 × REJECT_AFTER_TIME after the last session', () => {
  const { peer, resp } = setup();
  handshake(peer, resp, 0);
  const msg = resp.seal(reply());
  let zeroed = false;
  for (let i = 0; i < 20 && !zeroed; i++) {
    const now = peer.nextDeadline();
    if (now === null) break;
    zeroed = has(peer.tick(now), 'keys-zeroed');
    if (zeroed) assert.ok(now >= 3 * REJECT_AFTER_TIME);
  }
  assert.ok(zeroed);
  assert.equal(peer.receive(msg, 3 * REJECT_AFTER_TIME + 1).rejected?.code, WgErrorCode.UNKNOWN_INDEX);
});

test('staging: packets sent before the handshake go out after it; at most 128 are kept', () => {
  const { peer, resp } = setup();
  let init: Uint8Array | undefined;
  for (let i = 0; i < MAX_STAGED_PACKETS + 5; i++) {
    const out = peer.send(packet(i), 0);
    init ??= out.network[0];
  }
  assert.equal(peer.counters.stagedDropped, 5);
  const r = resp.consumeInitiation(init as Uint8Array);
  if (r.kind !== 'response') throw new Error('no response');
  const out = peer.receive(r.datagram, 1);
  assert.equal(out.network.length, MAX_STAGED_PACKETS);
  assert.deepEqual(resp.open(out.network[0] as Uint8Array)?.subarray(0, packet(5).length), packet(5), 'the oldest were dropped');
});

test('close wipes keys; afterwards input is refused with LPWG_ERR_CLOSED and sending throws it', () => {
  const { peer, resp } = setup();
  handshake(peer, resp, 0);
  peer.close();
  assert.equal(peer.receive(resp.seal(reply()), 1).rejected?.code, WgErrorCode.CLOSED);
  assert.throws(() => peer.send(packet(), 1), { code: WgErrorCode.CLOSED });
  assert.equal(peer.nextDeadline(), null);
});

test('bad keys are refused at construction with LPWG_ERR_BAD_KEY', () => {
  const k = wgKeyPair();
  assert.throws(() => new WgPeer({ privateKey: new Uint8Array(31), peerPublicKey: k.publicKey, presharedKey: null }), { code: WgErrorCode.BAD_KEY });
  assert.throws(() => new WgPeer({ privateKey: k.privateKey, peerPublicKey: new Uint8Array(32), presharedKey: null }), { code: WgErrorCode.BAD_KEY }, 'a low-order peer key');
  assert.throws(() => new WgPeer({ privateKey: k.privateKey, peerPublicKey: k.publicKey, presharedKey: new Uint8Array(16) }), { code: WgErrorCode.BAD_KEY });
});
