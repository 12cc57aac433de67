/**
 * The sans-I/O WireGuard client core for one peer (the gateway), in the manner of boringtun's `Tunn`: every
 * call takes the bytes and the current time (`now`, monotonic milliseconds) and returns the datagrams to
 * send, the IP packets that came out of the tunnel and what happened. Nothing here opens sockets, reads
 * clocks or starts timers; the I/O edge (tunnel.ts) calls `tick(now)` at `nextDeadline()`.
 *
 * It is an initiator only: the gateway never needs to start a handshake with a probe, so an initiation
 * from it is rejected (LPWG_ERR_UNEXPECTED_INITIATION) and we rekey ourselves (REKEY_AFTER_TIME when we
 * send, the last-minute handshake when we only receive). Timer behaviour follows wireguard-go's timers.go,
 * with one deliberate difference: a valid cookie reply triggers an immediate retransmission (with mac2)
 * instead of waiting for REKEY_TIMEOUT, at most MAX_COOKIE_RETRIES times per handshake series.
 */
import {
  DEFAULT_LIMITS,
  DEFAULT_MTU,
  MAX_STAGED_PACKETS,
  MSG_COOKIE_REPLY,
  MSG_INITIATION,
  MSG_RESPONSE,
  MSG_TRANSPORT,
  INITIATION_SIZE,
  type WgLimits,
} from './constants.js';
import { CookieState } from './cookie.js';
import { defaultWgCrypto, type WgCrypto } from './crypto.js';
import { WgError, WgErrorCode } from './errors.js';
import { InitiatorHandshake, makeStaticKeys, type StaticKeys } from './handshake.js';
import { assertKey } from './keys.js';
import { Keypair } from './keypair.js';
import { messageType, parseCookieReply, parseResponse, parseTransportHeader } from './messages.js';
import { monotonicTai64n } from './tai64n.js';
import { PeerTimers } from './timers.js';

const MAX_COOKIE_RETRIES = 3;
const EMPTY = new Uint8Array(0);

export interface WgPeerOptions {
  privateKey: Uint8Array;
  peerPublicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  /** Send a keepalive after this many seconds without sending anything (0/absent: off). */
  persistentKeepaliveSec?: number;
  /** Padding never grows a packet beyond this (default 1420, wireguard-go's). */
  mtu?: number;
  /** Curve, AEAD and randomness (inject randomness for known-answer tests). */
  crypto?: WgCrypto;
  /** TAI64N timestamp for the next initiation (default: the wall clock, strictly increasing). */
  timestamp?: () => Uint8Array;
  /** Protocol limits (tests shorten them). */
  limits?: Partial<WgLimits>;
}

export type WgEvent =
  | { type: 'handshake-initiated'; at: number; attempt: number; senderIndex: number; withMac2: boolean }
  | { type: 'handshake-complete'; at: number; durationMs: number; rttMs: number; attempts: number }
  | { type: 'handshake-failed'; at: number; error: WgError }
  | { type: 'cookie-received'; at: number }
  | { type: 'keepalive-received'; at: number }
  | { type: 'keys-zeroed'; at: number };

export interface WgOutput {
  /** Datagrams for the peer's endpoint, in order. */
  network: Uint8Array[];
  /** Decrypted IP packets (padding removed). */
  tunnel: Uint8Array[];
  events: WgEvent[];
  /** Why the input datagram was rejected, if it was. */
  rejected: WgError | null;
}

export interface WgPeerCounters {
  initiationsSent: number;
  handshakesCompleted: number;
  cookieReplies: number;
  responsesRejected: number;
  transportSent: number;
  transportReceived: number;
  keepalivesSent: number;
  keepalivesReceived: number;
  stagedDropped: number;
}

const newOutput = (): WgOutput => ({ network: [], tunnel: [], events: [], rejected: null });

