/**
 * Acceptance tests of the gateway node with real `lp-gateway run` processes on loopback sockets:
 * health and the signed descriptor (checked against the keys on disk and the KEM key sent in KKT),
 * handshake + registration over TCP (one connection per packet, one reused connection), UDP and
 * telescoped through an entry, rekey over the wire, and a strict check of the Prometheus exposition.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { resolveShardCount } from '../../src/gateway/shard.js';
import { type GatewayPin, InitiatorHandshake, KktKem, MessageType, concat, decodeKktFrame, decodeKktResponseContent, kktBinding, parseClear, toHex } from '../../src/core/index.js';
import { ForwardTransport, LpConnection, TcpPerPacketTransport, TcpStreamTransport, UdpTransport, fetchDescriptor } from '../../src/client/index.js';
import { descriptorSigningBytes, verifyDescriptor, type GatewayDescriptor } from '../../src/gateway/descriptor.js';
import { loadOrCreateKeys } from '../../src/gateway/keystore.js';
import { type GatewayProcess, scrape, startGatewayProcess, stopAll } from '../helpers/gateway-process.js';
import { assertRegistered, closeTracked, getStats, metric, mockDvpnRequest, nowSec, prims, randomClientKeys, randomWgKey, suite, tracked } from '../helpers/lp-e2e.js';
import { validateExposition } from '../helpers/prom-text.js';

after(async () => {
  closeTracked();
  await stopAll();
});

describe('gateway node: descriptor, handshake and registration over real sockets', () => {
  /** Gateway on defaults-like config (mode both, mock credentials). */
  let gw: GatewayProcess;
  /** Entry-only gateway whose directory holds `gw` (`--peer`). */
  let entry: GatewayProcess;
  let descriptor: GatewayDescriptor;
  let pin: GatewayPin;

  before(async () => {
    gw = await startGatewayProcess(['--mock-ecash']);
    entry = await startGatewayProcess(['--mock-ecash', '--mode', 'entry', '--peer', gw.pinned]);
    ({ descriptor, pin } = await fetchDescriptor(gw.http));
  });

  test('/health answers 200 and /v1/gateway is signed by the identity key on disk', async () => {
    const health = await fetch(`${gw.http}/health`);
    assert.equal(health.status, 200);
    const h = (await health.json()) as { status: string; store: { backend: string; state: string } };
    assert.equal(h.status, 'ok');
    assert.deepEqual([h.store.backend, h.store.state], ['sqlite', 'available'], 'the embedded store by default');
    // Default tables.shards = 0 (auto) resolves from the CPU count and says so once at start.
    const cpus = availableParallelism();
    const shardLog = gw.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('receiver-index shard'));
    assert.equal(shardLog?.auto, true);
    assert.equal(shardLog?.cpus, cpus);
    assert.equal(shardLog?.shards, resolveShardCount(0, cpus));

    const raw: unknown = await (await fetch(`${gw.http}/v1/gateway`)).json();
    const d = verifyDescriptor(raw, suite);
    // The signature verifies with the gateway's real identity key (read back from its data directory),
    // not only with whatever key the descriptor names.
    const keys = loadOrCreateKeys(gw.dataDir, suite).keys;
    assert.equal(d.identity_key, toHex(keys.ed25519.publicKey));
    assert.ok(prims.ed25519Verify(keys.ed25519.publicKey, descriptorSigningBytes(d), Buffer.from(d.signature, 'hex')));
    assert.equal(d.kem.key_hash, toHex(keys.kemKeyHash));
    assert.equal(d.lp.tcp, gw.lpTcp);
    assert.equal(d.lp.udp, gw.lpUdp);
    assert.deepEqual(d.roles, ['entry', 'exit']);
    assert.ok(Math.abs(d.issued_at - nowSec()) < 120);
    // A tampered descriptor does not verify.
    assert.throws(() => verifyDescriptor({ ...d, lp: { ...d.lp, tcp: '127.0.0.1:1' } }, suite), (e: Error & { code?: string }) => e.code === 'LPGW_ERR_DESCRIPTOR_SIGNATURE');
  });

  test('kem.key_hash is BLAKE3 of the KEM key the gateway sends in KKT (real ClientHello + KKTRequest over TCP)', async () => {
    const hs = new InitiatorHandshake({ suite, client: randomClientKeys(), gateway: pin });
    const t = tracked(new TcpStreamTransport(gw.lpTcp));
    try {
      const hello = hs.start(nowSec());
      assert.equal(hello.kind, 'send');
      if (hello.kind !== 'send') return;
      const ack = await t.request(hello.packet, 5000);
      assert.equal(parseClear(ack).type, MessageType.Ack);
      const kktReq = hs.receive(ack, nowSec());
      assert.equal(kktReq.kind, 'send');
      if (kktReq.kind !== 'send') return;
      assert.equal(parseClear(kktReq.packet).type, MessageType.KKTRequest);
      const resp = await t.request(kktReq.packet, 5000);
      assert.equal(resp.length, 1337, 'ML-KEM-768 KKTResponse packet: frame ‖ gateway nonce');
      const p = parseClear(resp);
      assert.equal(p.type, MessageType.KKTResponse);
      const { frame: raw, gatewayNonce } = decodeKktResponseContent(p.content);
      const frame = decodeKktFrame(raw);
      assert.equal(frame.context.kem, KktKem.MlKem768);
      assert.equal(frame.body.length, 1184);
      assert.equal(toHex(prims.blake3(frame.body)), descriptor.kem.key_hash);
      // The frame's signature is the identity's, over frame ‖ index ‖ token ‖ gateway nonce (DESIGN.md §4.2).
      const token = parseClear(kktReq.packet).content.subarray(100, 132);
      assert.ok(prims.ed25519Verify(pin.ed25519Public, concat(frame.signed, kktBinding(hs.receiverIndex, token, gatewayNonce)), frame.signature));
      assert.ok(!prims.ed25519Verify(pin.ed25519Public, frame.signed, frame.signature), 'not over the frame alone');
      const msg1 = hs.receive(resp, nowSec());
      assert.equal(msg1.kind, 'send');
    } finally {
      t.close();
    }
  });

  test('handshake + registration over TCP, one connection per packet', async () => {
    const before = await scrape(gw.http);
    const conn = await LpConnection.connect({ transport: tracked(new TcpPerPacketTransport(gw.lpTcp)), gateway: pin });
    const wgKey = randomWgKey();
    const res = await conn.register(mockDvpnRequest(wgKey));
    assertRegistered(res);
    // the gateway's WireGuard key (no interface here, so the descriptor announces no tunnel)
    assert.deepEqual(new Uint8Array(res.gatewayData?.publicKey ?? []), new Uint8Array(loadOrCreateKeys(gw.dataDir, suite).wireguard.publicKey));
    assert.equal(descriptor.wireguard, null, 'no WireGuard interface: no tunnel announced');
    assert.equal(res.allocatedBandwidth, 1n << 30n, 'mock verifier grants 1 GiB');
    await conn.ping();
    conn.close();
    const after = await scrape(gw.http);
    // ClientHello, KKTRequest, msg1, msg3, register, ping: six packets, six connections (plus one per
    // ClientHello re-sent after a Busy from the default per-source hello limit, if any).
    assert.equal(metric(after, 'lp_connections_total') - metric(before, 'lp_connections_total'), 6 + conn.timings.busyRetries);
    assert.equal(metric(after, 'lp_handshakes_total{result="completed"}') - metric(before, 'lp_handshakes_total{result="completed"}'), 1);
    assert.equal(metric(after, 'lp_registrations_total{mode="dvpn",result="success"}') - metric(before, 'lp_registrations_total{mode="dvpn",result="success"}'), 1);
  });

  test('handshake + registration over ONE reused TCP connection', async () => {
    const before = await scrape(gw.http);
    const transport = tracked(new TcpStreamTransport(gw.lpTcp));
    const conn = await LpConnection.connect({ transport, gateway: pin });
    assertRegistered(await conn.register(mockDvpnRequest()));
    await conn.ping();
    const mid = await getStats(gw.http);
    assert.equal(mid.connections.tcp_open, 1, 'the connection is still open');
    conn.close();
    const after = await scrape(gw.http);
    assert.equal(metric(after, 'lp_connections_total') - metric(before, 'lp_connections_total'), 1, 'the whole handshake + registration used exactly one connection');
    const packets = 6 + conn.timings.busyRetries;
    assert.equal(metric(after, 'lp_packets_received_total{transport="tcp"}') - metric(before, 'lp_packets_received_total{transport="tcp"}'), packets);
    assert.equal(metric(after, 'lp_packets_sent_total{transport="tcp"}') - metric(before, 'lp_packets_sent_total{transport="tcp"}'), packets, 'every request got its reply');
  });

  test('handshake + registration over UDP', async () => {
    assert.ok(gw.lpUdp);
    const before = await scrape(gw.http);
    const conn = await LpConnection.connect({ transport: tracked(new UdpTransport(gw.lpUdp)), gateway: pin });
    assertRegistered(await conn.register(mockDvpnRequest()));
    await conn.ping();
    conn.close();
    const after = await scrape(gw.http);
    const d = (k: string): number => metric(after, k) - metric(before, k);
    assert.equal(d('lp_packets_received_total{transport="udp"}'), 6 + conn.timings.busyRetries);
    assert.equal(d('lp_packets_sent_total{transport="udp"}'), 6 + conn.timings.busyRetries, 'every datagram got its reply (no re-sends needed)');
    assert.equal(d('lp_dropped_packets_total{reason="amplification"}'), 0, 'the client pads its KKTRequest');
  });

  test('the same WireGuard key registered twice keeps its addresses (TCP then UDP)', async () => {
    const wgKey = randomWgKey();
    const a = await LpConnection.connect({ transport: tracked(new TcpStreamTransport(gw.lpTcp)), gateway: pin });
    const first = assertRegistered(await a.register(mockDvpnRequest(wgKey)));
    a.close();
    const b = await LpConnection.connect({ transport: tracked(new UdpTransport(gw.lpUdp ?? '')), gateway: pin });
    const second = assertRegistered(await b.register(mockDvpnRequest(wgKey)));
    b.close();
    assert.deepEqual(second, first);
  });

  test('telescoped handshake + registration: client → entry process → exit process', async () => {
    const entryPin = (await fetchDescriptor(entry.http)).pin;
    const entryStats = await getStats(entry.http);
    assert.equal(entryStats.directory?.peers, 1, 'the entry loaded the exit from --peer');
    const openedBefore = entryStats.forwards?.connections_opened ?? -1;
    const exitBefore = await scrape(gw.http);

    const entryConn = await LpConnection.connect({ transport: tracked(new TcpStreamTransport(entry.lpTcp)), gateway: entryPin });
    const exitConn = await LpConnection.connect({ transport: new ForwardTransport(entryConn, pin.ed25519Public, descriptor.lp.tcp), gateway: pin });
    const res = await exitConn.register(mockDvpnRequest());
    assertRegistered(res);
    assert.deepEqual(new Uint8Array(res.gatewayData?.publicKey ?? []), new Uint8Array(loadOrCreateKeys(gw.dataDir, suite).wireguard.publicKey), 'registered at the exit, not the entry');
    await exitConn.ping();
    // Rekey end to end with the exit, through the entry.
    const { oldIndex, newIndex } = await exitConn.rekey();
    assert.notEqual(newIndex, oldIndex);
    await exitConn.ping();
    entryConn.close();

    const es = await getStats(entry.http);
    const em = await scrape(entry.http);
    // ClientHello, KKTRequest, msg1, msg3, register, ping, KK1, Ready, ping: nine forwards, plus one per
    // ClientHello re-sent after a Busy (from the entry's per-client limit, or relayed from the exit).
    const ok = metric(em, 'lp_forwards_total{result="ok"}');
    assert.equal(ok + metric(em, 'lp_forwards_total{result="hello_busy"}'), 9 + exitConn.timings.busyRetries);
    // The entry reuses its connection to the exit: sequential forwards need at most one new connection.
    assert.ok(ok >= 9);
    assert.ok((es.forwards?.connections_opened ?? 0) - openedBefore <= 1, `${(es.forwards?.connections_opened ?? 0) - openedBefore} exit connections for ${ok} forwards`);
    assert.equal(es.forwards?.in_flight, 0);
    assert.equal(metric(em, 'lp_registrations_total{mode="dvpn",result="success"}'), 0, 'the entry registered nothing itself');
    const exitAfter = await scrape(gw.http);
    assert.equal(metric(exitAfter, 'lp_registrations_total{mode="dvpn",result="success"}') - metric(exitBefore, 'lp_registrations_total{mode="dvpn",result="success"}'), 1);
    assert.equal(metric(exitAfter, 'lp_subsessions_total{result="promoted"}') - metric(exitBefore, 'lp_subsessions_total{result="promoted"}'), 1);
  });

  test('rekey over the wire (TCP and UDP): the new session answers, the old index is demoted', async () => {
    for (const transport of [tracked(new TcpStreamTransport(gw.lpTcp)), tracked(new UdpTransport(gw.lpUdp ?? ''))]) {
      const before = await scrape(gw.http);
      const conn = await LpConnection.connect({ transport, gateway: pin });
      await conn.ping();
      const { oldIndex, newIndex } = await conn.rekey();
      assert.notEqual(newIndex, oldIndex);
      assert.equal(conn.session.receiverIndex, newIndex);
      await conn.ping();
      assertRegistered(await conn.register(mockDvpnRequest()));
      conn.close();
      const after = await scrape(gw.http);
      assert.equal(metric(after, 'lp_subsessions_total{result="promoted"}') - metric(before, 'lp_subsessions_total{result="promoted"}'), 1, transport.kind);
    }
    const s = await getStats(gw.http);
    assert.ok(s.tables.demoted >= 2, `demoted parents: ${s.tables.demoted}`);
  });

  test('/metrics of a busy gateway is valid Prometheus text exposition', async () => {
    for (const g of [gw, entry]) {
      const res = await fetch(`${g.http}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      const families = validateExposition(text);
      for (const name of ['lp_connections_total', 'lp_handshakes_total', 'lp_forward_duration_seconds', 'lp_table_evictions_total', 'lp_hello_rate_limited_total', 'lp_registrations_total']) {
        assert.ok(families.has(name), `${name} is exposed`);
      }
    }
    const em = await scrape(entry.http);
    assert.ok(metric(em, 'lp_forwards_total{result="ok"}') >= 9);
    assert.equal(metric(em, 'lp_forward_duration_seconds_count'), metric(em, 'lp_forwards_total{result="ok"}'), 'the histogram saw every forward to the exit');
  });
});

describe('the exposition validator itself', () => {
  const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 3\na_total{x="2\\"q\\\\\\n"} 0\n# TYPE h histogram\nh_bucket{le="0.5"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.75\nh_count 2\n# TYPE g gauge\ng NaN\ng{y="z"} -Inf 1700000000000\n';

  test('accepts what Go ParseFloat accepts as special values (prom-client writes NaN as Nan)', () => {
    assert.doesNotThrow(() => validateExposition('# TYPE g gauge\ng{a="1"} Nan\ng{a="2"} +Inf\ng{a="3"} 1e-3\ng{a="4"} .5\n'));
  });

  test('accepts a well-formed exposition', () => {
    assert.deepEqual([...validateExposition(ok).entries()], [
      ['a_total', 'counter'],
      ['h', 'histogram'],
      ['g', 'gauge'],
    ]);
  });

  const bad: [string, string][] = [
    ['no final newline', ok.slice(0, -1)],
    ['undeclared family', `${ok}other 1\n`],
    ['counter not named _total', '# TYPE a counter\na 1\n'],
    ['negative counter', '# TYPE a_total counter\na_total -1\n'],
    ['bad value', '# TYPE g gauge\ng 1,5\n'],
    ['bad special value', '# TYPE g gauge\ng NaNx\n'],
    ['signed NaN', '# TYPE g gauge\ng -NaN\n'],
    ['value and garbage', '# TYPE g gauge\ng 1 2 3\n'],
    ['non-integer timestamp', '# TYPE g gauge\ng 1 1.5\n'],
    ['bad metric name', '# TYPE g gauge\n1g 1\n'],
    ['bad label name', '# TYPE g gauge\ng{1x="a"} 1\n'],
    ['bad escape', '# TYPE g gauge\ng{x="\\t"} 1\n'],
    ['unquoted label value', '# TYPE g gauge\ng{x=a} 1\n'],
    ['duplicate series', '# TYPE g gauge\ng 1\ng 2\n'],
    ['duplicate label', '# TYPE g gauge\ng{x="a",x="b"} 1\n'],
    ['second TYPE', '# TYPE g gauge\n# TYPE g gauge\ng 1\n'],
    ['TYPE after samples', '# TYPE g gauge\ng 1\n# TYPE g gauge\n'],
    ['non-contiguous family', '# TYPE g gauge\n# TYPE k gauge\ng{a="1"} 1\nk 1\ng{a="2"} 1\n'],
    ['unknown type', '# TYPE g meter\ng 1\n'],
    ['buckets not cumulative', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
    ['no +Inf bucket', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
    ['+Inf != count', '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n'],
    ['le out of order', '# TYPE h histogram\nh_bucket{le="2"} 0\nh_bucket{le="1"} 0\nh_bucket{le="+Inf"} 0\nh_sum 0\nh_count 0\n'],
    ['missing _sum', '# TYPE h histogram\nh_bucket{le="+Inf"} 0\nh_count 0\n'],
  ];
  for (const [why, text] of bad) {
    test(`rejects: ${why}`, () => {
      assert.throws(() => validateExposition(text));
    });
  }
});
