/**
 * KEM key transfer, OneWay mode, with a real post-quantum KEM (PRODUCT.md §1.1): the gateway answers a
 * signed request with its persistent ML-KEM-768 encapsulation key, signed with its Ed25519 identity.
 * The client checks the signature, the session-id echo, the ciphersuite echo and BLAKE3(key) against the
 * hash pinned in the gateway's signed descriptor. Classical-only requests are refused (fail closed).
 */
import { LpErrorCode, fail } from '../errors.js';
import { concat, equalBytes, isAllZero, u32le, withJoined } from '../bytes.js';
import type { KeyPair, Kem, Primitives } from '../crypto/primitives.js';
import {
  type KktContext,
  type KktFrame,
  KktHash,
  KktMode,
  KktRole,
  KktSignature,
  KktStatus,
  decodeContext,
  decodeKktFrame,
  encodeKktFrame,
  frameLength,
  writeKktFrame,
} from './frame.js';

/** The ciphersuite this profile accepts: KEM from the gateway's Kem, BLAKE3-256, Ed25519. */
export function requestContext(kem: Kem): KktContext {
  return { version: 1, sequence: 0, status: KktStatus.Ok, mode: KktMode.OneWay, role: KktRole.Initiator, kem: kem.kktCode, hash: KktHash.Blake3, hashLen: 0, signature: KktSignature.Ed25519 };
}

/**
 * What a KKT signature covers besides the frame's own signed bytes (DESIGN.md §4.2): the receiver index and the
 * routability token for a request, and also the gateway's fresh nonce for a response. A request therefore serves
 * one handshake only (its hello's index, its token), and a response is tied to this handshake's nonce.
 *   binding = receiver_index u32 LE ‖ token(32) [‖ gateway_nonce(32)]
 */
export function kktBinding(receiverIndex: number, token: Uint8Array, gatewayNonce?: Uint8Array): Uint8Array {
  return gatewayNonce ? concat(u32le(receiverIndex), token, gatewayNonce) : concat(u32le(receiverIndex), token);
}

/**
 * Client: the signed request frame (signature over context ‖ body ‖ session_id ‖ binding), and the frame
 * followed by `padTo - frameLen` zero bytes. Padding lets a UDP request be at least as large as the response
 * (anti-amplification, PRODUCT.md §1.10).
 */
export function buildKktRequest(prims: Primitives, kem: Kem, clientEd25519: KeyPair, sessionId: Uint8Array, binding: Uint8Array, padTo = 0): { content: Uint8Array; frame: Uint8Array } {
  const frame = encodeKktFrame(requestContext(kem), new Uint8Array(0), sessionId, (m) => withJoined([m, binding], (signed) => prims.ed25519Sign(clientEd25519.secretKey, signed)));
  if (padTo <= frame.length) return { content: frame, frame };
  const content = new Uint8Array(padTo);
  content.set(frame, 0);
  return { content, frame };
}

/** Split KKTRequest content into the frame and its zero padding. */
export function splitPaddedFrame(content: Uint8Array): Uint8Array {
  const context = decodeContext(content);
  const len = frameLength(context);
  if (content.length < len) fail(LpErrorCode.KKT_BAD_FRAME, `KKT frame truncated: ${content.length} < ${len}`);
  if (!isAllZero(content.subarray(len))) fail(LpErrorCode.KKT_BAD_PADDING, 'KKT request padding must be zero bytes');
  return content.subarray(0, len);
}

/** A binding given whole (`kktBinding`) or as its parts in order (index, token [, nonce]), not joined here. */
function bindingParts(b: Uint8Array | readonly Uint8Array[]): readonly Uint8Array[] {
  return b instanceof Uint8Array ? [b] : b;
}

export type KktRequestOutcome =
  | { ok: true; request: KktFrame; response: Uint8Array }
  /** Signed refusal: sent to the client, then the handshake is dropped. */
  | { ok: false; request: KktFrame; response: Uint8Array; code: LpErrorCode; reason: string };

/**
 * Gateway: verify the request against the ClientHello's Ed25519 key and answer. Throws LpError for
 * input that must be dropped without a reply (malformed, unsigned, bad signature). With `alloc`, the response frame
 * is written into the buffer `alloc(frame length)` returns (a view into the reply packet) and `response` is that.
 */
