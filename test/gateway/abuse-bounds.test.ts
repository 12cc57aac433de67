/**
 * Bounded under abuse (issue 13): one test per attack of the hostile-traffic run, each against real
 * `lp-gateway run` processes on loopback, asserting what a legitimate client still gets during the attack.
 * Forged UDP sources go through a raw socket (root; those tests skip otherwise).
 *  F1  one session floods Forwards an exit silently drops: other clients' telescoping still succeeds;
 *  F2  forged copies of a session's last request: no more bytes reflected than received;
 *  F4  junk forged from a victim's address: the victim's handshakes still succeed (TCP and UDP);
 *  F5a one source opens more connections than the global cap: other clients still connect;
 *  F5b length prefixes without bodies, F5c pipelined Pings never read: RSS growth within DESIGN §10.4's bound;
 *  F7  a third party replays a session's last request: the session still expires on time;
 *  F8  upgrade requests and stalled HTTP requests: answered or closed, and SIGTERM exits within the grace period;
 *  /v1/stats lists no client address unless the operator turns it on.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { InitiatorHandshake, MessageType, type GatewayPin, encodeFrame, serializeClear } from '../../src/core/index.js';
import { ClientError, ForwardTransport, LpConnection, TcpStreamTransport, UdpTransport, fetchDescriptor } from '../../src/client/index.js';
import { type GatewayProcess, scrape, startGatewayProcess, stopAll } from '../helpers/gateway-process.js';
import { NEEDS_ROOT, RawTcpTransport, RecordingUdpTransport, killSpoofers, rssBytes, spoofUdp, spoofUdpAll, udpSink } from '../helpers/abuse.js';
import {
  UdpProbe,
  clientHelloPacket,
  closeTracked,
  closedWithin,
  getStats,
  metric,
  mockDvpnRequest,
  nowSec,
  prims,
  randomClientKeys,
  randomIndex,
  sleep,
  suite,
  tcpConnect,
  tracked,
  unknownIndexPacket,
} from '../helpers/lp-e2e.js';

after(async () => {
  killSpoofers();
  closeTracked();
  await stopAll();
});

const pinOf = async (g: GatewayProcess): Promise<GatewayPin> => (await fetchDescriptor(g.http)).pin;

/** Runs `attempt` in `workers` parallel loops until `ms` have passed; counts attempts and successes. */
async function during(ms: number, workers: number, attempt: (worker: number) => Promise<void>): Promise<{ attempts: number; successes: number; errors: Map<string, number> }> {
  const end = Date.now() + ms;
  let attempts = 0;
  let successes = 0;
  const errors = new Map<string, number>();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      while (Date.now() < end) {
        attempts++;
        try {
          await attempt(w);
          successes++;
        } catch (e) {
          const code = e instanceof ClientError ? e.code : (e as Error).message.slice(0, 60);
          errors.set(code, (errors.get(code) ?? 0) + 1);
          await sleep(50);
        }
      }
    }),
  );
  return { attempts, successes, errors };
}

const showErrors = (m: Map<string, number>): string => JSON.stringify(Object.fromEntries(m));

