/**
 * A receiver-index shard: owns a slice of the state tables and routes each packet by its cleartext
 * receiver index (PRODUCT.md §5, upstream §12.3, DESIGN.md §4):
 *   0 → ClientHello (answered with a routability token, nothing kept);
 *   a cleartext KKTRequest → the stateless token and signature checks, then a new handshake (or its cached answer);
 *   handshake table → handshake;  session/demoted table → session;  else silent drop.
 * The I/O edges only frame and pick the shard. `LocalShard` runs in the caller's thread (tests, small
 * deployments); worker-thread shards implement the same `Shard` interface.
 */
import {
  type AppMessage,
  type CryptoSuite,
  type GatewayKeys,
  type Header,
  KKT_UDP_PAD_TO,
  type ResponderHandshake,
  LpError,
  LpErrorCode,
  MIN_PACKET_LEN,
  RoutabilityTokens,
  type Session,
  acceptKktRequest,
  answerClientHello,
  errorMessage,
  looksLikeClearKktRequest,
  parseHeader,
} from '../core/index.js';
import type { Logger } from '../log.js';
import type { ShardMetrics } from './shard-metrics.js';
import { SessionTables, type TableLimits } from './tables.js';

export interface PacketSource {
  transport: 'tcp' | 'udp';
  address: string;
  port: number;
}

export interface ShardResult {
  reply: Uint8Array | null;
  /**
   * The request was authenticated by a session key as a new request, or as a copy of one from the address
   * that sent it (DESIGN.md §4.5): only then may a UDP reply carry more bytes than the request did.
   */
  authenticated: boolean;
}

/** What an application handler may use of the session a message arrived on. */
export interface AppContext {
  src: PacketSource;
  /** The receiver index of the session that delivered the message (unique across shards): per-session limits. */
  session: number;
  /** The WireGuard PSK both sides derive from this session for a peer key (DESIGN.md §7.2). */
  wireguardPsk(wgPublicKey: Uint8Array): Uint8Array;
}

/** Application messages (registration, forwarding, ping) are served outside the shard's core logic. */
export interface AppHandler {
  handle(msg: AppMessage, ctx: AppContext): AppMessage | null | Promise<AppMessage | null>;
}

/**
 * `tables.shards` → shard count. 0 (auto) gives 1 on up to 2 CPUs, where measurement shows a second shard gains
 * nothing (the worker message passing costs about what it parallelises, docs/BENCHMARKS.md), else one shard per
 * CPU less the one the I/O thread (listeners, dispatcher, application messages) keeps busy.
 */
export function resolveShardCount(setting: number, cpus: number): number {
  if (setting > 0) return setting;
  return cpus <= 2 ? 1 : cpus - 1;
}

export interface Shard {
  /**
   * A result, or a promise of one where the work is asynchronous (a worker shard, a registration). Rejected input
   * is a result with no reply; only a bug throws or rejects.
   */
  handle(packet: Uint8Array, src: PacketSource, nowMs: number): ShardResult | Promise<ShardResult>;
  /** Periodic TTL sweep. */
  sweep(): void;
  stats(): { handshakes: number; sessions: number; demoted: number };
  close(): void;
}

export interface ShardOptions {
  suite: CryptoSuite;
  keys: GatewayKeys;
  limits: TableLimits;
  timestampToleranceSec: number;
  app: AppHandler;
  metrics: ShardMetrics;
  logger: Logger;
  /** This shard's number and the shard count: an index belongs to shard `index mod count`. */
  shardId?: number;
  shardCount?: number;
}

const NO_REPLY: ShardResult = { reply: null, authenticated: false };
/** A UDP KKTRequest must be at least as large as its answer (a KKTResponse with nonce): no amplification. */
const MIN_UDP_KKT_REQUEST = MIN_PACKET_LEN + KKT_UDP_PAD_TO;

/**
 * A session's return route: the UDP source its last new request came from (TCP needs none: the reply goes back
 * on the connection). The listener's own source object is kept, so a packet allocates nothing for it.
 */
function returnRoute(src: PacketSource): PacketSource | null {
  return src.transport === 'udp' ? src : null;
}

/** True if a UDP packet came from the session's return route. */
function fromReturnRoute(session: Session, src: PacketSource): boolean {
  const r = session.returnRoute as PacketSource | null;
  return r !== null && r.port === src.port && r.address === src.address;
}

/** The AppContext of a session's message: one object per request, no closure. */
class SessionAppContext implements AppContext {
  constructor(
    readonly src: PacketSource,
    readonly session: number,
    private readonly s: Session,
  ) {}