/** The IP packet inside a decrypted plaintext, without WireGuard's padding. */
export function trimIpPacket(plaintext: Uint8Array): Uint8Array {
  const version = (plaintext[0] ?? 0) >> 4;
  if (version === 4 && plaintext.length >= 20) {
    const total = ((plaintext[2] ?? 0) << 8) | (plaintext[3] ?? 0);
    if (total >= 20 && total <= plaintext.length) return plaintext.subarray(0, total);
  } else if (version === 6 && plaintext.length >= 40) {
    const total = 40 + (((plaintext[4] ?? 0) << 8) | (plaintext[5] ?? 0));
    if (total <= plaintext.length) return plaintext.subarray(0, total);
  }
  throw new WgError(WgErrorCode.BAD_IP_PACKET, 'decrypted payload is not an IPv4/IPv6 packet of consistent length');
}

export class WgPeer {
  readonly counters: WgPeerCounters = {
    initiationsSent: 0,
    handshakesCompleted: 0,
    cookieReplies: 0,
    responsesRejected: 0,
    transportSent: 0,
    transportReceived: 0,
    keepalivesSent: 0,
    keepalivesReceived: 0,
    stagedDropped: 0,
  };

  private readonly crypto: WgCrypto;
  private readonly keys: StaticKeys;
  private readonly cookie: CookieState;
  private readonly timers: PeerTimers;
  private readonly limits: WgLimits;
  private readonly mtu: number;
  private readonly timestamp: () => Uint8Array;

  private handshake: InitiatorHandshake | null = null;
  private seriesStart: number | null = null;
  private seriesAttempts = 0;
  private cookieRetries = 0;
  private lastRejection: WgError | null = null;
  private seriesResponsesRejected = 0;
  private lastSentHandshake: number | null = null;
  private current: Keypair | null = null;
  private previous: Keypair | null = null;
  private staged: Uint8Array[] = [];
  private closed = false;

  constructor(o: WgPeerOptions) {
    assertKey(o.privateKey, 'private key');
    assertKey(o.peerPublicKey, 'peer public key');
    if (o.presharedKey !== null) assertKey(o.presharedKey, 'preshared key');
    this.crypto = o.crypto ?? defaultWgCrypto;
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
    this.mtu = o.mtu ?? DEFAULT_MTU;
    this.timestamp = o.timestamp ?? (() => monotonicTai64n());
    this.keys = makeStaticKeys(this.crypto, o.privateKey, o.peerPublicKey, o.presharedKey);
    this.cookie = new CookieState(this.keys.peerPublicKey, this.keys.publicKey, this.crypto, this.limits.cookieRefreshTime);
    const keepaliveMs = Math.max(0, Math.floor((o.persistentKeepaliveSec ?? 0) * 1000));
    this.timers = new PeerTimers(this.limits, keepaliveMs, () => {
      const r = this.crypto.randomBytes(2);
      return ((r[0] ?? 0) << 8) | (r[1] ?? 0);
    });
  }

  get publicKey(): Uint8Array {
    return new Uint8Array(this.keys.publicKey);
  }

  /** Sender index of the handshake in flight, or null. */
  get handshakeIndex(): number | null {
    return this.handshake?.senderIndex ?? null;
  }

  /** Whether a keypair usable for sending exists at `now`. */
  hasSession(now: number): boolean {
    const kp = this.current;
    return kp !== null && !kp.isZeroed && now - kp.createdAt < this.limits.rejectAfterTime && kp.sent < this.limits.rejectAfterMessages;
  }

  /** Our index of the current session (receiver field of what the peer sends us), or null. */
  get sessionIndex(): number | null {
    return this.current?.localIndex ?? null;
  }

  /** Starts a handshake (rate-limited to one initiation per REKEY_TIMEOUT, like wireguard-go). */
  initiate(now: number): WgOutput {
    this.assertOpen();
    const out = newOutput();
    this.sendInitiation(out, now, false);
    return out;
  }

  /** Sends one IP packet, or stages it and starts a handshake when there is no usable session. */
  send(packet: Uint8Array, now: number): WgOutput {
    this.assertOpen();
    const out = newOutput();
    if (packet.length === 0) throw new WgError(WgErrorCode.BAD_ARGUMENT, 'an empty packet is a keepalive: use sendKeepalive');
    this.staged.push(packet);
    if (this.staged.length > MAX_STAGED_PACKETS) {
      this.staged.shift();
      this.counters.stagedDropped++;
    }
    this.sendStaged(out, now);
    return out;
  }

