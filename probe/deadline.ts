/** A whole-run deadline (`--timeout`): clamps each step's own timeout and backs it up with a race. */
import { ClientError } from '../src/client/index.js';
import { ProbeErrorCode } from './report.js';

/** Extra time the backstop gives a step whose own (clamped) timeout should fire first with its own code. */
const BACKSTOP_GRACE_MS = 100;

export class Deadline {
  /** @param at `performance.now()` value of the deadline, or null for none. */
  constructor(private readonly at: number | null) {}

  static after(ms: number | null): Deadline {
    return new Deadline(ms === null ? null : performance.now() + ms);
  }

  remainingMs(): number {
    return this.at === null ? Infinity : Math.max(0, this.at - performance.now());
  }

  /** `defaultMs` clamped to what is left; throws LPC_ERR_RUN_TIMEOUT when nothing is left. */
  clamp(defaultMs: number): number {
    const left = this.remainingMs();
    if (left < 1) throw new ClientError(ProbeErrorCode.RUN_TIMEOUT, 'the run timeout (--timeout) expired before this step');
    return Math.max(1, Math.floor(Math.min(defaultMs, left)));
  }

  /** `p`, or LPC_ERR_RUN_TIMEOUT shortly after the deadline (then `onExpire` cleans up, e.g. closes sockets). */
  async race<T>(p: Promise<T>, onExpire: () => void = () => undefined): Promise<T> {
    if (this.at === null) return p;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        onExpire();
        reject(new ClientError(ProbeErrorCode.RUN_TIMEOUT, 'the run timeout (--timeout) expired'));
      }, this.remainingMs() + BACKSTOP_GRACE_MS);
    });
    try {
      return await Promise.race([p, expired]);
    } finally {
      clearTimeout(timer);
    }
  }
}
