/** Window delta computation on synthetic map contents (no kernel needed). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFlowKey, FLOW_KEY_SIZE, FLOW_VAL_RX, FLOW_VAL_FLAGS, FLOW_VAL_SIZE, INDEX_KEY_SIZE, INDEX_VAL_SIZE, VAL_IN, VAL_OUT, type FlowKey } from '../../src/collector/layout.js';
import type { SourceInfo } from '../../src/collector/schema.js';
import { WindowComputer, type WindowFinish } from '../../src/collector/windows.js';

const SOURCE: SourceInfo = { iface: 'lo', ifindex: 1, hooks: ['ingress'], attach_mode: 'tcx', watched_ports: [51264], pid: 1 };

/** Direction of a test entry: the kernel keeps both of a connection (or index) in one entry, at VAL_IN / VAL_OUT. */
const Direction = { IN: 0, OUT: 1 } as const;
type Direction = (typeof Direction)[keyof typeof Direction];
type DirKey = FlowKey & { dir: Direction };

interface Entry {
  key: DirKey;
  packets: number;
  l3: number;
  payload: number;
  index?: number;
}

/** Writes one direction's counters into a value at `o` (u64 packets, L3 bytes, payload bytes). */
function putCounters(values: Buffer, o: number, dir: Direction, e: { packets: number; l3: number; payload: number }): void {
  const at = o + (dir === Direction.IN ? VAL_IN : VAL_OUT);
  values.writeBigUInt64LE(BigInt(e.packets), at);
  values.writeBigUInt64LE(BigInt(e.l3), at + 8);
  values.writeBigUInt64LE(BigInt(e.payload), at + 16);
}

/** Kernel entries as the program keeps them: entries of one connection's two directions merged into one. */
function flowChunk(entries: Entry[]): { keys: Buffer; values: Buffer; n: number } {
  const slots = new Map<string, number>();
  const keys = Buffer.alloc(entries.length * FLOW_KEY_SIZE);
  const values = Buffer.alloc(entries.length * FLOW_VAL_SIZE);
  for (const e of entries) {
    const kb = encodeFlowKey(e.key);
    const id = kb.toString('hex');
    let i = slots.get(id);
    if (i === undefined) {
      i = slots.size;
      slots.set(id, i);
      kb.copy(keys, i * FLOW_KEY_SIZE);
    }
    const o = i * FLOW_VAL_SIZE;
    putCounters(values, o, e.key.dir, e);
    if (e.index !== undefined) {
      values.writeUInt32LE(e.index, o + FLOW_VAL_RX);
      values.writeUInt32LE(1, o + FLOW_VAL_FLAGS);
    }
  }
  const n = slots.size;
  return { keys: keys.subarray(0, n * FLOW_KEY_SIZE), values: values.subarray(0, n * FLOW_VAL_SIZE), n };
}

function indexChunk(entries: { index: number; dir: number; proto: number; packets: number; l3: number; payload: number }[]): { keys: Buffer; values: Buffer; n: number } {
  const slots = new Map<string, number>();
  const keys = Buffer.alloc(entries.length * INDEX_KEY_SIZE);
  const values = Buffer.alloc(entries.length * INDEX_VAL_SIZE);
  for (const e of entries) {
    const id = `${e.index}/${e.proto}`;
    let i = slots.get(id);
    if (i === undefined) {
      i = slots.size;
      slots.set(id, i);
      keys.writeUInt32LE(e.index, i * INDEX_KEY_SIZE);
      keys[i * INDEX_KEY_SIZE + 5] = e.proto;
    }
    putCounters(values, i * INDEX_VAL_SIZE, e.dir as Direction, e);
  }
  const n = slots.size;
  return { keys: keys.subarray(0, n * INDEX_KEY_SIZE), values: values.subarray(0, n * INDEX_VAL_SIZE), n };
}

