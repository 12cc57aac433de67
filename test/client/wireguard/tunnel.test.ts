/**
 * The I/O edge (WgTunnel over a real node:dgram socket on loopback) against a fake gateway built on the test
 * responder: no root, no wireguard-go. Covers connect/ping/UDP flows/raw IP, the connect timeout, socket
 * errors and junk from the network (counted, never thrown), cookies, and close.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  WgErrorCode,
  WgTunnel,
  buildEcho,
  buildUdpPacket,
  defaultWgCrypto,
  parseEcho,
  parseIp,
  parseIpPacket,
  parseUdp,
  trimIpPacket,
  wgKeyPair,
  type WgKeyPair,
} from '../../../src/client/wireguard/index.js';
import { TestResponder } from './helpers/responder.js';

const ME4 = parseIp('10.8.0.2');
const GW4 = parseIp('10.8.0.1');
const ME6 = parseIp('fd08::2');
const GW6 = parseIp('fd08::1');

/** A gateway on 127.0.0.1 that answers handshakes, echo requests and UDP (echoed back), like a WireGuard peer's host. */
class FakeGateway {
  readonly keys: WgKeyPair = wgKeyPair();
  readonly client: WgKeyPair = wgKeyPair();
  readonly psk = new Uint8Array(randomBytes(32));
  readonly resp = new TestResponder(defaultWgCrypto, this.keys.privateKey, this.psk, this.client.publicKey);
  readonly sock = dgram.createSocket('udp4');
  clientAddr: dgram.RemoteInfo | null = null;
  port = 0;

  async start(): Promise<this> {
    this.sock.on('message', (d, rinfo) => this.onMessage(new Uint8Array(d), rinfo));
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', r));
    this.port = this.sock.address().port;
    return this;
  }

  private send(d: Uint8Array, to: dgram.RemoteInfo): void {
    this.sock.send(d, to.port, to.address);
  }

  private onMessage(d: Uint8Array, rinfo: dgram.RemoteInfo): void {
    this.clientAddr = rinfo;
    if (d[0] === 1 && d.length === 148) {
      const r = this.resp.consumeInitiation(d, Uint8Array.from([127, 0, 0, 1, rinfo.port >> 8, rinfo.port & 0xff]));
      if (r.kind !== 'dropped') this.send(r.datagram, rinfo);
    } else if (d[0] === 4) {
      const pt = this.resp.open(d);
      if (!pt || pt.length === 0) return;
      const ip = parseIpPacket(trimIpPacket(pt));
      const echo = parseEcho(ip);
      if (echo?.kind === 'request') this.send(this.resp.seal(buildEcho('reply', ip.dst, ip.src, echo.id, echo.seq, echo.data)), rinfo);
      const udp = parseUdp(ip);
      if (udp) this.send(this.resp.seal(buildUdpPacket(ip.dst, udp.dstPort, ip.src, udp.srcPort, udp.payload)), rinfo);
    }
  }

  connectOptions(extra: Partial<Parameters<typeof WgTunnel.connect>[0]> = {}): Parameters<typeof WgTunnel.connect>[0] {
    return {
      privateKey: this.client.privateKey,
      peerPublicKey: this.keys.publicKey,
      presharedKey: this.psk,
      endpoint: { host: '127.0.0.1', port: this.port },
      localIpv4: ME4,
      localIpv6: ME6,
      timeoutMs: 2000,
      ...extra,
    };
  }

  close(): void {
    this.sock.close();
  }
}

test('connect, ping over IPv4 and IPv6, a UDP flow and raw IP listeners', async () => {
  const gw = await new FakeGateway().start();
  const t = await WgTunnel.connect(gw.connectOptions());
  try {
    assert.equal(t.stats.handshakes, 1);
    const seen: Uint8Array[] = [];
    t.onIp((p) => seen.push(p));
    for (const dst of [GW4, GW6]) {
      const r = await t.ping(dst, { count: 3, size: 100 });
      assert.deepEqual([r.sent, r.received, r.rttMs.length], [3, 3, 3]);
    }
    const paced = await t.ping(GW4, { count: 3, intervalMs: 5 });
    assert.equal(paced.received, 3);
    const flow = t.udpTransport({ src: ME6, srcPort: 5000, dst: GW6, dstPort: 6000 });
    const got = new Promise<Uint8Array>((resolve) => flow.onMessage(resolve));
    flow.send(new TextEncoder().encode('hello through the tunnel'));
    assert.equal(new TextDecoder().decode(await got), 'hello through the tunnel');
    flow.close();
    assert.ok(seen.length >= 10, 'every packet out of the tunnel reaches onIp');
    assert.equal(t.stats.dropped, 0);
  } finally {
    t.close();
    gw.close();
  }
});

