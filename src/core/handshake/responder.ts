/**
 * Gateway side of the LP handshake (DESIGN.md §4). Stateless until the client has shown it receives the
 * gateway's replies:
 *   ClientHello → Ack carrying a routability token | Collision          (`answerClientHello`: nothing kept)
 *   KKTRequest (hello ‖ token ‖ signed frame) → KKTResponse ‖ nonce       (`acceptKktRequest`: a handshake is made)
 *   msg1 (clear) → msg2 (sealed);  msg3 (sealed) → Ack (sealed, in the new session) and an established Session.
 * Pure: bytes, `now` and the source address in, reply bytes and events out. Input that is not authenticated
 * (cleartext stages, failed outer AEAD) is rejected without changing state, so junk cannot kill a handshake; a
 * failure after authentication ends it (`failed`), and the caller removes it at once.
 */
import { LpErrorCode, LpError, fail } from '../errors.js';
import { copyBytes, equalBytes, isAllZero, u32le } from '../bytes.js';
import type { CryptoSuite } from '../crypto/index.js';
import { type Header, type Packet, HEADER_LEN, INNER_PREFIX_LEN, MessageType, allocClear, openPacket, parseClear, parseHeader, sealPacket, serializeClear, messageTypeName } from '../codec/packet.js';
import { type ClientHello, GATEWAY_NONCE_LEN, KKT_REQUEST_PREFIX_LEN, decodeClientHello, decodeHandshake1, decodeKktRequestContent, saltTimestamp } from '../codec/messages.js';
import { processKktRequest } from '../kkt/kkt.js';
import { HandshakeState } from '../noise/index.js';
import { Session } from '../session/session.js';
import type { GatewayKeys } from './identity.js';
import { derivePsk, kktTranscriptHash, msg1Binder, outerKeys, sessionSecret, type DirectionalKeys } from './key-schedule.js';
import type { RoutabilityTokens } from './routability-token.js';

export const NOISE_PATTERN = 'XKpsk3';
const EMPTY = new Uint8Array(0);
export const NOISE_MSG1_LEN = 48;
export const DEFAULT_TIMESTAMP_TOLERANCE_SEC = 30;
/** How often one KKTRequest is answered (first answer included): UDP loss recovery, never a reflector. */
export const MAX_KKT_ANSWERS = 4;
/** How often one message 1 is answered with the cached message 2 (first answer included). */
export const MAX_MSG1_ANSWERS = 4;

export const ResponderStage = {
  AwaitMsg1: 'await-msg1',
  AwaitMsg3: 'await-msg3',
  Established: 'established',
  Failed: 'failed',
} as const;
export type ResponderStage = (typeof ResponderStage)[keyof typeof ResponderStage];

export interface ResponderConfig {
  suite: CryptoSuite;
  keys: GatewayKeys;
  timestampToleranceSec?: number;
}

/** Where a cleartext handshake packet came from and when: the token binds the source's IP address. */
export interface PacketContext {
  nowSec: number;
  /** The sender's IP address as text (no port: the TCP transport uses a new connection per packet). */
  source: string;
}

export type HelloAnswer =
  /** Ack to the proposed index, content = the routability token. */
  | { kind: 'ack'; reply: Uint8Array }
  /** Index 0 proposed: answer Collision. */
  | { kind: 'collision'; reply: Uint8Array };

export type KktOutcome =
  | { kind: 'accepted'; handshake: ResponderHandshake; reply: Uint8Array }
  /** The index is in use: Collision, nothing kept. */
  | { kind: 'collision'; reply: Uint8Array }
  /** A signed refusal (unsupported ciphersuite): sent, nothing kept. */
  | { kind: 'refused'; reply: Uint8Array; error: LpError };

export interface ResponderOutput {
  reply?: Uint8Array;
  /** Set when message 3 completed the handshake. */
  session?: Session;
  /** The handshake ended in failure and must be removed. */
  failed?: LpError;
}

