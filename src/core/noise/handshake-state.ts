/**
 * Noise HandshakeState (section 5.3) for 25519_ChaChaPoly_SHA256, any pattern in ./patterns.ts.
 * Every message is processed on a fork of the symmetric state and committed only on success, so a
 * forged or malformed message (or a failed write) leaves the handshake exactly as it was.
 */
import { LpErrorCode, fail } from '../errors.js';
import type { KeyPair, Primitives } from '../crypto/primitives.js';
import type { CipherState } from './cipher-state.js';
import { parsePattern, type HandshakePattern, type PreToken } from './patterns.js';
import { SymmetricState } from './symmetric-state.js';

export const NOISE_DH_LENGTH = 32;
export const NOISE_PSK_LENGTH = 32;
/** Spec 3: every Noise message is at most 65535 bytes. */
export const NOISE_MAX_MESSAGE_LENGTH = 65535;

const EMPTY = new Uint8Array(0);

export interface HandshakeOptions {
  /** 'XKpsk3' or the full protocol name; the suite is fixed to 25519_ChaChaPoly_SHA256. */
  pattern: string;
  initiator: boolean;
  /** Default empty. */
  prologue?: Uint8Array;
  /** Local static key pair. Caller-owned: never zeroized here. */
  s?: KeyPair;
  /** Fixed local ephemeral (test vectors); otherwise generated. Caller-owned: never zeroized here. */
  e?: KeyPair;
  /** Remote static known in advance; only accepted when the pattern has it as a pre-message. */
  rs?: Uint8Array;
  /** Remote ephemeral pre-message, only for patterns that have one. */
  re?: Uint8Array;
  /** Consumed in order of `psk` tokens; the count must match the pattern. Caller-owned. */
  psks?: Uint8Array[];
}

function checkKey(key: Uint8Array, what: string): void {
  if (key.length !== NOISE_DH_LENGTH) fail(LpErrorCode.NOISE_STATE, `${what} must be ${NOISE_DH_LENGTH} bytes`);
}

function checkKeyPair(kp: KeyPair, what: string): void {
  checkKey(kp.publicKey, `${what} public key`);
  checkKey(kp.secretKey, `${what} secret key`);
}

/** Whether this side needs its own static key anywhere in the pattern. */
function needsLocalStatic(p: HandshakePattern, initiator: boolean): boolean {
  if ((initiator ? p.initiatorPreMessage : p.responderPreMessage).includes('s')) return true;
  return p.messages.some((tokens, i) =>
    tokens.some((t) => t === 'ss' || (t === 's' && (i % 2 === 0) === initiator) || (t === (initiator ? 'se' : 'es'))),
  );
}

export class HandshakeState {
  private readonly prims: Primitives;
  private readonly pattern: HandshakePattern;
  private readonly initiator: boolean;
  private readonly psks: readonly Uint8Array[];
  private readonly s: KeyPair | null;
  private ss: SymmetricState;
  private e: KeyPair | null;
  /** True when `e` was generated here, so its secret is ours to wipe. */
  private eOwned = false;
  private rs: Uint8Array | null;
  private re: Uint8Array | null;
  private pskIndex = 0;
  private msgIndex = 0;
  private splitDone = false;
  private destroyed = false;

  constructor(prims: Primitives, opts: HandshakeOptions) {
    const p = parsePattern(opts.pattern);
    this.prims = prims;
    this.pattern = p;
    this.initiator = opts.initiator;

    const psks = opts.psks ?? [];
    if (psks.length !== p.pskCount) fail(LpErrorCode.NOISE_STATE, `${p.name} needs ${p.pskCount} PSK(s), got ${psks.length}`);
    for (const psk of psks) if (psk.length !== NOISE_PSK_LENGTH) fail(LpErrorCode.NOISE_STATE, 'PSK must be 32 bytes');
    this.psks = psks;

    if (opts.s) checkKeyPair(opts.s, 'local static');
    else if (needsLocalStatic(p, opts.initiator)) fail(LpErrorCode.NOISE_STATE, `${p.name} needs a local static key`);
    if (opts.e) checkKeyPair(opts.e, 'local ephemeral');
    this.s = opts.s ?? null;
    this.e = opts.e ?? null;

    // A remote key that the pattern would not use must not be silently ignored: the caller expects it pinned.
    const localPre = opts.initiator ? p.initiatorPreMessage : p.responderPreMessage;
    const remotePre = opts.initiator ? p.responderPreMessage : p.initiatorPreMessage;
    for (const [tok, key] of [['s', opts.rs], ['e', opts.re]] as const) {
      if (remotePre.includes(tok) !== (key !== undefined)) {
        fail(LpErrorCode.NOISE_STATE, `${p.name} ${key === undefined ? 'needs' : 'has no pre-message for'} a remote ${tok === 's' ? 'static' : 'ephemeral'} key`);
      }
      if (key !== undefined) checkKey(key, `remote ${tok}`);
    }
    if (localPre.includes('e') && !this.e) fail(LpErrorCode.NOISE_STATE, `${p.name} needs a local ephemeral pre-message key`);
    this.rs = opts.rs ?? null;
    this.re = opts.re ?? null;

    this.ss = SymmetricState.initialize(prims, p.protocolName);
    this.ss.mixHash(opts.prologue ?? EMPTY);
    // initiator's pre-message keys first, then the responder's
    this.mixPreMessage(p.initiatorPreMessage, opts.initiator);
    this.mixPreMessage(p.responderPreMessage, !opts.initiator);
  }

