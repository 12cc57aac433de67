/**
 * A bounded table keyed by receiver index with least-recently-used eviction and a time to live: the shape of
 * the gateway's handshake, session and demoted tables (tables.ts).
 *
 * Why not lru-cache (used elsewhere): it preallocates arrays of `max` entries and, when its last entry is deleted,
 * clears them all — O(max). With the tables' bounds (100,000 handshakes, 1,000,000 sessions) that made a lone
 * handshake's completion cost ~0.37 ms and a lone session's removal ~5 ms, on the event loop (issue 17). A Map
 * keeps insertion order, so re-inserting an entry on use makes its order the recency order: every operation here
 * is O(1) but the sweep, which is O(size) like lru-cache's purgeStale.
 */

/** Why an entry left without being deleted by its owner: pushed out by a full table, or past its lifetime. */
export type DropReason = 'evict' | 'expire';

export interface LruTableOptions<V> {
  /** Entries at most; inserting beyond it evicts the least recently used. */
  max: number;
  /** Lifetime in milliseconds: from insertion, or from the last refresh (`get` with `refresh`). */
  ttlMs: number;
  /** Called for an evicted or expired entry, after it left the table (never for delete, replace or clear). */
  onDrop?: (value: V, key: number, reason: DropReason) => void;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
}

export class LruTable<V> {
  private readonly map = new Map<number, Entry<V>>();
  private readonly max: number;
  private readonly ttlMs: number;
  private readonly onDrop: (value: V, key: number, reason: DropReason) => void;
  private readonly now: () => number;

  constructor(o: LruTableOptions<V>) {
    if (!Number.isInteger(o.max) || o.max < 1) throw new RangeError(`max must be a positive integer, got ${o.max}`);
    this.max = o.max;
    this.ttlMs = o.ttlMs;
    this.onDrop = o.onDrop ?? (() => undefined);
    this.now = o.now ?? Date.now;
  }

  get size(): number {
    return this.map.size;
  }

  /** True if `key` is present and not expired (an expired entry is left to the sweep). */
  has(key: number): boolean {
    const e = this.map.get(key);
    return e !== undefined && e.expiresAt > this.now();
  }

  /** The entry of `key` if present and live; an expired one is dropped ('expire'). A miss reads no clock. */
  private live(key: number): Entry<V> | undefined {
    const e = this.map.get(key);
    if (e === undefined || e.expiresAt > this.now()) return e;
    this.map.delete(key);
    this.onDrop(e.value, key, 'expire');
    return undefined;
  }

  /**
   * The value, made the most recently used; with `refresh` its lifetime starts again. An expired entry is
   * dropped ('expire') and undefined returned.
   */
  get(key: number, refresh = false): V | undefined {
    const e = this.live(key);
    if (e === undefined) return undefined;
    if (refresh) e.expiresAt = this.now() + this.ttlMs;
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  /**
   * The value without making it the most recently used or refreshing it: for a look-up before the packet that
   * names the key is authenticated (junk naming a session's cleartext index must not keep it from eviction).
   * An expired entry is dropped ('expire') and undefined returned, as by get.
   */
  peek(key: number): V | undefined {
    return this.live(key)?.value;
  }

  /** Inserts or replaces (a replaced value is not dropped: its owner moved it), as the most recently used. */
  set(key: number, value: V): void {
    this.map.delete(key);
    this.map.set(key, { value, expiresAt: this.now() + this.ttlMs });
    while (this.map.size > this.max) {
      const [oldKey, old] = this.map.entries().next().value as [number, Entry<V>];
      this.map.delete(oldKey);
      this.onDrop(old.value, oldKey, 'evict');
    }
  }

  /** Removes without dropping (the owner takes the value elsewhere or disposes of it itself). */
  delete(key: number): boolean {
    return this.map.delete(key);
  }

  /** Drops every expired entry ('expire'). */
  purgeStale(): void {
    const now = this.now();
    for (const [key, e] of this.map) {
      if (e.expiresAt > now) continue;
      this.map.delete(key);
      this.onDrop(e.value, key, 'expire');
    }
  }

  *values(): IterableIterator<V> {
    for (const e of this.map.values()) yield e.value;
  }

  /** Removes everything without dropping (the owner disposes of the values). */
  clear(): void {
    this.map.clear();
  }
}
