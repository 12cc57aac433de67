/**
 * The gateway's three state tables, keyed by receiver index (PRODUCT.md §1, upstream §12.2):
 *   handshakes — ClientHello until message 3, TTL from creation (90 s), bounded (LRU eviction);
 *   sessions   — established, idle TTL (24 h), refreshed (and made most recent) only by authenticated packets, bounded;
 *   demoted    — read-only parents after a rekey, idle TTL (60 s), bounded by a quarter of the sessions' bound.
 * Eviction, expiry and clear() zero the key material; moves between tables do not.
 */
import type { ResponderHandshake, Session } from '../core/index.js';
import { type DropReason, LruTable } from './lru-table.js';

export interface TableLimits {
  maxHandshakes: number;
  maxSessions: number;
  handshakeTtlSec: number;
  sessionIdleTtlSec: number;
  demotedIdleTtlSec: number;
}

export type TableName = 'handshake' | 'session' | 'demoted';

export interface TableEvents {
  /** An entry was pushed out because the table was full. */
  onEvict(table: TableName): void;
  /** An entry reached its TTL. */
  onExpire(table: TableName): void;
}

/**
 * Demoted parents live 60 s after a rekey, so honest clients keep few; a client rekeying in a loop must not get
 * a second full session table: a quarter of the session bound (an evicted parent only loses its late packets).
 */
export function demotedBound(maxSessions: number): number {
  return Math.max(1, Math.ceil(maxSessions / 4));
}

const NO_EVENTS: TableEvents = { onEvict: () => undefined, onExpire: () => undefined };

export class SessionTables {
  readonly handshakes: LruTable<ResponderHandshake>;
  readonly sessions: LruTable<Session>;
  readonly demoted: LruTable<Session>;

  constructor(limits: TableLimits, events: TableEvents = NO_EVENTS) {
    const report = (table: TableName, reason: DropReason): void => (reason === 'evict' ? events.onEvict(table) : events.onExpire(table));
    this.handshakes = new LruTable<ResponderHandshake>({
      max: limits.maxHandshakes,
      // From creation: a handshake's packets do not extend it.
      ttlMs: limits.handshakeTtlSec * 1000,
      onDrop: (hs, _k, reason) => {
        report('handshake', reason);
        hs.destroy();
      },
    });
    this.sessions = new LruTable<Session>({
      max: limits.maxSessions,
      ttlMs: limits.sessionIdleTtlSec * 1000,
      onDrop: (s, _k, reason) => {
        report('session', reason);
        s.close();
      },
    });
    this.demoted = new LruTable<Session>({
      max: demotedBound(limits.maxSessions),
      ttlMs: limits.demotedIdleTtlSec * 1000,
      onDrop: (s, _k, reason) => {
        report('demoted', reason);
        s.close();
      },
    });
  }

  /** True if a receiver index is taken in any table (ClientHello and subsession collision check). */
  indexInUse = (index: number): boolean => this.handshakes.has(index) || this.sessions.has(index) || this.demoted.has(index);

  /**
   * Session or demoted session for an index, neither made most recently used nor its idle timer refreshed: both
   * only after the packet is authenticated (`touch`), so unauthenticated packets naming an index change nothing.
   */
  peekSession(index: number): { session: Session; demoted: boolean } | null {
    const s = this.sessions.peek(index);
    if (s) return { session: s, demoted: false };
    const d = this.demoted.peek(index);
    return d ? { session: d, demoted: true } : null;
  }

  /** An authenticated packet: the session becomes the most recently used and its idle timer starts again. */
  touch(index: number, demoted: boolean): void {
    (demoted ? this.demoted : this.sessions).get(index, true);
  }

  /** After a rekey: the parent moves to the demoted table, the child takes its own index. */
  promote(parentIndex: number, child: Session): void {
    const parent = this.sessions.get(parentIndex);
    this.sessions.delete(parentIndex);
    if (parent) this.demoted.set(parentIndex, parent);
    this.sessions.set(child.receiverIndex, child);
  }

  /** Drop expired entries (zeroizing them); run on a 1 s interval. */
  sweep(): void {
    this.handshakes.purgeStale();
    this.sessions.purgeStale();
    this.demoted.purgeStale();
  }

  get sizes(): { handshakes: number; sessions: number; demoted: number } {
    return { handshakes: this.handshakes.size, sessions: this.sessions.size, demoted: this.demoted.size };
  }

  /** Drop everything, zeroing every entry's key material (shutdown). */
  clear(): void {
    for (const hs of this.handshakes.values()) hs.destroy();
    for (const s of this.sessions.values()) s.close();
    for (const s of this.demoted.values()) s.close();
    this.handshakes.clear();
    this.sessions.clear();
    this.demoted.clear();
  }
}