function clearReply(type: MessageType, receiverIndex: number, content: Uint8Array = new Uint8Array(0)): Uint8Array {
  return serializeClear({ receiverIndex, counter: 0, type, content });
}

/** Every cleartext packet carries counter 0 (DESIGN.md §4): nothing unauthenticated moves a counter. */
function parseClearZero(bytes: Uint8Array): Packet {
  const p = parseClear(bytes);
  if (p.counter !== 0) fail(LpErrorCode.UNEXPECTED_COUNTER, `cleartext ${messageTypeName(p.type)} with counter ${p.counter}, expected 0`);
  return p;
}

function checkTimestamp(hello: ClientHello, nowSec: number, toleranceSec: number): void {
  const ts = saltTimestamp(hello.salt);
  if (ts < nowSec - toleranceSec) fail(LpErrorCode.TIMESTAMP_TOO_OLD, `ClientHello timestamp ${ts} is more than ${toleranceSec}s old`);
  if (ts > nowSec + toleranceSec) fail(LpErrorCode.TIMESTAMP_TOO_NEW, `ClientHello timestamp ${ts} is more than ${toleranceSec}s ahead`);
}

/**
 * The checks of a ClientHello that need no key (DESIGN.md §4.1): header (0, 0), a cleartext ClientHello of
 * exactly 100 content bytes, a timestamp within the tolerance. Cheap (no cryptography), so an I/O edge can run
 * them before it charges a per-source rate limit: junk never drains a source's tokens. Throws LpError.
 */
export function parseClientHello(bytes: Uint8Array, nowSec: number, toleranceSec = DEFAULT_TIMESTAMP_TOLERANCE_SEC): ClientHello & { content: Uint8Array } {
  const p = parseClearZero(bytes);
  if (p.receiverIndex !== 0) fail(LpErrorCode.RECEIVER_INDEX_MISMATCH, 'ClientHello must be sent to receiver index 0');
  if (p.type !== MessageType.ClientHello) fail(LpErrorCode.UNEXPECTED_MESSAGE, `expected ClientHello on index 0, got ${messageTypeName(p.type)}`);
  const hello = decodeClientHello(p.content);
  checkTimestamp(hello, nowSec, toleranceSec);
  return { ...hello, content: p.content };
}

/**
 * Answer a packet with header receiver_index 0 (it must be a ClientHello) without keeping anything: an Ack to the
 * proposed index carrying a routability token for this hello and source (66 bytes for 134), or Collision for index 0.
 * Costs one keyed BLAKE3. Throws LpError (no reply) for malformed or stale hellos.
 */
export function answerClientHello(cfg: ResponderConfig, tokens: RoutabilityTokens, bytes: Uint8Array, ctx: PacketContext): HelloAnswer {
  const hello = parseClientHello(bytes, ctx.nowSec, cfg.timestampToleranceSec);
  if (hello.receiverIndex === 0) return { kind: 'collision', reply: clearReply(MessageType.Collision, 0) };
  return { kind: 'ack', reply: clearReply(MessageType.Ack, hello.receiverIndex, tokens.issue(hello.content, ctx.source, ctx.nowSec)) };
}

/**
 * A cleartext KKTRequest (hello ‖ token ‖ signed frame ‖ padding) to `header.receiverIndex`. Checks, cheapest first:
 * layout and counter, the token (this hello, this source, not expired), the hello's index and timestamp, the index
 * free (else Collision), the client's key conversion, the signature over the frame ‖ index ‖ token. Only then is a
 * handshake made, with a fresh gateway nonce. Throws LpError (no reply, nothing kept) for anything else.
 */
