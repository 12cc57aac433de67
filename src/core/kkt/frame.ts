/**
 * KKT frame (upstream §7.1): context(7) ‖ body(0 | kem key) ‖ session_id(16) ‖ signature(0 | 64).
 * Context byte 0 = version<<4 | sequence; byte 1 = status<<5 | mode<<2 | role; then KEM, hash,
 * hash length, signature scheme, reserved. The frame length must match the context exactly.
 */
import { LpErrorCode, fail } from '../errors.js';

export const KKT_VERSION = 1;
export const KKT_CONTEXT_LEN = 7;
export const KKT_SESSION_ID_LEN = 16;
export const KKT_SIGNATURE_LEN = 64;

export const KktStatus = {
  Ok: 0,
  InvalidRequestFormat: 1,
  InvalidResponseFormat: 2,
  InvalidSignature: 3,
  UnsupportedCiphersuite: 4,
  UnsupportedKktVersion: 5,
  InvalidKey: 6,
  Timeout: 7,
} as const;
export type KktStatus = (typeof KktStatus)[keyof typeof KktStatus];

export const KktMode = { OneWay: 0, Mutual: 1 } as const;
export const KktRole = { Initiator: 0, Responder: 1, AnonymousInitiator: 2 } as const;
export const KktKem = { XWing: 0, MlKem768: 1, McEliece: 2, X25519: 255 } as const;
export const KktHash = { Blake3: 0, Shake256: 1, Shake128: 2, Sha256: 3 } as const;
export const KktSignature = { Ed25519: 0 } as const;

const KEM_KEY_LENGTHS = new Map<number, number>([
  [KktKem.XWing, 1216],
  [KktKem.MlKem768, 1184],
  [KktKem.McEliece, 524160],
  [KktKem.X25519, 32],
]);

export interface KktContext {
  version: number;
  sequence: number;
  status: number;
  mode: number;
  role: number;
  kem: number;
  hash: number;
  hashLen: number;
  signature: number;
}

export interface KktFrame {
  context: KktContext;
  body: Uint8Array;
  sessionId: Uint8Array;
  signature: Uint8Array;
  /** context ‖ body ‖ session_id: the signed bytes. */
  signed: Uint8Array;
  /** The whole frame as received/sent. */
  raw: Uint8Array;
}

export function encodeContext(c: KktContext): Uint8Array {
  const out = new Uint8Array(KKT_CONTEXT_LEN);
  writeContext(out, c);
  return out;
}

/** The 7-byte context at the start of `out`. */
function writeContext(out: Uint8Array, c: KktContext): void {
  out[0] = ((c.version & 0x0f) << 4) | (c.sequence & 0x0f);
  out[1] = ((c.status & 0x07) << 5) | ((c.mode & 0x07) << 2) | (c.role & 0x03);
  out[2] = c.kem;
  out[3] = c.hash;
  out[4] = c.hashLen;
  out[5] = c.signature;
  out[6] = 0;
}

export function decodeContext(b: Uint8Array): KktContext {
  if (b.length < KKT_CONTEXT_LEN) fail(LpErrorCode.KKT_BAD_FRAME, 'KKT frame shorter than its context');
  const b0 = b[0] as number;
  const b1 = b[1] as number;
  const c: KktContext = {
    version: b0 >> 4,
    sequence: b0 & 0x0f,
    status: b1 >> 5,
    mode: (b1 >> 2) & 0x07,
    role: b1 & 0x03,
    kem: b[2] as number,
    hash: b[3] as number,
    hashLen: b[4] as number,
    signature: b[5] as number,
  };
  if (c.version !== KKT_VERSION) fail(LpErrorCode.KKT_UNSUPPORTED_VERSION, `KKT version ${c.version} not supported`);
  if (c.mode > KktMode.Mutual) fail(LpErrorCode.KKT_BAD_FRAME, `invalid KKT mode ${c.mode}`);
  if (c.role > KktRole.AnonymousInitiator) fail(LpErrorCode.KKT_BAD_FRAME, `invalid KKT role ${c.role}`);
  if (b[6] !== 0) fail(LpErrorCode.KKT_BAD_FRAME, 'KKT reserved byte must be zero');
  if (c.hashLen !== 0 && c.hashLen < 16) fail(LpErrorCode.KKT_BAD_FRAME, `insecure KKT hash length ${c.hashLen}`);
  return c;
}

