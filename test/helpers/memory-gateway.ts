/**
 * A minimal in-memory gateway router over the core state machines (index 0 → ClientHello, handshake
 * table, session table), so core tests can run whole conversations without sockets.
 */
import {
  type CryptoSuite,
  type GatewayKeys,
  type AppMessage,
  ResponderHandshake,
  Session,
  acceptClientHello,
  parseHeader,
} from '../../src/core/index.js';

export class MemoryGateway {
  readonly handshakes = new Map<number, ResponderHandshake>();
  readonly sessions = new Map<number, Session>();
  /** Messages delivered to the gateway, newest last. */
  readonly delivered: { index: number; msg: AppMessage }[] = [];
  onDeliver: (s: Session, msg: AppMessage) => Uint8Array | null = (s, msg) =>
    msg.kind === 'ping' ? s.reply({ kind: 'pong', payload: msg.payload }) : null;

  constructor(
    readonly suite: CryptoSuite,
    readonly keys: GatewayKeys,
    public nowSec = () => Math.floor(Date.now() / 1000),
  ) {}

  indexInUse = (i: number): boolean => this.handshakes.has(i) || this.sessions.has(i);

  /** One request in, at most one reply out (throws LpError on rejected input, like the real router). */
  handle(bytes: Uint8Array): Uint8Array | null {
    const h = parseHeader(bytes);
    if (h.receiverIndex === 0) {
      const out = acceptClientHello({ suite: this.suite, keys: this.keys }, bytes, this.nowSec(), this.indexInUse);
      if (out.kind === 'accepted') this.handshakes.set(out.handshake.receiverIndex, out.handshake);
      return out.reply;
    }
    const hs = this.handshakes.get(h.receiverIndex);
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
    if (out.delivered) {
      this.delivered.push({ index: s.receiverIndex, msg: out.delivered });
      const reply = this.onDeliver(s, out.delivered);
      if (reply) return reply;
    }
    return out.replies[0] ?? null;
  }
}