  writeMessage(payload: Uint8Array): Uint8Array {
    this.requireTurn(true);
    if (payload.length > NOISE_MAX_MESSAGE_LENGTH) fail(LpErrorCode.NOISE_BAD_MESSAGE, 'Noise payload too large');
    const tokens = this.pattern.messages[this.msgIndex] ?? [];
    const ws = this.ss.fork();
    let e = this.e;
    let generated = false;
    let pskIndex = this.pskIndex;
    const parts: Uint8Array[] = [];
    let len = 0;
    try {
      for (const t of tokens) {
        let part: Uint8Array | null = null;
        switch (t) {
          case 'e':
            if (!e) {
              e = this.generateEphemeral();
              generated = true;
            }
            part = e.publicKey;
            this.mixEphemeral(ws, part);
            break;
          case 's':
            if (!this.s) fail(LpErrorCode.NOISE_STATE, 'missing local static key');
            part = ws.encryptAndHash(this.s.publicKey);
            break;
          case 'psk':
            ws.mixKeyAndHash(this.psk(pskIndex++));
            break;
          default:
            this.mixDh(ws, t, e, this.re, this.rs);
        }
        if (part) {
          parts.push(part);
          len += part.length;
        }
      }
      const body = ws.encryptAndHash(payload);
      parts.push(body);
      len += body.length;
      if (len > NOISE_MAX_MESSAGE_LENGTH) fail(LpErrorCode.NOISE_BAD_MESSAGE, 'Noise message too large');
    } catch (err) {
      ws.destroy();
      if (generated && e) this.prims.zeroize(e.secretKey);
      throw err;
    }

    const out = new Uint8Array(len);
    let off = 0;
    for (const part of parts) {
      out.set(part, off);
      off += part.length;
    }
    this.ss.handOver(ws);
    this.ss = ws;
    this.e = e;
    this.eOwned ||= generated;
    this.pskIndex = pskIndex;
    this.advance();
    return out;
  }

  readMessage(message: Uint8Array): Uint8Array {
    this.requireTurn(false);
    if (message.length > NOISE_MAX_MESSAGE_LENGTH) fail(LpErrorCode.NOISE_BAD_MESSAGE, 'Noise message too large');
    const tokens = this.pattern.messages[this.msgIndex] ?? [];
    const ws = this.ss.fork();
    let re = this.re;
    let rs = this.rs;
    let pskIndex = this.pskIndex;
    let off = 0;
    let payload: Uint8Array;
    try {
      for (const t of tokens) {
        switch (t) {
          case 'e':
            if (message.length - off < NOISE_DH_LENGTH) fail(LpErrorCode.NOISE_BAD_MESSAGE, 'Noise message too short for e');
            // copy (not Buffer#slice, which is a view): the caller's buffer may be a reused frame
            re = new Uint8Array(message.subarray(off, off + NOISE_DH_LENGTH));
            off += NOISE_DH_LENGTH;
            this.mixEphemeral(ws, re);
            break;
          case 's': {
            const n = NOISE_DH_LENGTH + (ws.hasKey() ? 16 : 0);
            if (message.length - off < n) fail(LpErrorCode.NOISE_BAD_MESSAGE, 'Noise message too short for s');
            rs = ws.decryptAndHash(message.subarray(off, off + n));
            off += n;
            break;
          }
          case 'psk':
            ws.mixKeyAndHash(this.psk(pskIndex++));
            break;
          default:
            this.mixDh(ws, t, this.e, re, rs);
        }
      }
      payload = ws.decryptAndHash(message.subarray(off));
    } catch (err) {
      ws.destroy();
      throw err;
    }

    this.ss.handOver(ws);
    this.ss = ws;
    this.re = re;
    this.rs = rs;
    this.pskIndex = pskIndex;
    this.advance();
    return payload;
  }

