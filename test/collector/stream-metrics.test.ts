/**
 * The collector's HTTP routes, WebSocket stream and Prometheus metrics, mounted on a fastify instance with
 * registerCollectorRoutes(): live (root: real collector on lo with LP traffic) and disabled (null collector).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { test } from 'node:test';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { WebSocket } from 'ws';
import { registerCollectorRoutes, startCollector, type Collector, type WindowSnapshot } from '../../src/collector/index.js';
import { silentLogger } from '../../src/log.js';
import { ROOT_SKIP } from './helpers/env.js';
import { lpPacket, startLpServer, udpReplyLen } from './helpers/lp-traffic.js';

interface Hello {
  kind: string;
  schema_version: number;
  status: { state: string; watched_ports: number[] };
}

function messages(ws: WebSocket): { next: (pred: (m: Record<string, unknown>) => boolean, ms?: number) => Promise<Record<string, unknown>>; all: Record<string, unknown>[] } {
  const all: Record<string, unknown>[] = [];
  const waiters: { pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }[] = [];
  ws.on('message', (data: Buffer) => {
    const m = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    all.push(m);
    for (const w of [...waiters]) if (w.pred(m)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(m);
    }
  });
  return {
    all,
    next: (pred, ms = 5000) => {
      const hit = all.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no matching message; got ${JSON.stringify(all).slice(0, 1000)}`)), ms);
        waiters.push({ pred, resolve: (m) => (clearTimeout(t), resolve(m)) });
      });
    },
  };
}

test('live: WebSocket windows, latest/status routes and lp_collector_* metrics', { skip: ROOT_SKIP, timeout: 20_000 }, async () => {
  const server = await startLpServer('127.0.0.1');
  const registry = new Registry();
  let collector: Collector | null = null;
  const app = Fastify({ logger: false });
  try {
    collector = await startCollector({ iface: 'lo', ports: [server.udpPort], windowSec: 0.2, outDir: null, registry }, silentLogger());
    assert.ok(collector);
    registerCollectorRoutes(app, collector);
    const addr = await app.listen({ host: '127.0.0.1', port: 0 });

    const ws = new WebSocket(`${addr.replace('http', 'ws')}/v1/collector/stream`);
    const msgs = messages(ws);
    const hello = (await msgs.next((m) => m.kind === 'lp_collector_hello')) as unknown as Hello;
    assert.equal(hello.schema_version, 1);
    assert.equal(hello.status.state, 'running');
    assert.deepEqual(hello.status.watched_ports, [server.udpPort]);

    const sizes = [100, 200, 300];
    const c = dgram.createSocket('udp4');
    c.bind(0, '127.0.0.1');
    await once(c, 'listening');
    for (const [i, size] of sizes.entries()) {
      const reply = once(c, 'message');
      c.send(lpPacket(4242, i, size), server.udpPort, '127.0.0.1');
      await reply;
    }
    c.close();
    // windows may split the traffic: sum what the stream delivered until all 3 exchanges are seen
    const sum = (): number => msgs.all.filter((m) => m.kind === 'lp_collector_window').reduce((a, m) => a + (m as unknown as WindowSnapshot).totals.request.packets, 0);
    for (let i = 0; i < 50 && sum() < 3; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(sum(), 3);
    const windows = msgs.all.filter((m) => m.kind === 'lp_collector_window') as unknown as WindowSnapshot[];
    const idx = windows.flatMap((w) => w.indexes).filter((i) => i.receiver_index === 4242);
    assert.equal(idx.reduce((a, i) => a + i.request.payload_bytes, 0), 600);
    assert.equal(idx.reduce((a, i) => a + i.response.payload_bytes, 0), sizes.reduce((a, s) => a + udpReplyLen(s), 0));

    const latest = await app.inject({ method: 'GET', url: '/v1/collector/windows/latest' });
    assert.equal(latest.statusCode, 200);
    assert.equal((latest.json() as WindowSnapshot).schema_version, 1);
    const status = await app.inject({ method: 'GET', url: '/v1/collector/status' });
    assert.equal(status.statusCode, 200);
    const st = status.json() as { state: string; windows: number; attach_mode: string; link_ids: number[] };
    assert.equal(st.state, 'running');
    assert.equal(st.attach_mode, 'tcx');
    assert.ok(st.windows >= 1);

    const text = await registry.metrics();
    assert.match(text, /^lp_collector_packets_total\{direction="request",proto="udp"\} 3$/m);
    assert.match(text, /^lp_collector_packets_total\{direction="response",proto="udp"\} 3$/m);
    assert.match(text, /^lp_collector_payload_bytes_total\{direction="request",proto="udp"\} 600$/m);
    assert.match(text, /^lp_collector_l3_bytes_total\{direction="request",proto="udp"\} 684$/m); // 600 + 3 × (20 + 8)
    assert.match(text, /^lp_collector_up 1$/m);
    assert.match(text, /^lp_collector_windows_total \d+$/m);
    assert.match(text, /^lp_collector_errors_total\{kind="read"\} 0$/m);
    assert.match(text, /^lp_collector_amplification_ratio /m);
    assert.match(text, /^# TYPE lp_collector_flows gauge$/m);

    const closed = once(ws, 'close');
    await app.close();
    await closed;
    await collector.stop();
    assert.match(await registry.metrics(), /^lp_collector_up 0$/m);
  } finally {
    await collector?.stop();
    await app.close();
    await server.close();
  }
});

test('disabled: routes answer without a collector and the stream says so', async () => {
  const app = Fastify({ logger: false });
  registerCollectorRoutes(app, null);
  const addr = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const latest = await app.inject({ method: 'GET', url: '/v1/collector/windows/latest' });
    assert.equal(latest.statusCode, 503);
    assert.equal((latest.json() as { code: string }).code, 'LPGW_COLLECTOR_DISABLED');
    const status = await app.inject({ method: 'GET', url: '/v1/collector/status' });
    assert.equal((status.json() as { state: string }).state, 'disabled');
    const ws = new WebSocket(`${addr.replace('http', 'ws')}/v1/collector/stream`);
    const hello = (await messages(ws).next((m) => m.kind === 'lp_collector_hello')) as unknown as Hello;
    assert.equal(hello.status.state, 'disabled');
    ws.close();
    await once(ws, 'close');
  } finally {
    await app.close();
  }
});