describe('F1: one session floods Forwards to an exit that silently drops them', () => {
  test('other clients keep telescoping to that exit (≥ 95 %), the exit never goes into backoff', async (t) => {
    const IO_TIMEOUT_MS = 800;
    const exit = await startGatewayProcess(['--mock-ecash', '--mode', 'exit'], { env: { LPGW_LP_HELLO_RATE_EXEMPT: '127.0.0.1' } });
    const entry = await startGatewayProcess(['--mock-ecash', '--mode', 'entry', '--peer', exit.pinned], {
      env: { LPGW_FORWARD_IO_TIMEOUT_MS: String(IO_TIMEOUT_MS), LPGW_LP_HELLO_RATE_PER_SEC: '1000', LPGW_LP_HELLO_BURST: '1000', LPGW_LOG_LEVEL: 'info' },
    });
    const [entryPin, exitDesc] = await Promise.all([pinOf(entry), fetchDescriptor(exit.http)]);
    const exitTcp = exitDesc.descriptor.lp.tcp;

    // The abuser: one session over UDP; every Forward carries a packet for an index the exit does not know,
    // which the exit drops without a reply (as it drops any junk).
    const abuserUdp = tracked(await RecordingUdpTransport.open(entry.lpUdp ?? '', '127.0.0.31'));
    const abuser = tracked(await LpConnection.connect({ transport: abuserUdp, gateway: entryPin }));
    const junkForward = (): Uint8Array => abuser.session.send({ kind: 'forward', forward: { targetGatewayIdentity: exitDesc.pin.ed25519Public, targetLpAddress: exitTcp, innerPacketBytes: unknownIndexPacket(randomIndex()) } });
    let abuseSent = 0;
    let attacking = true;
    const attack = (async () => {
      // 1,000 at once (in bursts of 100 the socket buffers take), then 200 every 250 ms while the test runs.
      for (let i = 0; i < 10; i++, abuseSent += 100) {
        for (let j = 0; j < 100; j++) abuserUdp.send(junkForward());
        await sleep(20);
      }
      while (attacking) {
        for (let j = 0; j < 200; j++) abuserUdp.send(junkForward());
        abuseSent += 200;
        await sleep(250);
      }
    })();

    // Legitimate clients from other addresses: a telescoped handshake with the exit through the entry and a ping.
    const clients = await Promise.all([41, 42, 43, 44].map(async (n) => tracked(await LpConnection.connect({ transport: tracked(new TcpStreamTransport(entry.lpTcp, 5000, { localAddress: `127.0.0.${n}` })), gateway: entryPin }))));
    await sleep(100);
    const r = await during(4 * IO_TIMEOUT_MS + 1000, clients.length, async (w) => {
      const inner = await LpConnection.connect({ transport: new ForwardTransport(clients[w] as LpConnection, exitDesc.pin.ed25519Public, exitTcp), gateway: exitDesc.pin, maxBusyRetries: 0, timeouts: { handshakeMs: 5000, requestMs: 5000 } });
      await inner.ping();
      inner.close();
    });
    attacking = false;
    await attack;
    const m = await scrape(entry.http);
    const rate = r.successes / r.attempts;
    t.diagnostic(`legitimate telescoping during the attack: ${r.successes}/${r.attempts} = ${(rate * 100).toFixed(1)} %; errors ${showErrors(r.errors)}`);
    t.diagnostic(`abuser sent ${abuseSent} Forwards: busy_session ${metric(m, 'lp_forwards_total{result="refused_busy_session"}')}, session_backoff ${metric(m, 'lp_forwards_total{result="refused_session_backoff"}')}, timeouts ${metric(m, 'lp_forwards_total{result="timeout"}')}, ok ${metric(m, 'lp_forwards_total{result="ok"}')}`);
    assert.ok(r.attempts >= 20, `only ${r.attempts} attempts`);
    assert.ok(rate >= 0.95, `success ${(rate * 100).toFixed(1)} %: ${showErrors(r.errors)}`);
    assert.equal(metric(m, 'lp_forward_breaker_trips_total{cause="unanswered_clients"}'), 0, "one client's unanswered forwards never open the exit's breaker");
    assert.equal(metric(m, 'lp_forward_breaker_trips_total{cause="connection"}'), 0);
    // The abuser held at most its own 4 slots: everything else was refused at once or waited in its own backoff.
    assert.ok(metric(m, 'lp_forwards_total{result="timeout"}') <= 4 * Math.ceil((4 * IO_TIMEOUT_MS + 3000) / IO_TIMEOUT_MS), `timeouts ${metric(m, 'lp_forwards_total{result="timeout"}')}`);
    assert.ok(metric(m, 'lp_forwards_total{result="refused_busy_session"}') + metric(m, 'lp_forwards_total{result="refused_session_backoff"}') > abuseSent / 2);
    await Promise.all([entry.stop(), exit.stop()]);
  });
});

