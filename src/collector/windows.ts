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
 * Everything lives in paged typed arrays behind hash indexes over the raw key bytes, so reading an entry allocates
 * nothing: 65,536 entries that are each their own connection and index (the most a full default map holds) are
 * ~24 MB of arrays (bench/collector.bench.ts).
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

// Per-entry numbers: the cumulative counters of the previous read (request packets, L3, payload bytes at 0..2,
// response at 3..5), the entry's created_ns at that read, the generation of its last read, and its connection's
// and (ENTRY_INDEX) index's group slots (-1: none).
const EF = 6;
const E_CREATED = EF;
const E_SEEN = EF + 1;
const E_CONN = EF + 2;
const E_IDX = EF + 3;
const E_WIDTH = EF + 4;
// Per-group numbers: entries in the group, the generation it was last active / read in, this window's summed
// deltas (in the counters' order); connections also: the index its TCP ENTRY_CONN entry holds (NaN = none), and
// its newest ENTRY_INDEX entry's created_ns and index (NaN = none).
const G_REFS = 0;
const G_ACTIVE = 1;
const G_SEEN = 2;
const G_SUMS = 3;
const G_WIDTH = G_SUMS + 6;
const G_CONN_RX = G_WIDTH;
const G_BEST_STAMP = G_WIDTH + 1;
const G_BEST_RX = G_WIDTH + 2;
const G_CONN_WIDTH = G_WIDTH + 3;
/** An index group's key: receiver index (u32 LE), protocol, three zero bytes. */
const INDEX_GROUP_KEY_SIZE = 8;

const PAGE_BITS = 12;
const PAGE = 1 << PAGE_BITS;
const PAGE_MASK = PAGE - 1;

/**
 * Raw keys → slots, each slot with `width` numbers. Keys, liveness and numbers live in pages of 4,096 slots, so
 * growing adds a page and copies nothing: arrays doubled and copied left their predecessors as garbage that the
 * allocator kept (with 65,536 entries, RSS grew 20 MB more than the arrays held). An open-addressing hash index
 * over the key bytes (FNV-1a, linear probing) finds a key's slot. Freed slots are reused; the index is rebuilt in
 * place after removals (commit()).
 */
class KeyTable {
  readonly keySize: number;
  readonly width: number;
  private readonly keyPages: Uint8Array[] = [];
  private readonly numPages: Float64Array[] = [];
  private readonly livePages: Uint8Array[] = [];
  /** hash index: slot + 1, 0 = empty; its size is a power of two ≥ 2 × the slots the pages hold */
  private index = new Int32Array(2 * PAGE);
  private free: number[] = [];
  /** slots ever handed out: every live slot is below it */
  next = 0;
  count = 0;
  private removed = false;

  constructor(keySize: number, width: number) {
    this.keySize = keySize;
    this.width = width;
    this.addPage();
  }

  private addPage(): void {
    this.keyPages.push(new Uint8Array(PAGE * this.keySize));
    this.numPages.push(new Float64Array(PAGE * this.width));
    this.livePages.push(new Uint8Array(PAGE));
  }

  /** The page holding a slot's numbers; they start at numBase(slot). */
  nums(slot: number): Float64Array {
    return this.numPages[slot >>> PAGE_BITS] as Float64Array;
  }

  numBase(slot: number): number {
    return (slot & PAGE_MASK) * this.width;
  }

  get(slot: number, field: number): number {
    return this.nums(slot)[this.numBase(slot) + field] as number;
  }

  set(slot: number, field: number, v: number): void {
    this.nums(slot)[this.numBase(slot) + field] = v;
  }

  isLive(slot: number): boolean {
    return (this.livePages[slot >>> PAGE_BITS] as Uint8Array)[slot & PAGE_MASK] === 1;
  }

