/**
 * Known LP traffic on loopback (IPv4 and IPv6, UDP datagrams and TCP connections) must produce exactly the
 * expected per-flow and per-receiver_index counters. Layers: payload_bytes = TCP/UDP payload, l3_bytes =
 * IP datagram (header + transport header + payload); UDP is checked exactly on all three counters, TCP
 * exactly on payload bytes and receiver_index (packet counts depend on segmentation and ACK timing, so
 * TCP packets/L3 are checked against header-size bounds).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startCollector, type Collector } from '../../src/collector/index.js';
import { silentLogger } from '../../src/log.js';
import { BpfSys } from '../../src/collector/bpf-syscall.js';
import { ROOT_SKIP } from './helpers/env.js';
import { compare, runLpClient, standardPlan, startLpServer, sumWindows } from './helpers/lp-traffic.js';

test('loopback: per-flow and per-index counts equal what was sent', { skip: ROOT_SKIP, timeout: 30_000 }, async () => {
  const server = await startLpServer('::');
  let collector: Collector | null = null;
  try {
    collector = await startCollector({ iface: 'lo', ports: [server.tcpPort, server.udpPort], windowSec: 3600, outDir: null }, silentLogger());
    assert.ok(collector, 'collector started');
    assert.equal(collector.status().attach_mode, 'tcx');
    assert.deepEqual(collector.status().hooks, ['ingress'], 'one hook on loopback: each packet counted once');
    const plan = standardPlan();
    const report = await runLpClient(plan, { v4: '127.0.0.1', v6: '::1', tcpPort: server.tcpPort, udpPort: server.udpPort });
    await new Promise((r) => setTimeout(r, 100)); // let the last FIN/ACKs pass the hook
    const w = await collector.flush();
    assert.ok(w);
    assert.equal(w.schema_version, 1);
    assert.deepEqual(compare(plan, report, sumWindows([w])), []);
    assert.equal(w.totals.flows_active, plan.udp.length + plan.tcp.length);
    assert.equal(w.errors.read + w.errors.decode, 0);
    assert.equal(w.kernel.flow_insert_failures, 0);
    // UDP replies are half the request: amplification < 1 for every UDP flow and index
    for (const f of w.flows.filter((x) => x.proto === 'udp')) assert.ok(f.amplification !== null && f.amplification < 1);
    // a second window without traffic has zero deltas
    const w2 = await collector.flush();
    assert.equal(w2?.totals.flows_active, 0);
    assert.equal(w2?.totals.request.packets, 0);
  } finally {
    const linkIds = collector?.status().link_ids ?? [];
    await collector?.stop();
    await server.close();
    if (linkIds.length > 0) {
      const sys = await BpfSys.open();
      for (const id of linkIds) assert.equal(sys.fdById('link', id), null, `link ${id} gone after stop`);
    }
  }
});

test('writer failures and throwing listeners never stop the loop; stop() closes a final window', { skip: ROOT_SKIP, timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lpgwt-robust-'));
  const notADir = join(dir, 'file');
  writeFileSync(notADir, 'x');
  let collector: Collector | null = null;
  try {
    collector = await startCollector({ iface: 'lo', ports: [45177], windowSec: 0.1, outDir: notADir }, silentLogger());
    assert.ok(collector);
    let seen = 0;
    collector.onWindow(() => {
      seen++;
      throw new Error('listener bug');
    });
    await new Promise((r) => setTimeout(r, 600));
    const st = collector.status();
    assert.ok(st.windows >= 3, `windows ${st.windows}`);
    assert.ok(st.errors.write >= 3 && st.errors.listener >= 3, JSON.stringify(st.errors));
    assert.equal(st.state, 'running');
    const last = await collector.stop();
    assert.equal(last?.final, true);
    assert.ok(seen >= 3);
    assert.equal(collector.status().state, 'stopped');
    assert.equal(await collector.stop(), last, 'stop() is idempotent');
  } finally {
    await collector?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