export function bodyLength(c: KktContext): number {
  if (c.status !== KktStatus.Ok) return 0;
  if (c.mode === KktMode.OneWay && c.role !== KktRole.Responder) return 0;
  const len = KEM_KEY_LENGTHS.get(c.kem);
  if (len === undefined) fail(LpErrorCode.KKT_UNSUPPORTED_CIPHERSUITE, `unknown KEM code ${c.kem}`);
  return len;
}

export function signatureLength(c: KktContext): number {
  return c.role === KktRole.AnonymousInitiator ? 0 : KKT_SIGNATURE_LEN;
}

/** Length of the frame that `c` describes. */
export function frameLength(c: KktContext): number {
  return KKT_CONTEXT_LEN + bodyLength(c) + KKT_SESSION_ID_LEN + signatureLength(c);
}

/** Parse a frame that must occupy exactly `b`. */
export function decodeKktFrame(b: Uint8Array): KktFrame {
  const context = decodeContext(b);
  const len = frameLength(context);
  if (b.length !== len) fail(LpErrorCode.KKT_BAD_FRAME, `KKT frame is ${b.length} bytes, context says ${len}`);
  const bodyEnd = KKT_CONTEXT_LEN + bodyLength(context);
  const sigStart = bodyEnd + KKT_SESSION_ID_LEN;
  return {
    context,
    body: b.subarray(KKT_CONTEXT_LEN, bodyEnd),
    sessionId: b.subarray(bodyEnd, sigStart),
    signature: b.subarray(sigStart),
    signed: b.subarray(0, sigStart),
    raw: b,
  };
}

/** Build a frame; `sign` receives the bytes to sign (context ‖ body ‖ session_id). */
export function encodeKktFrame(context: KktContext, body: Uint8Array, sessionId: Uint8Array, sign: ((m: Uint8Array) => Uint8Array) | null): Uint8Array {
  if (sessionId.length !== KKT_SESSION_ID_LEN) fail(LpErrorCode.KKT_BAD_FRAME, 'KKT session id must be 16 bytes');
  if (body.length !== bodyLength(context)) fail(LpErrorCode.KKT_BAD_FRAME, `KKT body must be ${bodyLength(context)} bytes`);
  const out = new Uint8Array(KKT_CONTEXT_LEN + body.length + KKT_SESSION_ID_LEN + signatureLength(context));
  writeKktFrame(out, context, body, sessionId, sign);
  return out;
}

/** `encodeKktFrame` into `out`, which must be exactly `frameLength(context)` bytes (a view into a packet). */
export function writeKktFrame(out: Uint8Array, context: KktContext, body: Uint8Array, sessionId: Uint8Array, sign: ((m: Uint8Array) => Uint8Array) | null): void {
  if (sessionId.length !== KKT_SESSION_ID_LEN) fail(LpErrorCode.KKT_BAD_FRAME, 'KKT session id must be 16 bytes');
  const bodyLen = bodyLength(context);
  if (body.length !== bodyLen) fail(LpErrorCode.KKT_BAD_FRAME, `KKT body must be ${bodyLen} bytes`);
  const sigLen = signatureLength(context);
  const signedLen = KKT_CONTEXT_LEN + body.length + KKT_SESSION_ID_LEN;
  if (out.length !== signedLen + sigLen) fail(LpErrorCode.KKT_BAD_FRAME, `KKT frame buffer is ${out.length} bytes, frame is ${signedLen + sigLen}`);
  writeContext(out, context);
  out.set(body, KKT_CONTEXT_LEN);
  out.set(sessionId, KKT_CONTEXT_LEN + body.length);
  if (sigLen) {
    if (!sign) fail(LpErrorCode.KKT_BAD_FRAME, 'KKT frame needs a signature');
    out.set(sign(out.subarray(0, signedLen)), signedLen);
  }
}
