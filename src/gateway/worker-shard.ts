/**
 * I/O-thread side of a worker-thread shard (PRODUCT.md §5): packets go to the worker by message, the
 * worker's application messages come back to be served here, its counters arrive with each sweep.
 */
import { Worker } from 'node:worker_threads';
import { decodeAppMessage, encodeAppMessage } from '../core/index.js';
import type { PacketSource, Shard, ShardOptions, ShardResult } from './shard.js';
import type { FromWorker, ShardWorkerData, ToWorker } from './shard-protocol.js';
import { Outbox } from './outbox.js';

/** The in-thread shard's options, less the crypto suite (a worker builds its own from `kemBackend`). */
export type WorkerShardOptions = Omit<ShardOptions, 'suite' | 'shardId' | 'shardCount'> & {
  shardId: number;
  shardCount: number;
  logLevel: string;
  kemBackend: string;
};

const NO_REPLY: ShardResult = { reply: null, authenticated: false };

/**
 * The worker's entry module: compiled (dist/), the worker runs shard-worker.js directly; from the TypeScript
 * sources (tsx: tests, a development checkout) shard-worker-entry.js registers tsx in the worker first.
 */
const WORKER_ENTRY = new URL(import.meta.url.endsWith('.ts') ? './shard-worker-entry.js' : './shard-worker.js', import.meta.url);

export class WorkerShard implements Shard {
  private readonly worker: Worker;
  private readonly pending = new Map<number, (r: ShardResult) => void>();
  private nextId = 1;
  private lastStats = { handshakes: 0, sessions: 0, demoted: 0 };
  private readonly ready: Promise<void>;
  private closed = false;
  private readonly outbox: Outbox<ToWorker>;
  /** The worker's kernel thread id once it has started (null without /proc). */
  threadId: number | null = null;

  constructor(private readonly o: WorkerShardOptions) {
    const data: ShardWorkerData = { shardId: o.shardId, shardCount: o.shardCount, keys: o.keys, limits: o.limits, timestampToleranceSec: o.timestampToleranceSec, logLevel: o.logLevel, kemBackend: o.kemBackend };
    this.worker = new Worker(WORKER_ENTRY, { workerData: data });
    this.outbox = new Outbox((batch) => this.worker.postMessage(batch));
    this.ready = new Promise((resolve, reject) => {
      const onMsg = (batch: FromWorker[]): void => {
        for (const m of batch) {
          if (m.t !== 'ready') continue;
          this.threadId = m.tid;
          this.worker.off('message', onMsg);
          resolve();
        }
      };
      this.worker.on('message', onMsg);
      this.worker.once('error', reject);
    });
    this.worker.on('message', (batch: FromWorker[]) => {
      for (const m of batch) this.onMessage(m);
    });
    this.worker.on('error', (e) => {
      o.logger.error({ err: e, shard: o.shardId }, 'shard worker failed');
      for (const r of this.pending.values()) r(NO_REPLY);
      this.pending.clear();
    });
  }

  /** Resolves once the worker has started (keys loaded, tables ready). */
  started(): Promise<void> {
    return this.ready;
  }

  private post(m: ToWorker): void {
    if (!this.closed) this.outbox.push(m);
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'result': {
        const r = this.pending.get(m.id);
        this.pending.delete(m.id);
        r?.({ reply: m.reply ? new Uint8Array(m.reply) : null, authenticated: m.authenticated });
        return;
      }
      case 'app':
        void this.serveApp(m.id, m.msg, m.src, m.session, m.psk);
        return;
      case 'stats':
        this.lastStats = m.stats;
        for (const [c, l, n] of m.counts) this.o.metrics.count(c, l, n);
        return;
      case 'ready':
        return;
    }
  }

  private async serveApp(id: number, bytes: Uint8Array, src: PacketSource, session: number, psk: Uint8Array | null): Promise<void> {
    let out: Uint8Array | null = null;
    try {
      const reply = await this.o.app.handle(decodeAppMessage(bytes), {
        src,
        session,
        // A copy each call: the handler wipes what it was given.
        wireguardPsk: () => {
          if (!psk) throw new Error('no WireGuard PSK was precomputed for this message');
          return new Uint8Array(psk);
        },
      });
      out = reply ? encodeAppMessage(reply) : null;
    } catch (e) {
      this.o.logger.error({ err: e }, 'application handler failed');
    } finally {
      // The structured-clone copy of the worker's PSK (the worker wipes its own once this answer is back).
      psk?.fill(0);
    }
    this.post({ t: 'app-result', id, msg: out });
  }

  handle(packet: Uint8Array, src: PacketSource, nowMs: number): Promise<ShardResult> {
    if (this.closed) return Promise.resolve(NO_REPLY);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.post({ t: 'packet', id, packet, src, nowMs });
    });
  }

  sweep(): void {
    this.post({ t: 'sweep' });
  }

  stats(): { handshakes: number; sessions: number; demoted: number } {
    return this.lastStats;
  }

  close(): void {
    if (this.closed) return;
    this.post({ t: 'close' });
    this.outbox.flush();
    this.closed = true;
    void this.worker.terminate();
    for (const r of this.pending.values()) r(NO_REPLY);
    this.pending.clear();
  }
}
