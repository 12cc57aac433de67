/**
 * Entry role: relay one inner LP packet to an exit and return its reply (telescoping, PRODUCT.md §1.8).
 * No open relay: the target's identity AND LP address must match a verified directory entry, or no
 * connection is opened. Bounded and fair (DESIGN.md §7.1, §10.7): at most `maxConcurrent` forwards in all,
 * `maxPerClient` per client address and `maxPerSession` per session (then Busy; nothing is queued), connect
 * and I/O timeouts. A forward the exit never answers is the sending session's problem first: that session
 * backs off from that exit; the exit's own breaker opens only on connection failures, or when forwards of
 * `breakerClients` distinct client addresses went unanswered since the exit last answered anything. So one
 * session sending packets an exit silently drops degrades only itself.
 */
import { LRUCache } from 'lru-cache';
import { type AppMessage, type ForwardPacketData, MessageType, encodeBusy, errorMessage, parseHeader, peekBusy, serializeClear, toHex } from '../core/index.js';

/** A cleartext Busy for the index an inner ClientHello proposes (offset 18), as the exit would send it. */
function innerBusy(hello: Uint8Array, retryAfterMs: number): Uint8Array {
  const proposed = hello.length >= 22 ? new DataView(hello.buffer, hello.byteOffset, hello.byteLength).getUint32(18, true) : 0;
  return serializeClear({ receiverIndex: proposed, counter: 0, type: MessageType.Busy, content: encodeBusy(Math.ceil(retryAfterMs)) });
}
import type { Logger } from '../log.js';
import { parseHostPort } from '../net/address.js';
import { ExchangeError, TcpConnectionPool } from '../net/tcp-exchange.js';
import type { GatewayMetrics } from './metrics.js';
import type { TokenBucketLimiter } from './rate-limit.js';

export interface ForwardDirectory {
  /** A verified peer whose identity and (normalized) LP TCP address both match, or null. */
  lookup(identity: Uint8Array, lpAddress: string): { lp: { tcp: string } } | null;
}

export interface ForwarderOptions {
  /** Forwards in flight, all clients together. */
  maxConcurrent: number;
  /** Forwards in flight for one client address (all its sessions). */
  maxPerClient: number;
  /** Forwards in flight for one session. */
  maxPerSession: number;
  /** Distinct client addresses whose forwards to an exit went unanswered, since it last answered, that open its breaker. */
  breakerClients: number;
  connectTimeoutMs: number;
  ioTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

/** Who asked for a forward: the client's address and its session (receiver index) with this entry. */
export interface ForwardClient {
  address: string;
  session: number;
}

export const ForwardErrorCode = {
  TARGET_UNKNOWN: 'LPGW_ERR_FORWARD_TARGET_UNKNOWN',
  BUSY: 'LPGW_ERR_FORWARD_BUSY',
  BACKOFF: 'LPGW_ERR_FORWARD_BACKOFF',
  FAILED: 'LPGW_ERR_FORWARD_FAILED',
  BAD_PACKET: 'LPGW_ERR_FORWARD_BAD_PACKET',
  NOT_ENTRY: 'LPGW_ERR_FORWARD_NOT_ENTRY',
} as const;

interface ExitState {
  /** Breaker trips in a row (connection failures, or unanswered forwards of several clients); reset by a reply. */
  failures: number;
  /** Breaker open: nothing is forwarded to the exit until then. */
  until: number;
  /** The exit answered a forwarded ClientHello with Busy: new handshakes wait until then (sessions do not). */
  helloUntil: number;
  /** Client addresses with a forward the exit left unanswered since its last reply. */
  silentClients: Set<string>;
}

/** A session's forwards to one exit went unanswered: that session (alone) waits. */
interface SessionBackoff {
  failures: number;
  until: number;
}

/** Inner packets with receiver index 0 are ClientHellos: new handshakes with the exit. */
function isInnerHello(packet: Uint8Array): boolean {
  return packet.length >= 4 && packet[0] === 0 && packet[1] === 0 && packet[2] === 0 && packet[3] === 0;
}

/** Idle connections kept per exit, and for how long (the exit closes idle ones after lp.idle_timeout_ms, 60 s by default). */
const IDLE_PER_EXIT = 16;
const IDLE_MS = 15_000;
/** Session backoffs remembered at most (LRU): a session that was forgotten starts again from the base backoff. */
const MAX_SESSION_BACKOFFS = 65_536;
/** Retry hint with a Busy refusal for concurrency: slots free up within a round trip to the exit. */
const BUSY_RETRY_MS = 100;

function increment<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}
function decrement<K>(m: Map<K, number>, k: K): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}

