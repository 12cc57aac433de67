/**
 * `gateway-probe load`: N workers run attempts back to back for a fixed duration, optionally paced by a
 * shared token bucket. One attempt = a fresh transport and client key, a handshake with the entry,
 * optionally a registration, and with --exit a telescoped handshake (and registration) with the exit.
 *
 * Bounded: no attempt starts after the duration; the in-flight ones get until the drain cap, and every
 * client timeout is clamped to that cap, so nothing outlives it by more than a moment. Attempts still in
 * flight at the cap are reported as `abandoned` and their late outcomes are ignored.
 */
import { ForwardTransport, LpConnection, DEFAULT_TIMEOUTS, type Transport } from '../src/client/index.js';
import { version } from '../src/version.js';
import { type CredentialSource, ticketTypeFor } from './credentials.js';
import { type ErrorInfo, type GatewayInfo, type ProbeMode, type TransportName, errorInfo, gatewayInfo } from './report.js';
import { type FetchedGateway, type Registered, deregister, httpBase, register } from './steps.js';
import { ProbeTrust, type TrustOptions } from './trust.js';
import { lpAddressFor, makeTransport } from './transport.js';
import { DEFAULT_DRAIN_MS } from './defaults.js';

export { DEFAULT_DRAIN_MS };
const ABANDON_MARGIN_MS = 250;

export interface LoadOptions {
  entry: string;
  exit: string | null;
  transport: TransportName;
  mode: ProbeMode;
  register: boolean;
  credentials: CredentialSource;
  concurrency: number;
  durationMs: number;
  /** Attempts started per second (token bucket, burst 1), or null for as fast as the workers go. */
  ratePerSec: number | null;
  /** Cap on waiting for in-flight attempts after the duration. */
  drainMs?: number;
  sourceAddress: string | null;
  /** Who vouches for the gateways (as for `run`). */
  trust: TrustOptions;
  /** Called every `progressIntervalMs` (default 1000) while the load runs. */
  onProgress?: (s: LoadSnapshot) => void;
  progressIntervalMs?: number;
  connectTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  requestTimeoutMs?: number;
}

export interface Percentiles {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoadSnapshot {
  elapsedSec: number;
  durationSec: number;
  attempts: number;
  successes: number;
  failures: number;
  inFlight: number;
  /** Successful attempts per second so far. */
  ratePerSec: number;
  latency: Percentiles | null;
}

export interface LoadReport {
  entry: GatewayInfo;
  exit: GatewayInfo | null;
  transport: TransportName;
  mode: ProbeMode;
  credential: 'mock' | 'ticket';
  register: boolean;
  telescoped: boolean;
  concurrency: number;
  rate_limit_per_sec: number | null;
  duration_s: number;
  drain_cap_s: number;
  /** Start of the first attempt to the end of the drain, at least the duration. */
  elapsed_s: number;
  /** Attempts started (= successes + failures + abandoned). */
  attempts: number;
  successes: number;
  failures: number;
  abandoned: number;
  /** Successful attempts per second of elapsed time. */
  rate_per_sec: number;
  attempts_per_sec: number;
  /** Completed handshakes: direct with the entry, and telescoped with the exit. */
  handshakes: { completed: number; telescoped_completed: number };
  /** Successful registrations: with the entry, and telescoped with the exit; dVPN ones removed again after each attempt. */
  registrations: { completed: number; telescoped_completed: number; deregistered: number; deregister_failed: number };
  /** Whole successful attempts. */
  latency_ms: Percentiles | null;
  /** Direct handshakes (ClientHello … Ack), successful ones. */
  handshake_latency_ms: Percentiles | null;
  register_latency_ms: Percentiles | null;
  telescoped_handshake_latency_ms: Percentiles | null;
  errors_by_code: Record<string, number>;
  /** Set when the load could not start (descriptor unreachable, …). */
  error: ErrorInfo | null;
  /** Started, and every attempt succeeded. */
  passed: boolean;
  source_address: string | null;
  version: string;
  started_at: string;
}

/** Token bucket with reservations: `reserve` takes a token (possibly going negative) and says how long to wait. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    now: number,
  ) {
    if (!(ratePerSec > 0) || !(burst >= 1)) throw new RangeError('token bucket needs rate > 0 and burst >= 1');
    this.tokens = burst;
    this.last = now;
  }

  /** Reserves one token at `now` (ms); returns the ms to wait before it may be used (0 = at once). */
  reserve(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSec) / 1000);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.ratePerSec;
  }
}

const r1 = (x: number): number => Math.round(x * 10) / 10;

