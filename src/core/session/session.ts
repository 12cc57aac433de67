/**
 * An established LP session (either role): outer AEAD with per-direction keys, replay window, Noise
 * transport inside EncryptedData, and subsession rekeying (KKpsk0 tunnelled in this session).
 *
 * Sans-I/O: `receive(bytes)` returns what to send back and what happened; `send*()` returns packet bytes.
 * Unauthenticated input (failed replay check or outer AEAD) never changes state.
 */
import { LpError, LpErrorCode, fail } from '../errors.js';
import { compareBytes } from '../bytes.js';
import type { KeyPair, Primitives } from '../crypto/primitives.js';
import { type Packet, type Header, CONTENT_OFFSET, MessageType, MAX_COUNTER, TRAILER_LEN, openPacket, packetFrame, parseHeader, sealPacket, sealPacketInPlace, messageTypeName } from '../codec/packet.js';
import { type AppMessage, decodeAppMessage, encodeAppMessageInto } from '../codec/app.js';
import { decodeSubsessionPayload, decodeSubsessionReady, encodeSubsessionPayload, encodeSubsessionReady } from '../codec/messages.js';
import { CipherState, HandshakeState, NOISE_TAG_LENGTH } from '../noise/index.js';
import { type DirectionalKeys, outerKeys, sessionSecret, subsessionPsk, wireguardPsk } from '../handshake/key-schedule.js';
import { ReplayWindow } from './replay-window.js';

export const SessionState = {
  /** Sends and receives. */
  Transport: 'transport',
  /** A subsession handshake is in progress; the session still sends and receives. */
  SubsessionHandshaking: 'subsession-handshaking',
  /** Demoted after a promotion: receives only. */
  ReadOnly: 'read-only',
  Closed: 'closed',
} as const;
export type SessionState = (typeof SessionState)[keyof typeof SessionState];

export type Role = 'initiator' | 'responder';

export interface SessionParams {
  prims: Primitives;
  receiverIndex: number;
  /** Role in the handshake that created this session (fixes which outer key sends). */
  role: Role;
  /** Outer keys for this session. */
  keys: DirectionalKeys;
  /** Noise transport ciphers, oriented for this side. */
  noiseSend: CipherState;
  noiseRecv: CipherState;
  /** Session secret (chains subsession PSKs and the WireGuard PSK). */
  secret: Uint8Array;
  handshakeHash: Uint8Array;
  generation: number;
  localStatic: KeyPair;
  remoteStatic: Uint8Array;
  /** First counter this side sends with. */
  sendCounter: number;
  /** Counters of the peer already consumed by the handshake. */
  receivedCounters?: number[];
}

/** Everything `receive` can report; the caller performs the I/O. */
export interface SessionOutput {
  /** Packets to send back, in order (already sealed). */
  replies: Uint8Array[];
  /** Application message delivered by an EncryptedData packet. */
  delivered?: AppMessage;
  /** A subsession completed here and the new session replaced this one (this one is now read-only). */
  promoted?: Session;
  /** The peer reported that our proposed subsession index collides; a new Ready was sent. */
  indexCollision?: boolean;
  /** A subsession KK1 was answered; the peer will send Ready next. */
  subsessionAccepted?: boolean;
  /**
   * The packet was an authenticated copy of the last request this session answered, and `replies` is the
   * cached reply. Nothing changed (DESIGN.md §4.5, §5.4): callers must not refresh timers or routes for it,
   * and decide by its source whether to answer (see `takeRetransmissionAnswer`).
   */
  retransmission?: boolean;
  /**
   * An authenticated EncryptedData whose plaintext is not a valid AppMessage (unknown kind, bad encoding). Its
   * counter is spent; the caller answers with an `Error` carrying this code (DESIGN.md §8).
   */
  undecodable?: LpError;
}

/**
 * How many times one cached reply is re-sent to its requester's address. Loss recovery needs a few (the client
 * library re-sends a UDP request up to 4 times); anyone replaying a captured request gets no more than this.
 */
export const MAX_RETRANSMISSION_ANSWERS = 8;

export interface ReceiveContext {
  /** True if a receiver index is already used by another session/handshake (gateway tables). */
  indexInUse(index: number): boolean;
}

type Subsession =
  | { role: 'initiator'; hs: HandshakeState; stage: 'await-kk2' }
  | { role: 'initiator'; stage: 'await-confirm'; next: Session; newIndex: number }
  | { role: 'responder'; next: Session };