  sendKeepalive(now: number): WgOutput {
    this.assertOpen();
    const out = newOutput();
    this.keepalive(out, now);
    return out;
  }

  /** Processes one datagram from the peer's endpoint. Never throws for network input. */
  receive(datagram: Uint8Array, now: number): WgOutput {
    const out = newOutput();
    if (this.closed) {
      out.rejected = new WgError(WgErrorCode.CLOSED, 'peer is closed');
      return out;
    }
    try {
      this.receiveInner(datagram, now, out);
    } catch (e) {
      if (!(e instanceof WgError)) throw e;
      out.rejected = e;
    }
    return out;
  }

  /** Runs the timers that are due. */
  tick(now: number): WgOutput {
    const out = newOutput();
    if (this.closed) return out;
    for (const t of this.timers.due(now)) {
      switch (t) {
        case 'retransmitHandshake':
          if (!this.handshake) break;
          if (this.timers.handshakeAttempts > this.limits.maxTimerHandshakes) {
            out.events.push({ type: 'handshake-failed', at: now, error: this.handshakeFailure(now) });
            this.timers.sendKeepaliveAt = null;
            this.counters.stagedDropped += this.staged.length;
            this.staged = [];
            if (this.timers.zeroKeyMaterialAt === null) this.timers.zeroKeyMaterialAt = now + this.limits.rejectAfterTime * 3;
            this.endSeries();
          } else {
            this.timers.handshakeAttempts++;
            this.sendInitiation(out, now, true);
          }
          break;
        case 'sendKeepalive':
          this.keepalive(out, now);
          if (this.timers.needAnotherKeepalive) {
            this.timers.needAnotherKeepalive = false;
            this.timers.sendKeepaliveAt = now + this.limits.keepaliveTimeout;
          }
          break;
        case 'newHandshake':
          this.sendInitiation(out, now, false);
          break;
        case 'zeroKeyMaterial':
          this.wipeSessions();
          out.events.push({ type: 'keys-zeroed', at: now });
          break;
        case 'persistentKeepalive':
          this.keepalive(out, now);
          break;
      }
    }
    return out;
  }

  /** When `tick` should next be called. */
  nextDeadline(): number | null {
    return this.closed ? null : this.timers.next();
  }

  /**
   * The coded failure of the handshake series in flight (LPWG_ERR_HANDSHAKE_TIMEOUT), with what was seen:
   * how many attempts, whether responses came back and why they were refused. The edge uses it for its own
   * connect timeout too.
   */
  handshakeFailure(now: number): WgError {
    const last = this.lastRejection?.code ?? null;
    const hint =
      last === WgErrorCode.DECRYPT
        ? 'responses came back but did not authenticate: the preshared key (or the client key) does not match what the gateway has'
        : this.seriesResponsesRejected > 0
          ? `responses came back but were refused (${last})`
          : 'no valid response: wrong gateway public key, client key not registered, or the endpoint is unreachable';
    return new WgError(WgErrorCode.HANDSHAKE_TIMEOUT, `WireGuard handshake did not complete: ${hint}`, {
      attempts: this.seriesAttempts,
      elapsedMs: this.seriesStart === null ? 0 : now - this.seriesStart,
      responsesRejected: this.seriesResponsesRejected,
      lastRejection: last,
      cookieReplies: this.counters.cookieReplies,
    });
  }

  /** Abandons the handshake in flight (the edge's own timeout). */
  cancelHandshake(): void {
    this.timers.retransmitHandshakeAt = null;
    this.endSeries();
  }

