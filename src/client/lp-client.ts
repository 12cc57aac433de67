/**
 * Client library: an LP session with a gateway over any Transport — handshake (with Collision and Busy
 * handled), request/response of application messages, registration, rekey. Telescoping is a
 * ForwardTransport over an entry connection (telescoping.ts), so a nested session is just another
 * LpConnection.
 */
import {
  type AppMessage,
  type ClientKeys,
  type CryptoSuite,
  type GatewayPin,
  InitiatorHandshake,
  KKT_UDP_PAD_TO,
  LpError,
  type RegisterRequest,
  type RegisterResponse,
  type Session,
  clientKeysFromSeed,
  defaultSuite,
} from '../core/index.js';
import { ClientError } from './errors.js';
import type { Transport } from './transports.js';

export interface Timeouts {
  /** Whole handshake, ClientHello to the sealed Ack. */
  handshakeMs: number;
  /** One request/response exchange (registration, forward). */
  requestMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { handshakeMs: 15_000, requestMs: 30_000 };

export interface ConnectOptions {
  transport: Transport;
  gateway: GatewayPin;
  suite?: CryptoSuite;
  /** Client identity; a fresh random key per connection by default (unlinkable sessions). */
  clientKeys?: ClientKeys;
  timeouts?: Partial<Timeouts>;
  /** Give up after this many Busy answers in a row. */
  maxBusyRetries?: number;
  /** Clock, seconds (tests). */
  nowSec?: () => number;
}

export interface HandshakeTimings {
  handshakeMs: number;
  busyRetries: number;
  collisions: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class LpConnection {
  private current: Session;
  readonly timings: HandshakeTimings;
  private readonly timeouts: Timeouts;

  private constructor(
    private readonly transport: Transport,
    session: Session,
    timeouts: Timeouts,
    timings: HandshakeTimings,
  ) {
    this.current = session;
    this.timeouts = timeouts;
    this.timings = timings;
  }

  static async connect(o: ConnectOptions): Promise<LpConnection> {
    const suite = o.suite ?? defaultSuite;
    const timeouts = { ...DEFAULT_TIMEOUTS, ...o.timeouts };
    const now = o.nowSec ?? (() => Math.floor(Date.now() / 1000));
    const hs = new InitiatorHandshake({
      suite,
      client: o.clientKeys ?? clientKeysFromSeed(suite, suite.prims.randomBytes(32)),
      gateway: o.gateway,
      // Only a direct UDP request needs padding; forwarded and TCP requests cannot amplify.
      kktPadTo: o.transport.kind === 'udp' ? KKT_UDP_PAD_TO : 0,
    });
    const started = Date.now();
    const deadline = started + timeouts.handshakeMs;
    const maxBusy = o.maxBusyRetries ?? 5;
    let busyRetries = 0;
    let out = hs.start(now());
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new ClientError('LPC_ERR_HANDSHAKE_TIMEOUT', `handshake did not complete within ${timeouts.handshakeMs} ms (stage ${hs.stage})`);
      if (out.kind === 'established') {
        return new LpConnection(o.transport, out.session, timeouts, { handshakeMs: Date.now() - started, busyRetries, collisions: hs.collisions });
      }
      let packet: Uint8Array;
      if (out.kind === 'busy') {
        if (++busyRetries > maxBusy) throw new ClientError('LPC_ERR_GATEWAY_BUSY', `gateway answered Busy ${busyRetries} times`, out.retryAfterMs);
        await sleep(Math.min(out.retryAfterMs ?? 250, Math.max(0, deadline - Date.now())));
        packet = hs.retransmit();
      } else packet = out.packet;
      let reply: Uint8Array;
      try {
        reply = await o.transport.request(packet, left);
      } catch (e) {
        throw ClientError.from(e);
      }
      try {
        out = hs.receive(reply, now());
      } catch (e) {
        throw ClientError.from(e);
      }
    }
  }

  get session(): Session {
    return this.current;
  }

  /** Send one application message and return the gateway's reply (an `error` reply becomes a ClientError). */
  async request(msg: AppMessage, timeoutMs = this.timeouts.requestMs): Promise<AppMessage> {
    const reply = await this.exchange(this.current.send(msg), timeoutMs);
    let out;
    try {
      out = this.current.receive(reply);
    } catch (e) {
      throw ClientError.from(e);
    }
    if (out.undecodable) throw new ClientError('LPC_ERR_UNEXPECTED_REPLY', `the gateway's reply is not an application message this client knows (${out.undecodable.code}: ${out.undecodable.message})`);
    const m = out.delivered;
    if (!m) throw new ClientError('LPC_ERR_UNEXPECTED_REPLY', 'reply carried no application message');
    if (m.kind === 'error') throw new ClientError(m.error.code, m.error.message, m.error.retryAfterMs);
    return m;
  }

  private async exchange(packet: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    try {
      return await this.transport.request(packet, timeoutMs);
    } catch (e) {
      throw ClientError.from(e);
    }
  }

  async register(request: RegisterRequest): Promise<RegisterResponse> {
    const m = await this.request({ kind: 'register', request });
    if (m.kind !== 'registerResponse') throw new ClientError('LPC_ERR_UNEXPECTED_REPLY', `expected a registration response, got ${m.kind}`);
    return m.response;
  }

  async ping(payload = new Uint8Array(8)): Promise<void> {
    const m = await this.request({ kind: 'ping', payload });
    if (m.kind !== 'pong') throw new ClientError('LPC_ERR_UNEXPECTED_REPLY', `expected pong, got ${m.kind}`);
  }

  /**
   * Rekey: KK1 → KK2 → Ready → Ack in the new session (or Collision → another index). Afterwards this
   * connection uses the new session; the old one only receives.
   */
  async rekey(maxCollisions = 8): Promise<{ oldIndex: number; newIndex: number }> {
    const parent = this.current;
    const oldIndex = parent.receiverIndex;
    try {
      let reply = await this.exchange(parent.initiateSubsession(), this.timeouts.requestMs);
      let out = parent.receive(reply);
      for (let i = 0; i <= maxCollisions; i++) {
        if (out.promoted) {
          this.current = out.promoted;
          return { oldIndex, newIndex: out.promoted.receiverIndex };
        }
        const next = out.replies[0];
        if (!next) throw new ClientError('LPC_ERR_UNEXPECTED_REPLY', 'rekey stalled: nothing to send');
        reply = await this.exchange(next, this.timeouts.requestMs);
        out = parent.receive(reply);
      }
      throw new ClientError('LP_ERR_RECEIVER_INDEX_COLLISION', `rekey: ${maxCollisions} index collisions in a row`);
    } catch (e) {
      if (e instanceof LpError || !(e instanceof ClientError)) throw ClientError.from(e);
      throw e;
    }
  }

  close(): void {
    this.transport.close();
    this.current.close();
  }
}
