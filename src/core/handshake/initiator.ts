/**
 * Client side of the LP handshake (DESIGN.md §4):
 *   start() → ClientHello;  Ack (routability token) → KKTRequest (hello ‖ token ‖ frame signed with index and token);
 *   Collision (after the hello or the KKTRequest) → new ClientHello (fresh index);
 *   KKTResponse ‖ gateway nonce (verified + pinned) → msg1 (cleartext: KEM ciphertext ‖ Noise e, es ‖ binder);
 *   msg2 (sealed) → msg3 (sealed: s, se, psk);  Ack (sealed) → established Session.
 * A cleartext Busy at any step reports the gateway's retry hint; `retransmit()` gives the last packet again.
 */
import { LpErrorCode, fail } from '../errors.js';
import { ROUTABILITY_TOKEN_LEN } from './routability-token.js';
import type { CryptoSuite } from '../crypto/index.js';
import { type Packet, MessageType, openPacket, parseClear, parseHeader, sealPacket, serializeClear, messageTypeName } from '../codec/packet.js';
import { decodeKktResponseContent, encodeClientHello, encodeHandshake1, encodeKktRequestContent, makeSalt, peekBusy } from '../codec/messages.js';
import { buildKktRequest, kktBinding, processKktResponse } from '../kkt/kkt.js';
import { HandshakeState } from '../noise/index.js';
import { Session } from '../session/session.js';
import type { ClientKeys, GatewayPin } from './identity.js';
import { derivePsk, kktTranscriptHash, msg1Binder, outerKeys, sessionSecret, type DirectionalKeys } from './key-schedule.js';
import { NOISE_PATTERN } from './responder.js';

export const InitiatorStage = {
  Idle: 'idle',
  AwaitHelloReply: 'await-hello-reply',
  AwaitKktResponse: 'await-kkt-response',
  AwaitMsg2: 'await-msg2',
  AwaitAck: 'await-ack',
  Established: 'established',
} as const;
export type InitiatorStage = (typeof InitiatorStage)[keyof typeof InitiatorStage];

export interface InitiatorConfig {
  suite: CryptoSuite;
  client: ClientKeys;
  gateway: GatewayPin;
  /** Pad the KKTRequest content to this many bytes (UDP anti-amplification); 0 = no padding. */
  kktPadTo?: number;
  /** Fixed first receiver index (tests); otherwise random and never 0. */
  receiverIndex?: number;
}

export type InitiatorOutput =
  | { kind: 'send'; packet: Uint8Array }
  | { kind: 'busy'; retryAfterMs: number | null }
  | { kind: 'established'; session: Session };

/**
 * Content size that makes a padded KKTRequest packet as large as the ML-KEM-768 KKTResponse packet (frame 1271 ‖
 * nonce 32 = 1303 content bytes, 1337-byte packets): a UDP KKTRequest smaller than that is not answered.
 */
export const KKT_UDP_PAD_TO = 7 + 1184 + 16 + 64 + 32;

/** A gateway may answer any step with a cleartext Busy (optionally with a retry hint). */

export class InitiatorHandshake {
  private stageValue: InitiatorStage = InitiatorStage.Idle;
  private index = 0;
  private hello: Uint8Array | null = null;
  private token: Uint8Array | null = null;
  private lastSent: Uint8Array | null = null;
  private kktRequestFrame: Uint8Array | null = null;
  private noise: HandshakeState | null = null;
  private psk: Uint8Array | null = null;
  private keys: DirectionalKeys | null = null;
  /** The gateway's static key in X25519 form: converted once (the conversion costs about two scalar multiplications). */
  private gatewayX25519: Uint8Array | null = null;
  /** Collision replies seen (each makes a new index). */
  collisions = 0;

  constructor(private readonly cfg: InitiatorConfig) {}

  get stage(): InitiatorStage {
    return this.stageValue;
  }

  get receiverIndex(): number {
    return this.index;
  }

  private randomIndex(): number {
    for (;;) {
      const b = this.cfg.suite.prims.randomBytes(4);
      const v = new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
      if (v !== 0) return v; // index 0 is the bootstrap index and never valid for a session
    }
  }

  private sent(packet: Uint8Array): InitiatorOutput {
    this.lastSent = packet;
    return { kind: 'send', packet };
  }