  private hash(b: Uint8Array, off: number): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < this.keySize; i++) h = Math.imul(h ^ (b[off + i] ?? 0), 0x01000193);
    return h >>> 0;
  }

  private equals(slot: number, b: Uint8Array, off: number): boolean {
    const page = this.keyPages[slot >>> PAGE_BITS] as Uint8Array;
    const base = (slot & PAGE_MASK) * this.keySize;
    for (let i = 0; i < this.keySize; i++) if (page[base + i] !== b[off + i]) return false;
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
    let h = this.hash(this.keyPages[slot >>> PAGE_BITS] as Uint8Array, (slot & PAGE_MASK) * this.keySize) & mask;
    while ((this.index[h] ?? 0) !== 0) h = (h + 1) & mask;
    this.index[h] = slot + 1;
  }

  private rebuildIndex(size: number): void {
    if (size === this.index.length) this.index.fill(0);
    else this.index = new Int32Array(size);
    for (let n = 0; n < this.next; n++) if (this.isLive(n)) this.indexInsert(n);
  }

  /** A new slot, its numbers zero, for the key at b[off..] (not present). */
  add(b: Uint8Array, off: number): number {
    let n = this.free.pop();
    if (n === undefined) {
      n = this.next++;
      if (n >= this.keyPages.length * PAGE) {
        this.addPage();
        if (this.index.length < 2 * this.keyPages.length * PAGE) this.rebuildIndex(this.index.length * 2);
      }
    }
    const page = this.keyPages[n >>> PAGE_BITS] as Uint8Array;
    const base = (n & PAGE_MASK) * this.keySize;
    for (let i = 0; i < this.keySize; i++) page[base + i] = b[off + i] as number; // no subarray object per entry
    this.nums(n).fill(0, this.numBase(n), this.numBase(n) + this.width);
    (this.livePages[n >>> PAGE_BITS] as Uint8Array)[n & PAGE_MASK] = 1;
    this.count++;
    this.indexInsert(n);
    return n;
  }

  /** Frees a slot; the index forgets it at commit(). */
  remove(slot: number): void {
    (this.livePages[slot >>> PAGE_BITS] as Uint8Array)[slot & PAGE_MASK] = 0;
    this.free.push(slot);
    this.count--;
    this.removed = true;
  }

  commit(): void {
    if (!this.removed) return;
    this.removed = false;
    this.rebuildIndex(this.index.length);
  }

  /** The key bytes of a slot (a view into its page). */
  keyBytes(slot: number): Buffer {
    const page = this.keyPages[slot >>> PAGE_BITS] as Uint8Array;
    return Buffer.from(page.buffer, page.byteOffset + (slot & PAGE_MASK) * this.keySize, this.keySize);
  }

  keyByte(slot: number, at: number): number {
    return (this.keyPages[slot >>> PAGE_BITS] as Uint8Array)[(slot & PAGE_MASK) * this.keySize + at] ?? 0;
  }
}

/**
 * Connections or receiver indexes: the entries that belong to each (a reference count), this window's summed
 * deltas, and, for connections, what decides their receiver index.
 */
class Groups {
  readonly table: KeyTable;
  /** groups with traffic in the current window */
  active: number[] = [];

  constructor(keySize: number, width: number) {
    this.table = new KeyTable(keySize, width);
  }

  get size(): number {
    return this.table.count;
  }

  /** The group of the key at b[off..], created if new; counts one more entry in it. */
  acquire(b: Uint8Array, off: number): number {
    let g = this.table.find(b, off);
    if (g < 0) g = this.table.add(b, off);
    this.table.set(g, G_REFS, this.table.get(g, G_REFS) + 1);
    return g;
  }

  /** One entry of the group is gone; the group too when it was its last. */
  release(g: number): void {
    const r = this.table.get(g, G_REFS) - 1;
    this.table.set(g, G_REFS, r);
    if (r <= 0) this.table.remove(g);
  }

  /** Adds an entry's deltas (`delta`: request packets, L3, payload bytes, then response) for window `gen`. */
  add(g: number, gen: number, delta: Float64Array): void {
    const nums = this.table.nums(g);
    const o = this.table.numBase(g);
    if (nums[o + G_ACTIVE] !== gen) {
      nums[o + G_ACTIVE] = gen;
      nums.fill(0, o + G_SUMS, o + G_SUMS + 6);
      this.active.push(g);
    }
    for (let i = 0; i < 6; i++) nums[o + G_SUMS + i] = (nums[o + G_SUMS + i] as number) + (delta[i] as number);
  }