export function acceptKktRequest(cfg: ResponderConfig, tokens: RoutabilityTokens, bytes: Uint8Array, header: Header, ctx: PacketContext, indexInUse: (i: number) => boolean): KktOutcome {
  const p = parseClearZero(bytes);
  if (p.type !== MessageType.KKTRequest) fail(LpErrorCode.UNEXPECTED_MESSAGE, `expected KKTRequest, got ${messageTypeName(p.type)}`);
  const req = decodeKktRequestContent(p.content);
  if (!tokens.verify(req.token, req.helloBytes, ctx.source, ctx.nowSec)) fail(LpErrorCode.BAD_TOKEN, 'KKTRequest token is not valid for this hello and source (or expired)');
  const index = header.receiverIndex;
  if (req.hello.receiverIndex !== index) fail(LpErrorCode.RECEIVER_INDEX_MISMATCH, `KKTRequest to index ${index} carries a hello for ${req.hello.receiverIndex}`);
  if (index === 0) fail(LpErrorCode.RECEIVER_INDEX_ZERO, 'receiver index 0 is reserved for ClientHello');
  checkTimestamp(req.hello, ctx.nowSec, cfg.timestampToleranceSec ?? DEFAULT_TIMESTAMP_TOLERANCE_SEC);
  if (indexInUse(index)) return { kind: 'collision', reply: clearReply(MessageType.Collision, index) };
  const { prims, kem } = cfg.suite;
  if (!equalBytes(prims.ed25519PkToX25519(req.hello.clientEd25519), req.hello.clientX25519)) fail(LpErrorCode.CLIENT_KEY_MISMATCH, 'ClientHello X25519 key is not the conversion of its Ed25519 key');
  const nonce = prims.randomBytes(GATEWAY_NONCE_LEN);
  const k = cfg.keys;
  const indexBytes = u32le(index);
  // The reply packet is made once, its size known from the frame's: the frame is written into it, then the nonce.
  let reply: Uint8Array = EMPTY;
  const outcome = processKktRequest(prims, kem, k.ed25519, k.kem.publicKey, req.hello.clientEd25519, req.framePadded, [indexBytes, req.token], [indexBytes, req.token, nonce], (frameLength) => {
    const { packet, content } = allocClear(index, MessageType.KKTResponse, frameLength + GATEWAY_NONCE_LEN);
    content.set(nonce, frameLength);
    reply = packet;
    return content.subarray(0, frameLength);
  });
  if (!outcome.ok) return { kind: 'refused', reply, error: new LpError(outcome.code, outcome.reason) };
  const handshake = new ResponderHandshake(cfg, {
    hello: req.hello,
    transcript: kktTranscriptHash(prims, req.helloBytes, req.token, outcome.request.raw, outcome.response, nonce),
    // The request less its zero padding and trailer (checked zero above): a repeat is that prefix, zeros to its length.
    request: bytes.subarray(0, HEADER_LEN + INNER_PREFIX_LEN + KKT_REQUEST_PREFIX_LEN + outcome.request.raw.length),
    requestLength: bytes.length,
    reply,
  });
  return { kind: 'accepted', handshake, reply };
}

interface Accepted {
  hello: ClientHello;
  /** T1 (DESIGN.md §5.1). */
  transcript: Uint8Array;
  /**
   * The KKTRequest packet and its answer (a lost answer is re-sent, not recomputed). `request` may omit zero bytes
   * at the end: the packet is `requestLength` bytes, those past `request` zero.
   */
  request: Uint8Array;
  requestLength: number;
  reply: Uint8Array;
}

export class ResponderHandshake {
  readonly receiverIndex: number;
  private stageValue: ResponderStage = ResponderStage.AwaitMsg1;
  private readonly cfg: ResponderConfig;
  private readonly hello: ClientHello;
  private transcript: Uint8Array;
  private noise: HandshakeState | null = null;
  private psk: Uint8Array | null = null;
  private keys: DirectionalKeys | null = null;
  /** Cleartext request last answered (less zero bytes at its end, up to `lastRequestLength`), its answer, and how often it was answered. */
  private lastRequest: Uint8Array | null;
  private lastRequestLength: number;
  private lastReply: Uint8Array | null;
  private answers = 1;

