/** Window delta computation on synthetic map contents (no kernel needed). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFlowKey, FLOW_KEY_SIZE, FLOW_VAL_FLAGS, FLOW_VAL_RX, FLOW_VAL_SIZE, FLOW_VAL_CREATED, KEY_KIND, KEY_RX, VAL_IN, VAL_OUT, type FlowKey } from '../../src/collector/layout.js';
import type { SourceInfo } from '../../src/collector/schema.js';
import { WindowComputer, type WindowFinish } from '../../src/collector/windows.js';

const SOURCE: SourceInfo = { iface: 'lo', ifindex: 1, hooks: ['ingress'], attach_mode: 'tcx', watched_ports: [51264], pid: 1 };

/** Direction of a test entry's counters: the kernel keeps both in one entry, at VAL_IN / VAL_OUT. */
const Direction = { IN: 0, OUT: 1 } as const;
type Direction = (typeof Direction)[keyof typeof Direction];
type DirKey = FlowKey & { dir: Direction };

/**
 * One direction's counters of one kernel entry: `index` makes it the connection's ENTRY_INDEX entry for that
 * receiver index (else its ENTRY_CONN entry); `created` its created_ns; `connIndex` the receiver index a TCP
 * connection's ENTRY_CONN entry remembers.
 */
interface Entry {
  key: DirKey;
  packets: number;
  l3: number;
  payload: number;
  index?: number;
  created?: number;
  connIndex?: number;
}

/** Writes one direction's counters into a value at `o` (u64 packets, L3 bytes, payload bytes). */
function putCounters(values: Buffer, o: number, dir: Direction, e: { packets: number; l3: number; payload: number }): void {
  const at = o + (dir === Direction.IN ? VAL_IN : VAL_OUT);
  values.writeBigUInt64LE(BigInt(e.packets), at);
  values.writeBigUInt64LE(BigInt(e.l3), at + 8);
  values.writeBigUInt64LE(BigInt(e.payload), at + 16);
}

/** Kernel entries as the program keeps them: the two directions of one (connection, index) merged into one. */
function flowChunk(entries: Entry[]): { keys: Buffer; values: Buffer; n: number } {
  const slots = new Map<string, number>();
  const keys = Buffer.alloc(entries.length * FLOW_KEY_SIZE);
  const values = Buffer.alloc(entries.length * FLOW_VAL_SIZE);
  for (const e of entries) {
    const kb = encodeFlowKey(e.key, undefined, 0, e.index);
    const id = kb.toString('hex');
    let i = slots.get(id);
    if (i === undefined) {
      i = slots.size;
      slots.set(id, i);
      kb.copy(keys, i * FLOW_KEY_SIZE);
    }
    const o = i * FLOW_VAL_SIZE;
    putCounters(values, o, e.key.dir, e);
    if (e.created !== undefined) values.writeBigUInt64LE(BigInt(e.created), o + FLOW_VAL_CREATED);
    if (e.connIndex !== undefined) {
      values.writeUInt32LE(e.connIndex, o + FLOW_VAL_RX);
      values.writeUInt32LE(3, o + FLOW_VAL_FLAGS); // FLOW_F_INDEX_KNOWN | FLOW_F_INDEX_DONE
    }
  }
  const n = slots.size;
  return { keys: keys.subarray(0, n * FLOW_KEY_SIZE), values: values.subarray(0, n * FLOW_VAL_SIZE), n };
}

const fin = (seq: number, extra: Partial<WindowFinish> = {}): WindowFinish => ({
  seq,
  startedAt: 1_700_000_000_000 + (seq - 1) * 10_000,
  endedAt: 1_700_000_000_000 + seq * 10_000,
  final: false,
  source: SOURCE,
  flowsCapacity: 65_536,
  kernelStats: [0, 0, 0, 0],
  errors: { read: 0, write: 0 },
  complete: true,
  ...extra,
});

const k = (dir: Direction, remotePort = 40000, family: 4 | 6 = 4, proto = 17): DirKey => ({
  family,
  proto,
  dir,
  local: family === 4 ? '10.0.0.1' : 'fd00::1',
  localPort: 51264,
  remote: family === 4 ? '10.0.0.2' : 'fd00::2',
  remotePort,
});

function run(w: WindowComputer, flows: Entry[], seq = 1, extra: Partial<WindowFinish> = {}) {
  w.begin();
  const f = flowChunk(flows);
  w.addFlows(f.keys, f.values, f.n);
  return w.finish(fin(seq, extra));
}