describe('F2: forged copies of a session\'s last request (reflection)', { skip: NEEDS_ROOT }, () => {
  test('a copy from another address never gets more bytes than it carried; the requester\'s own address gets at most 8', async (t) => {
    const exit = await startGatewayProcess(['--mock-ecash', '--mode', 'exit'], { env: { LPGW_LP_HELLO_RATE_EXEMPT: '127.0.0.1' } });
    const entry = await startGatewayProcess(['--mock-ecash', '--mode', 'entry', '--peer', exit.pinned]);
    const [entryPin, exitDesc] = await Promise.all([pinOf(entry), fetchDescriptor(exit.http)]);
    const udp = tracked(await RecordingUdpTransport.open(entry.lpUdp ?? '', '127.0.0.51'));
    let ownAnswers = 0;
    udp.socket.on('message', () => ownAnswers++);
    const conn = tracked(await LpConnection.connect({ transport: udp, gateway: entryPin }));
    const victim = await udpSink('127.0.0.66:0');
    try {
      const cases: [string, () => Promise<unknown>][] = [
        ['register error', () => conn.register({ ...mockDvpnRequest(), ticketType: 0 /* a mixnet ticket type for dVPN: refused */ })],
        ['forward to an unknown target', () => conn.request({ kind: 'forward', forward: { targetGatewayIdentity: prims.randomBytes(32), targetLpAddress: '127.0.0.1:9', innerPacketBytes: serializeClear({ receiverIndex: 7, counter: 0, type: MessageType.Ack, content: new Uint8Array(0) }) } }).catch((e: unknown) => e)],
        [
          'a telescoped KKTRequest',
          async () => {
            const inner = new InitiatorHandshake({ suite, client: randomClientKeys(), gateway: exitDesc.pin, kktPadTo: 0 });
            const via = new ForwardTransport(conn, exitDesc.pin.ed25519Public, exitDesc.descriptor.lp.tcp);
            const hello = inner.start(nowSec());
            assert.ok(hello.kind === 'send');
            const kkt = inner.receive(await via.request(hello.packet, 5000), nowSec());
            assert.ok(kkt.kind === 'send');
            return via.request(kkt.packet, 5000);
          },
        ],
      ];
      let received = 0;
      let reflected = 0;
      for (const [name, run] of cases) {
        await run();
        const req = udp.lastSent as Uint8Array;
        const rep = udp.lastReply as Uint8Array;
        assert.ok(rep.length > req.length, `${name}: the genuine reply (${rep.length} B) is larger than its request (${req.length} B)`);
        const before = victim.bytes();
        const sent = await spoofUdpAll({ from: victim.address, to: entry.lpUdp ?? '', packets: [req], ratePps: 500, count: 20 });
        await sleep(300);
        received += sent.bytes;
        reflected += victim.bytes() - before;
        t.diagnostic(`${name}: request ${req.length} B, genuine reply ${rep.length} B (×${(rep.length / req.length).toFixed(2)}); 20 forged copies → ${victim.bytes() - before} B at the victim`);
      }
      assert.ok(reflected <= received, `reflected ${reflected} B for ${received} B received`);
      assert.equal(reflected, 0, 'every reply here is larger than its request: none reaches the victim');

      // The requester's own address may ask again (UDP loss recovery), a bounded number of times.
      ownAnswers = 0;
      await spoofUdpAll({ from: udp.localAddress, to: entry.lpUdp ?? '', packets: [udp.lastSent as Uint8Array], ratePps: 500, count: 20 });
      await sleep(300);
      assert.equal(ownAnswers, 8, 'eight re-sends of the cached reply, then nothing');
      const m = await scrape(entry.http);
      assert.equal(metric(m, 'lp_retransmissions_total{source="other_source"}'), 60);
      assert.equal(metric(m, 'lp_retransmissions_total{source="bound_source"}'), 8);
      assert.equal(metric(m, 'lp_retransmissions_total{source="limit_reached"}'), 12);
      assert.ok(metric(m, 'lp_dropped_packets_total{reason="amplification"}') >= 60);
      // The session itself is unharmed.
      await conn.ping();
    } finally {
      victim.close();
    }
    await Promise.all([entry.stop(), exit.stop()]);
  });
});