  /** Wipes every key and stops all timers; the peer is unusable afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timers.stop();
    this.wipeSessions();
    this.cookie.clear();
    this.staged = [];
    this.crypto.zeroize(this.keys.privateKey);
    this.crypto.zeroize(this.keys.presharedKey);
    this.crypto.zeroize(this.keys.staticStatic);
  }

  // --- internals -------------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new WgError(WgErrorCode.CLOSED, 'peer is closed');
  }

  private endSeries(): void {
    this.handshake?.zeroize();
    this.handshake = null;
    this.seriesStart = null;
  }

  private wipeSessions(): void {
    this.current?.zeroize();
    this.previous?.zeroize();
    this.current = this.previous = null;
    this.endSeries();
  }

  private sendInitiation(out: WgOutput, now: number, isRetry: boolean): void {
    if (!isRetry) this.timers.handshakeAttempts = 0;
    if (this.lastSentHandshake !== null && now - this.lastSentHandshake < this.limits.rekeyTimeout) return;
    this.lastSentHandshake = now;
    if (this.handshake) {
      this.handshake.zeroize();
    } else {
      this.seriesStart = now;
      this.seriesAttempts = 0;
      this.cookieRetries = 0;
      this.lastRejection = null;
      this.seriesResponsesRejected = 0;
    }
    // Randomness order (relied on by the known-answer vectors): sender index, ephemeral, then timer jitter.
    const idx = this.crypto.randomBytes(4);
    const senderIndex = (((idx[0] ?? 0) | ((idx[1] ?? 0) << 8) | ((idx[2] ?? 0) << 16) | ((idx[3] ?? 0) << 24)) >>> 0);
    const seed = this.crypto.randomBytes(32);
    const hs = new InitiatorHandshake(this.keys, this.crypto, senderIndex, seed, this.timestamp(), now);
    this.crypto.zeroize(seed);
    this.cookie.addMacs(hs.message, now);
    this.handshake = hs;
    this.seriesAttempts++;
    this.counters.initiationsSent++;
    out.network.push(hs.message.slice());
    this.timers.anyAuthenticatedPacketTraversal(now);
    this.timers.anyAuthenticatedPacketSent();
    this.timers.handshakeInitiated(now);
    out.events.push({ type: 'handshake-initiated', at: now, attempt: this.seriesAttempts, senderIndex, withMac2: this.cookie.freshCookie(now) !== null });
  }

  private keepalive(out: WgOutput, now: number): void {
    if (this.staged.length === 0) this.staged.push(EMPTY);
    this.sendStaged(out, now);
  }

  /** wireguard-go's SendStagedPackets: with a usable session, encrypt everything staged; else handshake. */
  private sendStaged(out: WgOutput, now: number): void {
    if (this.staged.length === 0) return;
    const kp = this.current;
    if (!kp || !this.hasSession(now)) {
      this.sendInitiation(out, now, false);
      return;
    }
    const packets = this.staged;
    this.staged = [];
    for (const p of packets) {
      out.network.push(kp.seal(p, this.mtu, this.limits.rejectAfterMessages));
      this.counters.transportSent++;
      this.timers.anyAuthenticatedPacketTraversal(now);
      this.timers.anyAuthenticatedPacketSent();
      if (p.length === 0) this.counters.keepalivesSent++;
      else this.timers.dataSent(now);
    }
    // keepKeyFreshSending
    if (kp.sent > this.limits.rekeyAfterMessages || (kp.isInitiator && now - kp.createdAt > this.limits.rekeyAfterTime)) {
      this.sendInitiation(out, now, false);
    }
  }

  private receiveInner(d: Uint8Array, now: number, out: WgOutput): void {
    if (d.length < 4) throw new WgError(WgErrorCode.BAD_LENGTH, `datagram of ${d.length} bytes`);
    switch (messageType(d)) {
      case MSG_INITIATION:
        if (d.length !== INITIATION_SIZE) throw new WgError(WgErrorCode.BAD_LENGTH, `an initiation is ${INITIATION_SIZE} bytes, got ${d.length}`);
        throw new WgError(WgErrorCode.UNEXPECTED_INITIATION, 'this client only initiates handshakes');
      case MSG_RESPONSE:
        return this.receiveResponse(d, now, out);
      case MSG_COOKIE_REPLY:
        return this.receiveCookieReply(d, now, out);
      case MSG_TRANSPORT:
        return this.receiveTransport(d, now, out);
      default:
        throw new WgError(WgErrorCode.UNKNOWN_TYPE, `unknown message type 0x${messageType(d).toString(16)}`);
    }
  }