  constructor(cfg: ResponderConfig, accepted: Accepted) {
    this.cfg = cfg;
    // Copies: the hello's fields are views of the caller's packet buffer.
    const h = accepted.hello;
    this.hello = { receiverIndex: h.receiverIndex, clientX25519: copyBytes(h.clientX25519), clientEd25519: copyBytes(h.clientEd25519), salt: copyBytes(h.salt) };
    this.receiverIndex = accepted.hello.receiverIndex;
    this.transcript = accepted.transcript;
    this.lastRequest = copyBytes(accepted.request);
    this.lastRequestLength = accepted.requestLength;
    this.lastReply = accepted.reply;
  }

  get stage(): ResponderStage {
    return this.stageValue;
  }

  /** The client's Ed25519 key from its ClientHello. */
  get clientEd25519(): Uint8Array {
    return this.hello.clientEd25519;
  }

  /** True once the outer key exists: packets to this index are then authenticated. */
  get keyed(): boolean {
    return this.keys !== null;
  }

  /** True if `bytes` is the cleartext request this handshake answered last (a re-sent KKTRequest or message 1). */
  isRepeat(bytes: Uint8Array): boolean {
    const r = this.lastRequest;
    if (r === null || bytes.length !== this.lastRequestLength) return false;
    return equalBytes(bytes.subarray(0, r.length), r) && isAllZero(bytes.subarray(r.length));
  }

  receive(bytes: Uint8Array, header?: Header): ResponderOutput {
    const h = header ?? parseHeader(bytes);
    if (h.receiverIndex !== this.receiverIndex) fail(LpErrorCode.RECEIVER_INDEX_MISMATCH, 'packet for another index');
    if (this.lastReply && this.isRepeat(bytes)) {
      const limit = this.stageValue === ResponderStage.AwaitMsg1 ? MAX_KKT_ANSWERS : MAX_MSG1_ANSWERS;
      if (this.answers >= limit) fail(LpErrorCode.KKT_RETRY_LIMIT, `request already answered ${this.answers} times`);
      this.answers++;
      return { reply: this.lastReply };
    }
    switch (this.stageValue) {
      case ResponderStage.AwaitMsg1: {
        const p = parseClearZero(bytes);
        if (p.type !== MessageType.Handshake) fail(LpErrorCode.UNEXPECTED_MESSAGE, `expected Handshake message 1, got ${messageTypeName(p.type)}`);
        const out = this.onMsg1(p);
        this.lastRequest = copyBytes(bytes);
        this.lastRequestLength = bytes.length;
        this.lastReply = out.reply ?? null;
        this.answers = 1;
        return out;
      }
      case ResponderStage.AwaitMsg3:
        return this.onMsg3(bytes, h);
      default:
        return fail(LpErrorCode.INVALID_STATE, `handshake is ${this.stageValue}`);
    }
  }

  private onMsg1(p: Packet): ResponderOutput {
    const { prims, kem } = this.cfg.suite;
    const k = this.cfg.keys;
    const { kemCiphertext, noise, binder, bound } = decodeHandshake1(p.content, kem.ciphertextLength, NOISE_MSG1_LEN);
    const staticDh = prims.x25519(k.x25519.secretKey, this.hello.clientX25519);
    // Checked before decapsulation: a message 1 not made by the ClientHello's key holder costs one DH.
    if (!equalBytes(msg1Binder(prims, staticDh, this.transcript, bound), binder)) fail(LpErrorCode.BAD_BINDER, 'handshake message 1 binder does not match the ClientHello key');
    const kemSharedSecret = kem.decapsulate(kemCiphertext, k.kem.secretKey);
    const psk = derivePsk(prims, { kemSharedSecret, staticDh, transcript: this.transcript, kemCiphertext });
    prims.zeroize(kemSharedSecret);
    prims.zeroize(staticDh);
    const hs = new HandshakeState(prims, { pattern: NOISE_PATTERN, initiator: false, s: k.x25519, psks: [psk] });
    hs.readMessage(noise); // throws without side effects on a forged msg1: the handshake stays as it was
    const msg2 = hs.writeMessage(new Uint8Array(0));
    this.noise = hs;
    this.psk = psk;
    this.keys = outerKeys(prims, psk);
    this.stageValue = ResponderStage.AwaitMsg3;
    // Message 2 is the first packet under the new r2i key: counter 0; the Ack that completes the handshake is 1.
    return { reply: sealPacket(prims, this.keys.r2i, { receiverIndex: this.receiverIndex, counter: 0, type: MessageType.Handshake, content: msg2 }) };
  }

