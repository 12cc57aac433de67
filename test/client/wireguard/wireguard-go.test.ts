/**
 * The TS client against a real wireguard-go interface (root; skipped with the reason otherwise). One network
 * namespace per run (lpwg<pid>…), one wireguard-go interface in it configured with `wg set`, and the client in
 * a child process inside the namespace talking to 127.0.0.1:<listen-port>. Everything is torn down in
 * `after`, also when a test fails.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { REKEY_TIMEOUT, WgErrorCode, wgKeyPair, type WgKeyPair } from '../../../src/client/wireguard/index.js';
import { Driver, Netns, SETPRIV, WG_SKIP, WgGo, b64, cleanup, unb64, which, type Json } from './helpers/wg-env.js';

const PORT = 51820;
const GW4 = '10.91.0.1';
const GW6 = 'fd91::1';

let ns: Netns;
let wg: WgGo;
let driver: Driver;
let gw: WgKeyPair;
const psk = new Uint8Array(randomBytes(32));
let nextHost = 2;

/** A peer registered on the interface with its own tunnel addresses. */
function registerClient(o: { psk?: Uint8Array | null } = {}): { keys: WgKeyPair; v4: string; v6: string } {
  const keys = wgKeyPair();
  const n = nextHost++;
  const v4 = `10.91.0.${n}`;
  const v6 = `fd91::${n.toString(16)}`;
  wg.setPeer({ publicKey: keys.publicKey, psk: o.psk === undefined ? psk : o.psk, allowedIps: `${v4}/32,${v6}/128` });
  return { keys, v4, v6 };
}

function connectArgs(tid: string, c: { keys: WgKeyPair; v4: string; v6: string }, o: Json = {}): Json {
  return { tid, privateKey: b64(c.keys.privateKey), peerPublicKey: b64(gw.publicKey), presharedKey: b64(psk), host: '127.0.0.1', port: PORT, localIpv4: c.v4, localIpv6: c.v6, timeoutMs: 4000, ...o };
}

const errorOf = (r: Json): { code: string; message: string; detail: Record<string, unknown> } => {
  assert.equal(r.ok, false, `expected a coded failure, got ${JSON.stringify(r).slice(0, 400)}`);
  return r.error as { code: string; message: string; detail: Record<string, unknown> };
};
const okOf = (r: Json): Json => {
  assert.equal(r.ok, true, JSON.stringify(r).slice(0, 600));
  return r;
};
const stats = (r: Json): Record<string, number> & { droppedByCode: Record<string, number> } => r.stats as Record<string, number> & { droppedByCode: Record<string, number> };

before(async () => {
  if (WG_SKIP) return;
  ns = Netns.create();
  gw = wgKeyPair();
  wg = await WgGo.start(ns, { privateKey: gw.privateKey, port: PORT, addr4: `${GW4}/24`, addr6: `${GW6}/64` });
  driver = Driver.start(ns);
});

after(() => cleanup());

let main: { keys: WgKeyPair; v4: string; v6: string };

test('handshake with wireguard-go, then pings to its IPv4 and IPv6 tunnel addresses', { skip: WG_SKIP }, async () => {
  main = registerClient();
  const r = okOf(await driver.call('connect', connectArgs('main', main)));
  const s = stats(r);
  assert.equal(s.handshakes, 1);
  assert.ok(Number(s.handshakeMs) > 0 && Number(s.handshakeMs) < REKEY_TIMEOUT, `handshake took ${s.handshakeMs} ms`);
  assert.equal(s.initiationsSent, 1, 'answered at the first attempt');
  assert.ok(wg.latestHandshake(main.keys.publicKey) > 0, 'wg show reports the handshake');
  for (const dst of [GW4, GW6]) {
    const p = okOf(await driver.call('ping', { tid: 'main', dst, count: 3 }));
    assert.equal(p.sent, 3);
    assert.equal(p.received, 3, `pings to ${dst}`);
  }
  const t = wg.transfer(main.keys.publicKey);
  assert.ok(t.rx > 0 && t.tx > 0, `wireguard-go counted traffic both ways: ${JSON.stringify(t)}`);
});

