/**
 * Spent ticket serials are kept only while their ticket could still be accepted: the verifier refuses a ticket
 * once its expiry has passed, so afterwards the serial guards nothing and the table would only grow. A day of
 * margin covers a gateway clock that is stepped back (a pruned serial must never look unexpired again).
 */
import type { Logger } from '../../log.js';

export const SERIAL_PRUNE_MARGIN_SEC = 24 * 3600;
export const SERIAL_PRUNE_INTERVAL_MS = 3600 * 1000;

export interface SerialStore {
  pruneSpentSerials(expiredBeforeSec: number): number;
}

/** One pass: forgets serials whose ticket expired more than the margin ago; returns how many. */
export function pruneExpiredSerials(store: SerialStore, nowSec: number, logger: Logger): number {
  const n = store.pruneSpentSerials(nowSec - SERIAL_PRUNE_MARGIN_SEC);
  if (n > 0) logger.info({ pruned: n, expiredBefore: new Date((nowSec - SERIAL_PRUNE_MARGIN_SEC) * 1000).toISOString() }, 'forgot spent serials of expired tickets');
  return n;
}

/** Prunes at start and then hourly; the returned function stops it. Failures are logged, never thrown. */
export function scheduleSerialPruning(store: SerialStore, logger: Logger, onPruned: (n: number) => void = () => undefined, now: () => number = () => Date.now() / 1000): () => void {
  const pass = (): void => {
    try {
      onPruned(pruneExpiredSerials(store, now(), logger));
    } catch (e) {
      logger.error({ err: e }, 'pruning spent ticket serials failed');
    }
  };
  pass();
  const timer = setInterval(pass, SERIAL_PRUNE_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
