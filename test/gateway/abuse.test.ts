/**
 * Abuse acceptance tests against real `lp-gateway run` processes on loopback:
 *  a. a ClientHello flood from one source stays within the handshake table bound (LRU eviction) and a
 *     client from another source still registers; with default limits a burst gets Busy after 5;
 *  b. read timeout for a frame that stalls (also one trickled byte by byte), idle timeout;
 *  c. no open relay: a forward to a target outside the directory is refused and opens no connection;
 *  d. exit down / exit silent: coded errors within the timeouts, per-exit backoff with a retry hint (an exit
 *     that never answers puts the session into backoff first, the exit only once 3 clients' forwards went unanswered);
 *  e. unknown receiver indexes: no reply, counted;
 *  f. UDP anti-amplification: an unpadded KKTRequest gets nothing, a padded one the 1,305-byte response.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import {
  InitiatorHandshake,
  KKT_UDP_PAD_TO,
  MessageType,
  type GatewayPin,
  decodeBusy,
  encodeFrame,
  parseClear,
} from '../../src/core/index.js';
import { ClientError, ForwardTransport, LpConnection, TcpStreamTransport, UdpTransport, fetchDescriptor } from '../../src/client/index.js';
import { type GatewayProcess, scrape, startGatewayProcess, stopAll } from '../helpers/gateway-process.js';
import {
  UdpProbe,
  assertRegistered,
  bytesWithin,
  closeTracked,
  clientHelloPacket,
  closedWithin,
  countingListener,
  getStats,
  metric,
  mockDvpnRequest,
  nowSec,
  packetIndex,
  packetType,
  prims,
  randomClientKeys,
  randomIndex,
  sleep,
  startExitStandIn,
  suite,
  tcpConnect,
  tracked,
  unknownIndexPacket,
  type ExitStandIn,
} from '../helpers/lp-e2e.js';
import { validateExposition } from '../helpers/prom-text.js';

after(async () => {
  closeTracked();
  await stopAll();
});

/** Expect `p` to reject with a ClientError of `code`; returns it. */
async function rejectsWith(p: Promise<unknown>, code: string): Promise<ClientError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ClientError, `expected a ClientError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  return assert.fail(`expected ${code}, but the request succeeded`);
}

describe('a. ClientHello and KKTRequest floods: no state for hellos, handshake table bound', () => {
  const FLOOD = 3000;
  const MAX_HANDSHAKES = 1000;
  let gw: GatewayProcess;
  let pin: GatewayPin;

  before(async () => {
    gw = await startGatewayProcess(['--mock-ecash'], {
      env: { LPGW_TABLES_MAX_HANDSHAKES: String(MAX_HANDSHAKES), LPGW_LP_HELLO_RATE_PER_SEC: '1000000', LPGW_LP_HELLO_BURST: '1000000', LPGW_HTTP_STATS_CLIENT_ADDRESSES: 'true' },
    });
    ({ pin } = await fetchDescriptor(gw.http));
  });

  /** Sends `packets` in batches, each once every reply of the previous batch is in (no loss to socket buffers). */
  async function paced(probe: UdpProbe, packets: Uint8Array[], batch: number): Promise<{ ms: number; stalls: number }> {
    const t0 = performance.now();
    const base = probe.replies.length;
    let sent = 0;
    let stalls = 0;
    for (let i = 0; i < packets.length; i += batch) {
      const part = packets.slice(i, i + batch);
      await Promise.all(part.map((h) => probe.send(h, gw.lpUdp ?? '')));
      sent += part.length;
      if (!(await probe.waitForCount(base + sent, 3000))) stalls++;
    }
    return { ms: performance.now() - t0, stalls };
  }

  test(`${FLOOD} ClientHellos from 127.0.0.1 create nothing; ${FLOOD} valid KKTRequests leave the table within its bound; 127.0.0.2 still registers`, async (t) => {
    assert.ok(gw.lpUdp);
    const probe = await UdpProbe.open('127.0.0.1');
    try {
      const indexes = new Set<number>();
      while (indexes.size < FLOOD) indexes.add(randomIndex());
      const now = nowSec();
      const clients = [...indexes].map((receiverIndex) => new InitiatorHandshake({ suite, client: randomClientKeys(), gateway: pin, kktPadTo: KKT_UDP_PAD_TO, receiverIndex }));
      const hellos = clients.map((c) => {
        const out = c.start(now);
        assert.ok(out.kind === 'send');
        return out.packet;
      });
      // A batch of 100 hellos is ~13 KB on the wire, far below the default socket buffers.
      const h = await paced(probe, hellos, 100);
      t.diagnostic(`${FLOOD} hellos: ${Math.round(h.ms)} ms, ${probe.replies.length} replies`);
      assert.equal(h.stalls, 0);
      const acks = new Map(probe.replies.filter((r) => packetType(r) === MessageType.Ack).map((r) => [packetIndex(r), new Uint8Array(r)]));
      assert.equal(acks.size, FLOOD);
      let stats = await getStats(gw.http);
      assert.equal(stats.tables.handshakes, 0, 'a ClientHello creates no state');
      let m = await scrape(gw.http);
      assert.equal(metric(m, 'lp_handshakes_total{result="hello_answered"}'), FLOOD);
      assert.equal(metric(m, 'lp_handshakes_total{result="started"}'), 0);

      // Each client's KKTRequest carries its token and a signature over its index and token: each makes one handshake.
      const requests = clients.map((c) => {
        const out = c.receive(acks.get(c.receiverIndex) as Uint8Array, now);
        assert.ok(out.kind === 'send');
        return out.packet;
      });
      // 1,337-byte requests and answers: small batches stay far below the default UDP receive buffers.
      const k = await paced(probe, requests, 20);
      t.diagnostic(`${FLOOD} KKTRequests: ${Math.round(k.ms)} ms, ${k.stalls} stalled batches`);
      assert.equal(k.stalls, 0);
      const responses = probe.replies.filter((r) => packetType(r) === MessageType.KKTResponse).length;
      assert.equal(responses, FLOOD);
      stats = await getStats(gw.http);
      assert.equal(stats.tables.handshakes, MAX_HANDSHAKES);
      m = await scrape(gw.http);
      assert.equal(metric(m, 'lp_table_evictions_total{table="handshake"}'), FLOOD - MAX_HANDSHAKES);
      assert.equal(metric(m, 'lp_handshakes_total{result="started"}'), FLOOD);
      assert.equal(metric(m, 'lp_hello_rate_limited_total'), 0);
    } finally {
      probe.close();
    }

    // Another source, over UDP and over TCP, completes handshake + registration.
    for (const transport of [tracked(new UdpTransport(gw.lpUdp, 4, { localAddress: '127.0.0.2' })), tracked(new TcpStreamTransport(gw.lpTcp, 10_000, { localAddress: '127.0.0.2' }))]) {
      const conn = await LpConnection.connect({ transport, gateway: pin });
      assertRegistered(await conn.register(mockDvpnRequest()));
      assert.equal(conn.timings.busyRetries, 0);
      conn.close();
    }
    const s = await getStats(gw.http);
    const from = (t: 'udp' | 'tcp', a: string): number => (s.recent_sources ?? []).find((r) => r.transport === t && r.address === a)?.packets ?? 0;
    assert.equal(from('udp', '127.0.0.1'), 2 * FLOOD);
    assert.equal(from('udp', '127.0.0.2'), 5, 'the UDP client really came from 127.0.0.2');
    assert.equal(from('tcp', '127.0.0.2'), 5, 'the TCP client really came from 127.0.0.2');
    assert.ok(s.tables.handshakes <= MAX_HANDSHAKES);
    assert.equal(s.registrations.success.dvpn, 2);
    validateExposition(await (await fetch(`${gw.http}/metrics`)).text());
  });
});

describe('default limits, timeouts, unknown indexes, amplification', () => {
  const READ_TIMEOUT_MS = 500;
  const IDLE_TIMEOUT_MS = 700;
  let gw: GatewayProcess;
  let pin: GatewayPin;

  before(async () => {
    // Default rate limits (20/s, burst 5); short read and idle timeouts.
    gw = await startGatewayProcess(['--mock-ecash'], { env: { LPGW_LP_READ_TIMEOUT_MS: String(READ_TIMEOUT_MS), LPGW_LP_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS) } });
    ({ pin } = await fetchDescriptor(gw.http));
  });

  test('a burst of 50 hellos from one source gets Busy (with a retry hint) after 5; 127.0.0.2 is unaffected', async () => {
    const udp = gw.lpUdp ?? '';
    const probe = await UdpProbe.open('127.0.0.1');
    try {
      const hellos = Array.from({ length: 50 }, () => clientHelloPacket());
      const t0 = performance.now();
      await Promise.all(hellos.map((h) => probe.send(h, udp)));
      assert.ok(await probe.waitForCount(50, 3000), `replies: ${probe.replies.length}/50`);
      const burstMs = performance.now() - t0;
      const acks = probe.replies.filter((r) => packetType(r) === MessageType.Ack);
      const busy = probe.replies.filter((r) => packetType(r) === MessageType.Busy);
      assert.equal(acks.length + busy.length, 50);
      // Burst 5; at 20/s one more token refills per 50 ms the burst takes to be served (a few ms here).
      const refill = Math.ceil(burstMs / 50);
      assert.ok(acks.length >= 5 && acks.length <= 5 + refill, `acks ${acks.length} (burst took ${burstMs.toFixed(1)} ms)`);
      const proposed = new Set(hellos.map((h) => new DataView(h.buffer, h.byteOffset).getUint32(18, true)));
      for (const b of busy) {
        assert.ok(b.length < (hellos[0]?.length ?? 0), 'Busy is smaller than a ClientHello');
        assert.ok(proposed.has(packetIndex(b)), 'Busy is addressed to the proposed index');
        const hint = decodeBusy(parseClear(new Uint8Array(b)).content);
        assert.ok(hint !== null && hint > 0 && hint <= 50, `retry hint ${hint} ms`);
      }
      const m = await scrape(gw.http);
      assert.equal(metric(m, 'lp_hello_rate_limited_total'), busy.length);
      assert.equal(metric(m, 'lp_handshakes_total{result="hello_answered"}'), acks.length);
      assert.equal(metric(m, 'lp_handshakes_total{result="started"}'), 0, 'hellos are answered statelessly');
    } finally {
      probe.close();
    }
    // Immediately after, from another source: no Busy at all.
    const conn = await LpConnection.connect({ transport: tracked(new UdpTransport(udp, 4, { localAddress: '127.0.0.2' })), gateway: pin, maxBusyRetries: 0 });
    assertRegistered(await conn.register(mockDvpnRequest()));
    assert.equal(conn.timings.busyRetries, 0);
    conn.close();
  });

  test('b. a TCP connection stalled mid-frame is closed at the read timeout', async () => {
    const before = await scrape(gw.http);
    const frame = encodeFrame(clientHelloPacket());
    const cases: [string, (s: Socket) => Promise<void>][] = [
      ['2 bytes of a length prefix', async (s) => void s.write(frame.subarray(0, 2))],
      ['a prefix and half a body', async (s) => void s.write(frame.subarray(0, 4 + (frame.length - 4) / 2))],
    ];
    const results = await Promise.all(
      cases.map(async ([why, stall]) => {
        const s = await tcpConnect(gw.lpTcp, '127.0.0.3');
        await stall(s);
        const ms = await closedWithin(s, 3000);
        return { why, ms };
      }),
    );
    for (const { why, ms } of results) {
      assert.ok(ms !== null && ms >= READ_TIMEOUT_MS - 50 && ms <= 1500, `${why}: closed after ${ms} ms`);
    }
    const after = await scrape(gw.http);
    assert.equal(metric(after, 'lp_connections_rejected_total{reason="read_timeout"}') - metric(before, 'lp_connections_rejected_total{reason="read_timeout"}'), 2);
  });

  test('b. a frame trickled one byte at a time is still closed at the read timeout (no slowloris)', async () => {
    const before = await scrape(gw.http);
    const frame = encodeFrame(clientHelloPacket());
    const s = await tcpConnect(gw.lpTcp, '127.0.0.3');
    const closed = closedWithin(s, 4000);
    let i = 0;
    const drip = setInterval(() => {
      if (i < frame.length && !s.destroyed) s.write(frame.subarray(i, ++i));
    }, 100);
    const ms = await closed;
    clearInterval(drip);
    s.destroy();
    assert.ok(ms !== null && ms >= READ_TIMEOUT_MS - 50 && ms <= 1200, `closed after ${ms} ms (${i} of ${frame.length} bytes sent)`);
    const after = await scrape(gw.http);
    assert.equal(metric(after, 'lp_connections_rejected_total{reason="read_timeout"}') - metric(before, 'lp_connections_rejected_total{reason="read_timeout"}'), 1);
  });

  test('b. an idle connection is closed at the idle timeout (fresh, and after a served request)', async () => {
    const before = await scrape(gw.http);
    const fresh = await tcpConnect(gw.lpTcp, '127.0.0.3');
    const served = await tcpConnect(gw.lpTcp, '127.0.0.3');
    const freshClosed = closedWithin(fresh, 3000);
    // A served request (ClientHello → Ack) and then silence.
    const replied = new Promise<void>((resolve) => served.once('data', () => resolve()));
    served.write(encodeFrame(clientHelloPacket()));
    await replied;
    const servedMs = await closedWithin(served, 3000);
    const freshMs = await freshClosed;
    assert.ok(freshMs !== null && freshMs >= IDLE_TIMEOUT_MS - 50 && freshMs <= 1500, `fresh connection closed after ${freshMs} ms`);
    assert.ok(servedMs !== null && servedMs >= IDLE_TIMEOUT_MS - 50 && servedMs <= 1500, `served connection closed ${servedMs} ms after its reply`);
    const after = await scrape(gw.http);
    assert.equal(metric(after, 'lp_connections_rejected_total{reason="idle_timeout"}') - metric(before, 'lp_connections_rejected_total{reason="idle_timeout"}'), 2);
    assert.equal(metric(after, 'lp_connections_rejected_total{reason="read_timeout"}'), metric(before, 'lp_connections_rejected_total{reason="read_timeout"}'));
  });

  test('e. packets to unknown receiver indexes get no reply and are counted (UDP and TCP)', async () => {
    const before = await scrape(gw.http);
    const probe = await UdpProbe.open('127.0.0.1');
    const s = await tcpConnect(gw.lpTcp, '127.0.0.3');
    try {
      assert.equal(await probe.exchange(unknownIndexPacket(randomIndex()), gw.lpUdp ?? '', 500), null, 'no UDP reply');
      s.write(encodeFrame(unknownIndexPacket(randomIndex())));
      assert.equal(await bytesWithin(s, 500), 0, 'no TCP bytes');
      assert.ok(!s.destroyed, 'the connection is not closed for it either');
    } finally {
      probe.close();
      s.destroy();
    }
    const after = await scrape(gw.http);
    assert.equal(metric(after, 'lp_dropped_packets_total{reason="unknown_index"}') - metric(before, 'lp_dropped_packets_total{reason="unknown_index"}'), 2);
    assert.equal(metric(after, 'lp_packets_sent_total{transport="udp"}'), metric(before, 'lp_packets_sent_total{transport="udp"}'));
    assert.equal(metric(after, 'lp_packets_sent_total{transport="tcp"}'), metric(before, 'lp_packets_sent_total{transport="tcp"}'));
  });

  test('f. UDP: an unpadded KKTRequest gets no reply (amplification); a padded one gets the 1,337-byte KKTResponse', async () => {
    const udp = gw.lpUdp ?? '';
    const probe = await UdpProbe.open('127.0.0.4');
    try {
      const before = await scrape(gw.http);
      // Unpadded: the request is 253 bytes, the response would be 1,337.
      const short = new InitiatorHandshake({ suite, client: randomClientKeys(), gateway: pin, kktPadTo: 0 });
      const h1 = short.start(nowSec());
      assert.ok(h1.kind === 'send');
      const ack1 = await probe.exchange(h1.packet, udp);
      assert.ok(ack1 && packetType(ack1) === MessageType.Ack);
      const k1 = short.receive(new Uint8Array(ack1), nowSec());
      assert.ok(k1.kind === 'send');
      assert.equal(k1.packet.length, 253);
      assert.equal(await probe.exchange(k1.packet, udp, 500), null, 'no reply larger than the request');
      const mid = await scrape(gw.http);
      assert.equal(metric(mid, 'lp_dropped_packets_total{reason="amplification"}') - metric(before, 'lp_dropped_packets_total{reason="amplification"}'), 1);

      // Padded (the client library's default for UDP): request and response are both 1,337 bytes.
      const padded = new InitiatorHandshake({ suite, client: randomClientKeys(), gateway: pin, kktPadTo: KKT_UDP_PAD_TO });
      let out = padded.start(nowSec());
      assert.ok(out.kind === 'send');
      const ack2 = await probe.exchange(out.packet, udp);
      assert.ok(ack2 && packetType(ack2) === MessageType.Ack);
      out = padded.receive(new Uint8Array(ack2), nowSec());
      assert.ok(out.kind === 'send');
      assert.equal(out.packet.length, 1337);
      const resp = await probe.exchange(out.packet, udp);
      assert.ok(resp, 'a padded KKTRequest is answered');
      assert.equal(resp.length, 1337);
      assert.equal(packetType(resp), MessageType.KKTResponse);
      // ... and the handshake completes over the same raw socket.
      out = padded.receive(new Uint8Array(resp), nowSec());
      for (let i = 0; i < 3 && out.kind === 'send'; i++) {
        const r = await probe.exchange(out.packet, udp);
        assert.ok(r, `reply to handshake step ${i}`);
        out = padded.receive(new Uint8Array(r), nowSec());
      }
      assert.equal(out.kind, 'established');
      const after = await scrape(gw.http);
      assert.equal(metric(after, 'lp_dropped_packets_total{reason="amplification"}') - metric(before, 'lp_dropped_packets_total{reason="amplification"}'), 1);
    } finally {
      probe.close();
    }
  });
});

describe('c/d. telescoping: no open relay, exit down, exit silent', () => {
  const CONNECT_TIMEOUT_MS = 300;
  const IO_TIMEOUT_MS = 500;
  const BACKOFF_BASE_MS = 800;
  let exit: GatewayProcess;
  let entry: GatewayProcess;
  let silent: ExitStandIn;
  let exitPin: GatewayPin;
  let exitTcp: string;
  let entryConn: LpConnection;

  before(async () => {
    [exit, silent] = await Promise.all([startGatewayProcess(['--mock-ecash', '--mode', 'exit']), startExitStandIn({ delayMs: Infinity })]);
    entry = await startGatewayProcess(['--mock-ecash', '--mode', 'entry', '--peer', exit.pinned, '--peer', silent.pinned], {
      env: {
        LPGW_FORWARD_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
        LPGW_FORWARD_IO_TIMEOUT_MS: String(IO_TIMEOUT_MS),
        LPGW_FORWARD_BACKOFF_BASE_MS: String(BACKOFF_BASE_MS),
        LPGW_FORWARD_BACKOFF_MAX_MS: '10000',
      },
    });
    const d = await fetchDescriptor(exit.http);
    exitPin = d.pin;
    exitTcp = d.descriptor.lp.tcp;
    entryConn = await LpConnection.connect({ transport: tracked(new TcpStreamTransport(entry.lpTcp)), gateway: (await fetchDescriptor(entry.http)).pin });
  });
  after(async () => {
    entryConn?.close();
    await silent?.close();
  });

  const forwardedHello = (identity: Uint8Array, address: string): Promise<Uint8Array> => new ForwardTransport(entryConn, identity, address).request(clientHelloPacket(), 5000);

  test('c. a forward to a target outside the directory is refused and opens no connection', async () => {
    assert.equal((await getStats(entry.http)).directory?.peers, 2);
    const listener = await countingListener('127.0.0.1');
    try {
      const before = await getStats(entry.http);
      // Known identity at an unknown address; unknown identity at the listener; unknown identity at the exit's address.
      await rejectsWith(forwardedHello(exitPin.ed25519Public, listener.address), 'LPGW_ERR_FORWARD_TARGET_UNKNOWN');
      await rejectsWith(forwardedHello(prims.randomBytes(32), listener.address), 'LPGW_ERR_FORWARD_TARGET_UNKNOWN');
      await rejectsWith(forwardedHello(prims.randomBytes(32), exitTcp), 'LPGW_ERR_FORWARD_TARGET_UNKNOWN');
      await sleep(100);
      const after = await getStats(entry.http);
      assert.equal(after.forwards?.connections_opened, before.forwards?.connections_opened, 'no connection opened');
      assert.equal(listener.connections(), 0, 'the target saw no connection');
      const m = await scrape(entry.http);
      assert.equal(metric(m, 'lp_forwards_total{result="refused_unknown_target"}'), 3);
      // The session with the entry is unharmed.
      await entryConn.ping();
    } finally {
      await listener.close();
    }
  });

  test('d. exit down: a coded Error within the timeouts, then backoff with a retry hint', async () => {
    // The path works while the exit is up.
    const up = await LpConnection.connect({ transport: new ForwardTransport(entryConn, exitPin.ed25519Public, exitTcp), gateway: exitPin });
    await up.ping();
    up.close();
    assert.equal(await exit.stop('SIGKILL'), null);

    const opened0 = (await getStats(entry.http)).forwards?.connections_opened ?? 0;
    let t0 = performance.now();
    const failed = await rejectsWith(LpConnection.connect({ transport: new ForwardTransport(entryConn, exitPin.ed25519Public, exitTcp), gateway: exitPin }), 'LPGW_ERR_FORWARD_FAILED');
    const failMs = performance.now() - t0;
    assert.ok(failMs < CONNECT_TIMEOUT_MS + IO_TIMEOUT_MS, `answered after ${Math.round(failMs)} ms`);
    assert.match(failed.message, /LPGW_ERR_CONNECT_FAILED/);
    assert.equal(failed.retryAfterMs, BACKOFF_BASE_MS);
    let m = await scrape(entry.http);
    assert.equal(metric(m, 'lp_forward_backoff_exits'), 1);
    assert.ok(metric(m, 'lp_forward_backoff_seconds') > 0 && metric(m, 'lp_forward_backoff_seconds') <= BACKOFF_BASE_MS / 1000);
    assert.equal(metric(m, 'lp_forwards_total{result="failed"}'), 1);

    // Within the backoff: refused at once, with the remaining time as the hint, and no connection attempt.
    const backoff = await rejectsWith(forwardedHello(exitPin.ed25519Public, exitTcp), 'LPGW_ERR_FORWARD_BACKOFF');
    assert.ok(backoff.retryAfterMs !== null && backoff.retryAfterMs > 0 && backoff.retryAfterMs <= BACKOFF_BASE_MS, `hint ${backoff.retryAfterMs}`);
    assert.equal((await getStats(entry.http)).forwards?.connections_opened, opened0, 'a backed-off exit is not contacted');
    m = await scrape(entry.http);
    assert.equal(metric(m, 'lp_forwards_total{result="refused_backoff"}'), 1);

    // Once the backoff has passed the gauge says so (it is read live at the scrape), and the next failure doubles it.
    await sleep((backoff.retryAfterMs ?? 0) + 50);
    m = await scrape(entry.http);
    assert.equal(metric(m, 'lp_forward_backoff_exits'), 0, 'no exit is in backoff any more');
    assert.equal(metric(m, 'lp_forward_backoff_seconds'), 0);
    const again = await rejectsWith(forwardedHello(exitPin.ed25519Public, exitTcp), 'LPGW_ERR_FORWARD_FAILED');
    assert.equal(again.retryAfterMs, 2 * BACKOFF_BASE_MS);

    // An exit that accepts but never answers: FORWARD_FAILED at the I/O timeout. An exit never answers junk, so
    // this is first the session's problem: that session backs off from the exit (not contacting it again) ...
    t0 = performance.now();
    const silentErr = await rejectsWith(forwardedHello(silent.pin.ed25519Public, silent.lpTcp), 'LPGW_ERR_FORWARD_FAILED');
    const silentMs = performance.now() - t0;
    assert.match(silentErr.message, /LPGW_ERR_IO_TIMEOUT/);
    assert.ok(silentMs >= IO_TIMEOUT_MS - 50 && silentMs < IO_TIMEOUT_MS + 1000, `answered after ${Math.round(silentMs)} ms`);
    assert.equal(silentErr.retryAfterMs, BACKOFF_BASE_MS, 'the session backs off from the base');
    assert.equal(silent.framesReceived(), 1);
    const own = await rejectsWith(forwardedHello(silent.pin.ed25519Public, silent.lpTcp), 'LPGW_ERR_FORWARD_BACKOFF');
    assert.match(own.message, /this session/);
    assert.equal(silent.framesReceived(), 1, 'the session in backoff did not reach the exit');
    m = await scrape(entry.http);
    assert.equal(metric(m, 'lp_forward_breaker_trips_total{cause="unanswered_clients"}'), 0, 'one session cannot put the exit into backoff');
    assert.equal(metric(m, 'lp_forwards_total{result="timeout"}'), 1);
    assert.equal(metric(m, 'lp_forwards_total{result="refused_session_backoff"}'), 1);
    // ... and only when forwards of 3 (forward.breaker_clients) client addresses went unanswered does the exit's breaker open.
    const others = await Promise.all(
      ['127.0.0.2', '127.0.0.3'].map(async (localAddress) => tracked(await LpConnection.connect({ transport: tracked(new TcpStreamTransport(entry.lpTcp, 10_000, { localAddress })), gateway: (await fetchDescriptor(entry.http)).pin }))),
    );
    for (const c of others) await rejectsWith(new ForwardTransport(c, silent.pin.ed25519Public, silent.lpTcp).request(clientHelloPacket(), 5000), 'LPGW_ERR_FORWARD_FAILED');
    assert.equal(silent.framesReceived(), 3);
    // Right after the third client's timeout the exit itself is in backoff (for everyone; base 800 ms).
    const exitBackoff = await rejectsWith(forwardedHello(silent.pin.ed25519Public, silent.lpTcp), 'LPGW_ERR_FORWARD_BACKOFF');
    assert.match(exitBackoff.message, /is in backoff/);
    m = await scrape(entry.http);
    assert.equal(metric(m, 'lp_forward_breaker_trips_total{cause="unanswered_clients"}'), 1);
    assert.equal(metric(m, 'lp_forwards_in_flight'), 0);
    // The client's session with the entry survived all of it.
    await entryConn.ping();
    validateExposition(await (await fetch(`${entry.http}/metrics`)).text());
  });
});