  /** The ClientHello that opens the handshake. */
  start(nowSec: number): InitiatorOutput {
    const restart = this.stageValue === InitiatorStage.AwaitHelloReply || this.stageValue === InitiatorStage.AwaitKktResponse;
    if (this.stageValue !== InitiatorStage.Idle && !restart) fail(LpErrorCode.INVALID_STATE, 'handshake already started');
    const { prims } = this.cfg.suite;
    this.index = this.stageValue === InitiatorStage.Idle && this.cfg.receiverIndex !== undefined ? this.cfg.receiverIndex : this.randomIndex();
    if (this.index === 0) fail(LpErrorCode.RECEIVER_INDEX_ZERO, 'receiver index 0 is reserved for ClientHello');
    const salt = makeSalt(Math.floor(nowSec), prims.randomBytes(24));
    this.hello = encodeClientHello({
      receiverIndex: this.index,
      clientX25519: this.cfg.client.x25519.publicKey,
      clientEd25519: this.cfg.client.ed25519.publicKey,
      salt,
    });
    this.token = null;
    this.stageValue = InitiatorStage.AwaitHelloReply;
    return this.sent(serializeClear({ receiverIndex: 0, counter: 0, type: MessageType.ClientHello, content: this.hello }));
  }

  /** The last packet sent, for a retry after a timeout or Busy. */
  retransmit(): Uint8Array {
    if (!this.lastSent) fail(LpErrorCode.INVALID_STATE, 'nothing sent yet');
    return this.lastSent;
  }

  receive(bytes: Uint8Array, nowSec: number): InitiatorOutput {
    const h = parseHeader(bytes);
    if (h.receiverIndex !== this.index && h.receiverIndex !== 0) fail(LpErrorCode.RECEIVER_INDEX_MISMATCH, `reply for index ${h.receiverIndex}, expected ${this.index}`);
    const busy = peekBusy(bytes);
    if (busy !== undefined) return { kind: 'busy', retryAfterMs: busy };
    switch (this.stageValue) {
      case InitiatorStage.AwaitHelloReply:
      case InitiatorStage.AwaitKktResponse: {
        const p = this.parseClearZero(bytes);
        if (p.type === MessageType.Collision) {
          this.collisions++;
          return this.start(nowSec);
        }
        if (this.stageValue === InitiatorStage.AwaitKktResponse) return this.onKktResponse(this.expect(p, MessageType.KKTResponse));
        this.expect(p, MessageType.Ack);
        if (p.content.length !== ROUTABILITY_TOKEN_LEN) fail(LpErrorCode.BAD_TOKEN, 'the Ack to a ClientHello must carry a 32-byte routability token');
        return this.sendKktRequest(p.content);
      }
      case InitiatorStage.AwaitMsg2:
        return this.onMsg2(bytes);
      case InitiatorStage.AwaitAck:
        return this.onAck(bytes);
      default:
        return fail(LpErrorCode.INVALID_STATE, `handshake is ${this.stageValue}`);
    }
  }

  private parseClearZero(bytes: Uint8Array): Packet {
    const p = parseClear(bytes);
    if (p.counter !== 0) fail(LpErrorCode.UNEXPECTED_COUNTER, `cleartext ${messageTypeName(p.type)} with counter ${p.counter}, expected 0`);
    return p;
  }

  private expect(p: Packet, type: MessageType): Packet {
    if (p.type !== type) fail(LpErrorCode.UNEXPECTED_MESSAGE, `expected ${messageTypeName(type)}, got ${messageTypeName(p.type)}`);
    return p;
  }

  private sendKktRequest(token: Uint8Array): InitiatorOutput {
    const { prims, kem } = this.cfg.suite;
    this.token = Uint8Array.from(token);
    // The padding is counted from the whole content: hello (100) ‖ token (32) ‖ frame ‖ zeros.
    const padTo = Math.max(0, (this.cfg.kktPadTo ?? 0) - 132);
    const { content, frame } = buildKktRequest(prims, kem, this.cfg.client.ed25519, prims.randomBytes(16), kktBinding(this.index, this.token), padTo);
    this.kktRequestFrame = frame;
    this.stageValue = InitiatorStage.AwaitKktResponse;
    return this.sent(serializeClear({ receiverIndex: this.index, counter: 0, type: MessageType.KKTRequest, content: encodeKktRequestContent(this.hello as Uint8Array, this.token, content) }));
  }

