/**
 * Per-window deltas from cumulative kernel counters.
 *
 * The kernel keeps one entry per connection (flows) and per receiver index (indexes), each counting both
 * directions, and only ever grows the counters; each window reads every entry and subtracts the values seen at
 * the previous read. Previous values and deltas live in typed arrays (14 numbers per entry) behind a hash index
 * over the raw key bytes, which keeps 65,536 flows at a few MB. An entry whose counters went down was evicted
 * and re-created by the LRU in between: its delta is its whole value. Entries absent from a read were evicted:
 * their slots are freed. Malformed keys are counted and skipped, never thrown.
 */
import {
  decodeFlowKey,
  decodeIndexKey,
  FLOW_F_INDEX_KNOWN,
  FLOW_KEY_SIZE,
  FLOW_VAL_FLAGS,
  FLOW_VAL_RX,
  FLOW_VAL_SIZE,
  INDEX_KEY_SIZE,
  INDEX_VAL_SIZE,
  VAL_IN,
  VAL_OUT,
  protoName,
  type Counters,
} from './layout.js';
import {
  SCHEMA_VERSION,
  WINDOW_KIND,
  type CountersJson,
  type DirectionTotals,
  type FlowWindow,
  type IndexWindow,
  type SourceInfo,
  type WindowSnapshot,
} from './schema.js';

// Per-slot numbers: for each direction (request at 0, response at DIR) the previous cumulative counters
// (PREV + 0..2: packets, L3 bytes, payload bytes) and this window's deltas (D_P, D_L, D_Y); then the receiver
// index (NaN = unknown).
const PREV = 0;
const D_P = 3;
const D_L = 4;
const D_Y = 5;
const DIR = 6;
const REQ = 0;
const RESP = DIR;
const RX = 2 * DIR;
const F = 2 * DIR + 1;

/**
 * Previous values and current deltas of one kernel map. Keys are stored as raw bytes in one Uint8Array and
 * found through an open-addressing hash index (FNV-1a, linear probing), so reading an entry allocates
 * nothing: with 65,536 flows the table is ~9 MB of typed arrays and the garbage per window is a few objects
 * per listed flow. Freed slots are reused; the index is rebuilt after a sweep that freed any.
 */
class DeltaTable {
  private readonly keySize: number;
  private cap: number;
  private keys: Uint8Array;
  private vals: Float64Array;
  private seen: Uint32Array;
  private activeGen: Uint32Array;
  private live: Uint8Array;
  /** hash index: slot + 1, 0 = empty; size is a power of two ≥ 2 × cap */
  private index: Int32Array;
  private free: number[] = [];
  private next = 0;
  private count = 0;
  /** slots with a non-zero delta in the current window */
  active: number[] = [];

  constructor(keySize: number, initial = 1024) {
    this.keySize = keySize;
    this.cap = initial;
    this.keys = new Uint8Array(initial * keySize);
    this.vals = new Float64Array(initial * F);
    this.seen = new Uint32Array(initial);
    this.activeGen = new Uint32Array(initial);
    this.live = new Uint8Array(initial);
    this.index = new Int32Array(initial * 2);
  }

  get size(): number {
    return this.count;
  }

  begin(): void {
    this.active = [];
  }