describe('F4: junk forged from a victim\'s address', { skip: NEEDS_ROOT }, () => {
  test('1,000 pps of 34-byte junk from the victim\'s IP leave its handshakes alone (TCP and UDP ≥ 95 %); forged hellos over UDP leave its TCP alone', async (t) => {
    const gw = await startGatewayProcess(['--mock-ecash']);
    const pin = await pinOf(gw);
    const VICTIM = '127.0.0.71';
    const handshakes = (ms: number, transports: ('udp' | 'tcp')[]): ReturnType<typeof during> =>
      during(ms, transports.length, async (w) => {
        const transport = transports[w] === 'udp' ? new UdpTransport(gw.lpUdp ?? '', 4, { localAddress: VICTIM }) : new TcpStreamTransport(gw.lpTcp, 3000, { localAddress: VICTIM });
        try {
          const conn = await LpConnection.connect({ transport, gateway: pin, maxBusyRetries: 0, timeouts: { handshakeMs: 3000, requestMs: 3000 } });
          conn.close();
        } finally {
          transport.close();
        }
        await sleep(120); // ~8 handshakes/s per transport: within the default 20/s per source
      });

    // 34-byte junk with receiver index 0 (what a ClientHello would be sent to), random source ports.
    const junk = Array.from({ length: 64 }, () => {
      const p = prims.randomBytes(34);
      p.fill(0, 0, 4);
      return p;
    });
    const flood = spoofUdp({ from: `${VICTIM}:0`, to: gw.lpUdp ?? '', packets: junk, ratePps: 1000, count: 4000 });
    await flood.ready;
    await sleep(200);
    const r = await handshakes(3000, ['udp', 'tcp']);
    const sent = await flood.done;
    const m = await scrape(gw.http);
    const rate = r.successes / r.attempts;
    t.diagnostic(`junk flood (${sent.sent} datagrams): victim handshakes ${r.successes}/${r.attempts} = ${(rate * 100).toFixed(1)} %; errors ${showErrors(r.errors)}; Busy sent ${metric(m, 'lp_hello_rate_limited_total')}`);
    assert.ok(r.attempts >= 20, `only ${r.attempts} attempts`);
    assert.ok(rate >= 0.95, `victim success ${(rate * 100).toFixed(1)} %: ${showErrors(r.errors)}`);
    assert.equal(metric(m, 'lp_hello_rate_limited_total'), 0, 'junk charged no bucket');

    // Well-formed ClientHellos forged from the victim's IP (anyone can make one) drain its UDP bucket only: its
    // TCP source is verified by the kernel and has a bucket of its own.
    const hellos = Array.from({ length: 64 }, () => clientHelloPacket());
    const helloFlood = spoofUdp({ from: `${VICTIM}:0`, to: gw.lpUdp ?? '', packets: hellos, ratePps: 200, count: 500 });
    await helloFlood.ready;
    await sleep(200);
    const tcp = await handshakes(2000, ['tcp']);
    await helloFlood.done;
    t.diagnostic(`forged-hello flood over UDP: victim TCP handshakes ${tcp.successes}/${tcp.attempts}; errors ${showErrors(tcp.errors)}`);
    assert.ok(tcp.successes / tcp.attempts >= 0.95, `victim TCP success ${tcp.successes}/${tcp.attempts}: ${showErrors(tcp.errors)}`);
    await gw.stop();
  });
});

/** Opens `n` TCP connections from `localAddress` (batches of 100); connections the peer closes at once are counted and dropped. */
async function openMany(address: string, localAddress: string, n: number): Promise<{ open: Socket[]; refused: number }> {
  const open: Socket[] = [];
  let refused = 0;
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => tcpConnect(address, localAddress).catch(() => null)));
    for (const s of batch) if (s) open.push(tracked({ close: () => s.destroy(), s }).s);
  }
  await sleep(300);
  for (const s of open) if (s.destroyed || s.readableEnded) refused++;
  return { open: open.filter((s) => !s.destroyed && !s.readableEnded), refused };
}