const fin = (seq: number, extra: Partial<WindowFinish> = {}): WindowFinish => ({
  seq,
  startedAt: 1_700_000_000_000 + (seq - 1) * 10_000,
  endedAt: 1_700_000_000_000 + seq * 10_000,
  final: false,
  source: SOURCE,
  flowsCapacity: 65_536,
  indexesCapacity: 16_384,
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

function run(w: WindowComputer, flows: Entry[], idx: Parameters<typeof indexChunk>[0] = [], seq = 1, extra: Partial<WindowFinish> = {}) {
  w.begin();
  const f = flowChunk(flows);
  w.addFlows(f.keys, f.values, f.n);
  const i = indexChunk(idx);
  w.addIndexes(i.keys, i.values, i.n);
  return w.finish(fin(seq, extra));
}

test('first window reports full counters, merges both directions, computes amplification', () => {
  const w = new WindowComputer();
  const s = run(
    w,
    [
      { key: k(Direction.IN), packets: 10, l3: 1280, payload: 1000, index: 7 },
      { key: k(Direction.OUT), packets: 10, l3: 780, payload: 500, index: 7 },
    ],
    [
      { index: 7, dir: 0, proto: 17, packets: 10, l3: 1280, payload: 1000 },
      { index: 7, dir: 1, proto: 17, packets: 10, l3: 780, payload: 500 },
    ],
  );
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
});

test('later windows report deltas; idle flows are omitted; LRU re-creation counts as new', () => {
  const w = new WindowComputer();
  run(w, [{ key: k(Direction.IN), packets: 10, l3: 1000, payload: 800 }], [], 1);
  const s2 = run(w, [{ key: k(Direction.IN), packets: 15, l3: 1500, payload: 1200 }], [], 2);
  assert.deepEqual(s2.flows[0]?.request, { packets: 5, l3_bytes: 500, payload_bytes: 400 });
  assert.equal(s2.flows[0]?.amplification, 0);
  const s3 = run(w, [{ key: k(Direction.IN), packets: 15, l3: 1500, payload: 1200 }], [], 3);
  assert.equal(s3.flows.length, 0, 'no delta, no flow');
  assert.equal(s3.map.flows_entries, 1);
  const s4 = run(w, [{ key: k(Direction.IN), packets: 2, l3: 200, payload: 160 }], [], 4);
  assert.deepEqual(s4.flows[0]?.request, { packets: 2, l3_bytes: 200, payload_bytes: 160 });
});

test('entries missing from a complete read are forgotten; from an incomplete read they are kept', () => {
  const w = new WindowComputer();
  run(w, [{ key: k(Direction.IN, 1), packets: 3, l3: 300, payload: 200 }, { key: k(Direction.IN, 2), packets: 3, l3: 300, payload: 200 }], [], 1);
  assert.equal(w.remembered.flows, 2);
  run(w, [{ key: k(Direction.IN, 1), packets: 3, l3: 300, payload: 200 }], [], 2, { complete: false });
  assert.equal(w.remembered.flows, 2);
  run(w, [{ key: k(Direction.IN, 1), packets: 3, l3: 300, payload: 200 }], [], 3);
  assert.equal(w.remembered.flows, 1);
});

test('malformed keys are counted as decode errors, never thrown', () => {
  const w = new WindowComputer();
  w.begin();
  const f = flowChunk([{ key: k(Direction.IN), packets: 1, l3: 100, payload: 50 }]);
  const bad = Buffer.concat([f.keys, Buffer.alloc(FLOW_KEY_SIZE, 0xee)]);
  w.addFlows(bad, Buffer.concat([f.values, Buffer.alloc(FLOW_VAL_SIZE)]), 2);
  const ib = Buffer.alloc(INDEX_KEY_SIZE, 0xee);
  w.addIndexes(ib, Buffer.alloc(INDEX_VAL_SIZE), 1);
  const s = w.finish(fin(1));
  assert.equal(s.errors.decode, 2);
  assert.equal(s.flows.length, 1);
});

test('per-window listing is capped, totals are not', () => {
  const w = new WindowComputer({ maxFlowsPerWindow: 2 });
  const entries: Entry[] = [];
  for (let p = 1; p <= 5; p++) entries.push({ key: k(Direction.IN, p, 6, 6), packets: p, l3: p * 100, payload: p * 50 });
  const s = run(w, entries);
  assert.equal(s.flows.length, 2);
  assert.equal(s.flows_truncated, 3);
  assert.equal(s.flows[0]?.remote_port, 5, 'largest first');
  assert.equal(s.flows[0]?.remote, 'fd00::2');
  assert.equal(s.totals.request.packets, 15);
  assert.equal(s.totals.flows_active, 5);
  assert.equal(s.totals.by_proto.tcp.request.packets, 15);
});

test('kernel stats are reported as deltas', () => {
  const w = new WindowComputer();
  run(w, [], [], 1, { kernelStats: [10, 1, 0, 3] });
  const s = run(w, [], [], 2, { kernelStats: [25, 1, 2, 3] });
  assert.deepEqual(s.kernel, { matched_packets: 15, flow_insert_failures: 0, index_insert_failures: 2, unparsed_packets: 0 });
});

test('65,536 remembered flows: slab grows and sweeps without losing counts', () => {
  const w = new WindowComputer({ maxFlowsPerWindow: 10 });
  const entries: Entry[] = [];
  for (let i = 0; i < 65_536; i++) entries.push({ key: { ...k(Direction.IN, i & 0xffff), remote: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }, packets: 1, l3: 100, payload: 72 });
  const s = run(w, entries);
  assert.equal(s.totals.request.packets, 65_536);
  assert.equal(w.remembered.flows, 65_536);
  const s2 = run(w, entries.slice(0, 1000), [], 2);
  assert.equal(s2.totals.request.packets, 0);
  assert.equal(w.remembered.flows, 1000);
});
