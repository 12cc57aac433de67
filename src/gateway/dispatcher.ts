/**
 * The I/O thread's only protocol work: read the cleartext receiver index, apply the per-source
 * ClientHello rate limit, and hand the packet to its shard (index mod shard count; a ClientHello goes
 * by the index it proposes, so the handshake lands where its later packets will).
 */
import { LRUCache } from 'lru-cache';
import { MIN_PACKET_LEN, MessageType, encodeBusy, serializeClear, LpErrorCode } from '../core/index.js';
import type { GatewayMetrics } from './metrics.js';
import type { TokenBucketLimiter } from './rate-limit.js';
import type { PacketSource, Shard, ShardResult } from './shard.js';

/** Offset of the proposed receiver index inside a ClientHello packet (header 12 + inner prefix 6). */
const HELLO_INDEX_OFFSET = 18;

export interface SourceRecord {
  address: string;
  transport: 'tcp' | 'udp';
  packets: number;
  lastSeen: string;
}

interface SourceCount {
  address: string;
  transport: 'tcp' | 'udp';
  packets: number;
  lastSeenMs: number;
}

export class Dispatcher {
  /** Recently seen source addresses (bounded), for operators and tests: who talks to this gateway. */
  private readonly sources = new LRUCache<string, SourceCount>({ max: 256 });

  constructor(
    private readonly shards: readonly Shard[],
    private readonly helloLimiter: TokenBucketLimiter,
    private readonly metrics: GatewayMetrics,
    /** Sources not subject to the per-source hello limit (configured entries, directory peers). */
    private readonly exempt: (address: string) => boolean = () => false,
  ) {}

  private shardFor(index: number): Shard {
    return this.shards[index % this.shards.length] as Shard;
  }

  recentSources(): SourceRecord[] {
    return [...this.sources.values()].map((s) => ({ address: s.address, transport: s.transport, packets: s.packets, lastSeen: new Date(s.lastSeenMs).toISOString() }));
  }

  async onPacket(packet: Uint8Array, src: PacketSource, nowMs = Date.now()): Promise<ShardResult> {
    const key = src.transport === 'udp' ? `u${src.address}` : `t${src.address}`;
    const rec = this.sources.get(key);
    if (rec) {
      rec.packets++;
      rec.lastSeenMs = nowMs;
    } else this.sources.set(key, { address: src.address, transport: src.transport, packets: 1, lastSeenMs: nowMs });
    if (packet.length < MIN_PACKET_LEN) {
      this.metrics.error(LpErrorCode.PACKET_TOO_SHORT);
      return { reply: null, authenticated: false };
    }
    const dv = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
    let index = dv.getUint32(0, true);
    if (index === 0) {
      const proposed = packet.length >= HELLO_INDEX_OFFSET + 4 ? dv.getUint32(HELLO_INDEX_OFFSET, true) : 0;
      const waitMs = this.exempt(src.address) ? 0 : this.helloLimiter.take(src.address, nowMs);
      if (waitMs > 0) {
        this.metrics.rateLimited.inc();
        // Busy (38 B) is smaller than any ClientHello (134 B): no amplification.
        return { reply: serializeClear({ receiverIndex: proposed, counter: 0, type: MessageType.Busy, content: encodeBusy(waitMs) }), authenticated: false };
      }
      index = proposed;
    }
    return this.shardFor(index).handle(packet, src, nowMs);
  }
}