  private hash(b: Uint8Array, off: number): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < this.keySize; i++) h = Math.imul(h ^ (b[off + i] ?? 0), 0x01000193);
    return h >>> 0;
  }

  private equals(slot: number, b: Uint8Array, off: number): boolean {
    const base = slot * this.keySize;
    for (let i = 0; i < this.keySize; i++) if (this.keys[base + i] !== b[off + i]) return false;
    return true;
  }

  /** Slot holding the key at b[off..], or -1. */
  find(b: Uint8Array, off: number): number {
    const mask = this.index.length - 1;
    for (let h = this.hash(b, off) & mask; ; h = (h + 1) & mask) {
      const e = this.index[h] ?? 0;
      if (e === 0) return -1;
      if (this.equals(e - 1, b, off)) return e - 1;
    }
  }

  private indexInsert(slot: number): void {
    const mask = this.index.length - 1;
    let h = this.hash(this.keys, slot * this.keySize) & mask;
    while ((this.index[h] ?? 0) !== 0) h = (h + 1) & mask;
    this.index[h] = slot + 1;
  }

  private rebuildIndex(size: number): void {
    this.index = new Int32Array(size);
    for (let n = 0; n < this.next; n++) if (this.live[n]) this.indexInsert(n);
  }

  private grow(): void {
    const cap = this.cap * 2;
    const grown = <T extends Uint8Array | Uint32Array | Float64Array>(a: T, make: (n: number) => T, per: number): T => {
      const out = make(cap * per);
      out.set(a);
      return out;
    };
    this.keys = grown(this.keys, (n) => new Uint8Array(n), this.keySize);
    this.vals = grown(this.vals, (n) => new Float64Array(n), F);
    this.seen = grown(this.seen, (n) => new Uint32Array(n), 1);
    this.activeGen = grown(this.activeGen, (n) => new Uint32Array(n), 1);
    this.live = grown(this.live, (n) => new Uint8Array(n), 1);
    this.cap = cap;
    this.rebuildIndex(cap * 2);
  }

  private alloc(b: Uint8Array, off: number): number {
    let n = this.free.pop();
    if (n === undefined) {
      if (this.next >= this.cap) this.grow();
      n = this.next++;
    }
    this.keys.set(b.subarray(off, off + this.keySize), n * this.keySize);
    this.vals.fill(0, n * F, n * F + F);
    this.activeGen[n] = 0;
    this.live[n] = 1;
    this.count++;
    this.indexInsert(n);
    return n;
  }

  /**
   * Records the cumulative counters read for the key at keys[ko..]: request counters at values[vo + VAL_IN],
   * response counters at values[vo + VAL_OUT] (u64 each: packets, L3 bytes, payload bytes); computes and keeps
   * the deltas.
   */
  update(keys: Uint8Array, ko: number, gen: number, values: Buffer, vo: number, rx: number): void {
    let n = this.find(keys, ko);
    if (n < 0) n = this.alloc(keys, ko);
    this.seen[n] = gen;
    const o = n * F;
    const v = this.vals;
    const read = READ; // no allocation per entry
    for (let i = 0; i < 3; i++) {
      read[i] = u64(values, vo + VAL_IN + 8 * i);
      read[3 + i] = u64(values, vo + VAL_OUT + 8 * i);
    }
    // counters went down: the LRU evicted and re-created the entry between two reads
    let reset = false;
    for (let d = 0; d < 2; d++) for (let i = 0; i < 3; i++) if ((read[d * 3 + i] as number) < (v[o + d * DIR + PREV + i] ?? 0)) reset = true;
    let activeNow = false;
    for (let d = 0; d < 2; d++) {
      const base = o + d * DIR;
      for (let i = 0; i < 3; i++) {
        const cur = read[d * 3 + i] as number;
        const delta = reset ? cur : cur - (v[base + PREV + i] ?? 0);
        v[base + PREV + i] = cur;
        v[base + D_P + i] = delta;
        if (delta !== 0 && i !== 2) activeNow = true;
      }
    }
    v[o + RX] = rx;
    if (activeNow) {
      this.activeGen[n] = gen;
      this.active.push(n);
    }
  }

  get(slot: number, field: number): number {
    return this.vals[slot * F + field] ?? 0;
  }

  /** The key bytes of a slot (a view, valid until the table grows). */
  keyBytes(slot: number): Buffer {
    return Buffer.from(this.keys.buffer, this.keys.byteOffset + slot * this.keySize, this.keySize);
  }

  keyByte(slot: number, at: number): number {
    return this.keys[slot * this.keySize + at] ?? 0;
  }

  /** This window's deltas of one direction (REQ or RESP) of an active slot. */
  counters(slot: number, dir: typeof REQ | typeof RESP): Counters {
    return { packets: this.get(slot, dir + D_P), l3Bytes: this.get(slot, dir + D_L), payloadBytes: this.get(slot, dir + D_Y) };
  }

  /** Active slots, largest first (L3 bytes of both directions). */
  byteOrder(): number[] {
    const size = (s: number): number => this.get(s, REQ + D_L) + this.get(s, RESP + D_L);
    return [...this.active].sort((a, b) => size(b) - size(a));
  }

  /** Frees every slot not read in generation `gen` (evicted from the kernel map). */
  sweep(gen: number): void {
    let freed = 0;
    for (let n = 0; n < this.next; n++) {
      if (!this.live[n] || this.seen[n] === gen) continue;
      this.live[n] = 0;
      this.free.push(n);
      this.count--;
      freed++;
    }
    if (freed > 0) this.rebuildIndex(this.index.length);
  }
}

