/**
 * Sliding anti-replay window over packet counters (RFC 6479 bitmap, as WireGuard): 2048 bits in 64
 * words, so the last 2016 counters are tracked. `check` is cheap and runs before any decryption;
 * `mark` runs only after the packet authenticated.
 */
import { LpErrorCode, fail } from '../errors.js';

const WORD_BITS = 32;
const WORDS = 64;
export const REPLAY_WINDOW = WORD_BITS * WORDS - WORD_BITS; // 2016 ≥ 1024 required

export class ReplayWindow {
  private readonly bits = new Uint32Array(WORDS);
  /** Highest counter marked so far, or -1. */
  private last = -1;

  check(counter: number): void {
    if (counter > this.last) return;
    if (this.last - counter >= REPLAY_WINDOW) fail(LpErrorCode.COUNTER_TOO_OLD, `counter ${counter} is older than the replay window`);
    const word = Math.floor(counter / WORD_BITS) % WORDS;
    if ((this.bits[word] as number) & (1 << counter % WORD_BITS)) fail(LpErrorCode.REPLAY, `counter ${counter} was already received`);
  }

  mark(counter: number): void {
    this.check(counter);
    if (counter > this.last) {
      const cur = this.last < 0 ? -1 : Math.floor(this.last / WORD_BITS);
      const next = Math.floor(counter / WORD_BITS);
      const clear = Math.min(next - cur, WORDS);
      for (let i = 1; i <= clear; i++) this.bits[(cur + i) % WORDS] = 0;
      this.last = counter;
    }
    const word = Math.floor(counter / WORD_BITS) % WORDS;
    this.bits[word] = (this.bits[word] as number) | (1 << counter % WORD_BITS);
  }

  /** Highest authenticated counter, -1 if none. */
  get highest(): number {
    return this.last;
  }
}
