/**
 * The counters a shard reports, as a narrow sink: in-thread shards write straight into the gateway's
 * Prometheus metrics; worker shards buffer and ship deltas to the I/O thread with each sweep.
 */
import type { GatewayMetrics } from './metrics.js';

export type ShardCounter = 'errors' | 'handshakes' | 'dropped' | 'evictions' | 'expirations' | 'subsessions' | 'retransmissions';

export interface ShardMetrics {
  count(counter: ShardCounter, label: string, n?: number): void;
}

export function prometheusShardMetrics(m: GatewayMetrics): ShardMetrics {
  return {
    count(counter, label, n = 1) {
      switch (counter) {
        case 'errors':
          return m.errors.inc({ code: label }, n);
        case 'handshakes':
          return m.handshakes.inc({ result: label }, n);
        case 'dropped':
          return m.dropped.inc({ reason: label }, n);
        case 'evictions':
          return m.evictions.inc({ table: label }, n);
        case 'expirations':
          return m.expirations.inc({ table: label }, n);
        case 'subsessions':
          return m.subsessions.inc({ result: label }, n);
        case 'retransmissions':
          return m.retransmissions.inc({ source: label }, n);
      }
    },
  };
}

/** Accumulates counts until drained (worker side). */
export class BufferedShardMetrics implements ShardMetrics {
  private readonly counts = new Map<string, number>();

  count(counter: ShardCounter, label: string, n = 1): void {
    const k = `${counter}\u0000${label}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + n);
  }

  drain(): [ShardCounter, string, number][] {
    const out: [ShardCounter, string, number][] = [];
    for (const [k, n] of this.counts) {
      const [c, l] = k.split('\u0000') as [ShardCounter, string];
      out.push([c, l, n]);
    }
    this.counts.clear();
    return out;
  }
}