export class Forwarder {
  private inFlight = 0;
  private readonly inFlightByClient = new Map<string, number>();
  private readonly inFlightBySession = new Map<number, number>();
  private readonly exits = new Map<string, ExitState>();
  private readonly sessionBackoffs = new LRUCache<string, SessionBackoff>({ max: MAX_SESSION_BACKOFFS });
  /** Connections opened to exits (tests assert that refused forwards open none). */
  connectionsOpened = 0;
  /** Reused connections per exit: a telescoped session sends all its packets to the same exit. */
  private readonly pools = new Map<string, TcpConnectionPool>();

  constructor(
    private readonly o: ForwarderOptions,
    private readonly directory: ForwardDirectory,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    /** Per-client limit on forwarded ClientHellos (the same policy the gateway applies to its own). */
    private readonly helloLimiter: TokenBucketLimiter | null = null,
  ) {
    metrics.backoffState = () => this.backoffSnapshot();
  }

  private pool(key: string): TcpConnectionPool {
    let p = this.pools.get(key);
    if (!p) {
      const { host, port } = parseHostPort(key);
      p = new TcpConnectionPool({ host, port, connectTimeoutMs: this.o.connectTimeoutMs, ioTimeoutMs: this.o.ioTimeoutMs, maxIdle: IDLE_PER_EXIT, idleMs: IDLE_MS, onConnect: () => this.connectionsOpened++ });
      this.pools.set(key, p);
    }
    return p;
  }

  private exit(key: string): ExitState {
    let e = this.exits.get(key);
    if (!e) {
      e = { failures: 0, until: 0, helloUntil: 0, silentClients: new Set() };
      this.exits.set(key, e);
    }
    return e;
  }

  private backoffMs(failures: number): number {
    return Math.min(this.o.backoffBaseMs * 2 ** (failures - 1), this.o.backoffMaxMs);
  }

  /** Closes the idle connections to every exit (shutdown). */
  close(): void {
    for (const p of this.pools.values()) p.close();
    this.pools.clear();
  }

  private refuse(result: string, code: string, message: string, retryAfterMs: number | null = null): AppMessage {
    this.metrics.forwards.inc({ result });
    return errorMessage(code, message, retryAfterMs);
  }

  /**
   * Forward for `client`. Forwarded ClientHellos are rate-limited per client address here (the exit sees all
   * of an entry's clients as one source); a limited or exit-Busy hello is answered with a Busy for the inner
   * index, which the client's handshake honours.
   */
  async forward(f: ForwardPacketData, client: ForwardClient = { address: '', session: 0 }, nowMs = Date.now()): Promise<AppMessage> {
    const entry = this.directory.lookup(f.targetGatewayIdentity, f.targetLpAddress);
    if (!entry) return this.refuse('refused_unknown_target', ForwardErrorCode.TARGET_UNKNOWN, `no gateway ${toHex(f.targetGatewayIdentity).slice(0, 16)}… at ${f.targetLpAddress} in this entry's directory`);
    try {
      parseHeader(f.innerPacketBytes);
    } catch (e) {
      return this.refuse('refused_bad_packet', ForwardErrorCode.BAD_PACKET, `inner packet rejected: ${(e as Error).message}`);
    }
    const key = entry.lp.tcp;
    const exit = this.exits.get(key);
    if (exit && exit.until > nowMs) return this.refuse('refused_backoff', ForwardErrorCode.BACKOFF, `exit ${key} is in backoff after ${exit.failures} failure(s)`, exit.until - nowMs);
    const sessionKey = `${client.session}|${key}`;
    const sb = this.sessionBackoffs.get(sessionKey);
    if (sb && sb.until > nowMs) {
      return this.refuse('refused_session_backoff', ForwardErrorCode.BACKOFF, `this session's last ${sb.failures} forward(s) to ${key} got no reply; it waits`, sb.until - nowMs);
    }
    if (isInnerHello(f.innerPacketBytes)) {
      const wait = Math.max(exit && exit.helloUntil > nowMs ? exit.helloUntil - nowMs : 0, this.helloLimiter?.take(client.address, nowMs) ?? 0);
      if (wait > 0) {
        this.metrics.forwards.inc({ result: 'hello_busy' });
        return { kind: 'forwardResponse', innerPacketBytes: innerBusy(f.innerPacketBytes, wait) };
      }
    }
    // Nothing is queued: beyond a limit the client is told to retry, and only its own limits can be full.
    if ((this.inFlightBySession.get(client.session) ?? 0) >= this.o.maxPerSession) return this.refuse('refused_busy_session', ForwardErrorCode.BUSY, `this session has ${this.o.maxPerSession} forwards in flight`, BUSY_RETRY_MS);
    if ((this.inFlightByClient.get(client.address) ?? 0) >= this.o.maxPerClient) return this.refuse('refused_busy_client', ForwardErrorCode.BUSY, `this client address has ${this.o.maxPerClient} forwards in flight`, BUSY_RETRY_MS);
    if (this.inFlight >= this.o.maxConcurrent) return this.refuse('refused_busy', ForwardErrorCode.BUSY, 'too many forwards in flight', BUSY_RETRY_MS);

    this.inFlight++;
    increment(this.inFlightByClient, client.address);
    increment(this.inFlightBySession, client.session);
    this.metrics.forwardsInFlight.set(this.inFlight);
    const end = this.metrics.forwardDuration.startTimer();
    try {
      const reply = await this.pool(key).exchange(f.innerPacketBytes);
      this.onExitReply(key, reply, Date.now());
      this.sessionBackoffs.delete(sessionKey);
      this.metrics.forwards.inc({ result: 'ok' });
      return { kind: 'forwardResponse', innerPacketBytes: reply };
    } catch (e) {
      const code = e instanceof ExchangeError ? e.code : 'LPGW_ERR_FORWARD_FAILED';
      const now = Date.now();
      if (code === 'LPGW_ERR_IO_TIMEOUT') return this.onUnanswered(key, sessionKey, client, e as Error, now);
      // The exit could not be reached, or broke the connection: nothing a client's packet can cause.
      const delay = this.tripBreaker(key, now, 'connection');
      this.logger.info({ exit: key, failures: this.exit(key).failures, backoffMs: delay, code }, `forward to exit failed: ${(e as Error).message}`);
      return this.refuse('failed', ForwardErrorCode.FAILED, `forward to ${key} failed (${code}): ${(e as Error).message}`, delay);
    } finally {
      end();
      this.inFlight--;
      decrement(this.inFlightByClient, client.address);
      decrement(this.inFlightBySession, client.session);
      this.metrics.forwardsInFlight.set(this.inFlight);
      this.updateBackoffGauges();
    }
  }