const NO_INDEX_CONTEXT: ReceiveContext = { indexInUse: () => false };

export class Session {
  private index: number;
  readonly role: Role;
  readonly generation: number;
  readonly handshakeHash: Uint8Array;
  private readonly prims: Primitives;
  private readonly sendKey: Uint8Array;
  private readonly recvKey: Uint8Array;
  private readonly noiseSend: CipherState;
  private readonly noiseRecv: CipherState;
  private readonly secret: Uint8Array;
  private readonly localStatic: KeyPair;
  private readonly remoteStatic: Uint8Array;
  private readonly replay = new ReplayWindow();
  private sendCounter: number;
  private sub: Subsession | null = null;
  private stateValue: SessionState = SessionState.Transport;
  /** Last authenticated request counter and the reply we sent to it (idempotent retransmission). */
  private lastRequestCounter = -1;
  private lastReply: Uint8Array | null = null;
  private retransmissionAnswers = 0;
  /** The session's 32-byte values in one allocation (see the constructor); wiped by `close`. */
  private readonly mem: Uint8Array;
  /**
   * Opaque to the core: the I/O edge's record of where this session's last new authenticated request came from
   * (a UDP copy of a request from anywhere else must not be answered with more bytes than it carried, §4.5).
   */
  returnRoute: unknown = null;

  constructor(p: SessionParams) {
    this.prims = p.prims;
    this.index = p.receiverIndex;
    this.role = p.role;
    // One allocation for the session's 32-byte values: a gateway holds up to a million sessions, and a
    // separate ArrayBuffer per key costs more than the key. Copies also stop `remoteStatic` (a view into
    // the ClientHello packet) from keeping that packet alive.
    const mem = new Uint8Array(224);
    this.mem = mem;
    mem.set(p.role === 'initiator' ? p.keys.i2r : p.keys.r2i, 0);
    mem.set(p.role === 'initiator' ? p.keys.r2i : p.keys.i2r, 32);
    mem.set(p.secret, 64);
    mem.set(p.remoteStatic, 96);
    mem.set(p.handshakeHash, 128);
    this.sendKey = mem.subarray(0, 32);
    this.recvKey = mem.subarray(32, 64);
    this.secret = mem.subarray(64, 96);
    this.remoteStatic = mem.subarray(96, 128);
    this.handshakeHash = mem.subarray(128, 160);
    for (const k of [p.keys.i2r, p.keys.r2i, p.secret]) p.prims.zeroize(k);
    p.noiseSend.moveKeyInto(mem.subarray(160, 192));
    p.noiseRecv.moveKeyInto(mem.subarray(192, 224));
    this.noiseSend = p.noiseSend;
    this.noiseRecv = p.noiseRecv;
    this.generation = p.generation;
    this.localStatic = p.localStatic;
    this.sendCounter = p.sendCounter;
    for (const c of p.receivedCounters ?? []) this.replay.mark(c);
  }

  get receiverIndex(): number {
    return this.index;
  }

  get state(): SessionState {
    return this.stateValue;
  }

  /** The peer's X25519 static key (client: gateway; gateway: client). */
  get peerStatic(): Uint8Array {
    return this.remoteStatic;
  }

  /** WireGuard PSK for a peer registered over this session; both sides compute the same value. */
  wireguardPsk(wgPublicKey: Uint8Array): Uint8Array {
    return wireguardPsk(this.prims, this.secret, wgPublicKey);
  }

  // ---- sending ----------------------------------------------------------------------------------

  private nextCounter(): number {
    if (this.sendCounter >= MAX_COUNTER) fail(LpErrorCode.COUNTER_EXHAUSTED, 'send counter exhausted; rekey');
    return this.sendCounter++;
  }

  private assertCanSend(answer = false): void {
    // A demoted session still answers the requests it receives (with an error: DESIGN.md §6), it starts nothing.
    if (this.stateValue === SessionState.ReadOnly && !answer) fail(LpErrorCode.SESSION_READ_ONLY, 'session was demoted by a rekey and only receives');
    if (this.stateValue === SessionState.Closed) fail(LpErrorCode.SESSION_CLOSED, 'session is closed');
  }

