/**
 * Messages between the I/O thread and a worker-thread shard (structured-clone friendly). Each side posts
 * them in batches (`Outbox`): one postMessage per event-loop turn instead of one per packet, because the
 * wake-up and the clone per message cost more than a handshake message's routing (docs/BENCHMARKS.md).
 */
import type { GatewayKeys } from '../core/index.js';
import type { PacketSource } from './shard.js';
import type { ShardCounter } from './shard-metrics.js';
import type { TableLimits } from './tables.js';

export interface ShardWorkerData {
  shardId: number;
  shardCount: number;
  keys: GatewayKeys;
  limits: TableLimits;
  timestampToleranceSec: number;
  logLevel: string;
  kemBackend: string;
}

export type ToWorker =
  | { t: 'packet'; id: number; packet: Uint8Array; src: PacketSource; nowMs: number }
  | { t: 'app-result'; id: number; msg: Uint8Array | null }
  | { t: 'sweep' }
  | { t: 'close' };

export type FromWorker =
  | { t: 'result'; id: number; reply: Uint8Array | null; authenticated: boolean }
  /** A delivered application message for the I/O thread's AppHandler; `psk` is precomputed for dVPN registrations. */
  | { t: 'app'; id: number; msg: Uint8Array; src: PacketSource; session: number; psk: Uint8Array | null }
  | { t: 'stats'; stats: { handshakes: number; sessions: number; demoted: number }; counts: [ShardCounter, string, number][] }
  /** `tid`: the worker's kernel thread id (null without /proc), for per-thread CPU accounting. */
  | { t: 'ready'; tid: number | null };
