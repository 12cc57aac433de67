/**
 * Contents of the structured LP message types (upstream §2.3, bincode 1.x), decoded strictly.
 */
import { LpErrorCode, fail } from '../errors.js';
import { type BincodeReader, type BincodeWriter, decodeAll, encode } from './bincode.js';
import { MAX_CONTENT_LEN, MIN_PACKET_LEN, MessageType, parseClear } from './packet.js';

/** ClientHello content: exactly 100 bytes. */
export interface ClientHello {
  receiverIndex: number;
  /** Client X25519 public key; must be the conversion of the Ed25519 key (we check, upstream ignored it). */
  clientX25519: Uint8Array;
  clientEd25519: Uint8Array;
  /** u64 LE unix seconds ‖ 24 random bytes. */
  salt: Uint8Array;
}

export function encodeClientHello(h: ClientHello): Uint8Array {
  return encode((w) => w.u32(h.receiverIndex).fixed(h.clientX25519, 32).fixed(h.clientEd25519, 32).fixed(h.salt, 32), 100);
}

export function decodeClientHello(b: Uint8Array): ClientHello {
  return decodeAll(b, (r) => ({
    receiverIndex: r.u32(),
    clientX25519: r.fixed(32),
    clientEd25519: r.fixed(32),
    salt: r.fixed(32),
  }));
}

/** Unix seconds carried in the first 8 bytes of a ClientHello salt. */
export function saltTimestamp(salt: Uint8Array): number {
  const dv = new DataView(salt.buffer, salt.byteOffset, 8);
  return dv.getUint32(0, true) + dv.getUint32(4, true) * 0x100000000;
}

export function makeSalt(unixSeconds: number, random24: Uint8Array): Uint8Array {
  if (random24.length !== 24) fail(LpErrorCode.ENCODE_BAD_VALUE, 'salt needs 24 random bytes');
  const salt = new Uint8Array(32);
  const dv = new DataView(salt.buffer);
  dv.setUint32(0, unixSeconds % 0x100000000, true);
  dv.setUint32(4, Math.floor(unixSeconds / 0x100000000), true);
  salt.set(random24, 8);
  return salt;
}

/** Telescoping request: forward one inner LP packet to another gateway (upstream §10, V12). */
export interface ForwardPacketData {
  targetGatewayIdentity: Uint8Array;
  /** Socket-address literal, `a.b.c.d:port` or `[v6]:port`. */
  targetLpAddress: string;
  innerPacketBytes: Uint8Array;
}

export const MAX_LP_ADDRESS_LEN = 64;

export function writeForwardPacketData(w: BincodeWriter, f: ForwardPacketData): void {
  w.fixed(f.targetGatewayIdentity, 32).str(f.targetLpAddress).bytes(f.innerPacketBytes);
}

export function readForwardPacketData(r: BincodeReader): ForwardPacketData {
  return {
    targetGatewayIdentity: r.fixed(32),
    targetLpAddress: r.str(MAX_LP_ADDRESS_LEN),
    innerPacketBytes: r.bytes(MAX_CONTENT_LEN),
  };
}

export function encodeForwardPacketData(f: ForwardPacketData): Uint8Array {
  return encode((w) => writeForwardPacketData(w, f), 64 + f.innerPacketBytes.length);
}

export function decodeForwardPacketData(b: Uint8Array): ForwardPacketData {
  return decodeAll(b, readForwardPacketData);
}

/** SubsessionKK1 / SubsessionKK2 content: `{ payload: Vec<u8> }` (a Noise KKpsk0 message). */
export const MAX_SUBSESSION_PAYLOAD = 1024;

export function encodeSubsessionPayload(payload: Uint8Array): Uint8Array {
  return encode((w) => w.bytes(payload));
}

export function decodeSubsessionPayload(b: Uint8Array): Uint8Array {
  return decodeAll(b, (r) => r.bytes(MAX_SUBSESSION_PAYLOAD));
}

/** SubsessionReady content: `{ receiver_index: u32 }`. */
export function encodeSubsessionReady(receiverIndex: number): Uint8Array {
  return encode((w) => w.u32(receiverIndex), 4);
}

export function decodeSubsessionReady(b: Uint8Array): number {
  return decodeAll(b, (r) => r.u32());
}

/** Busy content: empty, or a u32 LE retry-after hint in milliseconds. */
export function encodeBusy(retryAfterMs?: number): Uint8Array {
  return retryAfterMs === undefined ? new Uint8Array(0) : encode((w) => w.u32(retryAfterMs), 4);
}

export function decodeBusy(b: Uint8Array): number | null {
  if (b.length === 0) return null;
  return decodeAll(b, (r) => r.u32());
}

/**
 * If `packet` is a well-formed cleartext Busy, its retry hint (null when it carries none); otherwise
 * undefined. Never throws: callers use it to look at a reply before anything else.
 */