  private onKktResponse(p: Packet): InitiatorOutput {
    const { prims, kem } = this.cfg.suite;
    const requestFrame = this.kktRequestFrame as Uint8Array;
    const token = this.token as Uint8Array;
    const { frame: responseFrame, gatewayNonce } = decodeKktResponseContent(p.content);
    const { kemPublicKey, frame } = processKktResponse(prims, kem, this.cfg.gateway.ed25519Public, this.cfg.gateway.kemKeyHash, requestFrame, responseFrame, kktBinding(this.index, token, gatewayNonce));
    const { ciphertext, sharedSecret } = kem.encapsulate(kemPublicKey, prims.randomBytes(32));
    const gatewayX25519 = (this.gatewayX25519 = prims.ed25519PkToX25519(this.cfg.gateway.ed25519Public));
    const staticDh = prims.x25519(this.cfg.client.x25519.secretKey, gatewayX25519);
    const transcript = kktTranscriptHash(prims, this.hello as Uint8Array, token, requestFrame, frame.raw, gatewayNonce);
    const psk = derivePsk(prims, { kemSharedSecret: sharedSecret, staticDh, transcript, kemCiphertext: ciphertext });
    prims.zeroize(sharedSecret);
    const hs = new HandshakeState(prims, { pattern: NOISE_PATTERN, initiator: true, s: this.cfg.client.x25519, rs: gatewayX25519, psks: [psk] });
    const msg1 = hs.writeMessage(new Uint8Array(0));
    const bound = encodeHandshake1(ciphertext, msg1);
    const content = encodeHandshake1(ciphertext, msg1, msg1Binder(prims, staticDh, transcript, bound));
    prims.zeroize(staticDh);
    this.noise = hs;
    this.psk = psk;
    this.keys = outerKeys(prims, psk);
    this.stageValue = InitiatorStage.AwaitMsg2;
    // Message 1 travels in cleartext: the gateway has no key until it has read it.
    return this.sent(serializeClear({ receiverIndex: this.index, counter: 0, type: MessageType.Handshake, content }));
  }

  private openSealed(bytes: Uint8Array, type: MessageType): Packet {
    const { prims } = this.cfg.suite;
    const keys = this.keys as DirectionalKeys;
    const p = openPacket(prims, keys.r2i, bytes);
    // Under the fresh r2i key the gateway sends message 2 with counter 0 and the Ack with 1 (DESIGN.md §4).
    const expected = type === MessageType.Handshake ? 0 : 1;
    if (p.counter !== expected) fail(LpErrorCode.UNEXPECTED_COUNTER, `${messageTypeName(type)} with counter ${p.counter}, expected ${expected}`);
    if (p.type !== type) fail(LpErrorCode.UNEXPECTED_MESSAGE, `expected ${messageTypeName(type)}, got ${messageTypeName(p.type)}`);
    return p;
  }

  private onMsg2(bytes: Uint8Array): InitiatorOutput {
    const { prims } = this.cfg.suite;
    const p = this.openSealed(bytes, MessageType.Handshake);
    const hs = this.noise as HandshakeState;
    hs.readMessage(p.content);
    const msg3 = hs.writeMessage(new Uint8Array(0));
    this.stageValue = InitiatorStage.AwaitAck;
    const keys = this.keys as DirectionalKeys;
    return this.sent(sealPacket(prims, keys.i2r, { receiverIndex: this.index, counter: 0, type: MessageType.Handshake, content: msg3 }));
  }

  private onAck(bytes: Uint8Array): InitiatorOutput {
    const { prims } = this.cfg.suite;
    const p = this.openSealed(bytes, MessageType.Ack);
    const hs = this.noise as HandshakeState;
    const { send, recv } = hs.split();
    const handshakeHash = hs.getHandshakeHash();
    const session = new Session({
      prims,
      receiverIndex: this.index,
      role: 'initiator',
      keys: this.keys as DirectionalKeys,
      noiseSend: send,
      noiseRecv: recv,
      secret: sessionSecret(prims, this.psk as Uint8Array, handshakeHash),
      handshakeHash,
      generation: 0,
      localStatic: this.cfg.client.x25519,
      remoteStatic: this.gatewayX25519 as Uint8Array,
      // Message 3 used i2r counter 0: the client's first request is 1.
      sendCounter: 1,
      receivedCounters: [0, p.counter],
    });
    prims.zeroize(this.psk as Uint8Array);
    this.psk = null;
    this.noise = null;
    this.stageValue = InitiatorStage.Established;
    return { kind: 'established', session };
  }
}
