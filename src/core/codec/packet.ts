/**
 * LP packet layout (upstream §2, kept byte-compatible):
 *   receiver_index u32 LE ‖ counter u64 LE                (12-byte outer header, always cleartext, AEAD AAD)
 *   version u8 (=1) ‖ reserved[3] ‖ message_type u16 LE ‖ content   (inner part; ciphertext once keyed)
 *   trailer[16]                                            (zeros in cleartext, Poly1305 tag when sealed)
 * Stricter than upstream: version must be 1, reserved and a cleartext trailer must be zero, and each
 * message type's content length is checked here.
 */
import { LpErrorCode, fail } from '../errors.js';
import { writeU32le } from '../bytes.js';
import type { Primitives } from '../crypto/primitives.js';

export const HEADER_LEN = 12;
export const INNER_PREFIX_LEN = 6;
export const TRAILER_LEN = 16;
export const MIN_PACKET_LEN = HEADER_LEN + INNER_PREFIX_LEN + TRAILER_LEN; // 34
/** Largest packet that fits a TCP frame. */
export const MAX_PACKET_LEN = 65536;
export const MAX_CONTENT_LEN = MAX_PACKET_LEN - MIN_PACKET_LEN;
export const PROTOCOL_VERSION = 1;
/** Counters are u64 on the wire; we keep them as JS numbers and refuse values past 2^53 - 1. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

export const MessageType = {
  Busy: 0x0000,
  Handshake: 0x0001,
  EncryptedData: 0x0002,
  ClientHello: 0x0003,
  KKTRequest: 0x0004,
  KKTResponse: 0x0005,
  ForwardPacket: 0x0006,
  Collision: 0x0007,
  Ack: 0x0008,
  SubsessionRequest: 0x0009,
  SubsessionKK1: 0x000a,
  SubsessionKK2: 0x000b,
  SubsessionReady: 0x000c,
  SubsessionAbort: 0x000d,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

const TYPE_NAMES = new Map<number, string>(Object.entries(MessageType).map(([k, v]) => [v, k]));
export function messageTypeName(t: number): string {
  return TYPE_NAMES.get(t) ?? `0x${t.toString(16).padStart(4, '0')}`;
}

export interface Header {
  receiverIndex: number;
  counter: number;
}

export interface Packet {
  receiverIndex: number;
  counter: number;
  type: MessageType;
  content: Uint8Array;
}

/** Per-type content length rules; structured contents are validated again by their decoders. */
function checkContentLength(type: number, len: number): void {
  switch (type) {
    case MessageType.Busy:
      if (len !== 0 && len !== 4) fail(LpErrorCode.BAD_CONTENT_LENGTH, `Busy content must be 0 or 4 bytes, got ${len}`);
      return;
    case MessageType.Ack:
      // Empty, or the routability token answering a ClientHello (DESIGN.md §4.2).
      if (len !== 0 && len !== 32) fail(LpErrorCode.BAD_CONTENT_LENGTH, `Ack content must be 0 or 32 bytes, got ${len}`);
      return;
    case MessageType.Collision:
    case MessageType.SubsessionRequest:
    case MessageType.SubsessionAbort:
      if (len !== 0) fail(LpErrorCode.BAD_CONTENT_LENGTH, `${messageTypeName(type)} content must be empty, got ${len}`);
      return;
    case MessageType.ClientHello:
      if (len !== 100) fail(LpErrorCode.BAD_CONTENT_LENGTH, `ClientHello content must be 100 bytes, got ${len}`);
      return;
    case MessageType.Handshake:
    case MessageType.EncryptedData:
    case MessageType.KKTRequest:
    case MessageType.KKTResponse:
    case MessageType.ForwardPacket:
    case MessageType.SubsessionKK1:
    case MessageType.SubsessionKK2:
    case MessageType.SubsessionReady:
      return;
    default:
      fail(LpErrorCode.UNKNOWN_MESSAGE_TYPE, `unknown message type 0x${type.toString(16)}`);
  }
}