/** The counters of the entry being read (scratch: DeltaTable.update runs synchronously). */
const READ = new Float64Array(6);

function zero(): Counters {
  return { packets: 0, l3Bytes: 0, payloadBytes: 0 };
}

function addTo(a: Counters, b: Counters): void {
  a.packets += b.packets;
  a.l3Bytes += b.l3Bytes;
  a.payloadBytes += b.payloadBytes;
}

function json(c: Counters): CountersJson {
  return { packets: c.packets, l3_bytes: c.l3Bytes, payload_bytes: c.payloadBytes };
}

function ratio(resp: number, req: number): number | null {
  return req > 0 ? Math.round((resp / req) * 10_000) / 10_000 : null;
}

function totalsOf(req: Counters, resp: Counters): DirectionTotals {
  return { request: json(req), response: json(resp), amplification: ratio(resp.payloadBytes, req.payloadBytes), amplification_l3: ratio(resp.l3Bytes, req.l3Bytes) };
}

function u64(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x1_0000_0000;
}

export interface WindowLimits {
  /** flows listed per snapshot (largest first); totals always cover all flows. Default 1000. */
  maxFlowsPerWindow?: number;
  maxIndexesPerWindow?: number;
}

export interface WindowFinish {
  seq: number;
  startedAt: number;
  endedAt: number;
  final: boolean;
  source: SourceInfo;
  flowsCapacity: number;
  indexesCapacity: number;
  /** cumulative lpgw_stats (matched, flow fail, index fail, unparsed) or null when unreadable */
  kernelStats: readonly number[] | null;
  errors: { read: number; write: number };
  /** false when a map read failed part-way: entries not seen are then kept, not treated as evicted */
  complete: boolean;
}

export class WindowComputer {
  private readonly flows = new DeltaTable(FLOW_KEY_SIZE);
  private readonly indexes = new DeltaTable(INDEX_KEY_SIZE);
  private gen = 0;
  private flowEntries = 0;
  private indexEntries = 0;
  private decodeErrors = 0;
  private prevStats: number[] = [0, 0, 0, 0];
  private readonly maxFlows: number;
  private readonly maxIndexes: number;

  constructor(limits: WindowLimits = {}) {
    this.maxFlows = limits.maxFlowsPerWindow ?? 1000;
    this.maxIndexes = limits.maxIndexesPerWindow ?? 1000;
  }

  /** Number of remembered entries (flows, indexes): the memory the reader path holds between windows. */
  get remembered(): { flows: number; indexes: number } {
    return { flows: this.flows.size, indexes: this.indexes.size };
  }

  begin(): void {
    this.gen = (this.gen + 1) >>> 0 || 1;
    this.flows.begin();
    this.indexes.begin();
    this.flowEntries = 0;
    this.indexEntries = 0;
    this.decodeErrors = 0;
  }

  /** Consumes one chunk of lpgw_flows (keys 40 B, values 56 B: request and response counters, index, flags). */
  addFlows(keys: Buffer, values: Buffer, count: number): void {
    for (let i = 0; i < count; i++) {
      const ko = i * FLOW_KEY_SIZE;
      const vo = i * FLOW_VAL_SIZE;
      const family = keys[ko + 38];
      const proto = keys[ko + 36];
      if (keys[ko + 37] !== 0 || (family !== 4 && family !== 6) || (proto !== 6 && proto !== 17)) {
        this.decodeErrors++;
        continue;
      }
      this.flowEntries++;
      const rx = values.readUInt32LE(vo + FLOW_VAL_FLAGS) & FLOW_F_INDEX_KNOWN ? values.readUInt32LE(vo + FLOW_VAL_RX) : NaN;
      this.flows.update(keys, ko, this.gen, values, vo, rx);
    }
  }

  /** Consumes one chunk of lpgw_indexes (keys 8 B, values 48 B: request and response counters). */
  addIndexes(keys: Buffer, values: Buffer, count: number): void {
    for (let i = 0; i < count; i++) {
      const ko = i * INDEX_KEY_SIZE;
      const vo = i * INDEX_VAL_SIZE;
      if (!decodeIndexKey(keys, ko)) {
        this.decodeErrors++;
        continue;
      }
      this.indexEntries++;
      this.indexes.update(keys, ko, this.gen, values, vo, NaN);
    }
  }

