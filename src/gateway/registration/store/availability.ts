/**
 * The store's availability: one state for /health, the `lp_store_up` gauge and the log, which says each
 * change once ("unreachable …", "reachable again after N s"), never once per failed registration.
 *
 * While the store is unavailable, transactions fail at once with LPGW_ERR_STORE_UNAVAILABLE and a retry hint
 * instead of each waiting for a connection timeout, and a probe (`SELECT 1` on PostgreSQL) runs every
 * `probeIntervalMs` until it succeeds; a transaction that succeeds also ends the outage.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from '../../../log.js';
import { GatewayError, GatewayErrorCode } from '../../errors.js';
import type { StoreBackend, StoreHealth, StoreObserver, StoreState } from './types.js';

export const DEFAULT_PROBE_INTERVAL_MS = 1000;

export const NOOP_OBSERVER: StoreObserver = { transaction: () => undefined, retried: () => undefined, state: () => undefined };

/** The retryable error registrations get while the store cannot be reached. */
export function storeUnavailable(retryAfterMs: number, why = 'the registration store is unavailable'): GatewayError {
  return new GatewayError(GatewayErrorCode.STORE_UNAVAILABLE, `${why}; try again in ${Math.ceil(retryAfterMs / 1000)} s`, retryAfterMs);
}

export class StoreAvailability {
  private current: StoreState = 'available';
  private changedAt = Date.now();
  private lastError: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  private closed = false;

  constructor(
    private readonly backend: StoreBackend,
    private readonly o: {
      logger?: Logger | undefined;
      observer: StoreObserver;
      /** Resolves when the store answers again (PostgreSQL: SELECT 1 through the pool). */
      probe?: () => Promise<void>;
      probeIntervalMs?: number;
      /** For the log: where the store is (redacted). */
      location: string;
    },
  ) {
    o.observer.state(true);
  }

  get state(): StoreState {
    return this.current;
  }

  get retryAfterMs(): number {
    return this.o.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
  }

  /** Throws the retryable error while the store is unavailable and a probe decides when it is back. */
  assertAvailable(): void {
    if (this.current === 'unavailable' && this.o.probe) throw storeUnavailable(this.retryAfterMs);
  }

  /** A connection-level failure: the store is unavailable from now until a probe or a transaction succeeds. */
  failed(code: string, reason: string): void {
    this.lastError = code;
    if (this.current === 'unavailable' || this.closed) return;
    this.current = 'unavailable';
    this.changedAt = Date.now();
    this.o.observer.state(false);
    this.o.logger?.error({ backend: this.backend, store: this.o.location, code, reason }, 'registration store unreachable: registrations are refused with LPGW_ERR_STORE_UNAVAILABLE (retryable) until it is back; handshakes and sessions are unaffected');
    if (this.o.probe) this.schedule();
  }

  succeeded(): void {
    if (this.current === 'available') return;
    const downSec = (Date.now() - this.changedAt) / 1000;
    this.current = 'available';
    this.changedAt = Date.now();
    this.lastError = null;
    this.o.observer.state(true);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.o.logger?.info({ backend: this.backend, store: this.o.location, downSec: Math.round(downSec * 10) / 10 }, 'registration store reachable again: registrations resume');
  }

  health(): StoreHealth {
    return { backend: this.backend, state: this.current, since: this.changedAt, lastError: this.lastError };
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.runProbe();
    }, this.retryAfterMs);
    this.timer.unref();
  }

  private async runProbe(): Promise<void> {
    const probe = this.o.probe;
    if (!probe || this.probing || this.closed || this.current === 'available') return;
    this.probing = true;
    try {
      await probe();
      this.succeeded();
    } catch (e) {
      this.lastError = (e as { code?: unknown }).code !== undefined ? String((e as { code?: unknown }).code) : 'ERROR';
      this.schedule();
    } finally {
      this.probing = false;
    }
  }
}

/**
 * Marks the async context of a transaction's `fn`, so a store-level method called from inside it (which would
 * wait for the transaction it runs in on SQLite, or take a second connection on PostgreSQL) throws instead.
 */
export const insideTransaction = new AsyncLocalStorage<string>();

export function assertOutsideTransaction(method: string): void {
  const op = insideTransaction.getStore();
  if (op !== undefined) throw new Error(`internal: store.${method}() called inside the '${op}' transaction; use the transaction's StoreTx`);
}