test('traffic started on the gateway side reaches the client and comes back (UDP over IPv4 and IPv6)', { skip: WG_SKIP }, async () => {
  for (const [g, c, port] of [
    [GW4, main.v4, 7000],
    [GW6, main.v6, 7100],
  ] as const) {
    const r = okOf(await driver.call('udpFromGateway', { tid: 'main', gw: g, client: c, port, count: 3 }));
    assert.deepEqual([r.sent, r.echoed], [3, 3], `${g} → ${c}`);
  }
  if (which('ping')) {
    // the kernel's own ping from the gateway namespace; the client answers echo requests to its address
    const out = ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', main.v4]);
    assert.match(out, /2 received/);
  }
});

test('a replayed initiation is refused by wireguard-go and does not disturb the live session', { skip: WG_SKIP }, async () => {
  const cap = okOf(await driver.call('captured', { tid: 'main' }));
  const initiation = unb64((cap.sent as string[])[0] as string);
  assert.equal(initiation.length, 148);
  assert.equal(initiation[0], 1);
  const before = wg.latestHandshake(main.keys.publicKey);
  const rxBefore = stats(okOf(await driver.call('stats', { tid: 'main' }))).rxDatagrams;
  // from elsewhere (an attacker who captured it) and from the client's own socket
  const attacker = okOf(await driver.call('probeRaw', { host: '127.0.0.1', port: PORT, datagrams: [b64(initiation)], waitMs: 400 }));
  assert.deepEqual(attacker.replies, [], 'no response to a replayed initiation');
  const own = okOf(await driver.call('sendRaw', { tid: 'main', datagrams: [b64(initiation)], waitMs: 400 }));
  assert.equal(stats(own).rxDatagrams, rxBefore, 'nothing came back to the client either');
  assert.equal(wg.latestHandshake(main.keys.publicKey), before);
  assert.ok(wg.logs.some((l) => l.includes('handshake replay')), 'wireguard-go logged it as a replay');
  const p = okOf(await driver.call('ping', { tid: 'main', dst: GW4, count: 2 }));
  assert.equal(p.received, 2, 'the session still works');
});

test('wrong preshared key: responses do not authenticate → LPWG_ERR_HANDSHAKE_TIMEOUT naming LPWG_ERR_DECRYPT', { skip: WG_SKIP }, async () => {
  const c = registerClient({ psk: new Uint8Array(randomBytes(32)) });
  const e = errorOf(await driver.call('connect', connectArgs('wrongpsk', c, { timeoutMs: 1500 })));
  assert.equal(e.code, WgErrorCode.HANDSHAKE_TIMEOUT);
  assert.equal(e.detail.lastRejection, WgErrorCode.DECRYPT);
  assert.ok(Number(e.detail.responsesRejected) >= 1);
  assert.match(e.message, /preshared key/);
});

test('wrong gateway public key, or a client key the gateway does not know → LPWG_ERR_HANDSHAKE_TIMEOUT, no responses', { skip: WG_SKIP }, async () => {
  const wrongGw = errorOf(await driver.call('connect', connectArgs('wronggw', main, { peerPublicKey: b64(wgKeyPair().publicKey), timeoutMs: 1200 })));
  assert.equal(wrongGw.code, WgErrorCode.HANDSHAKE_TIMEOUT);
  assert.equal(wrongGw.detail.responsesRejected, 0);
  assert.equal(wrongGw.detail.lastRejection, null);
  const stranger = { keys: wgKeyPair(), v4: '10.91.0.250', v6: 'fd91::fa' };
  const unknown = errorOf(await driver.call('connect', connectArgs('stranger', stranger, { timeoutMs: 1200 })));
  assert.equal(unknown.code, WgErrorCode.HANDSHAKE_TIMEOUT);
  assert.equal(unknown.detail.responsesRejected, 0);
  assert.ok(wg.logs.some((l) => l.includes('invalid mac1')), 'wireguard-go dropped the wrong-key initiation on mac1');
});

