/**
 * A minimal in-memory gateway router over the core state machines (index 0 → ClientHello answered with a token,
 * cleartext KKTRequest → stateless checks then a handshake, handshake table, session table), so core tests can run
 * whole conversations without sockets. Every packet comes from `source` (a test may change it).
 */
import {
  type CryptoSuite,
  type GatewayKeys,
  type AppMessage,
  ResponderHandshake,
  RoutabilityTokens,
  Session,
  acceptKktRequest,
  answerClientHello,
  errorMessage,
  looksLikeClearKktRequest,
  parseHeader,
} from '../../src/core/index.js';

export class MemoryGateway {
  readonly handshakes = new Map<number, ResponderHandshake>();
  readonly sessions = new Map<number, Session>();
  /** Messages delivered to the gateway, newest last. */
  readonly delivered: { index: number; msg: AppMessage }[] = [];
  onDeliver: (s: Session, msg: AppMessage) => Uint8Array | null = (s, msg) =>
    msg.kind === 'ping' ? s.reply({ kind: 'pong', payload: msg.payload }) : null;

  readonly tokens: RoutabilityTokens;
  source = '192.0.2.1';

  constructor(
    readonly suite: CryptoSuite,
    readonly keys: GatewayKeys,
    public nowSec = () => Math.floor(Date.now() / 1000),
  ) {
    this.tokens = new RoutabilityTokens(suite.prims);
  }

  indexInUse = (i: number): boolean => this.handshakes.has(i) || this.sessions.has(i);

  /** One request in, at most one reply out (throws LpError on rejected input, like the real router). */
  handle(bytes: Uint8Array): Uint8Array | null {
    const h = parseHeader(bytes);
    const ctx = { nowSec: this.nowSec(), source: this.source };
    if (h.receiverIndex === 0) return answerClientHello({ suite: this.suite, keys: this.keys }, this.tokens, bytes, ctx).reply;
    const hs = this.handshakes.get(h.receiverIndex);
    if (looksLikeClearKktRequest(bytes) && !hs?.isRepeat(bytes)) {
      const out = acceptKktRequest({ suite: this.suite, keys: this.keys }, this.tokens, bytes, h, ctx, this.indexInUse);
      if (out.kind === 'accepted') this.handshakes.set(h.receiverIndex, out.handshake);
      return out.reply;
    }
    if (hs) {
      const out = hs.receive(bytes, h);
      if (out.failed) this.handshakes.delete(h.receiverIndex);
      if (out.session) {
        this.handshakes.delete(h.receiverIndex);
        this.sessions.set(h.receiverIndex, out.session);
      }
      return out.reply ?? null;
    }
    const s = this.sessions.get(h.receiverIndex);
    if (!s) return null; // unknown index: silent drop
    const out = s.receive(bytes, { indexInUse: this.indexInUse }, h);
    if (out.promoted) this.sessions.set(out.promoted.receiverIndex, out.promoted);
    if (out.undecodable) return s.reply(errorMessage(out.undecodable.code, out.undecodable.message), h.counter);
    if (out.delivered) {
      this.delivered.push({ index: s.receiverIndex, msg: out.delivered });
      const reply = this.onDeliver(s, out.delivered);
      if (reply) return reply;
    }
    return out.replies[0] ?? null;
  }
}