  private onMsg3(bytes: Uint8Array, h: Header): ResponderOutput {
    const { prims } = this.cfg.suite;
    const keys = this.keys as DirectionalKeys;
    const hs = this.noise as HandshakeState;
    if (h.counter !== 0) fail(LpErrorCode.UNEXPECTED_COUNTER, `handshake message 3 with counter ${h.counter}, expected 0`);
    const p = openPacket(prims, keys.i2r, bytes, h); // unauthenticated junk: throws, state unchanged
    if (p.type !== MessageType.Handshake) fail(LpErrorCode.UNEXPECTED_MESSAGE, `expected Handshake message 3, got ${messageTypeName(p.type)}`);
    try {
      hs.readMessage(p.content);
      const rs = hs.getRemoteStatic();
      if (!rs || !equalBytes(rs, this.hello.clientX25519)) fail(LpErrorCode.STATIC_KEY_MISMATCH, 'Noise static key in message 3 is not the ClientHello key');
    } catch (e) {
      // Authenticated by the outer key, so this is the PSK holder misbehaving: end the handshake.
      this.stageValue = ResponderStage.Failed;
      const err = e instanceof LpError ? e : new LpError(LpErrorCode.NOISE_BAD_MESSAGE, String(e));
      return { failed: err };
    }
    const { send, recv } = hs.split();
    const handshakeHash = hs.getHandshakeHash();
    const session = new Session({
      prims,
      receiverIndex: this.receiverIndex,
      role: 'responder',
      keys,
      noiseSend: send,
      noiseRecv: recv,
      secret: sessionSecret(prims, this.psk as Uint8Array, handshakeHash),
      handshakeHash,
      generation: 0,
      localStatic: this.cfg.keys.x25519,
      remoteStatic: this.hello.clientX25519,
      sendCounter: 1,
      receivedCounters: [h.counter],
    });
    const ack = session.seal(MessageType.Ack, new Uint8Array(0));
    session.rememberReply(ack, h.counter);
    this.stageValue = ResponderStage.Established;
    this.destroyTransient();
    return { reply: ack, session };
  }

  private destroyTransient(): void {
    if (this.psk) this.cfg.suite.prims.zeroize(this.psk);
    this.psk = null;
    this.noise = null;
  }

  /**
   * Zero everything of an abandoned handshake (table eviction, TTL, failure): the Noise state, the PSK, the outer
   * keys and the cached request and reply. Not called for a completed one: its outer keys moved into the session
   * (whose constructor wiped these arrays) and its last reply is the session's.
   */
  destroy(): void {
    const { prims } = this.cfg.suite;
    this.noise?.destroy();
    this.destroyTransient();
    if (this.keys) {
      prims.zeroize(this.keys.i2r);
      prims.zeroize(this.keys.r2i);
      this.keys = null;
    }
    for (const b of [this.lastRequest, this.lastReply, this.transcript]) if (b) prims.zeroize(b);
    this.lastRequest = this.lastReply = null;
    this.stageValue = ResponderStage.Failed;
  }
}