export function peekBusy(packet: Uint8Array): number | null | undefined {
  if (packet.length > MIN_PACKET_LEN + 4) return undefined;
  try {
    const p = parseClear(packet);
    return p.type === MessageType.Busy ? decodeBusy(p.content) : undefined;
  } catch {
    return undefined;
  }
}

/** Length of the message-1 binder (DESIGN.md §4.3). */
export const MSG1_BINDER_LEN = 16;

/**
 * Handshake message 1 content: `u16 LE kem_ct_len ‖ kem_ciphertext ‖ noise_msg1 ‖ binder(16)` (upstream's
 * `len ‖ psq ‖ noise` shape, carrying the ML-KEM ciphertext instead of the PSQ v1 message, plus a binder
 * that ties the cleartext message to the ClientHello's static key). `binder` may be omitted to get the
 * bytes it is computed over.
 */
export function encodeHandshake1(kemCiphertext: Uint8Array, noise: Uint8Array, binder?: Uint8Array): Uint8Array {
  if (binder && binder.length !== MSG1_BINDER_LEN) fail(LpErrorCode.ENCODE_BAD_VALUE, 'binder must be 16 bytes');
  const out = new Uint8Array(2 + kemCiphertext.length + noise.length + (binder ? MSG1_BINDER_LEN : 0));
  new DataView(out.buffer).setUint16(0, kemCiphertext.length, true);
  out.set(kemCiphertext, 2);
  out.set(noise, 2 + kemCiphertext.length);
  if (binder) out.set(binder, 2 + kemCiphertext.length + noise.length);
  return out;
}

export function decodeHandshake1(
  b: Uint8Array,
  kemCiphertextLength: number,
  noiseLength: number,
): { kemCiphertext: Uint8Array; noise: Uint8Array; binder: Uint8Array; bound: Uint8Array } {
  if (b.length < 2) fail(LpErrorCode.DECODE_TRUNCATED, 'handshake message 1 too short');
  const len = (b[0] as number) | ((b[1] as number) << 8);
  if (len !== kemCiphertextLength) fail(LpErrorCode.KEM_BAD_CIPHERTEXT, `KEM ciphertext length ${len}, expected ${kemCiphertextLength}`);
  const end = 2 + len + noiseLength;
  if (b.length !== end + MSG1_BINDER_LEN) fail(LpErrorCode.BAD_CONTENT_LENGTH, `handshake message 1 is ${b.length} bytes, expected ${end + MSG1_BINDER_LEN}`);
  return { kemCiphertext: b.subarray(2, 2 + len), noise: b.subarray(2 + len, end), binder: b.subarray(end), bound: b.subarray(0, end) };
}

/** KKTRequest content: the ClientHello content (100) ‖ the routability token (32) ‖ KKT frame ‖ zero padding. */
export const KKT_REQUEST_PREFIX_LEN = 100 + 32;

export interface KktRequestContent {
  /** The ClientHello content the token was issued for (the gateway kept nothing of it). */
  helloBytes: Uint8Array;
  hello: ClientHello;
  token: Uint8Array;
  /** The signed KKT frame followed by its zero padding. */
  framePadded: Uint8Array;
}

export function encodeKktRequestContent(helloBytes: Uint8Array, token: Uint8Array, framePadded: Uint8Array): Uint8Array {
  if (helloBytes.length !== 100 || token.length !== 32) fail(LpErrorCode.ENCODE_BAD_VALUE, 'KKTRequest needs the 100-byte hello and the 32-byte token');
  const out = new Uint8Array(KKT_REQUEST_PREFIX_LEN + framePadded.length);
  out.set(helloBytes, 0);
  out.set(token, 100);
  out.set(framePadded, KKT_REQUEST_PREFIX_LEN);
  return out;
}

export function decodeKktRequestContent(b: Uint8Array): KktRequestContent {
  if (b.length < KKT_REQUEST_PREFIX_LEN) fail(LpErrorCode.DECODE_TRUNCATED, `KKTRequest content of ${b.length} bytes is shorter than hello ‖ token`);
  const helloBytes = b.subarray(0, 100);
  return { helloBytes, hello: decodeClientHello(helloBytes), token: b.subarray(100, KKT_REQUEST_PREFIX_LEN), framePadded: b.subarray(KKT_REQUEST_PREFIX_LEN) };
}

/** KKTResponse content: the signed KKT frame ‖ the gateway's fresh nonce (32). */
export const GATEWAY_NONCE_LEN = 32;

export function decodeKktResponseContent(b: Uint8Array): { frame: Uint8Array; gatewayNonce: Uint8Array } {
  if (b.length < GATEWAY_NONCE_LEN) fail(LpErrorCode.DECODE_TRUNCATED, 'KKTResponse content shorter than the gateway nonce');
  return { frame: b.subarray(0, b.length - GATEWAY_NONCE_LEN), gatewayNonce: b.subarray(b.length - GATEWAY_NONCE_LEN) };
}
