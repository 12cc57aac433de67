/**
 * The per-peer timer state machine of WireGuard (whitepaper §6; wireguard-go's timers.go) as plain
 * deadlines: nothing here schedules anything. The hooks mirror wireguard-go's timers* functions and are
 * called by the peer on the same events; the peer asks `due(now)` which timers have expired and acts.
 */
import { REKEY_TIMEOUT_JITTER_MAX, type WgLimits } from './constants.js';

export type TimerName = 'retransmitHandshake' | 'sendKeepalive' | 'newHandshake' | 'zeroKeyMaterial' | 'persistentKeepalive';

export class PeerTimers {
  retransmitHandshakeAt: number | null = null;
  sendKeepaliveAt: number | null = null;
  newHandshakeAt: number | null = null;
  zeroKeyMaterialAt: number | null = null;
  persistentKeepaliveAt: number | null = null;

  handshakeAttempts = 0;
  needAnotherKeepalive = false;
  sentLastMinuteHandshake = false;

  constructor(
    private readonly limits: WgLimits,
    /** 0 disables persistent keepalive. */
    private readonly persistentKeepaliveMs: number,
    /** Uniform jitter in [0, REKEY_TIMEOUT_JITTER_MAX) ms (injectable for deterministic tests). */
    private readonly random16: () => number,
  ) {}

  private jitter(): number {
    return this.random16() % REKEY_TIMEOUT_JITTER_MAX;
  }

  /** After an authenticated data (not keepalive) packet was sent. */
  dataSent(now: number): void {
    if (this.newHandshakeAt === null) this.newHandshakeAt = now + this.limits.keepaliveTimeout + this.limits.rekeyTimeout + this.jitter();
  }

  /** After an authenticated data (not keepalive) packet was received. */
  dataReceived(now: number): void {
    if (this.sendKeepaliveAt === null) this.sendKeepaliveAt = now + this.limits.keepaliveTimeout;
    else this.needAnotherKeepalive = true;
  }

  /** After any authenticated packet was sent: a packet of ours already tells the peer we are alive. */
  anyAuthenticatedPacketSent(): void {
    this.sendKeepaliveAt = null;
  }

  /** After any authenticated packet was received: the peer is alive, no need to re-handshake. */
  anyAuthenticatedPacketReceived(): void {
    this.newHandshakeAt = null;
  }

  handshakeInitiated(now: number): void {
    this.retransmitHandshakeAt = now + this.limits.rekeyTimeout + this.jitter();
  }

  handshakeComplete(): void {
    this.retransmitHandshakeAt = null;
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
  }

  sessionDerived(now: number): void {
    this.zeroKeyMaterialAt = now + this.limits.rejectAfterTime * 3;
  }

  /** Before an authenticated packet is sent or after one is received. */
  anyAuthenticatedPacketTraversal(now: number): void {
    if (this.persistentKeepaliveMs > 0) this.persistentKeepaliveAt = now + this.persistentKeepaliveMs;
  }

  /** The earliest pending deadline. */
  next(): number | null {
    let n: number | null = null;
    for (const t of [this.retransmitHandshakeAt, this.sendKeepaliveAt, this.newHandshakeAt, this.zeroKeyMaterialAt, this.persistentKeepaliveAt]) {
      if (t !== null && (n === null || t < n)) n = t;
    }
    return n;
  }

  /** The expired timers, each cleared (its handler decides whether to re-arm it). */
  due(now: number): TimerName[] {
    const out: TimerName[] = [];
    if (this.retransmitHandshakeAt !== null && this.retransmitHandshakeAt <= now) {
      this.retransmitHandshakeAt = null;
      out.push('retransmitHandshake');
    }
    if (this.sendKeepaliveAt !== null && this.sendKeepaliveAt <= now) {
      this.sendKeepaliveAt = null;
      out.push('sendKeepalive');
    }
    if (this.newHandshakeAt !== null && this.newHandshakeAt <= now) {
      this.newHandshakeAt = null;
      out.push('newHandshake');
    }
    if (this.zeroKeyMaterialAt !== null && this.zeroKeyMaterialAt <= now) {
      this.zeroKeyMaterialAt = null;
      out.push('zeroKeyMaterial');
    }
    if (this.persistentKeepaliveAt !== null && this.persistentKeepaliveAt <= now) {
      this.persistentKeepaliveAt = null;
      out.push('persistentKeepalive');
    }
    return out;
  }

  stop(): void {
    this.retransmitHandshakeAt = this.sendKeepaliveAt = this.newHandshakeAt = this.zeroKeyMaterialAt = this.persistentKeepaliveAt = null;
  }
}