  /** This window's summed deltas of one direction (0 = request, 3 = response) of an active group. */
  counters(g: number, dir: 0 | 3): Counters {
    const nums = this.table.nums(g);
    const o = this.table.numBase(g) + G_SUMS + dir;
    return { packets: nums[o] as number, l3Bytes: nums[o + 1] as number, payloadBytes: nums[o + 2] as number };
  }

  /**
   * The `k` largest active groups (L3 bytes of both directions), largest first. Only those k are sorted with a
   * comparator: the sizes of all are sorted as numbers to find the k-th (a comparator sort of 65,536 groups made
   * ~16 MB of garbage per window).
   */
  largest(k: number): number[] {
    const n = this.active.length;
    const sizes = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const g = this.active[i] as number;
      sizes[i] = this.table.get(g, G_SUMS + 1) + this.table.get(g, G_SUMS + 4);
    }
    let pick: number[];
    if (n <= k) {
      pick = [...this.active.keys()];
    } else {
      const threshold = Float64Array.from(sizes).sort()[n - k] as number; // the k-th largest
      pick = [];
      for (let i = 0; i < n && pick.length < k; i++) if ((sizes[i] as number) > threshold) pick.push(i);
      for (let i = 0; i < n && pick.length < k; i++) if (sizes[i] === threshold) pick.push(i);
    }
    pick.sort((a, b) => (sizes[b] as number) - (sizes[a] as number));
    return pick.map((i) => this.active[i] as number);
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
  /** per entry: E_WIDTH numbers (E_* above) */
  private readonly entries = new KeyTable(FLOW_KEY_SIZE, E_WIDTH);
  private readonly conns = new Groups(CONN_KEY_SIZE, G_CONN_WIDTH);
  private readonly indexes = new Groups(INDEX_GROUP_KEY_SIZE, G_WIDTH);
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
    const e = this.entries;
    const n = e.add(keys, ko);
    for (let i = 0; i < CONN_KEY_SIZE; i++) CONN_KEY[i] = keys[ko + i] as number;
    CONN_KEY[KEY_KIND] = 0;
    e.set(n, E_CONN, this.conns.acquire(CONN_KEY, 0));
    if (keys[ko + KEY_KIND] === EntryKind.INDEX) {
      for (let i = 0; i < 4; i++) INDEX_KEY[i] = keys[ko + KEY_RX + i] as number;
      INDEX_KEY[4] = keys[ko + KEY_PROTO] ?? 0;
      e.set(n, E_IDX, this.indexes.acquire(INDEX_KEY, 0));
    } else {
      e.set(n, E_IDX, -1);
    }
    return n;
  }

  /**
   * Consumes one chunk of lpgw_flows (keys 44 B: connection, kind, receiver index; values 64 B: request and
   * response counters, created_ns, receiver index and flags).
   */
  addFlows(keys: Buffer, values: Buffer, count: number): void {
    const gen = this.gen;
    const ct = this.conns.table;
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
      const prev = this.entries.nums(n);
      const o = this.entries.numBase(n);
      prev[o + E_SEEN] = gen;

      // Deltas. An entry created anew (another created_ns, or counters that went down) was evicted by the LRU and
      // made again between two reads: its delta is its whole value.
      for (let j = 0; j < 3; j++) {
        READ[j] = u64(values, vo + VAL_IN + 8 * j);
        READ[3 + j] = u64(values, vo + VAL_OUT + 8 * j);
      }
      // As a double created_ns rounds to 2 ns after ~104 days of uptime (256 ns after 36 years); two creations of
      // one key lie an eviction and a new first packet apart, far more than that, so they never compare equal.
      const created = u64(values, vo + FLOW_VAL_CREATED);
      let reset = created !== prev[o + E_CREATED];
      prev[o + E_CREATED] = created;
      for (let j = 0; j < EF; j++) if ((READ[j] as number) < (prev[o + j] as number)) reset = true;
      let active = false;
      for (let j = 0; j < EF; j++) {
        const cur = READ[j] as number;
        const delta = reset ? cur : cur - (prev[o + j] as number);
        prev[o + j] = cur;
        DELTA[j] = delta;
        if (delta !== 0 && j !== 2 && j !== 5) active = true;
      }

      // The connection's receiver index: its TCP ENTRY_CONN entry's, else its newest ENTRY_INDEX entry's (the
      // one created last).
      const c = prev[o + E_CONN] as number;
      const cn = ct.nums(c);
      const co = ct.numBase(c);
      if (cn[co + G_SEEN] !== gen) {
        cn[co + G_SEEN] = gen;
        cn[co + G_CONN_RX] = NaN;
        cn[co + G_BEST_STAMP] = -1;
        cn[co + G_BEST_RX] = NaN;
        this.connsRead++;
      }
      const g = prev[o + E_IDX] as number;
      if (g < 0) {
        if (values.readUInt32LE(vo + FLOW_VAL_FLAGS) & FLOW_F_INDEX_KNOWN) cn[co + G_CONN_RX] = values.readUInt32LE(vo + FLOW_VAL_RX);
      } else {
        if (created >= (cn[co + G_BEST_STAMP] as number)) {
          cn[co + G_BEST_STAMP] = created;
          cn[co + G_BEST_RX] = keys.readUInt32LE(ko + KEY_RX);
        }
        if (this.indexes.table.get(g, G_SEEN) !== gen) {
          this.indexes.table.set(g, G_SEEN, gen);
          this.indexesRead++;
        }
      }
      if (active) {
        this.conns.add(c, gen, DELTA);
        if (g >= 0) this.indexes.add(g, gen, DELTA);
      }
    }
  }

  /** Frees every entry not read in this generation (evicted from the kernel map), and groups left empty. */
  private sweep(): void {
    const e = this.entries;
    for (let n = 0; n < e.next; n++) {
      if (!e.isLive(n) || e.get(n, E_SEEN) === this.gen) continue;
      e.remove(n);
      this.conns.release(e.get(n, E_CONN));
      const g = e.get(n, E_IDX);
      if (g >= 0) this.indexes.release(g);
    }
    e.commit();
    this.conns.table.commit();
    this.indexes.table.commit();
  }

  /** Builds the snapshot and forgets entries that were not in this read (evicted). */
  finish(f: WindowFinish): WindowSnapshot {
    const cs = this.conns;
    const ct = cs.table;
    // Totals over every active connection, whatever the listing limit.
    const req = zero();
    const resp = zero();
    const byProto = { tcp: { req: zero(), resp: zero() }, udp: { req: zero(), resp: zero() } };
    for (const c of cs.active) {
      const p = byProto[protoName(ct.keyByte(c, KEY_PROTO))];
      const rq = cs.counters(c, 0);
      const rs = cs.counters(c, 3);
      addTo(req, rq);
      addTo(p.req, rq);
      addTo(resp, rs);
      addTo(p.resp, rs);
    }

    const flowsActive = cs.active.length;
    const flows: FlowWindow[] = [];
    for (const c of cs.largest(this.maxFlows)) {
      const k = decodeFlowKey(ct.keyBytes(c), 0);
      if (!k) continue; // validated in addFlows
      const rq = cs.counters(c, 0);
      const rs = cs.counters(c, 3);
      const connRx = ct.get(c, G_CONN_RX);
      const rx = Number.isNaN(connRx) ? ct.get(c, G_BEST_RX) : connRx;
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
    const indexesActive = is.active.length;
    const indexes: IndexWindow[] = [];
    for (const g of is.largest(this.maxIndexes)) {
      const key = is.table.keyBytes(g);
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
        flows_active: flowsActive,
        indexes_active: indexesActive,
      },
      flows,
      flows_truncated: Math.max(0, flowsActive - this.maxFlows),
      indexes,
      indexes_truncated: Math.max(0, indexesActive - this.maxIndexes),
      kernel,
      map: { flows_entries: this.connsRead, flows_capacity: f.flowsCapacity, indexes_entries: this.indexesRead, indexes_capacity: f.flowsCapacity, entries: this.entriesRead },
      errors: { read: f.errors.read, decode: this.decodeErrors, write: f.errors.write },
    };
  }
}
