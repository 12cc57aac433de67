/**
 * The I/O thread's only protocol work: read the cleartext receiver index, apply the per-source
 * ClientHello rate limit, and hand the packet to its shard (index mod shard count; a ClientHello goes
 * by the index it proposes, so the handshake lands where its later packets will).
 *
 * The limit is charged only for a packet that parses as a ClientHello (header, size, type, timestamp: no
 * cryptography), and TCP and UDP sources have separate buckets: junk under a victim's forged UDP address costs
 * the victim nothing, and forged UDP hellos never touch its TCP bucket, whose source the kernel verified
 * (DESIGN.md §10.4).
 */
import { LRUCache } from 'lru-cache';
import { LpError, MIN_PACKET_LEN, MessageType, encodeBusy, parseClientHello, readU32le, serializeClear, LpErrorCode } from '../core/index.js';
import type { GatewayMetrics } from './metrics.js';
import type { TokenBucketLimiter } from './rate-limit.js';
import type { PacketSource, Shard, ShardResult } from './shard.js';

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

export interface DispatcherOptions {
  /** Per-source ClientHello buckets, one limiter per transport. */
  helloLimiters: { tcp: TokenBucketLimiter; udp: TokenBucketLimiter };
  /** ClientHello clock tolerance (the shard checks it again; here it decides whether a hello is charged). */
  timestampToleranceSec: number;
  /** Sources not subject to the per-source hello limit (configured entries, directory peers). */
  exempt?: (address: string) => boolean;
  /** Keep a bounded record of recent client addresses for /v1/stats (off: none is kept). */
  recordSources?: boolean;
}

const NO_REPLY: ShardResult = { reply: null, authenticated: false };

export class Dispatcher {
  /** Recently seen source addresses (bounded), for operators and tests: who talks to this gateway. Off by default. */
  private readonly sources: LRUCache<string, SourceCount> | null;
  private readonly exempt: (address: string) => boolean;

  constructor(
    private readonly shards: readonly Shard[],
    private readonly o: DispatcherOptions,
    private readonly metrics: GatewayMetrics,
  ) {
    this.sources = o.recordSources ? new LRUCache<string, SourceCount>({ max: 256 }) : null;
    this.exempt = o.exempt ?? (() => false);
  }

  private shardFor(index: number): Shard {
    return this.shards[index % this.shards.length] as Shard;
  }

  /** Recent sources, or null when the operator has not turned the record on (http.stats_client_addresses). */
  recentSources(): SourceRecord[] | null {
    if (!this.sources) return null;
    return [...this.sources.values()].map((s) => ({ address: s.address, transport: s.transport, packets: s.packets, lastSeen: new Date(s.lastSeenMs).toISOString() }));
  }

  private record(src: PacketSource, nowMs: number): void {
    if (!this.sources) return;
    const key = src.transport === 'udp' ? `u${src.address}` : `t${src.address}`;
    const rec = this.sources.get(key);
    if (rec) {
      rec.packets++;
      rec.lastSeenMs = nowMs;
    } else this.sources.set(key, { address: src.address, transport: src.transport, packets: 1, lastSeenMs: nowMs });
  }

  /**
   * The shard's result as it comes: synchronous where the shard's work is (an in-thread shard answering a Ping
   * or a handshake step costs no promise or microtask), a promise where it is not (worker shards,
   * registrations). Never throws synchronously: a bug surfaces as a rejected promise.
   */
  onPacket(packet: Uint8Array, src: PacketSource, nowMs = Date.now()): ShardResult | Promise<ShardResult> {
    try {
      this.record(src, nowMs);
      if (packet.length < MIN_PACKET_LEN) {
        this.metrics.error(LpErrorCode.PACKET_TOO_SHORT);
        return NO_REPLY;
      }
      const index = readU32le(packet, 0);
      return index === 0 ? this.onHello(packet, src, nowMs) : this.shardFor(index).handle(packet, src, nowMs);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /** A packet to index 0: a ClientHello's keyless checks and the per-source bucket, then its proposed index's shard. */
  private onHello(packet: Uint8Array, src: PacketSource, nowMs: number): ShardResult | Promise<ShardResult> {
    let proposed: number;
    try {
      proposed = parseClientHello(packet, Math.floor(nowMs / 1000), this.o.timestampToleranceSec).receiverIndex;
    } catch (e) {
      if (!(e instanceof LpError)) throw e;
      // Not a ClientHello: dropped before any bucket is charged (the shard would drop it too).
      this.metrics.error(e.code);
      return NO_REPLY;
    }
    const waitMs = this.exempt(src.address) ? 0 : this.o.helloLimiters[src.transport].take(src.address, nowMs);
    if (waitMs > 0) {
      this.metrics.rateLimited.inc();
      // Busy (38 B) is smaller than any ClientHello (134 B): no amplification.
      return { reply: serializeClear({ receiverIndex: proposed, counter: 0, type: MessageType.Busy, content: encodeBusy(waitMs) }), authenticated: false };
    }
    return this.shardFor(proposed).handle(packet, src, nowMs);
  }
}
