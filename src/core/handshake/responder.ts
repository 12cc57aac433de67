/**
 * Gateway side of the LP handshake, one instance per proposed receiver index:
 *   ClientHello → Ack | Collision;  KKTRequest → KKTResponse;  msg1 (clear) → msg2 (sealed);
 *   msg3 (sealed) → Ack (sealed, in the new session) and an established Session.
 * Pure: bytes and `now` in, reply bytes and events out. Input that is not authenticated (cleartext stages,
 * failed outer AEAD) is rejected without changing state, so junk cannot kill a handshake; a failure after
 * authentication ends it (`failed`), and the caller removes it at once.
 */
import { LpErrorCode, LpError, fail } from '../errors.js';
import { copyBytes, equalBytes } from '../bytes.js';
import type { CryptoSuite } from '../crypto/index.js';
import { type Header, type Packet, MessageType, openPacket, parseClear, parseHeader, sealPacket, serializeClear, messageTypeName } from '../codec/packet.js';
import { type ClientHello, decodeClientHello, decodeHandshake1, saltTimestamp } from '../codec/messages.js';
import { processKktRequest } from '../kkt/kkt.js';
import { HandshakeState } from '../noise/index.js';
import { Session } from '../session/session.js';
import type { GatewayKeys } from './identity.js';
import { derivePsk, kktTranscriptHash, msg1Binder, outerKeys, sessionSecret, type DirectionalKeys } from './key-schedule.js';

export const NOISE_PATTERN = 'XKpsk3';
export const NOISE_MSG1_LEN = 48;
export const DEFAULT_TIMESTAMP_TOLERANCE_SEC = 30;