export function parseHeader(bytes: Uint8Array): Header {
  if (bytes.length < MIN_PACKET_LEN) fail(LpErrorCode.PACKET_TOO_SHORT, `packet of ${bytes.length} bytes is shorter than ${MIN_PACKET_LEN}`);
  if (bytes.length > MAX_PACKET_LEN) fail(LpErrorCode.PACKET_TOO_LARGE, `packet of ${bytes.length} bytes exceeds ${MAX_PACKET_LEN}`);
  // Byte arithmetic rather than a DataView: this runs for every packet, and a DataView is an allocation.
  const lo = readU32le(bytes, 4);
  const hi = readU32le(bytes, 8);
  if (hi > 0x1fffff) fail(LpErrorCode.COUNTER_EXHAUSTED, 'counter exceeds 2^53 - 1');
  return { receiverIndex: readU32le(bytes, 0), counter: hi * 0x100000000 + lo };
}

/** u32 little-endian at `off` (the caller checked the length). */
export function readU32le(b: Uint8Array, off: number): number {
  return ((b[off] as number) | ((b[off + 1] as number) << 8) | ((b[off + 2] as number) << 16) | ((b[off + 3] as number) << 24)) >>> 0;
}

function writeHeader(out: Uint8Array, receiverIndex: number, counter: number): void {
  if (!Number.isInteger(counter) || counter < 0 || counter > MAX_COUNTER) fail(LpErrorCode.COUNTER_EXHAUSTED, `counter ${counter} out of range`);
  writeU32le(out, 0, receiverIndex >>> 0);
  writeU32le(out, 4, counter % 0x100000000);
  writeU32le(out, 8, Math.floor(counter / 0x100000000));
}

function writeInner(out: Uint8Array, off: number, type: number, content: Uint8Array): void {
  out[off] = PROTOCOL_VERSION;
  out[off + 1] = 0;
  out[off + 2] = 0;
  out[off + 3] = 0;
  out[off + 4] = type & 0xff;
  out[off + 5] = type >>> 8;
  out.set(content, off + INNER_PREFIX_LEN);
}

function parseInner(inner: Uint8Array): { type: MessageType; content: Uint8Array } {
  if (inner[0] !== PROTOCOL_VERSION) fail(LpErrorCode.BAD_VERSION, `unsupported protocol version ${inner[0]}`);
  if (inner[1] !== 0 || inner[2] !== 0 || inner[3] !== 0) fail(LpErrorCode.BAD_RESERVED, 'reserved bytes must be zero');
  const type = (inner[4] as number) | ((inner[5] as number) << 8);
  const content = inner.subarray(INNER_PREFIX_LEN);
  checkContentLength(type, content.length);
  return { type: type as MessageType, content };
}

function checkSize(contentLen: number): void {
  if (contentLen > MAX_CONTENT_LEN) fail(LpErrorCode.PAYLOAD_TOO_LARGE, `content of ${contentLen} bytes exceeds ${MAX_CONTENT_LEN}`);
}

/** Serialize a cleartext packet (zero trailer). */
export function serializeClear(p: Packet): Uint8Array {
  checkSize(p.content.length);
  checkContentLength(p.type, p.content.length);
  const out = new Uint8Array(MIN_PACKET_LEN + p.content.length);
  writeHeader(out, p.receiverIndex, p.counter);
  writeInner(out, HEADER_LEN, p.type, p.content);
  return out;
}

/**
 * A cleartext packet (counter 0, zero trailer) whose `contentLength` bytes of content the caller writes into
 * `content`, a view of `packet`: a large content is then written once, in place, rather than built and copied.
 */
export function allocClear(receiverIndex: number, type: MessageType, contentLength: number): { packet: Uint8Array; content: Uint8Array } {
  const packet = packetFrame(receiverIndex, 0, type, contentLength);
  return { packet, content: packet.subarray(CONTENT_OFFSET, CONTENT_OFFSET + contentLength) };
}

/** Parse a cleartext packet; the trailer must be all zero. */
export function parseClear(bytes: Uint8Array): Packet {
  const h = parseHeader(bytes);
  const trailer = bytes.subarray(bytes.length - TRAILER_LEN);
  for (let i = 0; i < TRAILER_LEN; i++) if (trailer[i] !== 0) fail(LpErrorCode.BAD_TRAILER, 'cleartext trailer must be zero');
  const { type, content } = parseInner(bytes.subarray(HEADER_LEN, bytes.length - TRAILER_LEN));
  return { receiverIndex: h.receiverIndex, counter: h.counter, type, content };
}

