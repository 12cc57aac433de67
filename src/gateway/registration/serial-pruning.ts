/**
 * Spent ticket serials are kept only while their ticket could still be accepted: the verifier refuses a ticket
 * once its expiry has passed, so afterwards the serial guards nothing and the table would only grow. A day of
 * margin covers a gateway clock that is stepped back (a pruned serial must never look unexpired again).
 */
import type { Logger } from '../../log.js';

export const SERIAL_PRUNE_MARGIN_SEC = 24 * 3600;
export const SERIAL_PRUNE_INTERVAL_MS = 3600 * 1000;

export interface SerialStore {
  pruneSpentSerials(expiredBeforeSec: number): Promise<number>;
}

/** One pass: forgets serials whose ticket expired more than the margin ago; returns how many. */
export async function pruneExpiredSerials(store: SerialStore, nowSec: number, logger: Logger): Promise<number> {
  const n = await store.pruneSpentSerials(nowSec - SERIAL_PRUNE_MARGIN_SEC);
  if (n > 0) logger.info({ pruned: n, expiredBefore: new Date((nowSec - SERIAL_PRUNE_MARGIN_SEC) * 1000).toISOString() }, 'forgot spent serials of expired tickets');
  return n;
}

/**
 * Prunes at start and then hourly; the returned function stops it and resolves when a pass in progress has
 * finished. Failures are logged, never thrown. (With a PostgreSQL store every gateway prunes the one ledger;
 * a pass after another gateway's finds nothing.)
 */
export function scheduleSerialPruning(
  store: SerialStore,
  logger: Logger,
  onPruned: (n: number) => void = () => undefined,
  now: () => number = () => Date.now() / 1000,
): { first: Promise<void>; stop: () => Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const pass = (): Promise<void> =>
    (running = running.then(async () => {
      try {
        onPruned(await pruneExpiredSerials(store, now(), logger));
      } catch (e) {
        logger.error({ code: (e as { code?: string }).code, err: e }, 'pruning spent ticket serials failed');
      }
    }));
  const first = pass();
  const timer = setInterval(() => void pass(), SERIAL_PRUNE_INTERVAL_MS);
  timer.unref();
  return {
    first,
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