  /** Seal any LP message in this session (next counter, own direction's key). */
  seal(type: MessageType, content: Uint8Array): Uint8Array {
    this.assertCanSend();
    return sealPacket(this.prims, this.sendKey, { receiverIndex: this.receiverIndex, counter: this.nextCounter(), type, content });
  }

  /** Encrypt an application message as EncryptedData (Noise transport, nonce = LP counter). */
  send(msg: AppMessage): Uint8Array {
    return encodeAppMessageInto(msg, (plaintext) => this.sendRaw(plaintext));
  }

  /** `plaintext` is copied into the packet (a view of a scratch buffer is fine). */
  sendRaw(plaintext: Uint8Array, answer = false): Uint8Array {
    this.assertCanSend(answer);
    const counter = this.nextCounter();
    // One allocation: the plaintext is copied into the packet, Noise-sealed in place (nonce = the LP counter),
    // then the inner part is sealed in place under the outer key.
    const out = packetFrame(this.receiverIndex, counter, MessageType.EncryptedData, plaintext.length + NOISE_TAG_LENGTH);
    out.set(plaintext, CONTENT_OFFSET);
    this.noiseSend.sealInPlaceAt(counter, out.subarray(CONTENT_OFFSET, out.length - TRAILER_LEN), plaintext.length);
    sealPacketInPlace(this.prims, this.sendKey, out, counter);
    return out;
  }

  /**
   * Send `msg` as the reply to the request with `requestCounter` (default: the last delivered one); a retransmitted
   * request gets the same bytes. An answer that comes after a newer request arrived (UDP requests served
   * concurrently) is sent but not cached: the cache holds only the reply to the last request. A demoted (read-only)
   * session may still answer this way; only a closed one may not.
   */
  reply(msg: AppMessage, requestCounter = this.lastRequestCounter): Uint8Array {
    const packet = encodeAppMessageInto(msg, (plaintext) => this.sendRaw(plaintext, true));
    if (requestCounter === this.lastRequestCounter) this.setLastReply(packet);
    return packet;
  }

  /** Remember `packet` as the reply to the request with `counter` (handshake completion, promotion Ack). */
  rememberReply(packet: Uint8Array, counter = this.lastRequestCounter): void {
    this.lastRequestCounter = counter;
    this.setLastReply(packet);
  }

  /**
   * Counts one re-sent copy of the cached reply; false once it was re-sent MAX_RETRANSMISSION_ANSWERS times.
   * The caller counts only copies it would send to the requester's own address: copies from elsewhere must not
   * use up the requester's loss recovery.
   */
  takeRetransmissionAnswer(): boolean {
    if (this.retransmissionAnswers >= MAX_RETRANSMISSION_ANSWERS) return false;
    this.retransmissionAnswers++;
    return true;
  }

  /** A new cached reply (sealed bytes, nothing secret: it may still sit in a socket's send queue, so it is not wiped). */
  private setLastReply(packet: Uint8Array | null): void {
    this.lastReply = packet;
    this.retransmissionAnswers = 0;
  }

  // ---- subsessions ------------------------------------------------------------------------------

  /** Start a rekey: returns the SubsessionKK1 packet. */
  initiateSubsession(): Uint8Array {
    this.assertCanSend();
    if (this.sub) fail(LpErrorCode.SUBSESSION_IN_PROGRESS, 'a subsession is already in progress');
    const hs = this.kkHandshake(true);
    const kk1 = this.seal(MessageType.SubsessionKK1, encodeSubsessionPayload(hs.writeMessage(EMPTY)));
    this.sub = { role: 'initiator', hs, stage: 'await-kk2' };
    this.stateValue = SessionState.SubsessionHandshaking;
    return kk1;
  }

  private kkHandshake(initiator: boolean): HandshakeState {
    return new HandshakeState(this.prims, {
      pattern: 'KKpsk0',
      initiator,
      s: this.localStatic,
      rs: this.remoteStatic,
      psks: [subsessionPsk(this.prims, this.secret, this.generation + 1)],
    });
  }

  /** Build the next-generation session from a completed KKpsk0 handshake. */
  private childSession(hs: HandshakeState, role: Role, receiverIndex: number): Session {
    const { send, recv } = hs.split();
    const h = hs.getHandshakeHash();
    const psk = subsessionPsk(this.prims, this.secret, this.generation + 1);
    const secret = sessionSecret(this.prims, psk, h);
    return new Session({
      prims: this.prims,
      receiverIndex,
      role,
      keys: outerKeys(this.prims, secret),
      noiseSend: send,
      noiseRecv: recv,
      secret,
      handshakeHash: h,
      generation: this.generation + 1,
      localStatic: this.localStatic,
      remoteStatic: this.remoteStatic,
      sendCounter: 0,
    });
  }

