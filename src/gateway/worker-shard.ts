/**
 * I/O-thread side of a worker-thread shard (PRODUCT.md §5): packets go to the worker by message, the
 * worker's application messages come back to be served here, its counters arrive with each sweep.
 */
import { Worker } from 'node:worker_threads';
import { decodeAppMessage, encodeAppMessage } from '../core/index.js';
import type { PacketSource, Shard, ShardOptions, ShardResult } from './shard.js';
import type { FromWorker, ShardWorkerData, ToWorker } from './shard-protocol.js';

/** The in-thread shard's options, less the crypto suite (a worker uses the default one). */
export type WorkerShardOptions = Omit<ShardOptions, 'suite' | 'shardId' | 'shardCount'> & {
  shardId: number;
  shardCount: number;
  logLevel: string;
};

const NO_REPLY: ShardResult = { reply: null, authenticated: false };

export class WorkerShard implements Shard {
  private readonly worker: Worker;
  private readonly pending = new Map<number, (r: ShardResult) => void>();
  private nextId = 1;
  private lastStats = { handshakes: 0, sessions: 0, demoted: 0 };
  private readonly ready: Promise<void>;
  private closed = false;

  constructor(private readonly o: WorkerShardOptions) {
    const data: ShardWorkerData = { shardId: o.shardId, shardCount: o.shardCount, keys: o.keys, limits: o.limits, timestampToleranceSec: o.timestampToleranceSec, logLevel: o.logLevel };
    this.worker = new Worker(new URL('./shard-worker-entry.js', import.meta.url), { workerData: data });
    this.ready = new Promise((resolve, reject) => {
      const onMsg = (m: FromWorker): void => {
        if (m.t === 'ready') {
          this.worker.off('message', onMsg);
          resolve();
        }
      };
      this.worker.on('message', onMsg);
      this.worker.once('error', reject);
    });
    this.worker.on('message', (m: FromWorker) => this.onMessage(m));
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
    if (!this.closed) this.worker.postMessage(m);
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
        void this.serveApp(m.id, m.msg, m.src, m.psk);
        return;
      case 'stats':
        this.lastStats = m.stats;
        for (const [c, l, n] of m.counts) this.o.metrics.count(c, l, n);
        return;
      case 'ready':
        return;
    }
  }

  private async serveApp(id: number, bytes: Uint8Array, src: PacketSource, psk: Uint8Array | null): Promise<void> {
    let out: Uint8Array | null = null;
    try {
      const reply = await this.o.app.handle(decodeAppMessage(bytes), {
        src,
        wireguardPsk: () => {
          if (!psk) throw new Error('no WireGuard PSK was precomputed for this message');
          return psk;
        },
      });
      out = reply ? encodeAppMessage(reply) : null;
    } catch (e) {
      this.o.logger.error({ err: e }, 'application handler failed');
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
    this.closed = true;
    void this.worker.terminate();
    for (const r of this.pending.values()) r(NO_REPLY);
    this.pending.clear();
  }
}
