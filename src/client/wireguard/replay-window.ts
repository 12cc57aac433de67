/**
 * Sliding-window replay filter of RFC 6479, laid out like wireguard-go's replay.Filter: a ring of 128
 * 64-bit blocks (each block two 32-bit words here), a window of (128 − 1) × 64 = 8128 counters behind the
 * highest one seen. Only counters of packets that already authenticated may be fed to it.
 */

const BLOCK_BITS = 64;
const RING_BLOCKS = 128;
export const REPLAY_WINDOW_SIZE = (RING_BLOCKS - 1) * BLOCK_BITS;

export class ReplayWindow {
  private last = 0;
  private readonly ring = new Uint32Array(RING_BLOCKS * 2);

  reset(): void {
    this.last = 0;
    this.ring.fill(0);
  }

  /** True (and the counter is marked seen) when `counter` is new and below `limit`; false for a replay. */
  check(counter: number, limit: number): boolean {
    if (!(counter >= 0) || counter >= limit || !Number.isSafeInteger(counter)) return false;
    const indexBlock = Math.floor(counter / BLOCK_BITS);
    if (counter > this.last) {
      // move the window forward, clearing the blocks it passes over (at most the whole ring)
      const current = Math.floor(this.last / BLOCK_BITS);
      const diff = Math.min(indexBlock - current, RING_BLOCKS);
      for (let i = current + 1; i <= current + diff; i++) {
        const slot = (i % RING_BLOCKS) * 2;
        this.ring[slot] = 0;
        this.ring[slot + 1] = 0;
      }
      this.last = counter;
    } else if (this.last - counter > REPLAY_WINDOW_SIZE) {
      return false; // behind the window
    }
    const bit = counter % BLOCK_BITS;
    const word = (indexBlock % RING_BLOCKS) * 2 + (bit >>> 5);
    const mask = (1 << (bit & 31)) >>> 0;
    const old = this.ring[word] ?? 0;
    if ((old & mask) !== 0) return false;
    this.ring[word] = (old | mask) >>> 0;
    return true;
  }
}