  isComplete(): boolean {
    return this.msgIndex >= this.pattern.messages.length;
  }

  isMyTurn(): boolean {
    return !this.destroyed && !this.isComplete() && (this.msgIndex % 2 === 0) === this.initiator;
  }

  /** Transport cipher states for this side (initiator sends with c1). One-shot: ck is wiped. */
  split(): { send: CipherState; recv: CipherState } {
    if (this.destroyed || !this.isComplete()) fail(LpErrorCode.NOISE_STATE, 'Noise handshake not complete');
    if (this.splitDone) fail(LpErrorCode.NOISE_STATE, 'Noise handshake already split');
    this.splitDone = true;
    const [c1, c2] = this.ss.split();
    return this.initiator ? { send: c1, recv: c2 } : { send: c2, recv: c1 };
  }

  /** h: valid at any time (also after destroy), final once complete. Read-only reference. */
  getHandshakeHash(): Uint8Array {
    return this.ss.getHandshakeHash();
  }

  getRemoteStatic(): Uint8Array | null {
    return this.rs;
  }

  getLocalEphemeralPublic(): Uint8Array | null {
    return this.e?.publicKey ?? null;
  }

  getPattern(): HandshakePattern {
    return this.pattern;
  }

  /** Wipe ck, the handshake key and a generated ephemeral; caller-owned keys (s, e, psks) are left alone. */
  destroy(): void {
    this.destroyed = true;
    this.ss.destroy();
    this.wipeEphemeral();
  }

  private requireTurn(writing: boolean): void {
    if (this.destroyed) fail(LpErrorCode.NOISE_STATE, 'Noise handshake destroyed');
    if (this.isComplete()) fail(LpErrorCode.NOISE_STATE, 'Noise handshake already complete');
    if (this.isMyTurn() !== writing) fail(LpErrorCode.NOISE_STATE, writing ? 'not our turn to write' : 'not our turn to read');
  }

  private advance(): void {
    this.msgIndex++;
    // the ephemeral secret has no use after the last message
    if (this.isComplete()) this.wipeEphemeral();
  }

  private wipeEphemeral(): void {
    if (this.eOwned && this.e) this.prims.zeroize(this.e.secretKey);
    this.eOwned = false;
  }

  private mixPreMessage(tokens: readonly PreToken[], local: boolean): void {
    for (const t of tokens) {
      const key = t === 's' ? (local ? this.s?.publicKey : this.rs) : local ? this.e?.publicKey : this.re;
      if (!key) fail(LpErrorCode.NOISE_STATE, `missing pre-message key ${t}`);
      if (t === 'e') this.mixEphemeral(this.ss, key);
      else this.ss.mixHash(key);
    }
  }

  /** Spec 9.2: in psk handshakes every `e` is also mixed into the key. */
  private mixEphemeral(ws: SymmetricState, pub: Uint8Array): void {
    ws.mixHash(pub);
    if (this.pattern.pskCount > 0) ws.mixKey(pub);
  }

  private mixDh(ws: SymmetricState, t: 'ee' | 'es' | 'se' | 'ss', e: KeyPair | null, re: Uint8Array | null, rs: Uint8Array | null): void {
    // es = DH(initiator e, responder s), se = DH(initiator s, responder e)
    const localE = t === 'ee' || (t === 'es' ? this.initiator : t === 'se' ? !this.initiator : false);
    const remoteE = t === 'ee' || (t === 'es' ? !this.initiator : t === 'se' ? this.initiator : false);
    const sk = localE ? e?.secretKey : this.s?.secretKey;
    const pk = remoteE ? re : rs;
    if (!sk || !pk) fail(LpErrorCode.NOISE_STATE, `missing key for ${t}`);
    const shared = this.prims.x25519(sk, pk);
    ws.mixKey(shared);
    this.prims.zeroize(shared);
  }

  private psk(i: number): Uint8Array {
    const psk = this.psks[i];
    if (!psk) fail(LpErrorCode.NOISE_STATE, 'missing PSK');
    return psk;
  }

  private generateEphemeral(): KeyPair {
    const secret = this.prims.randomBytes(NOISE_DH_LENGTH);
    const kp = this.prims.x25519FromSecret(secret);
    if (kp.secretKey !== secret) this.prims.zeroize(secret);
    return kp;
  }
}