  wireguardPsk(wgPublicKey: Uint8Array): Uint8Array {
    return this.s.wireguardPsk(wgPublicKey);
  }
}

export class LocalShard implements Shard {
  readonly tables: SessionTables;
  private readonly responderConfig;
  /** This shard's token secret: ClientHello and KKTRequest for one index always reach the same shard. */
  private readonly tokens: RoutabilityTokens;

  constructor(private readonly o: ShardOptions) {
    this.tables = new SessionTables(o.limits, {
      onEvict: (t) => o.metrics.count('evictions', t),
      onExpire: (t) => o.metrics.count('expirations', t),
    });
    this.responderConfig = { suite: o.suite, keys: o.keys, timestampToleranceSec: o.timestampToleranceSec };
    this.tokens = new RoutabilityTokens(o.suite.prims);
    const id = o.shardId ?? 0;
    const count = o.shardCount ?? 1;
    // A rekey's new index must land in this shard: any other shard's index is reported as taken (Collision).
    this.promotionIndexInUse = count === 1 ? this.tables.indexInUse : (i: number) => i % count !== id || this.tables.indexInUse(i);
  }

  private readonly promotionIndexInUse: (index: number) => boolean;

  /**
   * Synchronous up to the application handler: a packet costs no promise unless the handler is asynchronous
   * (registrations, forwards); a Ping is answered in the same turn.
   */
  handle(packet: Uint8Array, src: PacketSource, nowMs: number): ShardResult | Promise<ShardResult> {
    try {
      const r = this.route(packet, src, nowMs);
      return r instanceof Promise ? r.catch((e: unknown) => this.rejected(e, src)) : r;
    } catch (e) {
      return this.rejected(e, src);
    }
  }

  /** Rejected input: counted and logged once at debug, never answered (WireGuard posture). Anything else is rethrown. */
  private rejected(e: unknown, src: PacketSource): ShardResult {
    if (e instanceof LpError) {
      this.o.metrics.count('errors', e.code);
      this.o.logger.debug({ code: e.code, src: `${src.address}:${src.port}`, transport: src.transport }, e.message);
      return NO_REPLY;
    }
    throw e;
  }

  private route(packet: Uint8Array, src: PacketSource, nowMs: number): ShardResult | Promise<ShardResult> {
    const h = parseHeader(packet);
    const idx = h.receiverIndex;
    if (idx === 0) return this.onClientHello(packet, src, nowMs);

    // Every receiver index is in at most one table (indexInUse checks all three), so the lookup order is free:
    // a cleartext KKTRequest first (stateless unless it repeats its handshake's), then sessions, the common case.
    if (looksLikeClearKktRequest(packet)) {
      const hs = this.tables.handshakes.get(idx);
      return hs?.isRepeat(packet) ? this.onHandshakePacket(hs, packet, h, src) : this.onKktRequest(packet, h, src, nowMs);
    }
    const found = this.tables.peekSession(idx);
    if (found) return this.onSessionPacket(found.session, found.demoted, packet, h, src);
    const hs = this.tables.handshakes.get(idx);
    if (hs) return this.onHandshakePacket(hs, packet, h, src);
    this.o.metrics.count('dropped', 'unknown_index');
    return NO_REPLY;
  }

  private onHandshakePacket(hs: ResponderHandshake, packet: Uint8Array, h: Header, src: PacketSource): ShardResult {
    const idx = h.receiverIndex;
    const out = hs.receive(packet, h);
    if (out.failed) {
      this.tables.handshakes.delete(idx);
      hs.destroy();
      this.o.metrics.count('handshakes', 'failed');
      this.o.metrics.count('errors', out.failed.code);
      this.o.logger.debug({ code: out.failed.code, index: idx }, `handshake failed: ${out.failed.message}`);
    }
    if (out.session) {
      this.tables.handshakes.delete(idx);
      // Message 3 is the session's first authenticated request: its source is the return route.
      out.session.returnRoute = returnRoute(src);
      this.tables.sessions.set(idx, out.session);
      this.o.metrics.count('handshakes', 'completed');
    }
    // Only message 3 is authenticated (by the outer key); a copy of an earlier step is answered from the
    // cache like any cleartext step, within the UDP size rule.
    return { reply: out.reply ?? null, authenticated: out.session !== undefined };
  }

  private onClientHello(packet: Uint8Array, src: PacketSource, nowMs: number): ShardResult {
    const out = answerClientHello(this.responderConfig, this.tokens, packet, { nowSec: Math.floor(nowMs / 1000), source: src.address });
    this.o.metrics.count('handshakes', out.kind === 'collision' ? 'collision' : 'hello_answered');
    return { reply: out.reply, authenticated: false };
  }