export function processKktRequest(
  prims: Primitives,
  kem: Kem,
  gatewayEd25519: KeyPair,
  kemPublicKey: Uint8Array,
  clientEd25519Public: Uint8Array,
  content: Uint8Array,
  requestBinding: Uint8Array | readonly Uint8Array[],
  responseBinding: Uint8Array | readonly Uint8Array[],
  alloc?: (frameLength: number) => Uint8Array,
): KktRequestOutcome {
  const request = decodeKktFrame(splitPaddedFrame(content));
  const c = request.context;
  if (c.sequence !== 0) fail(LpErrorCode.KKT_BAD_FRAME, `KKT request sequence ${c.sequence}, expected 0`);
  if (c.role !== KktRole.Initiator) fail(LpErrorCode.KKT_BAD_FRAME, 'KKT request must be a signed Initiator request');
  if (c.status !== KktStatus.Ok) fail(LpErrorCode.KKT_BAD_FRAME, 'KKT request carries a non-Ok status');
  if (!withJoined([request.signed, ...bindingParts(requestBinding)], (m) => prims.ed25519Verify(clientEd25519Public, m, request.signature)))
    fail(LpErrorCode.KKT_BAD_SIGNATURE, 'KKT request signature does not verify with the ClientHello key for this index and token');

  const responseContext: KktContext = { ...c, sequence: 1, role: KktRole.Responder };
  const unsupported =
    c.mode !== KktMode.OneWay
      ? 'only OneWay KKT is supported'
      : c.kem !== kem.kktCode
        ? `KEM code ${c.kem} refused: this gateway serves only ${kem.name} (code ${kem.kktCode}); classical-only sessions are not offered`
        : c.hash !== KktHash.Blake3 || (c.hashLen !== 0 && c.hashLen !== 32)
          ? 'only BLAKE3-256 key hashes are supported'
          : c.signature !== KktSignature.Ed25519
            ? 'only Ed25519 signatures are supported'
            : null;
  if (unsupported) {
    const refusal = { ...responseContext, status: KktStatus.UnsupportedCiphersuite };
    return { ok: false, request, response: encodeResponse(prims, gatewayEd25519, responseBinding, refusal, new Uint8Array(0), request.sessionId, alloc), code: LpErrorCode.KKT_UNSUPPORTED_CIPHERSUITE, reason: unsupported };
  }
  return { ok: true, request, response: encodeResponse(prims, gatewayEd25519, responseBinding, responseContext, kemPublicKey, request.sessionId, alloc) };
}

/** The gateway's signed response frame (into `alloc`'s buffer if given): signature over its signed bytes ‖ binding. */
function encodeResponse(
  prims: Primitives,
  gatewayEd25519: KeyPair,
  binding: Uint8Array | readonly Uint8Array[],
  context: KktContext,
  body: Uint8Array,
  sessionId: Uint8Array,
  alloc: ((frameLength: number) => Uint8Array) | undefined,
): Uint8Array {
  const out = alloc ? alloc(frameLength(context)) : null;
  if (!out) return encodeKktFrame(context, body, sessionId, (m) => withJoined([m, ...bindingParts(binding)], (signed) => prims.ed25519Sign(gatewayEd25519.secretKey, signed)));
  writeKktFrame(out, context, body, sessionId, (m) => withJoined([m, ...bindingParts(binding)], (signed) => prims.ed25519Sign(gatewayEd25519.secretKey, signed)));
  return out;
}

/**
 * Client: validate the response and return the pinned KEM encapsulation key. Order: signature first
 * (nothing unauthenticated is trusted), then echo checks, status, and the directory pin.
 */
export function processKktResponse(
  prims: Primitives,
  kem: Kem,
  gatewayEd25519Public: Uint8Array,
  expectedKeyHash: Uint8Array,
  request: Uint8Array,
  content: Uint8Array,
  binding: Uint8Array,
): { kemPublicKey: Uint8Array; frame: KktFrame } {
  const response = decodeKktFrame(content);
  const c = response.context;
  if (c.role !== KktRole.Responder || c.sequence !== 1) fail(LpErrorCode.KKT_BAD_FRAME, 'KKT response must be sequence 1 from a Responder');
  if (!withJoined([response.signed, binding], (m) => prims.ed25519Verify(gatewayEd25519Public, m, response.signature)))
    fail(LpErrorCode.KKT_BAD_SIGNATURE, 'KKT response signature does not verify with the gateway identity for this index, token and nonce');
  const req = decodeKktFrame(request);
  if (!equalBytes(req.sessionId, response.sessionId)) fail(LpErrorCode.KKT_SESSION_ID_MISMATCH, 'KKT response does not echo the request session id');
  if (c.status === KktStatus.UnsupportedCiphersuite) fail(LpErrorCode.KKT_UNSUPPORTED_CIPHERSUITE, 'gateway refused the requested KKT ciphersuite');
  if (c.status !== KktStatus.Ok) fail(LpErrorCode.KKT_RESPONDER_ERROR, `gateway answered KKT status ${c.status}`);
  const rc = req.context;
  if (c.kem !== rc.kem || c.hash !== rc.hash || c.hashLen !== rc.hashLen || c.signature !== rc.signature || c.mode !== rc.mode)
    fail(LpErrorCode.KKT_UNSUPPORTED_CIPHERSUITE, 'KKT response ciphersuite differs from the request');
  if (c.kem !== kem.kktCode) fail(LpErrorCode.KKT_UNSUPPORTED_CIPHERSUITE, `KKT response KEM ${c.kem} is not ${kem.name}`);
  if (!equalBytes(prims.blake3(response.body), expectedKeyHash)) fail(LpErrorCode.KKT_KEY_HASH_MISMATCH, 'BLAKE3 of the KEM key does not match the hash in the gateway descriptor');
  return { kemPublicKey: response.body, frame: response };
}