/**
 * True if `bytes` is shaped like a cleartext KKTRequest (version 1, zero reserved bytes, type KKTRequest, zero
 * trailer). A sealed packet passes this only by a 2^-160 accident (its trailer is a tag), so the router may send
 * such packets to the stateless KKT path whatever index they name. Never throws.
 */
export function looksLikeClearKktRequest(bytes: Uint8Array): boolean {
  if (bytes.length < MIN_PACKET_LEN || bytes.length > MAX_PACKET_LEN) return false;
  if (bytes[HEADER_LEN] !== PROTOCOL_VERSION || bytes[HEADER_LEN + 1] !== 0 || bytes[HEADER_LEN + 2] !== 0 || bytes[HEADER_LEN + 3] !== 0) return false;
  if (bytes[HEADER_LEN + 4] !== (MessageType.KKTRequest & 0xff) || bytes[HEADER_LEN + 5] !== MessageType.KKTRequest >>> 8) return false;
  for (let i = bytes.length - TRAILER_LEN; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

const EMPTY = new Uint8Array(0);

/** Scratch nonce: the core is single-threaded per isolate and never holds it across calls. */
const NONCE = new Uint8Array(12);
const NONCE_DV = new DataView(NONCE.buffer);

/** AEAD nonce for the outer layer: counter u64 LE ‖ 4 zero bytes (upstream §3). Valid until the next call. */
export function outerNonce(counter: number): Uint8Array {
  NONCE_DV.setUint32(0, counter % 0x100000000, true);
  NONCE_DV.setUint32(4, Math.floor(counter / 0x100000000), true);
  return NONCE;
}

/** Where a packet's content starts: after the header and the inner prefix. */
export const CONTENT_OFFSET = HEADER_LEN + INNER_PREFIX_LEN;

/**
 * A packet's bytes with its header and inner prefix written and room for `contentLength` bytes of content at
 * CONTENT_OFFSET and the trailer: for callers that write the content in place (then sealPacketInPlace).
 */
export function packetFrame(receiverIndex: number, counter: number, type: MessageType, contentLength: number): Uint8Array {
  checkSize(contentLength);
  checkContentLength(type, contentLength);
  const out = new Uint8Array(MIN_PACKET_LEN + contentLength);
  writeHeader(out, receiverIndex, counter);
  writeInner(out, HEADER_LEN, type, EMPTY);
  return out;
}

/** Seal a packetFrame whose content is written: AAD = the 12-byte header, the tag replaces the trailer. */
export function sealPacketInPlace(prims: Primitives, key: Uint8Array, out: Uint8Array, counter: number): void {
  prims.aeadSealInPlace(key, outerNonce(counter), out.subarray(0, HEADER_LEN), out.subarray(HEADER_LEN), out.length - HEADER_LEN - TRAILER_LEN);
}

/** Seal a packet under an outer key: one allocation, the inner part encrypted in place, then the tag. */
export function sealPacket(prims: Primitives, key: Uint8Array, p: Packet): Uint8Array {
  const out = packetFrame(p.receiverIndex, p.counter, p.type, p.content.length);
  out.set(p.content, CONTENT_OFFSET);
  sealPacketInPlace(prims, key, out, p.counter);
  return out;
}

/** Open a sealed packet; LP_ERR_AEAD_TAG_MISMATCH if the header, ciphertext or tag was altered. */
export function openPacket(prims: Primitives, key: Uint8Array, bytes: Uint8Array, header?: Header): Packet {
  const h = header ?? parseHeader(bytes);
  const inner = prims.aeadOpen(key, outerNonce(h.counter), bytes.subarray(0, HEADER_LEN), bytes.subarray(HEADER_LEN));
  if (!inner) fail(LpErrorCode.AEAD_TAG_MISMATCH, 'outer AEAD authentication failed');
  const { type, content } = parseInner(inner);
  return { receiverIndex: h.receiverIndex, counter: h.counter, type, content };
}