  private onKktRequest(packet: Uint8Array, h: Header, src: PacketSource, nowMs: number): ShardResult {
    if (src.transport === 'udp' && packet.length < MIN_UDP_KKT_REQUEST) {
      this.o.metrics.count('dropped', 'amplification');
      return NO_REPLY;
    }
    const out = acceptKktRequest(this.responderConfig, this.tokens, packet, h, { nowSec: Math.floor(nowMs / 1000), source: src.address }, this.tables.indexInUse);
    if (out.kind === 'collision') this.o.metrics.count('handshakes', 'collision');
    else if (out.kind === 'refused') {
      this.o.metrics.count('handshakes', 'refused');
      this.o.metrics.count('errors', out.error.code);
    } else {
      this.tables.handshakes.set(h.receiverIndex, out.handshake);
      this.o.metrics.count('handshakes', 'started');
    }
    return { reply: out.reply, authenticated: false };
  }

  private onSessionPacket(session: Session, demoted: boolean, packet: Uint8Array, h: Header, src: PacketSource): ShardResult | Promise<ShardResult> {
    const out = session.receive(packet, { indexInUse: this.promotionIndexInUse }, h);
    if (out.retransmission) {
      // A copy of the last request, answered from the cache: it refreshes nothing (not the idle timer, §5.4,
      // not the return route). Over UDP its source may be forged, so unless it is the address the session's
      // last new request came from, the reply may not exceed the copy (the listener drops it otherwise).
      // Copies from the requester's own address are answered a bounded number of times (loss recovery needs a
      // few; a replayed capture gets no more).
      const bound = src.transport === 'tcp' || fromReturnRoute(session, src);
      if (bound && !session.takeRetransmissionAnswer()) {
        this.o.metrics.count('retransmissions', 'limit_reached');
        return { reply: null, authenticated: true };
      }
      this.o.metrics.count('retransmissions', bound ? 'bound_source' : 'other_source');
      return { reply: out.replies[0] ?? null, authenticated: bound };
    }
    this.tables.touch(h.receiverIndex, demoted);
    session.returnRoute = returnRoute(src);
    if (out.promoted) {
      this.tables.promote(h.receiverIndex, out.promoted);
      this.o.metrics.count('subsessions', 'promoted');
    } else if (out.subsessionAccepted) this.o.metrics.count('subsessions', 'accepted');
    if (out.undecodable) {
      this.o.metrics.count('errors', out.undecodable.code);
      return { reply: session.reply(errorMessage(out.undecodable.code, out.undecodable.message), h.counter), authenticated: true };
    }
    if (out.delivered && demoted) {
      // A request on a session a rekey replaced is never executed (nothing spent, nothing registered): the client
      // is told to use its new session (DESIGN.md §6).
      this.o.metrics.count('errors', LpErrorCode.SESSION_READ_ONLY);
      return { reply: session.reply(errorMessage(LpErrorCode.SESSION_READ_ONLY, 'this session was replaced by a rekey; send requests on the new one'), h.counter), authenticated: true };
    }
    if (out.delivered) {
      let response: AppMessage | null | Promise<AppMessage | null>;
      try {
        response = this.o.app.handle(out.delivered, new SessionAppContext(src, h.receiverIndex, session));
      } catch (e) {
        response = this.handlerFailed(e);
      }
      // A Ping is answered synchronously; a registration's promise settles later.
      if (response instanceof Promise) {
        return response.then(
          (r) => this.answer(session, r, h.counter),
          (e: unknown) => this.answer(session, this.handlerFailed(e), h.counter),
        );
      }
      return this.answer(session, response, h.counter);
    }
    return { reply: out.replies[0] ?? null, authenticated: true };
  }

  private handlerFailed(e: unknown): AppMessage {
    this.o.logger.error({ err: e }, 'application handler failed');
    return errorMessage('LPGW_ERR_INTERNAL', 'internal error');
  }

  /** The handler's response sealed as the reply to the request with `counter`. */
  private answer(session: Session, response: AppMessage | null, counter: number): ShardResult {
    if (!response) return { reply: null, authenticated: true };
    // Demoted while the request ran (a rekey completed meanwhile): the request was executed, so it is answered.
    return { reply: session.reply(response, counter), authenticated: true };
  }

  sweep(): void {
    this.tables.sweep();
  }

  stats(): { handshakes: number; sessions: number; demoted: number } {
    return this.tables.sizes;
  }

  close(): void {
    this.tables.clear();
    this.tokens.destroy();
  }
}