  private receiveResponse(d: Uint8Array, now: number, out: WgOutput): void {
    const r = parseResponse(d);
    if (!this.cookie.checkReceivedMac1(d)) throw new WgError(WgErrorCode.BAD_MAC1, 'response with an invalid mac1');
    const hs = this.handshake;
    if (!hs || r.receiver !== hs.senderIndex) throw new WgError(WgErrorCode.UNKNOWN_INDEX, 'response to no handshake in flight');
    let keys;
    try {
      keys = hs.consumeResponse(r);
    } catch (e) {
      if (e instanceof WgError) {
        this.lastRejection = e;
        this.seriesResponsesRejected++;
        this.counters.responsesRejected++;
      }
      throw e;
    }
    const kp = new Keypair(this.crypto, keys.sendKey, keys.receiveKey, hs.senderIndex, keys.remoteIndex, now, true);
    this.previous?.zeroize();
    this.previous = this.current;
    this.current = kp;
    const durationMs = this.seriesStart === null ? 0 : now - this.seriesStart;
    const attempts = this.seriesAttempts;
    this.handshake = null;
    this.seriesStart = null;
    this.counters.handshakesCompleted++;
    this.timers.anyAuthenticatedPacketTraversal(now);
    this.timers.anyAuthenticatedPacketReceived();
    this.timers.sessionDerived(now);
    this.timers.handshakeComplete();
    out.events.push({ type: 'handshake-complete', at: now, durationMs, rttMs: now - hs.createdAt, attempts });
    // Key confirmation: the responder cannot send under the new session before something arrives under it.
    this.keepalive(out, now);
  }

  private receiveCookieReply(d: Uint8Array, now: number, out: WgOutput): void {
    const c = parseCookieReply(d);
    const hs = this.handshake;
    if (!hs || c.receiver !== hs.senderIndex) throw new WgError(WgErrorCode.STALE_COOKIE, 'cookie reply for no handshake in flight');
    this.cookie.consumeReply(c.nonce, c.encryptedCookie, now);
    this.counters.cookieReplies++;
    out.events.push({ type: 'cookie-received', at: now });
    if (this.cookieRetries < MAX_COOKIE_RETRIES) {
      this.cookieRetries++;
      this.lastSentHandshake = null;
      this.sendInitiation(out, now, true);
    }
  }

  private receiveTransport(d: Uint8Array, now: number, out: WgOutput): void {
    const h = parseTransportHeader(d);
    const kp = this.current?.localIndex === h.receiver ? this.current : this.previous?.localIndex === h.receiver ? this.previous : null;
    if (!kp || kp.isZeroed) throw new WgError(WgErrorCode.UNKNOWN_INDEX, 'transport message for no session of ours');
    if (now - kp.createdAt >= this.limits.rejectAfterTime) throw new WgError(WgErrorCode.KEYS_EXPIRED, 'session older than REJECT_AFTER_TIME');
    const plaintext = kp.open(d, h.counter, this.limits.rejectAfterMessages);
    this.counters.transportReceived++;
    this.timers.anyAuthenticatedPacketTraversal(now);
    this.timers.anyAuthenticatedPacketReceived();
    // keepKeyFreshReceiving: a session about to expire, and we only receive: handshake once, now.
    const cur = this.current;
    if (!this.timers.sentLastMinuteHandshake && cur && cur.isInitiator && now - cur.createdAt > this.limits.rejectAfterTime - this.limits.keepaliveTimeout - this.limits.rekeyTimeout) {
      this.timers.sentLastMinuteHandshake = true;
      this.sendInitiation(out, now, false);
    }
    if (plaintext.length === 0) {
      this.counters.keepalivesReceived++;
      out.events.push({ type: 'keepalive-received', at: now });
      return;
    }
    this.timers.dataReceived(now);
    out.tunnel.push(trimIpPacket(plaintext));
  }
}