/** Nearest-rank percentiles of `values` (ms), rounded to 0.1 ms; null when empty. */
export function percentiles(values: readonly number[]): Percentiles | null {
  if (values.length === 0) return null;
  const s = Float64Array.from(values).sort();
  const at = (p: number): number => s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] as number;
  let sum = 0;
  for (const v of s) sum += v;
  return { count: s.length, mean: r1(sum / s.length), p50: r1(at(50)), p90: r1(at(90)), p99: r1(at(99)), max: r1(s[s.length - 1] as number) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

class Stats {
  attempts = 0;
  successes = 0;
  failures = 0;
  handshakes = 0;
  telescopedHandshakes = 0;
  registrations = 0;
  telescopedRegistrations = 0;
  deregistered = 0;
  cleanupFailures = 0;
  readonly latency: number[] = [];
  readonly handshakeLatency: number[] = [];
  readonly registerLatency: number[] = [];
  readonly telescopedLatency: number[] = [];
  readonly errors = new Map<string, number>();

  fail(e: ErrorInfo): void {
    this.failures++;
    this.errors.set(e.code, (this.errors.get(e.code) ?? 0) + 1);
  }
}

export async function runLoad(o: LoadOptions): Promise<LoadReport> {
  const startedAt = new Date().toISOString();
  const drainMs = o.drainMs ?? DEFAULT_DRAIN_MS;
  const connectMs = o.connectTimeoutMs ?? 10_000;
  const handshakeMs = o.handshakeTimeoutMs ?? DEFAULT_TIMEOUTS.handshakeMs;
  const requestMs = o.requestTimeoutMs ?? DEFAULT_TIMEOUTS.requestMs;
  const entryUrl = httpBase(o.entry);
  const exitUrl = o.exit === null ? null : httpBase(o.exit);
  const stats = new Stats();

  let entry: FetchedGateway | null = null;
  let exit: FetchedGateway | null = null;
  let setupError: ErrorInfo | null = null;
  let address = '';
  try {
    const trust = await ProbeTrust.load(o.trust, connectMs);
    [entry, exit] = await Promise.all([trust.resolve('entry', entryUrl, connectMs), exitUrl === null ? Promise.resolve(null) : trust.resolve('exit', exitUrl, connectMs)]);
    trust.save();
    address = lpAddressFor(entry.descriptor, o.transport);
  } catch (e) {
    setupError = errorInfo(e);
  }

  let elapsedMs = 0;
  let abandoned = 0;
  if (entry && !setupError) {
    const e = entry;
    const x = exit;
    const t0 = performance.now();
    const stopAt = t0 + o.durationMs;
    const hardStop = stopAt + drainMs;
    // Client timeouts end just after the cap, so attempts in flight at the cap are abandoned (not failed)
    // and their sockets close a moment later.
    const left = (def: number): number => Math.max(1, Math.floor(Math.min(def, hardStop + ABANDON_MARGIN_MS - performance.now())));
    const bucket = o.ratePerSec === null ? null : new TokenBucket(o.ratePerSec, 1, t0);
    const active = new Set<Transport>();
    let inFlight = 0;
    let closed = false; // set at the drain cap: late outcomes are ignored

    const attempt = async (): Promise<void> => {
      const a0 = performance.now();
      const transport = makeTransport(o.transport, address, left(connectMs), o.sourceAddress);
      active.add(transport);
      inFlight++;
      stats.attempts++;
      let conn: LpConnection | null = null;
      let nested: LpConnection | null = null;
      const made: [LpConnection, Registered][] = [];
      try {
        conn = await LpConnection.connect({ transport, gateway: e.pin, timeouts: { handshakeMs: left(handshakeMs), requestMs: left(requestMs) } });
        if (closed) return;
        const a1 = performance.now();
        stats.handshakes++;
        stats.handshakeLatency.push(a1 - a0);
        if (o.register) {
          made.push([conn, await register(conn, o.mode, o.credentials, ticketTypeFor(o.mode, x ? 'entry' : e.descriptor.roles.includes('entry') ? 'entry' : 'exit'), left(requestMs))]);
          if (closed) return;
          stats.registrations++;
          stats.registerLatency.push(performance.now() - a1);
        }
        if (x) {
          const a2 = performance.now();
          nested = await LpConnection.connect({ transport: new ForwardTransport(conn, x.pin.ed25519Public, x.descriptor.lp.tcp), gateway: x.pin, timeouts: { handshakeMs: left(handshakeMs), requestMs: left(requestMs) } });
          if (closed) return;
          stats.telescopedHandshakes++;
          stats.telescopedLatency.push(performance.now() - a2);
          if (o.register) {
            made.push([nested, await register(nested, o.mode, o.credentials, ticketTypeFor(o.mode, 'exit'), left(requestMs))]);
            if (closed) return;
            stats.telescopedRegistrations++;
          }
        }
        stats.successes++;
        stats.latency.push(performance.now() - a0);
      } catch (err) {
        if (!closed) stats.fail(errorInfo(err));
      } finally {
        // the load leaves no peers behind either (not timed; a failure is counted apart)
        for (const [c, reg] of made.reverse()) {
          if (closed) break;
          if (!reg.wireguard) continue;
          await deregister(c, reg, left(requestMs)).then(
            () => void stats.deregistered++,
            () => void stats.cleanupFailures++,
          );
        }
        nested?.close();
        conn?.close();
        transport.close();
        active.delete(transport);
        inFlight--;
      }
    };

    const worker = async (): Promise<void> => {
      for (;;) {
        if (performance.now() >= stopAt) return;
        if (bucket) {
          const wait = bucket.reserve(performance.now());
          if (performance.now() + wait >= stopAt) return;
          if (wait > 0) await sleep(wait);
        }
        await attempt();
      }
    };

    const snapshot = (): LoadSnapshot => {
      const el = (performance.now() - t0) / 1000;
      return {
        elapsedSec: el,
        durationSec: o.durationMs / 1000,
        attempts: stats.attempts,
        successes: stats.successes,
        failures: stats.failures,
        inFlight,
        ratePerSec: el > 0 ? stats.successes / el : 0,
        latency: percentiles(stats.latency),
      };
    };
    const ticker = o.onProgress ? setInterval(() => o.onProgress?.(snapshot()), o.progressIntervalMs ?? 1000) : null;

    const workers = Promise.all(Array.from({ length: o.concurrency }, () => worker()));
    let capTimer: NodeJS.Timeout | undefined;
    const cap = new Promise<'cap'>((resolve) => {
      capTimer = setTimeout(() => resolve('cap'), hardStop - performance.now());
    });
    const how = await Promise.race([workers.then(() => 'done' as const), cap]);
    clearTimeout(capTimer);
    if (ticker) clearInterval(ticker);
    if (how === 'cap') {
      closed = true;
      abandoned = inFlight;
      for (const t of active) t.close();
      // the workers end on their own (their timeouts are clamped to the cap); nothing more is recorded
      workers.catch(() => undefined);
    }
    // The load window is the requested duration even when the last attempts end before it (pacing).
    elapsedMs = Math.max(o.durationMs, performance.now() - t0);
    if (o.onProgress) o.onProgress(snapshot());
  }

  const elapsedS = elapsedMs / 1000;
  const successes = stats.successes;
  return {
    entry: gatewayInfo(entryUrl, entry?.descriptor ?? null),
    exit: exitUrl === null ? null : gatewayInfo(exitUrl, exit?.descriptor ?? null),
    transport: o.transport,
    mode: o.mode,
    credential: o.credentials.kind,
    register: o.register,
    telescoped: exitUrl !== null,
    concurrency: o.concurrency,
    rate_limit_per_sec: o.ratePerSec,
    duration_s: o.durationMs / 1000,
    drain_cap_s: drainMs / 1000,
    elapsed_s: Math.round(elapsedS * 100) / 100,
    attempts: stats.attempts,
    successes,
    failures: stats.failures,
    abandoned,
    rate_per_sec: elapsedS > 0 ? r1(successes / elapsedS) : 0,
    attempts_per_sec: elapsedS > 0 ? r1(stats.attempts / elapsedS) : 0,
    handshakes: { completed: stats.handshakes, telescoped_completed: stats.telescopedHandshakes },
    registrations: { completed: stats.registrations, telescoped_completed: stats.telescopedRegistrations, deregistered: stats.deregistered, deregister_failed: stats.cleanupFailures },
    latency_ms: percentiles(stats.latency),
    handshake_latency_ms: percentiles(stats.handshakeLatency),
    register_latency_ms: percentiles(stats.registerLatency),
    telescoped_handshake_latency_ms: percentiles(stats.telescopedLatency),
    errors_by_code: Object.fromEntries([...stats.errors].sort((a, b) => b[1] - a[1])),
    error: setupError,
    passed: setupError === null && successes > 0 && stats.failures === 0 && abandoned === 0,
    source_address: o.sourceAddress,
    version,
    started_at: startedAt,
  };
}