describe('F5a: one source opens more connections than the global cap', () => {
  test('the source gets its per-source share (128); other clients still connect and handshake over TCP', async (t) => {
    const GLOBAL = 1000;
    const gw = await startGatewayProcess(['--mock-ecash'], { env: { LPGW_LP_MAX_CONNECTIONS: String(GLOBAL) } });
    const pin = await pinOf(gw);
    const attack = await openMany(gw.lpTcp, '127.0.0.81', GLOBAL + 300);
    const m = await scrape(gw.http);
    t.diagnostic(`${GLOBAL + 300} connections from one source: ${attack.open.length} held open, ${attack.refused} closed at accept`);
    assert.equal(attack.open.length, 128, 'the per-source default');
    assert.equal(metric(m, 'lp_connections_rejected_total{reason="max_connections_per_source"}'), GLOBAL + 300 - 128);
    for (const n of [82, 83, 84]) {
      const conn = await LpConnection.connect({ transport: tracked(new TcpStreamTransport(gw.lpTcp, 3000, { localAddress: `127.0.0.${n}` })), gateway: pin, timeouts: { handshakeMs: 3000, requestMs: 3000 } });
      await conn.ping();
      conn.close();
    }
    await sleep(100);
    assert.equal((await getStats(gw.http)).connections.tcp_open, 128);
    for (const s of attack.open) s.destroy();
    await gw.stop();
  });
});

/**
 * DESIGN.md §10.4's bounds: an open TCP connection costs at most CONNECTION_RSS_BOUND of resident memory before
 * its frame buffer (which grows with the bytes that arrived), and a connection whose peer does not read costs at
 * most PIPELINE_RSS_BOUND in all (its bounded queues plus the garbage serving them leaves).
 */
const CONNECTION_RSS_BOUND = 10 * 1024;
const PIPELINE_RSS_BOUND = 48 * 1024 * 1024;

describe('F5b/F5c: TCP memory is bounded by what was received and what was read', () => {
  test('F5b: 8,000 connections that send only a 4-byte length prefix (65,536 declared)', async (t) => {
    const gw = await startGatewayProcess(['--mock-ecash'], { env: { LPGW_LP_READ_TIMEOUT_MS: '30000', LPGW_LOG_LEVEL: 'info' } });
    const pid = gw.proc.pid as number;
    const N = 8000;
    const prefix = new Uint8Array([0, 1, 0, 0]);
    await sleep(500);
    const rss0 = rssBytes(pid);
    const sockets: Socket[] = [];
    // 64 sources of 125 connections each: within the per-source default (128).
    for (let src = 1; sockets.length < N; src++) {
      const batch = await Promise.all(Array.from({ length: 125 }, () => tcpConnect(gw.lpTcp, `127.0.2.${src}`)));
      for (const s of batch) {
        tracked({ close: () => s.destroy() });
        s.write(prefix);
      }
      sockets.push(...batch);
    }
    await sleep(1000);
    const rss1 = rssBytes(pid);
    const stats = await getStats(gw.http);
    const per = (rss1 - rss0) / N;
    t.diagnostic(`${N} connections × 4 bytes: RSS ${(rss0 / 2 ** 20).toFixed(1)} → ${(rss1 / 2 ** 20).toFixed(1)} MiB (+${((rss1 - rss0) / 2 ** 20).toFixed(1)} MiB, ${per.toFixed(0)} B per connection; bound ${CONNECTION_RSS_BOUND} B)`);
    assert.equal(stats.connections.tcp_open, N);
    assert.ok(rss1 - rss0 <= N * CONNECTION_RSS_BOUND, `+${rss1 - rss0} B for ${N} connections`);
    for (const s of sockets) s.destroy();
    await gw.stop();
  });

  test('F5c: one session pipelines Pings (up to 200 MB) and never reads its replies', async (t) => {
    const WRITE_DEADLINE_MS = 3000;
    const gw = await startGatewayProcess(['--mock-ecash'], { env: { LPGW_LP_READ_TIMEOUT_MS: String(WRITE_DEADLINE_MS), LPGW_LOG_LEVEL: 'info' } });
    const pid = gw.proc.pid as number;
    const raw = tracked(await RawTcpTransport.connect(gw.lpTcp, '127.0.0.85'));
    const conn = await LpConnection.connect({ transport: raw, gateway: await pinOf(gw) });
    await sleep(500);
    const rss0 = rssBytes(pid);
    // From now on the client reads nothing: its receive buffer fills, then the gateway's send buffer.
    raw.socket.pause();
    raw.socket.removeAllListeners('data');
    const payload = prims.randomBytes(60_000);
    let written = 0;
    let peak = rss0;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssBytes(pid));
      } catch {
        /* exited */
      }
    }, 100);
    const end = Date.now() + 4000;
    while (written < 200e6 && Date.now() < end && !raw.socket.destroyed) {
      const frame = encodeFrame(conn.session.send({ kind: 'ping', payload }));
      written += frame.length;
      if (!raw.socket.write(frame)) {
        // The gateway stopped reading: wait (bounded) for room, as a client that respects TCP flow control would.
        const drained = await Promise.race([new Promise<boolean>((r) => raw.socket.once('drain', () => r(true))), sleep(Math.max(0, end - Date.now())).then(() => false)]);
        if (!drained) break;
      }
    }
    const paused = metric(await scrape(gw.http), 'lp_connections_paused_total');
    const closedAfter = await new Promise<number | null>((resolve) => {
      const t0 = Date.now();
      if (raw.socket.destroyed) return resolve(0);
      const timer = setTimeout(() => resolve(null), WRITE_DEADLINE_MS + 3000);
      raw.socket.once('close', () => {
        clearTimeout(timer);
        resolve(Date.now() - t0);
      });
      raw.socket.destroySoon();
    });
    clearInterval(sampler);
    const m = await scrape(gw.http);
    t.diagnostic(`pipelined ${(written / 1e6).toFixed(1)} MB of Pings without reading: gateway RSS peak +${((peak - rss0) / 2 ** 20).toFixed(1)} MiB (bound ${PIPELINE_RSS_BOUND / 2 ** 20} MiB); paused ${paused}×; closed ${closedAfter} ms after the flood ended (write deadline ${WRITE_DEADLINE_MS} ms)`);
    assert.ok(paused >= 1, 'the gateway stopped reading the connection');
    assert.ok(peak - rss0 <= PIPELINE_RSS_BOUND, `RSS grew by ${peak - rss0} B`);
    assert.equal(metric(m, 'lp_connections_rejected_total{reason="write_timeout"}'), 1, 'a peer that never reads is closed at the write deadline');
    await gw.stop();
  });
});

