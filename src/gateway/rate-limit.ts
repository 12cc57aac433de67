/**
 * Per-source-IP token bucket for ClientHello (PRODUCT.md §1.9: default 20/s, burst 5). The set of tracked
 * sources is itself bounded (LRU), so a spoofed-source flood cannot grow memory without limit.
 */
import { LRUCache } from 'lru-cache';

interface Bucket {
  tokens: number;
  lastMs: number;
}

export class TokenBucketLimiter {
  private readonly buckets: LRUCache<string, Bucket>;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    maxSources = 65_536,
  ) {
    this.buckets = new LRUCache<string, Bucket>({ max: maxSources });
  }

  /** Take one token for `source`; returns 0 if allowed, else the ms until a token is available. */
  take(source: string, nowMs: number): number {
    let b = this.buckets.get(source);
    if (!b) {
      b = { tokens: this.burst, lastMs: nowMs };
      this.buckets.set(source, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((nowMs - b.lastMs) * this.ratePerSec) / 1000);
      b.lastMs = nowMs;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 1000) / this.ratePerSec);
  }
}
