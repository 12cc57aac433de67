/**
 * Entry role: relay one inner LP packet to an exit and return its reply (telescoping, PRODUCT.md §1.8).
 * No open relay: the target's identity AND LP address must match a verified directory entry, or no
 * connection is opened. Bounded: at most `maxConcurrent` forwards (then Busy), connect and I/O timeouts,
 * and per-exit exponential backoff whose cap yields to a longer Busy hint from the exit.
 */
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
  maxConcurrent: number;
  connectTimeoutMs: number;
  ioTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export const ForwardErrorCode = {
  TARGET_UNKNOWN: 'LPGW_ERR_FORWARD_TARGET_UNKNOWN',
  BUSY: 'LPGW_ERR_FORWARD_BUSY',
  BACKOFF: 'LPGW_ERR_FORWARD_BACKOFF',
  FAILED: 'LPGW_ERR_FORWARD_FAILED',
  BAD_PACKET: 'LPGW_ERR_FORWARD_BAD_PACKET',
  NOT_ENTRY: 'LPGW_ERR_FORWARD_NOT_ENTRY',
} as const;

interface Backoff {
  failures: number;
  /** Connect/IO failures: nothing is forwarded to the exit until then. */
  until: number;
  /** The exit answered a forwarded ClientHello with Busy: new handshakes wait until then (sessions do not). */
  helloUntil: number;
}

/** Inner packets with receiver index 0 are ClientHellos: new handshakes with the exit. */
function isInnerHello(packet: Uint8Array): boolean {
  return packet.length >= 4 && packet[0] === 0 && packet[1] === 0 && packet[2] === 0 && packet[3] === 0;
}


/** Idle connections kept per exit, and for how long (the exit closes idle ones after lp.idle_timeout_ms, 60 s by default). */
const IDLE_PER_EXIT = 16;
const IDLE_MS = 15_000;

export class Forwarder {
  private inFlight = 0;
  private readonly backoff = new Map<string, Backoff>();
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
   * Forward for a client at `clientAddress`. Forwarded ClientHellos are rate-limited per client here (the
   * exit sees all of an entry's clients as one source); a limited or exit-Busy hello is answered with a
   * Busy for the inner index, which the client's handshake honours.
   */
  async forward(f: ForwardPacketData, clientAddress = '', nowMs = Date.now()): Promise<AppMessage> {
    const entry = this.directory.lookup(f.targetGatewayIdentity, f.targetLpAddress);
    if (!entry) return this.refuse('refused_unknown_target', ForwardErrorCode.TARGET_UNKNOWN, `no gateway ${toHex(f.targetGatewayIdentity).slice(0, 16)}… at ${f.targetLpAddress} in this entry's directory`);
    try {
      parseHeader(f.innerPacketBytes);
    } catch (e) {
      return this.refuse('refused_bad_packet', ForwardErrorCode.BAD_PACKET, `inner packet rejected: ${(e as Error).message}`);
    }
    const key = entry.lp.tcp;
    const b = this.backoff.get(key);
    if (b && b.until > nowMs) return this.refuse('refused_backoff', ForwardErrorCode.BACKOFF, `exit ${key} is in backoff after ${b.failures} failure(s)`, b.until - nowMs);
    if (isInnerHello(f.innerPacketBytes)) {
      const wait = Math.max(b && b.helloUntil > nowMs ? b.helloUntil - nowMs : 0, this.helloLimiter?.take(clientAddress, nowMs) ?? 0);
      if (wait > 0) {
        this.metrics.forwards.inc({ result: 'hello_busy' });
        return { kind: 'forwardResponse', innerPacketBytes: innerBusy(f.innerPacketBytes, wait) };
      }
    }
    if (this.inFlight >= this.o.maxConcurrent) return this.refuse('refused_busy', ForwardErrorCode.BUSY, 'too many forwards in flight', 100);

    this.inFlight++;
    this.metrics.forwardsInFlight.set(this.inFlight);
    const end = this.metrics.forwardDuration.startTimer();
    try {
      const reply = await this.pool(key).exchange(f.innerPacketBytes);
      this.onExitReply(key, reply, nowMs);
      this.metrics.forwards.inc({ result: 'ok' });
      return { kind: 'forwardResponse', innerPacketBytes: reply };
    } catch (e) {
      const failures = (this.backoff.get(key)?.failures ?? 0) + 1;
      const delay = Math.min(this.o.backoffBaseMs * 2 ** (failures - 1), this.o.backoffMaxMs);
      this.backoff.set(key, { failures, until: Date.now() + delay, helloUntil: 0 });
      const code = e instanceof ExchangeError ? e.code : 'LPGW_ERR_FORWARD_FAILED';
      this.logger.info({ exit: key, failures, backoffMs: delay, code }, `forward to exit failed: ${(e as Error).message}`);
      return this.refuse('failed', ForwardErrorCode.FAILED, `forward to ${key} failed (${code}): ${(e as Error).message}`, delay);
    } finally {
      end();
      this.inFlight--;
      this.metrics.forwardsInFlight.set(this.inFlight);
      this.updateBackoffGauges();
    }
  }

  /**
   * A Busy from the exit delays further forwarded ClientHellos to it for at least its hint (even past the
   * cap); packets of established sessions still pass. Any other reply resets the failure backoff.
   */
  private onExitReply(key: string, reply: Uint8Array, nowMs: number): void {
    const hint = peekBusy(reply);
    if (hint === undefined) {
      const b = this.backoff.get(key);
      if (b && b.helloUntil > nowMs) b.failures = 0;
      else this.backoff.delete(key);
      return;
    }
    const prev = this.backoff.get(key);
    const busies = (prev?.failures ?? 0) + 1;
    const delay = Math.max(Math.min(this.o.backoffBaseMs * 2 ** (busies - 1), this.o.backoffMaxMs), hint ?? this.o.backoffBaseMs);
    this.backoff.set(key, { failures: busies, until: prev?.until ?? 0, helloUntil: nowMs + delay });
  }

  /** Exits in backoff now and the longest remaining backoff (also read live at every metrics scrape). */
  backoffSnapshot(now = Date.now()): { exits: number; longestMs: number } {
    let exits = 0;
    let longestMs = 0;
    for (const b of this.backoff.values()) {
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
