/**
 * Sliding anti-replay window over packet counters (RFC 6479 bitmap, as WireGuard): 1056 bits in 33
 * words, so the last 1024 counters are tracked (the profile's minimum; a gateway holds a bitmap per
 * session, so it is kept no larger). `check` is cheap and runs before any decryption;
 * `mark` runs only after the packet authenticated.
 */
import { LpErrorCode, fail } from '../errors.js';

const WORD_BITS = 32;
const WORDS = 33;
export const REPLAY_WINDOW = WORD_BITS * WORDS - WORD_BITS; // 1024, the required minimum

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
