/**
 * Receiver-index sharding across worker threads: with `tables.shards = 2` every handshake lands in the shard
 * of its proposed index, registrations are served by the I/O thread, rekeys stay within a shard (the gateway
 * answers Collision for another shard's index and the client proposes again), and the workers' counters and
 * table sizes reach /metrics and /v1/stats.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { LpConnection, TcpStreamTransport, UdpTransport, fetchDescriptor } from '../../src/client/index.js';
import { scrape, startGatewayProcess, stopAll } from '../helpers/gateway-process.js';
import { resolveShardCount } from '../../src/gateway/shard.js';
import { Outbox } from '../../src/gateway/outbox.js';

after(stopAll);

const register = (k: number) => ({
  mode: { kind: 'dvpn' as const, wgPublicKey: new Uint8Array(32).fill(k) },
  credential: { kind: 'mock' as const, blob: new Uint8Array([1]) },
  ticketType: 2 as const,
  timestamp: BigInt(Math.floor(Date.now() / 1000)),
});

test('two worker shards: handshakes, registrations and rekeys; counters and tables aggregate', async () => {
  const gw = await startGatewayProcess(['--mock-ecash'], { env: { LPGW_TABLES_SHARDS: '2' } });
  assert.ok(gw.logs.some((l) => l.msg === 'receiver-index shards running in worker threads' && l.shards === 2));
  const { descriptor, pin } = await fetchDescriptor(gw.http);
  const conns: LpConnection[] = [];
  const shardsSeen = new Set<number>();
  for (let i = 0; i < 12; i++) {
    const transport = i % 2 ? new UdpTransport(descriptor.lp.udp as string) : new TcpStreamTransport(descriptor.lp.tcp);
    const c = await LpConnection.connect({ transport, gateway: pin });
    shardsSeen.add(c.session.receiverIndex % 2);
    const r = await c.register(register(i + 1));
    assert.equal(r.success, true, JSON.stringify(r.error));
    const { newIndex } = await c.rekey(32);
    assert.equal(newIndex % 2, c.session.receiverIndex % 2);
    await c.ping();
    conns.push(c);
  }
  assert.equal(shardsSeen.size, 2, 'random indexes reached both shards');
  // Counters from the workers arrive with the 1 s sweep.
  await new Promise((r) => setTimeout(r, 1500));
  const m = await scrape(gw.http);
  assert.equal(m.get('lp_handshakes_total{result="completed"}'), 12);
  assert.equal(m.get('lp_subsessions_total{result="promoted"}'), 12);
  assert.equal(m.get('lp_registrations_total{mode="dvpn",result="success"}'), 12);
  const stats = (await (await fetch(`${gw.http}/v1/stats`)).json()) as { tables: { sessions: number; demoted: number } };
  assert.equal(stats.tables.sessions, 12);
  assert.equal(stats.tables.demoted, 12);
  // Per-thread CPU: the I/O thread and each worker are accounted separately, and the workers did the crypto.
  for (const t of ['io', 'shard-0', 'shard-1']) assert.ok((m.get(`lp_thread_cpu_seconds{thread="${t}"}`) ?? 0) > 0, `${t} CPU reported`);
  assert.equal([...m.keys()].filter((k) => k.startsWith('lp_thread_cpu_seconds{')).length, 3);
  for (const c of conns) c.close();
  assert.equal(await gw.stop('SIGTERM'), 0, 'clean exit with worker shards');
});

test('lp.kem_backend = noble in worker shards: libsodium clients handshake, register and rekey with it', async () => {
  const gw = await startGatewayProcess(['--mock-ecash'], { env: { LPGW_TABLES_SHARDS: '2', LPGW_LP_KEM_BACKEND: 'noble' } });
  assert.ok(gw.logs.some((l) => l.msg === 'ML-KEM backend' && l.backend === 'noble'));
  const { descriptor, pin } = await fetchDescriptor(gw.http);
  for (let i = 0; i < 4; i++) {
    const c = await LpConnection.connect({ transport: new TcpStreamTransport(descriptor.lp.tcp), gateway: pin });
    const r = await c.register(register(40 + i));
    assert.equal(r.success, true, JSON.stringify(r.error));
    await c.rekey(32);
    await c.ping();
    c.close();
  }
  assert.equal(await gw.stop('SIGTERM'), 0);
});

test('tables.shards = 0 (the default) resolves by CPU count: 1 up to 2 CPUs, else one per CPU but the I/O thread', () => {
  assert.equal(resolveShardCount(0, 1), 1);
  assert.equal(resolveShardCount(0, 2), 1);
  assert.equal(resolveShardCount(0, 4), 3);
  assert.equal(resolveShardCount(0, 16), 15);
  assert.equal(resolveShardCount(1, 16), 1, 'an explicit count is kept');
  assert.equal(resolveShardCount(4, 2), 4, 'an explicit count is kept');
});

test('worker messages leave in batches: one send per event-loop turn, flush() sends at once', async () => {
  const sent: number[][] = [];
  const box = new Outbox<number>((b) => sent.push(b));
  box.push(1);
  box.push(2);
  box.push(3);
  assert.equal(sent.length, 0, 'nothing leaves within the turn');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(sent, [[1, 2, 3]]);
  box.push(4);
  box.flush();
  assert.deepEqual(sent, [[1, 2, 3], [4]]);
  await new Promise((r) => setImmediate(r));
  box.flush();
  assert.equal(sent.length, 2, 'an empty queue sends nothing');
});
