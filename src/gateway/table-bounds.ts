/**
 * Default table bounds from the machine's memory (DESIGN.md §10.4.5): `tables.max_sessions = 0` and
 * `tables.max_handshakes = 0` (the defaults) give as many entries as a share of the memory holds at the
 * resident size per entry measured by the benchmark (bench/session-rss.bench.ts), capped at the protocol's
 * design figures. A fixed million sessions would need more memory than many gateway hosts have.
 */
import os from 'node:os';

/**
 * Resident bytes per established session: measured 2,799 B at 100,000 sessions from real handshakes and 2,609 B at
 * 1,000,000 built directly (bench/session-rss.bench.ts), a quarter more for the demoted table, and margin.
 */
export const SESSION_RSS_BYTES = 5 * 1024;
/** Resident bytes per pending handshake at its largest (padded KKTRequest answered, waiting for message 1): 6,456 B measured. */
export const HANDSHAKE_RSS_BYTES = 8 * 1024;
/** Shares of the memory the tables may fill at their bounds; the rest is the process, connections and buffers. */
export const SESSION_MEMORY_SHARE = 0.5;
export const HANDSHAKE_MEMORY_SHARE = 0.1;
/** Caps of the automatic bounds (the protocol's design figures) and their floors (a tiny host still serves). */
export const MAX_AUTO_SESSIONS = 1_000_000;
export const MAX_AUTO_HANDSHAKES = 100_000;
const MIN_AUTO_SESSIONS = 10_000;
const MIN_AUTO_HANDSHAKES = 1_000;

/** Memory the process may use: the machine's, or its cgroup limit when lower. */
export function availableMemory(): number {
  const limit = process.constrainedMemory?.() ?? 0;
  const total = os.totalmem();
  return limit > 0 && limit < total ? limit : total;
}

export interface TableBounds {
  maxSessions: number;
  maxHandshakes: number;
  /** Which bounds were derived from memory (for the start log). */
  auto: { sessions: boolean; handshakes: boolean };
  memoryBytes: number;
}

/** Configured bounds, with 0 meaning "from memory". */
export function resolveTableBounds(configured: { maxSessions: number; maxHandshakes: number }, memoryBytes = availableMemory()): TableBounds {
  const fit = (share: number, perEntry: number, min: number, max: number): number => Math.max(min, Math.min(max, Math.floor((memoryBytes * share) / perEntry)));
  return {
    maxSessions: configured.maxSessions || fit(SESSION_MEMORY_SHARE, SESSION_RSS_BYTES, MIN_AUTO_SESSIONS, MAX_AUTO_SESSIONS),
    maxHandshakes: configured.maxHandshakes || fit(HANDSHAKE_MEMORY_SHARE, HANDSHAKE_RSS_BYTES, MIN_AUTO_HANDSHAKES, MAX_AUTO_HANDSHAKES),
    auto: { sessions: configured.maxSessions === 0, handshakes: configured.maxHandshakes === 0 },
    memoryBytes,
  };
}