  /**
   * The exit took the packet and never answered. An exit drops what no key authenticated without a word, so
   * this is most likely the packet's fault: the session backs off from this exit. The exit's breaker opens only
   * once forwards of `breakerClients` distinct client addresses went unanswered with no reply from it in between.
   */
  private onUnanswered(key: string, sessionKey: string, client: ForwardClient, e: Error, now: number): AppMessage {
    const failures = (this.sessionBackoffs.get(sessionKey)?.failures ?? 0) + 1;
    const delay = this.backoffMs(failures);
    this.sessionBackoffs.set(sessionKey, { failures, until: now + delay });
    const exit = this.exit(key);
    exit.silentClients.add(client.address);
    if (exit.silentClients.size >= this.o.breakerClients) {
      const exitDelay = this.tripBreaker(key, now, 'unanswered_clients');
      this.logger.info({ exit: key, clients: this.o.breakerClients, backoffMs: exitDelay }, 'forwards of several clients went unanswered: exit in backoff');
    }
    this.metrics.forwards.inc({ result: 'timeout' });
    return errorMessage(ForwardErrorCode.FAILED, `forward to ${key} failed (LPGW_ERR_IO_TIMEOUT): ${e.message}`, delay);
  }

  /** Opens the exit's breaker for the next backoff step; returns its length. */
  private tripBreaker(key: string, now: number, cause: 'connection' | 'unanswered_clients'): number {
    const exit = this.exit(key);
    exit.failures++;
    const delay = this.backoffMs(exit.failures);
    exit.until = now + delay;
    exit.silentClients.clear();
    this.metrics.forwardBreakerTrips.inc({ cause });
    return delay;
  }

  /**
   * Any reply shows the exit is alive: the unanswered-client count starts again. A Busy from the exit delays
   * further forwarded ClientHellos to it for at least its hint (even past the cap); packets of established
   * sessions still pass. Any other reply also resets the breaker's backoff.
   */
  private onExitReply(key: string, reply: Uint8Array, nowMs: number): void {
    const exit = this.exit(key);
    exit.silentClients.clear();
    const hint = peekBusy(reply);
    if (hint === undefined) {
      exit.failures = 0;
      return;
    }
    const busies = exit.failures + 1;
    exit.failures = busies;
    exit.helloUntil = nowMs + Math.max(this.backoffMs(busies), hint ?? this.o.backoffBaseMs);
  }

  /** Exits in backoff now and the longest remaining backoff (also read live at every metrics scrape). */
  backoffSnapshot(now = Date.now()): { exits: number; longestMs: number } {
    let exits = 0;
    let longestMs = 0;
    for (const b of this.exits.values()) {
      const until = Math.max(b.until, b.helloUntil);
      if (until > now) {
        exits++;
        longestMs = Math.max(longestMs, until - now);
      }
    }
    return { exits, longestMs };
  }

  private updateBackoffGauges(): void {
    const { exits, longestMs } = this.backoffSnapshot();
    this.metrics.forwardBackoffExits.set(exits);
    this.metrics.forwardBackoffSeconds.set(longestMs / 1000);
  }

  get inFlightCount(): number {
    return this.inFlight;
  }
}