  private pickIndex(ctx: ReceiveContext): number {
    for (let i = 0; i < 64; i++) {
      const b = this.prims.randomBytes(4);
      const idx = new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
      if (idx !== 0 && idx !== this.receiverIndex && !ctx.indexInUse(idx)) return idx;
    }
    return fail(LpErrorCode.RECEIVER_INDEX_COLLISION, 'could not find a free receiver index');
  }

  // ---- receiving --------------------------------------------------------------------------------

  /**
   * Process one packet addressed to this session. Throws LpError for anything rejected; state changes
   * only after the packet authenticated. `header` may be passed if the router already parsed it.
   */
  receive(bytes: Uint8Array, ctx: ReceiveContext = NO_INDEX_CONTEXT, header?: Header): SessionOutput {
    if (this.stateValue === SessionState.Closed) fail(LpErrorCode.SESSION_CLOSED, 'session is closed');
    const h = header ?? parseHeader(bytes);
    // The Ack confirming our own subsession promotion arrives under the new index.
    if (this.sub?.role === 'initiator' && this.sub.stage === 'await-confirm' && h.receiverIndex === this.sub.newIndex) return this.receivePromotionAck(bytes, h);
    if (h.receiverIndex !== this.receiverIndex) fail(LpErrorCode.RECEIVER_INDEX_MISMATCH, `packet for index ${h.receiverIndex} reached session ${this.receiverIndex}`);

    if (h.counter === this.lastRequestCounter && this.lastReply) {
      // A retransmission of the request we already answered: authenticate, then offer the same reply; nothing
      // changes. Whether it is sent is the caller's call (its source, `takeRetransmissionAnswer`).
      openPacket(this.prims, this.recvKey, bytes, h);
      return { replies: [this.lastReply], retransmission: true };
    }
    this.replay.check(h.counter);
    const p = openPacket(this.prims, this.recvKey, bytes, h);
    const out = this.dispatch(p, ctx);
    this.replay.mark(h.counter);
    this.lastRequestCounter = h.counter;
    this.setLastReply(out.replies.length === 1 ? (out.replies[0] as Uint8Array) : null);
    return out;
  }

  private dispatch(p: Packet, ctx: ReceiveContext): SessionOutput {
    switch (p.type) {
      case MessageType.EncryptedData: {
        // p.content is a view of the freshly opened inner part, owned here: opened in place.
        const plaintext = this.noiseRecv.openInPlaceAt(p.counter, p.content);
        try {
          return { replies: [], delivered: decodeAppMessage(plaintext) };
        } catch (e) {
          if (e instanceof LpError) return { replies: [], undecodable: e };
          throw e;
        }
      }
      case MessageType.SubsessionKK1:
        return this.onKk1(p);
      case MessageType.SubsessionKK2:
        return this.onKk2(p, ctx);
      case MessageType.SubsessionReady:
        return this.onReady(p, ctx);
      case MessageType.SubsessionAbort:
        // The peer won a simultaneous initiation; its KK1 (answered as responder) decides. Stale Aborts are ignored.
        return { replies: [] };
      case MessageType.Collision:
        return this.onCollision(ctx);
      default:
        return fail(LpErrorCode.UNEXPECTED_MESSAGE, `${messageTypeName(p.type)} is not valid in an established session`);
    }
  }

  private onKk1(p: Packet): SessionOutput {
    this.assertCanSend();
    const payload = decodeSubsessionPayload(p.content);
    if (this.sub?.role === 'initiator') {
      if (this.sub.stage === 'await-confirm') fail(LpErrorCode.SUBSESSION_IN_PROGRESS, 'KK1 received while our promotion awaits confirmation');
      // Simultaneous initiation: the lower X25519 static key loses and becomes responder.
      if (compareBytes(this.localStatic.publicKey, this.remoteStatic) > 0) return { replies: [this.seal(MessageType.SubsessionAbort, EMPTY)] };
    }
    // Our own attempt is dropped only once the peer's KK1 has passed Noise.
    const hs = this.kkHandshake(false);
    hs.readMessage(payload);
    if (this.sub?.role === 'initiator' && 'hs' in this.sub) this.sub.hs.destroy();
    const kk2 = encodeSubsessionPayload(hs.writeMessage(EMPTY));
    // Index is chosen by the initiator in Ready; the child is re-labelled then.
    this.sub = { role: 'responder', next: this.childSession(hs, 'responder', 0) };
    this.stateValue = SessionState.SubsessionHandshaking;
    return { replies: [this.seal(MessageType.SubsessionKK2, kk2)], subsessionAccepted: true };
  }