test('first window reports full counters, merges both directions, computes amplification', () => {
  const w = new WindowComputer();
  const s = run(w, [
    { key: k(Direction.IN), packets: 10, l3: 1280, payload: 1000, index: 7, created: 5 },
    { key: k(Direction.OUT), packets: 10, l3: 780, payload: 500, index: 7, created: 5 },
  ]);
  assert.equal(s.schema_version, 1);
  assert.equal(s.kind, 'lp_collector_window');
  assert.equal(s.duration_ms, 10_000);
  assert.equal(s.flows.length, 1);
  const f = s.flows[0];
  assert.ok(f);
  assert.deepEqual(
    { local: f.local, local_port: f.local_port, remote: f.remote, remote_port: f.remote_port, proto: f.proto, family: f.family, rx: f.receiver_index },
    { local: '10.0.0.1', local_port: 51264, remote: '10.0.0.2', remote_port: 40000, proto: 'udp', family: 4, rx: 7 },
  );
  assert.deepEqual(f.request, { packets: 10, l3_bytes: 1280, payload_bytes: 1000 });
  assert.deepEqual(f.response, { packets: 10, l3_bytes: 780, payload_bytes: 500 });
  assert.equal(f.amplification, 0.5);
  assert.equal(f.amplification_l3, 0.6094);
  assert.deepEqual(s.indexes, [{ receiver_index: 7, proto: 'udp', request: { packets: 10, l3_bytes: 1280, payload_bytes: 1000 }, response: { packets: 10, l3_bytes: 780, payload_bytes: 500 }, amplification: 0.5, amplification_l3: 0.6094 }]);
  assert.equal(s.totals.amplification, 0.5);
  assert.equal(s.totals.by_proto.udp.request.packets, 10);
  assert.equal(s.totals.by_proto.tcp.request.packets, 0);
  assert.deepEqual(s.map, { flows_entries: 1, flows_capacity: 65_536, indexes_entries: 1, indexes_capacity: 65_536, entries: 1 });
});

test("a connection's entries sum into its flow, an index's across connections into the index; nothing counted twice", () => {
  const w = new WindowComputer();
  const s = run(w, [
    // UDP connection A: index 7 (older), index 8 (newest datagram), and short datagrams without an index
    { key: k(Direction.IN, 1), packets: 3, l3: 300, payload: 200, index: 7, created: 100 },
    { key: k(Direction.OUT, 1), packets: 3, l3: 150, payload: 100, index: 7, created: 100 },
    { key: k(Direction.IN, 1), packets: 2, l3: 200, payload: 120, index: 8, created: 300 },
    { key: k(Direction.IN, 1), packets: 1, l3: 31, payload: 3 },
    // UDP connection B: index 7 too
    { key: k(Direction.IN, 2), packets: 5, l3: 500, payload: 400, index: 7, created: 200 },
    // TCP connection C: bare segments in ENTRY_CONN (which remembers index 9), payload in index 9's entry
    { key: k(Direction.IN, 3, 6, 6), packets: 4, l3: 240, payload: 0, connIndex: 9 },
    { key: k(Direction.OUT, 3, 6, 6), packets: 2, l3: 120, payload: 0, connIndex: 9 },
    { key: k(Direction.IN, 3, 6, 6), packets: 2, l3: 1000, payload: 840, index: 9 },
    { key: k(Direction.OUT, 3, 6, 6), packets: 1, l3: 300, payload: 220, index: 9 },
  ]);
  const flow = (port: number) => s.flows.find((f) => f.remote_port === port);
  assert.deepEqual(flow(1)?.request, { packets: 6, l3_bytes: 531, payload_bytes: 323 });
  assert.deepEqual(flow(1)?.response, { packets: 3, l3_bytes: 150, payload_bytes: 100 });
  assert.equal(flow(1)?.receiver_index, 8, 'UDP: the newest index');
  assert.equal(flow(2)?.receiver_index, 7);
  assert.deepEqual(flow(3)?.request, { packets: 6, l3_bytes: 1240, payload_bytes: 840 });
  assert.deepEqual(flow(3)?.response, { packets: 3, l3_bytes: 420, payload_bytes: 220 });
  assert.equal(flow(3)?.receiver_index, 9, "TCP: the index its ENTRY_CONN entry remembers");
  const index = (rx: number, proto: string) => s.indexes.find((i) => i.receiver_index === rx && i.proto === proto);
  assert.deepEqual(index(7, 'udp')?.request, { packets: 8, l3_bytes: 800, payload_bytes: 600 });
  assert.deepEqual(index(7, 'udp')?.response, { packets: 3, l3_bytes: 150, payload_bytes: 100 });
  assert.deepEqual(index(8, 'udp')?.request, { packets: 2, l3_bytes: 200, payload_bytes: 120 });
  assert.deepEqual(index(9, 'tcp')?.request, { packets: 2, l3_bytes: 1000, payload_bytes: 840 }, 'TCP: payload segments only');
  assert.equal(s.indexes.length, 3);
  assert.equal(s.totals.request.packets, 6 + 5 + 6);
  assert.equal(s.totals.by_proto.tcp.response.payload_bytes, 220);
  assert.equal(s.totals.flows_active, 3);
  assert.equal(s.totals.indexes_active, 3);
  assert.deepEqual(s.map, { flows_entries: 3, flows_capacity: 65_536, indexes_entries: 3, indexes_capacity: 65_536, entries: 6 });
  assert.deepEqual(w.remembered, { entries: 6, flows: 3, indexes: 3 });
});

