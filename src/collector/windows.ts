/**
 * Per-window deltas from cumulative kernel counters, summed into flows and receiver indexes.
 *
 * The kernel keeps one entry per (connection, receiver index) in lpgw_flows, each counting both directions, and
 * only ever grows the counters (layout.ts). Each window reads every entry and subtracts the values seen at the
 * previous read; an entry with another created_ns, or whose counters went down, was evicted and created again in
 * between: its delta is its whole value. A flow's deltas are the sum of its connection's entries, an index's the sum of the
 * ENTRY_INDEX entries with that (index, protocol); every packet is in exactly one entry, so nothing is counted
 * twice. Entries absent from a complete read were evicted: their slots are freed, and a connection or index
 * with no entry left is forgotten. Malformed keys are counted and skipped, never thrown.
 *
 * Everything lives in typed arrays behind hash indexes over the raw key bytes, so reading an entry allocates
 * nothing: 65,536 entries that are each their own connection and index (the most a full default map holds) are
 * ~20 MB of arrays (bench/collector.bench.ts).
 */
import {
  CONN_KEY_SIZE,
  decodeFlowKey,
  EntryKind,
  FLOW_F_INDEX_KNOWN,
  FLOW_KEY_SIZE,
  FLOW_VAL_FLAGS,
  FLOW_VAL_RX,
  FLOW_VAL_CREATED,
  FLOW_VAL_SIZE,
  KEY_KIND,
  KEY_PROTO,
  KEY_RX,
  VAL_IN,
  VAL_OUT,
  protoName,
  validEntryKey,
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

// Per-entry numbers: the cumulative counters of the previous read, request packets, L3, payload bytes at 0..2,
// response at 3..5 (EF of them), then the entry's created_ns (EP numbers in all); per-group sums of this window's
// deltas in the counters' order.
const EF = 6;
const E_CREATED = EF;
const EP = EF + 1;
const GF = 6;
/** An index group's key: receiver index (u32 LE), protocol, three zero bytes. */
const INDEX_GROUP_KEY_SIZE = 8;

/**
 * Raw keys → slots: the key bytes in one Uint8Array and an open-addressing hash index over them (FNV-1a, linear
 * probing). Freed slots are reused; the index is rebuilt after removals (commit()). Owners keep their per-slot
 * numbers in arrays of their own and grow them in `onGrow`.
 */
class KeySlots {
  readonly keySize: number;
  cap: number;
  keys: Uint8Array;
  live: Uint8Array;
  /** hash index: slot + 1, 0 = empty; size is a power of two ≥ 2 × cap */
  private index: Int32Array;
  private free: number[] = [];
  /** slots ever handed out: every live slot is below it */
  next = 0;
  count = 0;
  private removed = false;
  private readonly onGrow: (cap: number) => void;

  constructor(keySize: number, initial: number, onGrow: (cap: number) => void) {
    this.keySize = keySize;
    this.cap = initial;
    this.keys = new Uint8Array(initial * keySize);
    this.live = new Uint8Array(initial);
    this.index = new Int32Array(initial * 2);
    this.onGrow = onGrow;
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

  /** A new slot for the key at b[off..] (not present). */
  add(b: Uint8Array, off: number): number {
    let n = this.free.pop();
    if (n === undefined) {
      if (this.next >= this.cap) {
        const cap = this.cap * 2;
        this.keys = grown(this.keys, cap * this.keySize, (l) => new Uint8Array(l));
        this.live = grown(this.live, cap, (l) => new Uint8Array(l));
        this.cap = cap;
        this.onGrow(cap);
        this.rebuildIndex(cap * 2);
      }
      n = this.next++;
    }
    this.keys.set(b.subarray(off, off + this.keySize), n * this.keySize);
    this.live[n] = 1;
    this.count++;
    this.indexInsert(n);
    return n;
  }

  /** Frees a slot; the index forgets it at commit(). */
  remove(slot: number): void {
    this.live[slot] = 0;
    this.free.push(slot);
    this.count--;
    this.removed = true;
  }

  commit(): void {
    if (!this.removed) return;
    this.removed = false;
    this.rebuildIndex(this.index.length);
  }

  /** The key bytes of a slot (a view, valid until the table grows). */
  keyBytes(slot: number): Buffer {
    return Buffer.from(this.keys.buffer, this.keys.byteOffset + slot * this.keySize, this.keySize);
  }

  keyByte(slot: number, at: number): number {
    return this.keys[slot * this.keySize + at] ?? 0;
  }
}

function grown<T extends Uint8Array | Uint32Array | Int32Array | Float64Array>(a: T, length: number, make: (n: number) => T): T {
  const out = make(length);
  out.set(a);
  return out;
}

/**
 * Connections or receiver indexes: the entries that belong to each (a reference count), this window's summed
 * deltas, and, for connections, what decides their receiver index.
 */
class Groups {
  readonly slots: KeySlots;
  refs: Uint32Array;
  sums: Float64Array;
  activeGen: Uint32Array;
  seenGen: Uint32Array;
  /** connections only (else empty): the index a TCP connection's ENTRY_CONN entry holds (NaN = none) */
  connRx: Float64Array;
  /** connections only: the newest ENTRY_INDEX entry's creation time and index (NaN = no index entry) */
  bestStamp: Float64Array;
  bestRx: Float64Array;
  /** groups with traffic in the current window */
  active: number[] = [];

  constructor(keySize: number, withRx: boolean, initial = 1024) {
    const rxLen = (cap: number): number => (withRx ? cap : 0);
    this.refs = new Uint32Array(initial);
    this.sums = new Float64Array(initial * GF);
    this.activeGen = new Uint32Array(initial);
    this.seenGen = new Uint32Array(initial);
    this.connRx = new Float64Array(rxLen(initial));
    this.bestStamp = new Float64Array(rxLen(initial));
    this.bestRx = new Float64Array(rxLen(initial));
    this.slots = new KeySlots(keySize, initial, (cap) => {
      this.refs = grown(this.refs, cap, (l) => new Uint32Array(l));
      this.sums = grown(this.sums, cap * GF, (l) => new Float64Array(l));
      this.activeGen = grown(this.activeGen, cap, (l) => new Uint32Array(l));
      this.seenGen = grown(this.seenGen, cap, (l) => new Uint32Array(l));
      this.connRx = grown(this.connRx, rxLen(cap), (l) => new Float64Array(l));
      this.bestStamp = grown(this.bestStamp, rxLen(cap), (l) => new Float64Array(l));
      this.bestRx = grown(this.bestRx, rxLen(cap), (l) => new Float64Array(l));
    });
  }

  get size(): number {
    return this.slots.count;
  }

  /** The group of the key at b[off..], created if new; counts one more entry in it. */
  acquire(b: Uint8Array, off: number): number {
    let g = this.slots.find(b, off);
    if (g < 0) {
      g = this.slots.add(b, off);
      this.refs[g] = 0;
      this.activeGen[g] = 0;
      this.seenGen[g] = 0;
    }
    this.refs[g] = (this.refs[g] ?? 0) + 1;
    return g;
  }

  /** One entry of the group is gone; the group too when it was its last. */
  release(g: number): void {
    const r = (this.refs[g] ?? 1) - 1;
    this.refs[g] = r;
    if (r === 0) this.slots.remove(g);
  }

  /** Adds an entry's deltas (`delta`: request packets, L3, payload bytes, then response) for window `gen`. */
  add(g: number, gen: number, delta: Float64Array): void {
    const o = g * GF;
    if (this.activeGen[g] !== gen) {
      this.activeGen[g] = gen;
      this.sums.fill(0, o, o + GF);
      this.active.push(g);
    }
    for (let i = 0; i < GF; i++) this.sums[o + i] = (this.sums[o + i] ?? 0) + (delta[i] ?? 0);
  }

  /** This window's summed deltas of one direction (0 = request, 3 = response) of an active group. */
  counters(g: number, dir: 0 | 3): Counters {
    const o = g * GF + dir;
    return { packets: this.sums[o] ?? 0, l3Bytes: this.sums[o + 1] ?? 0, payloadBytes: this.sums[o + 2] ?? 0 };
  }

  /** Active groups, largest first (L3 bytes of both directions). */
  byteOrder(): number[] {
    const size = (g: number): number => (this.sums[g * GF + 1] ?? 0) + (this.sums[g * GF + 4] ?? 0);
    return [...this.active].sort((a, b) => size(b) - size(a));
  }
}

/** The counters of the entry being read and their deltas (scratch: addFlows runs synchronously). */
const READ = new Float64Array(EF);
const DELTA = new Float64Array(EF);
/** Group keys being built (scratch). */
const CONN_KEY = new Uint8Array(CONN_KEY_SIZE);
const INDEX_KEY = new Uint8Array(INDEX_GROUP_KEY_SIZE);

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
  /** capacity of lpgw_flows, in entries (flows and indexes share it) */
  flowsCapacity: number;
  /** cumulative lpgw_stats (matched, flow fail, index fail, unparsed) or null when unreadable */
  kernelStats: readonly number[] | null;
  errors: { read: number; write: number };
  /** false when a map read failed part-way: entries not seen are then kept, not treated as evicted */
  complete: boolean;
}

export class WindowComputer {
  private readonly entries: KeySlots;
  /** per entry: counters and created_ns of the previous read (EP numbers), read generation, connection and index group (-1: none) */
  private ev = new Float64Array(1024 * EP);
  private seen = new Uint32Array(1024);
  private conn = new Int32Array(1024);
  private idx = new Int32Array(1024);
  private readonly conns = new Groups(CONN_KEY_SIZE, true);
  private readonly indexes = new Groups(INDEX_GROUP_KEY_SIZE, false);
  private gen = 0;
  private entriesRead = 0;
  private connsRead = 0;
  private indexesRead = 0;
  private decodeErrors = 0;
  private prevStats: number[] = [0, 0, 0, 0];
  private readonly maxFlows: number;
  private readonly maxIndexes: number;

  constructor(limits: WindowLimits = {}) {
    this.maxFlows = limits.maxFlowsPerWindow ?? 1000;
    this.maxIndexes = limits.maxIndexesPerWindow ?? 1000;
    this.entries = new KeySlots(FLOW_KEY_SIZE, 1024, (cap) => {
      this.ev = grown(this.ev, cap * EP, (l) => new Float64Array(l));
      this.seen = grown(this.seen, cap, (l) => new Uint32Array(l));
      this.conn = grown(this.conn, cap, (l) => new Int32Array(l));
      this.idx = grown(this.idx, cap, (l) => new Int32Array(l));
    });
  }

  /** What the reader path holds between windows: kernel entries, connections and indexes remembered. */
  get remembered(): { entries: number; flows: number; indexes: number } {
    return { entries: this.entries.count, flows: this.conns.size, indexes: this.indexes.size };
  }

  begin(): void {
    this.gen = (this.gen + 1) >>> 0 || 1;
    this.conns.active = [];
    this.indexes.active = [];
    this.entriesRead = 0;
    this.connsRead = 0;
    this.indexesRead = 0;
    this.decodeErrors = 0;
  }

  /** A slot for a new entry, joined to its connection and (ENTRY_INDEX) its index. */
  private addEntry(keys: Buffer, ko: number): number {
    const n = this.entries.add(keys, ko);
    this.ev.fill(0, n * EP, n * EP + EP);
    CONN_KEY.set(keys.subarray(ko, ko + CONN_KEY_SIZE));
    CONN_KEY[KEY_KIND] = 0;
    this.conn[n] = this.conns.acquire(CONN_KEY, 0);
    if (keys[ko + KEY_KIND] === EntryKind.INDEX) {
      INDEX_KEY.set(keys.subarray(ko + KEY_RX, ko + KEY_RX + 4));
      INDEX_KEY[4] = keys[ko + KEY_PROTO] ?? 0;
      this.idx[n] = this.indexes.acquire(INDEX_KEY, 0);
    } else {
      this.idx[n] = -1;
    }
    return n;
  }

  /**
   * Consumes one chunk of lpgw_flows (keys 44 B: connection, kind, receiver index; values 64 B: request and
   * response counters, created_ns, receiver index and flags).
   */
  addFlows(keys: Buffer, values: Buffer, count: number): void {
    const gen = this.gen;
    for (let i = 0; i < count; i++) {
      const ko = i * FLOW_KEY_SIZE;
      const vo = i * FLOW_VAL_SIZE;
      if (!validEntryKey(keys, ko)) {
        this.decodeErrors++;
        continue;
      }
      this.entriesRead++;
      let n = this.entries.find(keys, ko);
      if (n < 0) n = this.addEntry(keys, ko);
      this.seen[n] = gen;

      // Deltas. An entry created anew (another created_ns, or counters that went down) was evicted by the LRU and
      // made again between two reads: its delta is its whole value.
      const o = n * EP;
      const prev = this.ev;
      for (let j = 0; j < 3; j++) {
        READ[j] = u64(values, vo + VAL_IN + 8 * j);
        READ[3 + j] = u64(values, vo + VAL_OUT + 8 * j);
      }
      const created = u64(values, vo + FLOW_VAL_CREATED);
      let reset = created !== prev[o + E_CREATED];
      prev[o + E_CREATED] = created;
      for (let j = 0; j < EF; j++) if ((READ[j] as number) < (prev[o + j] ?? 0)) reset = true;
      let active = false;
      for (let j = 0; j < EF; j++) {
        const cur = READ[j] as number;
        const delta = reset ? cur : cur - (prev[o + j] ?? 0);
        prev[o + j] = cur;
        DELTA[j] = delta;
        if (delta !== 0 && j !== 2 && j !== 5) active = true;
      }

      // The connection's receiver index: its TCP ENTRY_CONN entry's, else its newest ENTRY_INDEX entry's (the
      // one created last).
      const c = this.conn[n] ?? 0;
      const cs = this.conns;
      if (cs.seenGen[c] !== gen) {
        cs.seenGen[c] = gen;
        cs.connRx[c] = NaN;
        cs.bestStamp[c] = -1;
        cs.bestRx[c] = NaN;
        this.connsRead++;
      }
      const g = this.idx[n] ?? -1;
      if (g < 0) {
        if (values.readUInt32LE(vo + FLOW_VAL_FLAGS) & FLOW_F_INDEX_KNOWN) cs.connRx[c] = values.readUInt32LE(vo + FLOW_VAL_RX);
      } else {
        if (created >= (cs.bestStamp[c] ?? -1)) {
          cs.bestStamp[c] = created;
          cs.bestRx[c] = keys.readUInt32LE(ko + KEY_RX);
        }
        if (this.indexes.seenGen[g] !== gen) {
          this.indexes.seenGen[g] = gen;
          this.indexesRead++;
        }
      }
      if (active) {
        cs.add(c, gen, DELTA);
        if (g >= 0) this.indexes.add(g, gen, DELTA);
      }
    }
  }

  /** Frees every entry not read in this generation (evicted from the kernel map), and groups left empty. */
  private sweep(): void {
    const e = this.entries;
    for (let n = 0; n < e.next; n++) {
      if (!e.live[n] || this.seen[n] === this.gen) continue;
      e.remove(n);
      this.conns.release(this.conn[n] ?? 0);
      const g = this.idx[n] ?? -1;
      if (g >= 0) this.indexes.release(g);
    }
    e.commit();
    this.conns.slots.commit();
    this.indexes.slots.commit();
  }

  /** Builds the snapshot and forgets entries that were not in this read (evicted). */
  finish(f: WindowFinish): WindowSnapshot {
    const cs = this.conns;
    // Totals over every active connection, whatever the listing limit.
    const req = zero();
    const resp = zero();
    const byProto = { tcp: { req: zero(), resp: zero() }, udp: { req: zero(), resp: zero() } };
    for (const c of cs.active) {
      const p = byProto[protoName(cs.slots.keyByte(c, KEY_PROTO))];
      const rq = cs.counters(c, 0);
      const rs = cs.counters(c, 3);
      addTo(req, rq);
      addTo(p.req, rq);
      addTo(resp, rs);
      addTo(p.resp, rs);
    }

    const flowSlots = cs.byteOrder();
    const flows: FlowWindow[] = [];
    for (const c of flowSlots.slice(0, this.maxFlows)) {
      const k = decodeFlowKey(cs.slots.keyBytes(c), 0);
      if (!k) continue; // validated in addFlows
      const rq = cs.counters(c, 0);
      const rs = cs.counters(c, 3);
      const connRx = cs.connRx[c] ?? NaN;
      const rx = Number.isNaN(connRx) ? (cs.bestRx[c] ?? NaN) : connRx;
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

    const is = this.indexes;
    const indexSlots = is.byteOrder();
    const indexes: IndexWindow[] = [];
    for (const g of indexSlots.slice(0, this.maxIndexes)) {
      const key = is.slots.keyBytes(g);
      const rq = is.counters(g, 0);
      const rs = is.counters(g, 3);
      indexes.push({
        receiver_index: key.readUInt32LE(0),
        proto: protoName(key[4] ?? 0),
        request: json(rq),
        response: json(rs),
        amplification: ratio(rs.payloadBytes, rq.payloadBytes),
        amplification_l3: ratio(rs.l3Bytes, rq.l3Bytes),
      });
    }

    if (f.complete) this.sweep();

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
      map: { flows_entries: this.connsRead, flows_capacity: f.flowsCapacity, indexes_entries: this.indexesRead, indexes_capacity: f.flowsCapacity, entries: this.entriesRead },
      errors: { read: f.errors.read, decode: this.decodeErrors, write: f.errors.write },
    };
  }
}