  private onKk2(p: Packet, ctx: ReceiveContext): SessionOutput {
    if (this.sub?.role !== 'initiator' || this.sub.stage !== 'await-kk2') fail(LpErrorCode.INVALID_STATE, 'unexpected SubsessionKK2');
    const hs = this.sub.hs;
    hs.readMessage(decodeSubsessionPayload(p.content));
    const newIndex = this.pickIndex(ctx);
    const next = this.childSession(hs, 'initiator', newIndex);
    this.sub = { role: 'initiator', stage: 'await-confirm', next, newIndex };
    return { replies: [this.seal(MessageType.SubsessionReady, encodeSubsessionReady(newIndex))] };
  }

  /** Responder: the initiator proposes the new index. Collision-checked before anything is demoted. */
  private onReady(p: Packet, ctx: ReceiveContext): SessionOutput {
    if (this.sub?.role !== 'responder') fail(LpErrorCode.INVALID_STATE, 'unexpected SubsessionReady');
    const newIndex = decodeSubsessionReady(p.content);
    if (newIndex === 0 || newIndex === this.receiverIndex || ctx.indexInUse(newIndex)) {
      return { replies: [this.seal(MessageType.Collision, EMPTY)] };
    }
    const next = this.sub.next;
    next.assignIndex(newIndex);
    this.sub = null;
    this.stateValue = SessionState.ReadOnly;
    const ack = next.seal(MessageType.Ack, EMPTY);
    next.rememberReply(ack);
    return { replies: [ack], promoted: next };
  }

  /** Initiator: our proposed index collided at the peer; propose another (parent still live). */
  private onCollision(ctx: ReceiveContext): SessionOutput {
    if (this.sub?.role !== 'initiator' || this.sub.stage !== 'await-confirm') fail(LpErrorCode.UNEXPECTED_MESSAGE, 'Collision is only valid in reply to SubsessionReady');
    const newIndex = this.pickIndex({ indexInUse: (i) => ctx.indexInUse(i) || i === (this.sub as { newIndex: number }).newIndex });
    this.sub.next.assignIndex(newIndex);
    this.sub = { ...this.sub, newIndex };
    return { replies: [this.seal(MessageType.SubsessionReady, encodeSubsessionReady(newIndex))], indexCollision: true };
  }

  private receivePromotionAck(bytes: Uint8Array, h: Header): SessionOutput {
    const sub = this.sub as { next: Session };
    const p = openPacket(sub.next.prims, sub.next.recvKey, bytes, h);
    if (p.type !== MessageType.Ack) fail(LpErrorCode.UNEXPECTED_MESSAGE, `expected Ack in the new session, got ${messageTypeName(p.type)}`);
    sub.next.replay.mark(h.counter);
    const next = sub.next;
    this.sub = null;
    this.stateValue = SessionState.ReadOnly;
    return { replies: [], promoted: next };
  }

  /** A child's index is chosen after its keys exist (by the subsession initiator, in Ready). */
  private assignIndex(receiverIndex: number): void {
    if (this.sendCounter !== 0) fail(LpErrorCode.INVALID_STATE, 're-indexing a session that already sent');
    this.index = receiverIndex;
  }

  /** Drop all key material. */
  close(): void {
    if (this.stateValue === SessionState.Closed) return;
    this.stateValue = SessionState.Closed;
    this.noiseSend.destroy();
    this.noiseRecv.destroy();
    // Keys, secret, handshake hash, peer key: the whole shared allocation.
    this.prims.zeroize(this.mem);
    this.setLastReply(null);
    this.returnRoute = null;
    if (this.sub && 'hs' in this.sub) this.sub.hs.destroy();
    else if (this.sub) this.sub.next.close();
    this.sub = null;
  }
}

const EMPTY = new Uint8Array(0);