describe('F7: a third party replays a session\'s last request', () => {
  test('the session still expires at its idle timeout: replays refresh nothing', async (t) => {
    const TTL_SEC = 3;
    const gw = await startGatewayProcess(['--mock-ecash'], { env: { LPGW_TABLES_SESSION_IDLE_TTL_SEC: String(TTL_SEC) } });
    const udp = tracked(await RecordingUdpTransport.open(gw.lpUdp ?? '', '127.0.0.91'));
    const conn = await LpConnection.connect({ transport: udp, gateway: await pinOf(gw) });
    await conn.ping();
    const last = Date.now();
    const ping = udp.lastSent as Uint8Array;
    // Twice a second, a copy from the session's own address (its socket; what a forger of that address sends
    // is the same datagram) and one from elsewhere, until past the TTL.
    const elsewhere = tracked(await UdpProbe.open('127.0.0.92'));
    let replays = 0;
    const replayer = setInterval(() => {
      udp.send(ping);
      void elsewhere.send(ping, gw.lpUdp ?? '');
      replays += 2;
    }, 500);
    let expiredAfter: number | null = null;
    try {
      while (Date.now() - last < (TTL_SEC + 4) * 1000) {
        if ((await getStats(gw.http)).tables.sessions === 0) {
          expiredAfter = Date.now() - last;
          break;
        }
        await sleep(200);
      }
    } finally {
      clearInterval(replayer);
    }
    const m = await scrape(gw.http);
    const answered = metric(m, 'lp_retransmissions_total{source="bound_source"}') + metric(m, 'lp_retransmissions_total{source="other_source"}');
    t.diagnostic(`session expired ${expiredAfter} ms after its last genuine request (idle TTL ${TTL_SEC} s) while ${replays} replays arrived; answered from the cache: own address ${metric(m, 'lp_retransmissions_total{source="bound_source"}')}, elsewhere ${metric(m, 'lp_retransmissions_total{source="other_source"}')}`);
    assert.ok(expiredAfter !== null, 'the session never expired');
    assert.ok(expiredAfter >= TTL_SEC * 1000 - 100 && expiredAfter <= (TTL_SEC + 2.5) * 1000, `expired after ${expiredAfter} ms`);
    assert.ok(answered >= 8, `the replays reached the session while it lived (${answered})`);
    assert.equal(metric(m, 'lp_table_expirations_total{table="session"}'), 1);
    await assert.rejects(conn.request({ kind: 'ping', payload: new Uint8Array(8) }, 1000), 'the expired session is gone');
    await gw.stop();
  });
});