test('under load wireguard-go answers with a cookie reply; the client completes with mac2; a stale cookie is a coded drop', { skip: WG_SKIP }, async () => {
  let done: { stats: Record<string, number>; tid: string } | null = null;
  const tries: string[] = [];
  for (let attempt = 0; attempt < 5 && !done; attempt++) {
    const c = registerClient();
    const tid = `cookie${attempt}`;
    // 600 initiations: above wireguard-go's under-load mark (a queue of 128) and below its handshake queue (1,024) —
    // a flood that fills the queue has the client's own initiations dropped on a slow host, and no cookie reaches it.
    const r = okOf(await driver.call('floodThenConnect', { ...connectArgs(tid, c), count: 600, afterMs: 0, floodWaitMs: 300, peerPublicKey: b64(gw.publicKey) }));
    const connect = r.connect as Json;
    tries.push(JSON.stringify({ flood: r.flood, connect }).slice(0, 300));
    if (connect.ok === false || connect.error) continue;
    const s = connect.stats as Record<string, number>;
    if (s.cookieReplies && s.cookieReplies >= 1) done = { stats: s, tid };
    else await driver.call('close', { tid });
  }
  assert.ok(done, `no try got a cookie reply and completed:\n${tries.join('\n')}`);
  assert.ok(Number(done.stats.handshakeMs) < REKEY_TIMEOUT, 'completed by the immediate mac2 retry, not a REKEY_TIMEOUT retransmission');
  // the cookie reply it received, fed to the live tunnel again: no handshake it belongs to any more
  const cap = okOf(await driver.call('captured', { tid: done.tid }));
  const cookieReply = (cap.received as string[]).map(unb64).find((d) => d[0] === 3 && d.length === 64);
  assert.ok(cookieReply, 'the cookie reply was captured');
  const s = stats(okOf(await driver.call('inject', { tid: done.tid, datagrams: [b64(cookieReply)] })));
  assert.equal(s.droppedByCode[WgErrorCode.STALE_COOKIE], 1);
  assert.equal(okOf(await driver.call('ping', { tid: done.tid, dst: GW4, count: 1 })).received, 1);
  await driver.call('close', { tid: done.tid });
});

test('junk injected into a live tunnel is dropped and counted by code; the tunnel keeps working', { skip: WG_SKIP }, async () => {
  const junk: string[] = [];
  for (let i = 0; i < 500; i++) {
    const d = randomBytes([0, 3, 4, 32, 48, 64, 92, 148, 200][i % 9] as number);
    if (d.length >= 4 && i % 2 === 0) d.set([1 + (i % 4), 0, 0, 0]);
    junk.push(d.toString('base64'));
  }
  const before = stats(okOf(await driver.call('stats', { tid: 'main' })));
  const s = stats(okOf(await driver.call('inject', { tid: 'main', datagrams: junk })));
  assert.equal(Number(s.dropped) - Number(before.dropped), 500);
  for (const code of Object.keys(s.droppedByCode)) assert.match(code, /^LPWG_ERR_/);
  assert.equal(okOf(await driver.call('ping', { tid: 'main', dst: GW6, count: 2 })).received, 2);
});

test('unprivileged: the client runs as uid 65534 without capabilities', { skip: WG_SKIP || (!SETPRIV && 'setpriv (util-linux) not installed') }, async () => {
  const nobody = Driver.start(ns, { unprivileged: true });
  const id = okOf(await nobody.call('uid', {}, 30_000));
  assert.equal(id.uid, 65534);
  const status = readFileSync(`/proc/${nobody.proc.pid}/status`, 'utf8');
  assert.match(status, /^CapEff:\s+0+$/m, 'no effective capabilities');
  const c = registerClient();
  okOf(await nobody.call('connect', connectArgs('nobody', c)));
  for (const dst of [GW4, GW6]) assert.equal(okOf(await nobody.call('ping', { tid: 'nobody', dst, count: 2 })).received, 2);
  nobody.kill();
});

test('close: the tunnel refuses further use with LPWG_ERR_CLOSED', { skip: WG_SKIP }, async () => {
  okOf(await driver.call('close', { tid: 'main', keep: true }));
  const e = errorOf(await driver.call('ping', { tid: 'main', dst: GW4 }));
  assert.equal(e.code, WgErrorCode.CLOSED);
});
