/**
 * Wire layout of the four WireGuard messages (whitepaper §5.4; wireguard-go's MessageInitiation & co.). All
 * integers are little-endian; the 1-byte type is followed by 3 reserved zero bytes, so the first 4 bytes read
 * as a uint32 are exactly the type (anything else is an unknown type, as in wireguard-go). Parsers only
 * check sizes and return views into the datagram; the cryptographic checks live in cookie.ts, handshake.ts
 * and keypair.ts.
 */
import {
  COOKIE_REPLY_SIZE,
  INITIATION_SIZE,
  KEEPALIVE_SIZE,
  MSG_COOKIE_REPLY,
  MSG_INITIATION,
  MSG_RESPONSE,
  MSG_TRANSPORT,
  RESPONSE_SIZE,
  TRANSPORT_HEADER_SIZE,
} from './constants.js';
import { WgError, WgErrorCode } from './errors.js';

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** The message type, or 0 when the datagram is too short to carry one. */
export function messageType(b: Uint8Array): number {
  return b.length < 4 ? 0 : dv(b).getUint32(0, true);
}

export interface InitiationFields {
  sender: number;
  ephemeral: Uint8Array; // 32
  encryptedStatic: Uint8Array; // 32 + 16
  encryptedTimestamp: Uint8Array; // 12 + 16
  mac1: Uint8Array;
  mac2: Uint8Array;
}

/** Offsets of mac1/mac2 in a handshake message of `size` bytes (they are always its last 32 bytes). */
export const macOffsets = (size: number): { mac1: number; mac2: number } => ({ mac1: size - 32, mac2: size - 16 });

export function buildInitiation(f: Omit<InitiationFields, 'mac1' | 'mac2'>): Uint8Array {
  const b = new Uint8Array(INITIATION_SIZE);
  const d = dv(b);
  d.setUint32(0, MSG_INITIATION, true);
  d.setUint32(4, f.sender >>> 0, true);
  b.set(f.ephemeral, 8);
  b.set(f.encryptedStatic, 40);
  b.set(f.encryptedTimestamp, 88);
  return b; // mac1 @116, mac2 @132 left zero for cookie.ts
}

export function parseInitiation(b: Uint8Array): InitiationFields {
  if (b.length !== INITIATION_SIZE) throw new WgError(WgErrorCode.BAD_LENGTH, `an initiation is ${INITIATION_SIZE} bytes, got ${b.length}`);
  return {
    sender: dv(b).getUint32(4, true),
    ephemeral: b.subarray(8, 40),
    encryptedStatic: b.subarray(40, 88),
    encryptedTimestamp: b.subarray(88, 116),
    mac1: b.subarray(116, 132),
    mac2: b.subarray(132, 148),
  };
}

export interface ResponseFields {
  sender: number;
  receiver: number;
  ephemeral: Uint8Array; // 32
  encryptedNothing: Uint8Array; // 16: the tag of an empty plaintext
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export function buildResponse(f: Omit<ResponseFields, 'mac1' | 'mac2'>): Uint8Array {
  const b = new Uint8Array(RESPONSE_SIZE);
  const d = dv(b);
  d.setUint32(0, MSG_RESPONSE, true);
  d.setUint32(4, f.sender >>> 0, true);
  d.setUint32(8, f.receiver >>> 0, true);
  b.set(f.ephemeral, 12);
  b.set(f.encryptedNothing, 44);
  return b; // mac1 @60, mac2 @76
}

export function parseResponse(b: Uint8Array): ResponseFields {
  if (b.length !== RESPONSE_SIZE) throw new WgError(WgErrorCode.BAD_LENGTH, `a response is ${RESPONSE_SIZE} bytes, got ${b.length}`);
  const d = dv(b);
  return {
    sender: d.getUint32(4, true),
    receiver: d.getUint32(8, true),
    ephemeral: b.subarray(12, 44),
    encryptedNothing: b.subarray(44, 60),
    mac1: b.subarray(60, 76),
    mac2: b.subarray(76, 92),
  };
}

export interface CookieReplyFields {
  receiver: number;
  nonce: Uint8Array; // 24
  encryptedCookie: Uint8Array; // 16 + 16
}

export function buildCookieReply(f: CookieReplyFields): Uint8Array {
  const b = new Uint8Array(COOKIE_REPLY_SIZE);
  const d = dv(b);
  d.setUint32(0, MSG_COOKIE_REPLY, true);
  d.setUint32(4, f.receiver >>> 0, true);
  b.set(f.nonce, 8);
  b.set(f.encryptedCookie, 32);
  return b;
}

export function parseCookieReply(b: Uint8Array): CookieReplyFields {
  if (b.length !== COOKIE_REPLY_SIZE) throw new WgError(WgErrorCode.BAD_LENGTH, `a cookie reply is ${COOKIE_REPLY_SIZE} bytes, got ${b.length}`);
  return { receiver: dv(b).getUint32(4, true), nonce: b.subarray(8, 32), encryptedCookie: b.subarray(32, 64) };
}

export interface TransportHeader {
  receiver: number;
  /** The 64-bit counter, or -1 when it is beyond 2^53 − 1 (never legitimate; see REJECT_AFTER_MESSAGES). */
  counter: number;
}

export function parseTransportHeader(b: Uint8Array): TransportHeader {
  if (b.length < KEEPALIVE_SIZE) throw new WgError(WgErrorCode.BAD_LENGTH, `a transport message is at least ${KEEPALIVE_SIZE} bytes, got ${b.length}`);
  const d = dv(b);
  const lo = d.getUint32(8, true);
  const hi = d.getUint32(12, true);
  return { receiver: d.getUint32(4, true), counter: hi >= 0x200000 ? -1 : hi * 2 ** 32 + lo };
}

export function writeTransportHeader(b: Uint8Array, receiver: number, counter: number): void {
  const d = dv(b);
  d.setUint32(0, MSG_TRANSPORT, true);
  d.setUint32(4, receiver >>> 0, true);
  d.setUint32(8, counter >>> 0, true);
  d.setUint32(12, Math.floor(counter / 2 ** 32), true);
}

export { TRANSPORT_HEADER_SIZE };