test('nothing listening: LPWG_ERR_HANDSHAKE_TIMEOUT at timeoutMs, socket errors counted, no crash', async () => {
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
  const port = probe.address().port;
  probe.close(); // a port nobody listens on: ICMP port unreachable → ECONNREFUSED on the connected socket
  const k = wgKeyPair();
  const t0 = Date.now();
  await assert.rejects(
    WgTunnel.connect({ privateKey: k.privateKey, peerPublicKey: wgKeyPair().publicKey, presharedKey: null, endpoint: { host: '127.0.0.1', port }, localIpv4: null, localIpv6: null, timeoutMs: 300 }),
    (e: { code?: string; detail?: Record<string, unknown> }) => e.code === WgErrorCode.HANDSHAKE_TIMEOUT && e.detail?.attempts === 1,
  );
  assert.ok(Date.now() - t0 < 1500);
});

test('junk from the gateway address is dropped and counted by code; the tunnel keeps working', async () => {
  const gw = await new FakeGateway().start();
  const t = await WgTunnel.connect(gw.connectOptions());
  try {
    const to = gw.clientAddr;
    assert.ok(to);
    for (let i = 0; i < 300; i++) {
      const d = randomBytes([1, 4, 32, 33, 64, 92, 148, 500][i % 8] as number);
      if (d.length >= 4 && i % 2) d.set([1 + (i % 4), 0, 0, 0]);
      gw.sock.send(d, to.port, to.address);
      if (i % 25 === 24) await new Promise((r) => setTimeout(r, 5)); // stay under the socket buffer
    }
    // a transport message that authenticates but carries no IP packet: counted too
    gw.sock.send(gw.resp.seal(new Uint8Array(16).fill(0x11)), to.port, to.address);
    const deadline = Date.now() + 3000;
    while (t.stats.dropped < 301 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const s = t.stats;
    assert.equal(s.dropped, s.rxDatagrams - 1, 'everything but the handshake response was dropped');
    assert.ok(s.dropped >= 290, `most of the junk arrived (${s.dropped})`);
    assert.equal(s.droppedByCode[WgErrorCode.BAD_IP_PACKET], 1);
    assert.ok(Object.keys(s.droppedByCode).every((c) => c.startsWith('LPWG_ERR_')));
    assert.equal((await t.ping(GW4)).received, 1);
  } finally {
    t.close();
    gw.close();
  }
});

test('a gateway under load: cookie reply, immediate retry with mac2, connected', async () => {
  const gw = await new FakeGateway().start();
  gw.resp.underLoad = true;
  const t = await WgTunnel.connect(gw.connectOptions());
  try {
    assert.equal(t.stats.cookieReplies, 1);
    assert.equal(t.stats.initiationsSent, 2);
    assert.ok(t.stats.handshakeMs < 1000);
  } finally {
    t.close();
    gw.close();
  }
});

test('wrong preshared key: the edge reports LPWG_ERR_HANDSHAKE_TIMEOUT with the rejections it saw', async () => {
  const gw = await new FakeGateway().start();
  await assert.rejects(WgTunnel.connect(gw.connectOptions({ presharedKey: new Uint8Array(32), timeoutMs: 300 })), (e: { code?: string; detail?: Record<string, unknown> }) => {
    assert.equal(e.code, WgErrorCode.HANDSHAKE_TIMEOUT);
    assert.equal(e.detail?.lastRejection, WgErrorCode.DECRYPT);
    return true;
  });
  gw.close();
});

test('close: pending pings end, later calls are LPWG_ERR_CLOSED, close is idempotent', async () => {
  const gw = await new FakeGateway().start();
  const t = await WgTunnel.connect(gw.connectOptions());
  gw.close(); // no more replies
  const pending = t.ping(GW4, { count: 1, timeoutMs: 10_000 });
  setTimeout(() => t.close(), 20);
  const r = await pending;
  assert.deepEqual([r.sent, r.received], [1, 0]);
  await assert.rejects(t.ping(GW4), { code: WgErrorCode.CLOSED });
  assert.throws(() => t.sendIp(buildEcho('request', ME4, GW4, 1, 1, new Uint8Array(0))), { code: WgErrorCode.CLOSED });
  t.close();
  assert.equal(t.isClosed, true);
});

test('bad arguments are coded errors', async () => {
  const k = wgKeyPair();
  const base = { privateKey: k.privateKey, peerPublicKey: wgKeyPair().publicKey, presharedKey: null, endpoint: { host: '127.0.0.1', port: 9 }, localIpv4: null, localIpv6: null };
  await assert.rejects(WgTunnel.connect({ ...base, localIpv4: new Uint8Array(3) }), { code: WgErrorCode.BAD_ARGUMENT });
  await assert.rejects(WgTunnel.connect({ ...base, privateKey: new Uint8Array(8) }), { code: WgErrorCode.BAD_KEY });
  await assert.rejects(WgTunnel.connect({ ...base, endpoint: { host: '127.0.0.1', port: 0 } }), { code: WgErrorCode.BAD_ARGUMENT });
});