export const ResponderStage = {
  AwaitKkt: 'await-kkt',
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

export type HelloOutcome =
  | { kind: 'accepted'; handshake: ResponderHandshake; reply: Uint8Array }
  /** Index 0 or already in use: answer Collision, keep nothing. */
  | { kind: 'collision'; reply: Uint8Array };

export interface ResponderOutput {
  reply?: Uint8Array;
  /** Set when message 3 completed the handshake. */
  session?: Session;
  /** The handshake ended in failure and must be removed (the reply, if any, is a signed refusal). */
  failed?: LpError;
}

function clearReply(type: MessageType, receiverIndex: number): Uint8Array {
  return serializeClear({ receiverIndex, counter: 0, type, content: new Uint8Array(0) });
}

/**
 * The checks of a ClientHello that need no key (DESIGN.md §4.1): header (0, 0), a cleartext ClientHello of
 * exactly 100 content bytes, a timestamp within the tolerance. Cheap (no cryptography), so an I/O edge can run
 * them before it charges a per-source rate limit: junk never drains a source's tokens. Throws LpError.
 */
export function parseClientHello(bytes: Uint8Array, nowSec: number, toleranceSec = DEFAULT_TIMESTAMP_TOLERANCE_SEC): ClientHello {
  const p = parseClear(bytes);
  if (p.receiverIndex !== 0) fail(LpErrorCode.RECEIVER_INDEX_MISMATCH, 'ClientHello must be sent to receiver index 0');
  if (p.type !== MessageType.ClientHello) fail(LpErrorCode.UNEXPECTED_MESSAGE, `expected ClientHello on index 0, got ${messageTypeName(p.type)}`);
  const hello = decodeClientHello(p.content);
  const ts = saltTimestamp(hello.salt);
  if (ts < nowSec - toleranceSec) fail(LpErrorCode.TIMESTAMP_TOO_OLD, `ClientHello timestamp ${ts} is more than ${toleranceSec}s old`);
  if (ts > nowSec + toleranceSec) fail(LpErrorCode.TIMESTAMP_TOO_NEW, `ClientHello timestamp ${ts} is more than ${toleranceSec}s ahead`);
  return hello;
}

/**
 * Handle a packet with header receiver_index 0: it must be a ClientHello. `indexInUse` consults the
 * gateway's tables. Throws LpError (no reply) for malformed or stale hellos.
 */
export function acceptClientHello(cfg: ResponderConfig, bytes: Uint8Array, nowSec: number, indexInUse: (i: number) => boolean): HelloOutcome {
  const hello = parseClientHello(bytes, nowSec, cfg.timestampToleranceSec);
  if (hello.receiverIndex === 0 || indexInUse(hello.receiverIndex)) return { kind: 'collision', reply: clearReply(MessageType.Collision, hello.receiverIndex) };
  const converted = cfg.suite.prims.ed25519PkToX25519(hello.clientEd25519);
  if (!equalBytes(converted, hello.clientX25519)) fail(LpErrorCode.CLIENT_KEY_MISMATCH, 'ClientHello X25519 key is not the conversion of its Ed25519 key');
  return { kind: 'accepted', handshake: new ResponderHandshake(cfg, hello), reply: clearReply(MessageType.Ack, hello.receiverIndex) };
}

export class ResponderHandshake {
  readonly receiverIndex: number;
  private stageValue: ResponderStage = ResponderStage.AwaitKkt;
  private readonly cfg: ResponderConfig;
  private readonly hello: ClientHello;
  private sendCounter = 0;
  private kktRequestFrame: Uint8Array | null = null;
  private kktResponseFrame: Uint8Array | null = null;
  private noise: HandshakeState | null = null;
  private psk: Uint8Array | null = null;
  private keys: DirectionalKeys | null = null;
  /** Cleartext request last answered, and the answer (a lost reply is re-sent, not recomputed). */
  private lastRequest: Uint8Array | null = null;
  private lastReply: Uint8Array | null = null;

  constructor(cfg: ResponderConfig, hello: ClientHello) {
    this.cfg = cfg;
    this.hello = hello;
    this.receiverIndex = hello.receiverIndex;
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

  receive(bytes: Uint8Array, header?: Header): ResponderOutput {
    const h = header ?? parseHeader(bytes);
    if (h.receiverIndex !== this.receiverIndex) fail(LpErrorCode.RECEIVER_INDEX_MISMATCH, 'packet for another index');
    if (this.lastRequest && this.lastReply && equalBytes(bytes, this.lastRequest)) return { reply: this.lastReply };
    switch (this.stageValue) {
      case ResponderStage.AwaitKkt:
        return this.remember(bytes, this.onKktRequest(this.expectClear(bytes, MessageType.KKTRequest)));
      case ResponderStage.AwaitMsg1: {
        const p = parseClear(bytes);
        // A client may repeat its (signed) KKTRequest until message 1, e.g. padded after its first UDP
        // request drew no reply: the latest one answered is the one the PSK transcript uses.
        if (p.type === MessageType.KKTRequest) return this.remember(bytes, this.onKktRequest(p));
        return this.remember(bytes, this.onMsg1(this.expectClear(bytes, MessageType.Handshake)));
      }
      case ResponderStage.AwaitMsg3:
        return this.onMsg3(bytes, h);
      default:
        return fail(LpErrorCode.INVALID_STATE, `handshake is ${this.stageValue}`);
    }
  }

  private remember(request: Uint8Array, out: ResponderOutput): ResponderOutput {
    if (out.reply && !out.failed) {
      this.lastRequest = copyBytes(request);
      this.lastReply = out.reply;
    }
    return out;
  }

  private expectClear(bytes: Uint8Array, type: MessageType): Packet {
    const p = parseClear(bytes);
    if (p.type !== type) fail(LpErrorCode.UNEXPECTED_MESSAGE, `expected ${messageTypeName(type)}, got ${messageTypeName(p.type)}`);
    return p;
  }

  private onKktRequest(p: Packet): ResponderOutput {
    const { prims, kem } = this.cfg.suite;
    const k = this.cfg.keys;
    const outcome = processKktRequest(prims, kem, k.ed25519, k.kem.publicKey, this.hello.clientEd25519, p.content);
    const reply = serializeClear({ receiverIndex: this.receiverIndex, counter: this.sendCounter++, type: MessageType.KKTResponse, content: outcome.response });
    if (!outcome.ok) {
      this.stageValue = ResponderStage.Failed;
      return { reply, failed: new LpError(outcome.code, outcome.reason) };
    }
    this.kktRequestFrame = copyBytes(outcome.request.raw);
    this.kktResponseFrame = outcome.response;
    this.stageValue = ResponderStage.AwaitMsg1;
    return { reply };
  }

  private onMsg1(p: Packet): ResponderOutput {
    const { prims, kem } = this.cfg.suite;
    const k = this.cfg.keys;
    const { kemCiphertext, noise, binder, bound } = decodeHandshake1(p.content, kem.ciphertextLength, NOISE_MSG1_LEN);
    const staticDh = prims.x25519(k.x25519.secretKey, this.hello.clientX25519);
    // Checked before decapsulation: a message 1 not made by the ClientHello's key holder costs one DH.
    if (!equalBytes(msg1Binder(prims, staticDh, this.hello.salt, this.receiverIndex, bound), binder)) fail(LpErrorCode.BAD_BINDER, 'handshake message 1 binder does not match the ClientHello key');
    const kemSharedSecret = kem.decapsulate(kemCiphertext, k.kem.secretKey);
    const psk = derivePsk(prims, {
      kemSharedSecret,
      staticDh,
      salt: this.hello.salt,
      receiverIndex: this.receiverIndex,
      transcriptHash: kktTranscriptHash(prims, this.kktRequestFrame as Uint8Array, this.kktResponseFrame as Uint8Array, kemCiphertext),
    });
    prims.zeroize(kemSharedSecret);
    prims.zeroize(staticDh);
    const hs = new HandshakeState(prims, { pattern: NOISE_PATTERN, initiator: false, s: k.x25519, psks: [psk] });
    hs.readMessage(noise); // throws without side effects on a forged msg1: the handshake stays as it was
    const msg2 = hs.writeMessage(new Uint8Array(0));
    this.noise = hs;
    this.psk = psk;
    this.keys = outerKeys(prims, psk);
    this.stageValue = ResponderStage.AwaitMsg3;
    return { reply: sealPacket(prims, this.keys.r2i, { receiverIndex: this.receiverIndex, counter: this.sendCounter++, type: MessageType.Handshake, content: msg2 }) };
  }

  private onMsg3(bytes: Uint8Array, h: Header): ResponderOutput {
    const { prims } = this.cfg.suite;
    const keys = this.keys as DirectionalKeys;
    const hs = this.noise as HandshakeState;
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
      sendCounter: this.sendCounter,
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
    for (const b of [this.lastRequest, this.lastReply, this.kktRequestFrame]) if (b) prims.zeroize(b);
    this.lastRequest = this.lastReply = this.kktRequestFrame = this.kktResponseFrame = null;
    this.stageValue = ResponderStage.Failed;
  }
}