describe('F8: the HTTP API under upgrade requests and stalled requests', () => {
  test('upgrades nobody serves get 404 and are closed; connections are capped; SIGTERM exits within the grace period', async (t) => {
    const GRACE_SEC = 3;
    const gw = await startGatewayProcess(['--mock-ecash'], { env: { LPGW_SHUTDOWN_GRACE_SEC: String(GRACE_SEC) } });
    const upgrade = 'GET /health HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    let answered404 = 0;
    let closed = 0;
    for (let i = 0; i < 200; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, async () => {
        const s = await tcpConnect(new URL(gw.http).host);
        tracked({ close: () => s.destroy() });
        let response = '';
        s.on('data', (d: Buffer) => (response += d.toString()));
        s.write(upgrade);
        const c = await closedWithin(s, 2000);
        return { response, closed: c !== null };
      }));
      answered404 += batch.filter((b) => b.response.startsWith('HTTP/1.1 404')).length;
      closed += batch.filter((b) => b.closed).length;
    }
    t.diagnostic(`200 upgrade requests to /health: ${answered404} answered 404, ${closed} closed by the gateway`);
    assert.equal(answered404, 200);
    assert.equal(closed, 200);

    // The live stream (a real WebSocket client) and 80 requests that never finish their headers: the cap holds.
    const ws = new WebSocket(`${gw.http.replace('http', 'ws')}/v1/collector/stream`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const stalled = await Promise.all(Array.from({ length: 80 }, async () => {
      const s = await tcpConnect(new URL(gw.http).host);
      tracked({ close: () => s.destroy() });
      s.write('GET /health HTTP/1.1\r\nHost: gw\r\n');
      return s;
    }));
    await sleep(300);
    const held = stalled.filter((s) => !s.destroyed && !s.readableEnded).length;
    t.diagnostic(`80 stalled requests: ${held} held (http.max_connections 64, one taken by the WebSocket)`);
    assert.ok(held <= 63, `${held} stalled connections held`);

    const t0 = performance.now();
    const code = await gw.stop('SIGTERM');
    const exitMs = performance.now() - t0;
    t.diagnostic(`SIGTERM → exit ${code} after ${Math.round(exitMs)} ms (grace ${GRACE_SEC} s)`);
    assert.equal(code, 0);
    assert.ok(exitMs <= GRACE_SEC * 1000, `exited after ${Math.round(exitMs)} ms, beyond the grace period`);
    ws.terminate();
  });
});

describe('/v1/stats and client addresses', () => {
  test('no client address is listed (or recorded) unless http.stats_client_addresses is on', async () => {
    const [off, on] = await Promise.all([startGatewayProcess(['--mock-ecash']), startGatewayProcess(['--mock-ecash'], { env: { LPGW_HTTP_STATS_CLIENT_ADDRESSES: 'true' } })]);
    for (const g of [off, on]) {
      const conn = await LpConnection.connect({ transport: tracked(new UdpTransport(g.lpUdp ?? '', 4, { localAddress: '127.0.0.93' })), gateway: await pinOf(g) });
      await conn.ping();
      conn.close();
    }
    const text = await (await fetch(`${off.http}/v1/stats`)).text();
    assert.ok(!text.includes('127.0.0.93'), text);
    assert.equal((JSON.parse(text) as Record<string, unknown>).recent_sources, undefined);
    const listed = (await getStats(on.http)).recent_sources ?? [];
    assert.ok(listed.some((r) => r.address === '127.0.0.93' && r.transport === 'udp'), JSON.stringify(listed));
    await Promise.all([off.stop(), on.stop()]);
  });
});