  /** Builds the snapshot and forgets entries that were not in this read (evicted). */
  finish(f: WindowFinish): WindowSnapshot {
    const gen = this.gen;
    const ft = this.flows;
    // Totals over every active flow entry, whatever the listing limit.
    const req = zero();
    const resp = zero();
    const byProto = { tcp: { req: zero(), resp: zero() }, udp: { req: zero(), resp: zero() } };
    for (const s of ft.active) {
      const p = byProto[protoName(ft.keyByte(s, 36))];
      const rq = ft.counters(s, REQ);
      const rs = ft.counters(s, RESP);
      addTo(req, rq);
      addTo(p.req, rq);
      addTo(resp, rs);
      addTo(p.resp, rs);
    }

    const flowSlots = ft.byteOrder();
    const flows: FlowWindow[] = [];
    for (const slot of flowSlots.slice(0, this.maxFlows)) {
      const k = decodeFlowKey(ft.keyBytes(slot), 0);
      if (!k) continue; // validated in addFlows
      const rq = ft.counters(slot, REQ);
      const rs = ft.counters(slot, RESP);
      const rx = ft.get(slot, RX);
      flows.push({
        proto: protoName(k.proto),
        family: k.family,
        local: k.local,
        local_port: k.localPort,
        remote: k.remote,
        remote_port: k.remotePort,
        receiver_index: Number.isNaN(rx) ? null : rx,
        request: json(rq),
        response: json(rs),
        amplification: ratio(rs.payloadBytes, rq.payloadBytes),
        amplification_l3: ratio(rs.l3Bytes, rq.l3Bytes),
      });
    }

    const it = this.indexes;
    const indexSlots = it.byteOrder();
    const indexes: IndexWindow[] = [];
    for (const slot of indexSlots.slice(0, this.maxIndexes)) {
      const k = decodeIndexKey(it.keyBytes(slot), 0);
      if (!k) continue;
      const rq = it.counters(slot, REQ);
      const rs = it.counters(slot, RESP);
      indexes.push({
        receiver_index: k.receiverIndex,
        proto: protoName(k.proto),
        request: json(rq),
        response: json(rs),
        amplification: ratio(rs.payloadBytes, rq.payloadBytes),
        amplification_l3: ratio(rs.l3Bytes, rq.l3Bytes),
      });
    }

    if (f.complete) {
      ft.sweep(gen);
      it.sweep(gen);
    }

    let kernel = { matched_packets: 0, flow_insert_failures: 0, index_insert_failures: 0, unparsed_packets: 0 };
    if (f.kernelStats) {
      const d = f.kernelStats.map((v, i) => Math.max(0, v - (this.prevStats[i] ?? 0)));
      this.prevStats = [...f.kernelStats];
      kernel = { matched_packets: d[0] ?? 0, flow_insert_failures: d[1] ?? 0, index_insert_failures: d[2] ?? 0, unparsed_packets: d[3] ?? 0 };
    }

    return {
      schema_version: SCHEMA_VERSION,
      kind: WINDOW_KIND,
      seq: f.seq,
      started_at: new Date(f.startedAt).toISOString(),
      ended_at: new Date(f.endedAt).toISOString(),
      duration_ms: Math.max(0, Math.round(f.endedAt - f.startedAt)),
      final: f.final,
      source: f.source,
      totals: {
        ...totalsOf(req, resp),
        by_proto: { tcp: totalsOf(byProto.tcp.req, byProto.tcp.resp), udp: totalsOf(byProto.udp.req, byProto.udp.resp) },
        flows_active: flowSlots.length,
        indexes_active: indexSlots.length,
      },
      flows,
      flows_truncated: Math.max(0, flowSlots.length - this.maxFlows),
      indexes,
      indexes_truncated: Math.max(0, indexSlots.length - this.maxIndexes),
      kernel,
      map: { flows_entries: this.flowEntries, flows_capacity: f.flowsCapacity, indexes_entries: this.indexEntries, indexes_capacity: f.indexesCapacity },
      errors: { read: f.errors.read, decode: this.decodeErrors, write: f.errors.write },
    };
  }
}