test("a UDP flow's receiver index: its newest index (the entry created last), also when that entry was idle", () => {
  const w = new WindowComputer();
  const a = { key: k(Direction.IN), packets: 1, l3: 100, payload: 72, index: 1, created: 10 };
  const b = { key: k(Direction.IN), packets: 1, l3: 100, payload: 72, index: 2, created: 20 };
  assert.equal(run(w, [a, b], 1).flows[0]?.receiver_index, 2);
  // more datagrams with index 1 (A, B, A): index 2 is still the newest
  assert.equal(run(w, [{ ...a, packets: 2, l3: 200, payload: 144 }, b], 2).flows[0]?.receiver_index, 2);
  // index 1's entry was evicted and created again: now it is the newest
  assert.equal(run(w, [{ ...a, created: 30 }, b], 3).flows[0]?.receiver_index, 1);
  // only short datagrams (no index) this window: the flow keeps its index
  const s4 = run(w, [{ ...a, created: 30 }, b, { key: k(Direction.IN), packets: 1, l3: 30, payload: 2 }], 4);
  assert.equal(s4.flows.length, 1);
  assert.equal(s4.flows[0]?.receiver_index, 1);
  assert.equal(s4.indexes.length, 0, 'no index had traffic');
  // a connection with no index at all
  const s5 = run(new WindowComputer(), [{ key: k(Direction.IN, 9), packets: 1, l3: 30, payload: 2 }], 1);
  assert.equal(s5.flows[0]?.receiver_index, null);
});

test('later windows report deltas; idle flows are omitted; LRU re-creation counts as new', () => {
  const w = new WindowComputer();
  run(w, [{ key: k(Direction.IN), packets: 10, l3: 1000, payload: 800, index: 1 }], 1);
  const s2 = run(w, [{ key: k(Direction.IN), packets: 15, l3: 1500, payload: 1200, index: 1 }], 2);
  assert.deepEqual(s2.flows[0]?.request, { packets: 5, l3_bytes: 500, payload_bytes: 400 });
  assert.deepEqual(s2.indexes[0]?.request, { packets: 5, l3_bytes: 500, payload_bytes: 400 });
  assert.equal(s2.flows[0]?.amplification, 0);
  const s3 = run(w, [{ key: k(Direction.IN), packets: 15, l3: 1500, payload: 1200, index: 1 }], 3);
  assert.equal(s3.flows.length, 0, 'no delta, no flow');
  assert.equal(s3.indexes.length, 0);
  assert.equal(s3.map.flows_entries, 1);
  const s4 = run(w, [{ key: k(Direction.IN), packets: 2, l3: 200, payload: 160, index: 1 }], 4);
  assert.deepEqual(s4.flows[0]?.request, { packets: 2, l3_bytes: 200, payload_bytes: 160 });
  // one entry of a connection re-created, the other one grew: the flow sums both deltas
  const s5 = run(
    w,
    [
      { key: k(Direction.IN), packets: 1, l3: 100, payload: 80, index: 1 },
      { key: k(Direction.IN), packets: 4, l3: 400, payload: 320, index: 2 },
    ],
    5,
  );
  assert.deepEqual(s5.flows[0]?.request, { packets: 5, l3_bytes: 500, payload_bytes: 400 });
});

test('an entry created again between two reads counts whole, also when its counters grew past the old ones', () => {
  const w = new WindowComputer();
  const e = { key: k(Direction.IN), packets: 3, l3: 300, payload: 200, index: 1, created: 100 };
  run(w, [e], 1);
  const s2 = run(w, [{ ...e, packets: 5, l3: 500, payload: 400, created: 200 }], 2);
  assert.deepEqual(s2.flows[0]?.request, { packets: 5, l3_bytes: 500, payload_bytes: 400 });
  const s3 = run(w, [{ ...e, packets: 6, l3: 600, payload: 480, created: 200 }], 3);
  assert.deepEqual(s3.flows[0]?.request, { packets: 1, l3_bytes: 100, payload_bytes: 80 });
});

test('entries missing from a complete read are forgotten; from an incomplete read they are kept', () => {
  const w = new WindowComputer();
  const e = (port: number, index: number) => ({ key: k(Direction.IN, port), packets: 3, l3: 300, payload: 200, index });
  run(w, [e(1, 1), e(1, 2), e(2, 1)], 1);
  assert.deepEqual(w.remembered, { entries: 3, flows: 2, indexes: 2 });
  run(w, [e(1, 1)], 2, { complete: false });
  assert.deepEqual(w.remembered, { entries: 3, flows: 2, indexes: 2 });
  run(w, [e(1, 1), e(2, 1)], 3);
  assert.deepEqual(w.remembered, { entries: 2, flows: 2, indexes: 1 }, 'index 2 had its only entry evicted');
  run(w, [e(1, 1)], 4);
  assert.deepEqual(w.remembered, { entries: 1, flows: 1, indexes: 1 }, "connection 2's only entry evicted");
  // a forgotten entry that comes back starts from zero
  const s = run(w, [e(1, 1), e(2, 1)], 5);
  assert.equal(s.flows.length, 1);
  assert.deepEqual(s.flows[0]?.request, { packets: 3, l3_bytes: 300, payload_bytes: 200 });
  assert.equal(s.flows[0]?.remote_port, 2);
});

test('malformed keys are counted as decode errors, never thrown', () => {
  const w = new WindowComputer();
  w.begin();
  const f = flowChunk([{ key: k(Direction.IN), packets: 1, l3: 100, payload: 50, index: 4 }]);
  const badKind = Buffer.from(f.keys);
  badKind[KEY_KIND] = 2;
  const connWithIndex = encodeFlowKey(k(Direction.IN, 7));
  connWithIndex.writeUInt32LE(5, KEY_RX); // ENTRY_CONN keys have receiver_index 0
  const bad = Buffer.concat([f.keys, Buffer.alloc(FLOW_KEY_SIZE, 0xee), badKind, connWithIndex]);
  w.addFlows(bad, Buffer.concat([f.values, Buffer.alloc(FLOW_VAL_SIZE * 3)]), 4);
  const s = w.finish(fin(1));
  assert.equal(s.errors.decode, 3);
  assert.equal(s.flows.length, 1);
  assert.equal(s.map.entries, 1);
});

test('per-window listing is capped, totals are not', () => {
  const w = new WindowComputer({ maxFlowsPerWindow: 2, maxIndexesPerWindow: 3 });
  const entries: Entry[] = [];
  for (let p = 1; p <= 5; p++) entries.push({ key: k(Direction.IN, p, 6, 6), packets: p, l3: p * 100, payload: p * 50, index: p });
  const s = run(w, entries);
  assert.equal(s.flows.length, 2);
  assert.equal(s.flows_truncated, 3);
  assert.equal(s.flows[0]?.remote_port, 5, 'largest first');
  assert.equal(s.flows[0]?.remote, 'fd00::2');
  assert.equal(s.indexes.length, 3);
  assert.equal(s.indexes_truncated, 2);
  assert.equal(s.indexes[0]?.receiver_index, 5, 'largest first');
  assert.equal(s.totals.request.packets, 15);
  assert.equal(s.totals.flows_active, 5);
  assert.equal(s.totals.indexes_active, 5);
  assert.equal(s.totals.by_proto.tcp.request.packets, 15);
});

test('kernel stats are reported as deltas', () => {
  const w = new WindowComputer();
  run(w, [], 1, { kernelStats: [10, 1, 0, 3] });
  const s = run(w, [], 2, { kernelStats: [25, 1, 2, 3] });
  assert.deepEqual(s.kernel, { matched_packets: 15, flow_insert_failures: 0, index_insert_failures: 2, unparsed_packets: 0 });
});

test('65,536 remembered flows: tables grow and sweep without losing counts', () => {
  const w = new WindowComputer({ maxFlowsPerWindow: 10 });
  const entries: Entry[] = [];
  for (let i = 0; i < 65_536; i++) entries.push({ key: { ...k(Direction.IN, i & 0xffff), remote: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }, packets: 1, l3: 100, payload: 72, index: i });
  const s = run(w, entries);
  assert.equal(s.totals.request.packets, 65_536);
  assert.equal(s.totals.indexes_active, 65_536);
  assert.deepEqual(w.remembered, { entries: 65_536, flows: 65_536, indexes: 65_536 });
  const s2 = run(w, entries.slice(0, 1000), 2);
  assert.equal(s2.totals.request.packets, 0);
  assert.deepEqual(w.remembered, { entries: 1000, flows: 1000, indexes: 1000 });
  const s3 = run(w, entries.slice(0, 1000).map((e) => ({ ...e, packets: 2 })), 3);
  assert.equal(s3.totals.request.packets, 1000);
});
