/**
 * Application messages: the Noise plaintext of every EncryptedData packet is one bincode `AppMessage`
 * enum value. Upstream sniffed the payload type (try registration, then forward); an explicit tag
 * removes that ambiguity (PRODUCT.md §1.7).
 */
import { LpErrorCode, fail } from '../errors.js';
import { type BincodeReader, type BincodeWriter, decodeAll, encode, encodeInto } from './bincode.js';
import { type ForwardPacketData, readForwardPacketData, writeForwardPacketData } from './messages.js';
import { MAX_CONTENT_LEN } from './packet.js';

export const TicketType = { V1MixnetEntry: 0, V1MixnetExit: 1, V1WireguardEntry: 2, V1WireguardExit: 3 } as const;
export type TicketType = (typeof TicketType)[keyof typeof TicketType];

export type RegistrationMode = { kind: 'dvpn'; wgPublicKey: Uint8Array } | { kind: 'mixnet'; clientId: Uint8Array };

/** Ed25519-signed bandwidth ticket; the signature covers `ticketSigningBytes` (fields without it). */
export interface BandwidthTicket {
  /** First 8 bytes of BLAKE3(issuer Ed25519 public key). */
  issuerKeyId: Uint8Array;
  serial: Uint8Array;
  ticketType: TicketType;
  bandwidthBytes: bigint;
  /** Unix seconds after which the ticket is refused. */
  expiry: bigint;
  signature: Uint8Array;
}

export type Credential = { kind: 'mock'; blob: Uint8Array } | { kind: 'ticket'; ticket: BandwidthTicket };

export interface RegisterRequest {
  mode: RegistrationMode;
  credential: Credential;
  ticketType: TicketType;
  /** Unix seconds; the gateway checks it against its clock. */
  timestamp: bigint;
}

export interface ErrorBody {
  /** A coded error such as `LP_ERR_FORWARD_TARGET_UNKNOWN`. */
  code: string;
  message: string;
  retryAfterMs: number | null;
}

export type SocketAddress = { family: 4 | 6; address: Uint8Array; port: number };

export interface GatewayData {
  /** Gateway WireGuard X25519 public key. */
  publicKey: Uint8Array;
  endpoint: SocketAddress;
  privateIpv4: Uint8Array;
  privateIpv6: Uint8Array;
}

export interface RegisterResponse {
  success: boolean;
  error: ErrorBody | null;
  gatewayData: GatewayData | null;
  allocatedBandwidth: bigint;
}

export type AppMessage =
  | { kind: 'register'; request: RegisterRequest }
  | { kind: 'registerResponse'; response: RegisterResponse }
  | { kind: 'forward'; forward: ForwardPacketData }
  | { kind: 'forwardResponse'; innerPacketBytes: Uint8Array }
  | { kind: 'error'; error: ErrorBody }
  | { kind: 'ping'; payload: Uint8Array }
  | { kind: 'pong'; payload: Uint8Array }
  | { kind: 'deregister'; request: DeregisterRequest }
  | { kind: 'deregistered'; wgPublicKey: Uint8Array };

/**
 * Removes a dVPN peer (e.g. a probe's, when its run ends). `proof` shows the sender holds the WireGuard
 * private key of `wgPublicKey` (`wireguardDeregisterProof` in key-schedule.ts), so nobody else can remove it.
 */
export interface DeregisterRequest {
  wgPublicKey: Uint8Array;
  proof: Uint8Array;
}

/** Variant indices on the wire, in declaration order. */
export const AppMessageTag = { register: 0, registerResponse: 1, forward: 2, forwardResponse: 3, error: 4, ping: 5, pong: 6, deregister: 7, deregistered: 8 } as const;
const APP_VARIANTS = 9;

export const MAX_MOCK_CREDENTIAL_LEN = 4096;
const MAX_ERROR_CODE_LEN = 64;
const MAX_ERROR_MESSAGE_LEN = 1024;

export const TICKET_SIGNING_CONTEXT = 'lp-gateway v1 bandwidth ticket';

export function ticketSigningBytes(t: Omit<BandwidthTicket, 'signature'>): Uint8Array {
  return encode((w) => {
    w.str(TICKET_SIGNING_CONTEXT).fixed(t.issuerKeyId, 8).fixed(t.serial, 16).u32(t.ticketType).u64(t.bandwidthBytes).u64(t.expiry);
  });
}

function writeTicket(w: BincodeWriter, t: BandwidthTicket): void {
  w.fixed(t.issuerKeyId, 8).fixed(t.serial, 16).u32(t.ticketType).u64(t.bandwidthBytes).u64(t.expiry).fixed(t.signature, 64);
}

function readTicketType(r: BincodeReader): TicketType {
  return r.variant(4, 'TicketType') as TicketType;
}

function readTicket(r: BincodeReader): BandwidthTicket {
  return {
    issuerKeyId: r.fixed(8),
    serial: r.fixed(16),
    ticketType: readTicketType(r),
    bandwidthBytes: r.u64(),
    expiry: r.u64(),
    signature: r.fixed(64),
  };
}

export function encodeTicket(t: BandwidthTicket): Uint8Array {
  return encode((w) => writeTicket(w, t), 112);
}

export function decodeTicket(b: Uint8Array): BandwidthTicket {
  return decodeAll(b, readTicket);
}

function writeError(w: BincodeWriter, e: ErrorBody): void {
  w.str(e.code).str(e.message).option(e.retryAfterMs, (ww, v) => ww.u32(v));
}

function readError(r: BincodeReader): ErrorBody {
  return { code: r.str(MAX_ERROR_CODE_LEN), message: r.str(MAX_ERROR_MESSAGE_LEN), retryAfterMs: r.option((rr) => rr.u32()) };
}

function writeSocketAddress(w: BincodeWriter, a: SocketAddress): void {
  w.variant(a.family === 4 ? 0 : 1).fixed(a.address, a.family === 4 ? 4 : 16).u16(a.port);
}

function readSocketAddress(r: BincodeReader): SocketAddress {
  const v = r.variant(2, 'SocketAddr');
  return v === 0 ? { family: 4, address: r.fixed(4), port: r.u16() } : { family: 6, address: r.fixed(16), port: r.u16() };
}

function writeRequest(w: BincodeWriter, q: RegisterRequest): void {
  if (q.mode.kind === 'dvpn') w.variant(0).fixed(q.mode.wgPublicKey, 32);
  else w.variant(1).fixed(q.mode.clientId, 32);
  if (q.credential.kind === 'mock') w.variant(0).bytes(q.credential.blob);
  else writeTicket(w.variant(1), q.credential.ticket);
  w.u32(q.ticketType).u64(q.timestamp);
}

function readRequest(r: BincodeReader): RegisterRequest {
  const mode: RegistrationMode = r.variant(2, 'RegistrationMode') === 0 ? { kind: 'dvpn', wgPublicKey: r.fixed(32) } : { kind: 'mixnet', clientId: r.fixed(32) };
  const credential: Credential =
    r.variant(2, 'Credential') === 0 ? { kind: 'mock', blob: r.bytes(MAX_MOCK_CREDENTIAL_LEN) } : { kind: 'ticket', ticket: readTicket(r) };
  return { mode, credential, ticketType: readTicketType(r), timestamp: r.u64() };
}

function writeResponse(w: BincodeWriter, s: RegisterResponse): void {
  w.bool(s.success).option(s.error, writeError);
  w.option(s.gatewayData, (ww, g) => {
    ww.fixed(g.publicKey, 32);
    writeSocketAddress(ww, g.endpoint);
    ww.fixed(g.privateIpv4, 4).fixed(g.privateIpv6, 16);
  });
  w.i64(s.allocatedBandwidth);
}

function readResponse(r: BincodeReader): RegisterResponse {
  return {
    success: r.bool(),
    error: r.option(readError),
    gatewayData: r.option((rr) => ({ publicKey: rr.fixed(32), endpoint: readSocketAddress(rr), privateIpv4: rr.fixed(4), privateIpv6: rr.fixed(16) })),
    allocatedBandwidth: r.i64(),
  };
}

function writeAppMessage(w: BincodeWriter, m: AppMessage): void {
  w.variant(AppMessageTag[m.kind]);
  switch (m.kind) {
    case 'register':
      return writeRequest(w, m.request);
    case 'registerResponse':
      return writeResponse(w, m.response);
    case 'forward':
      return writeForwardPacketData(w, m.forward);
    case 'forwardResponse':
      w.bytes(m.innerPacketBytes);
      return;
    case 'error':
      return writeError(w, m.error);
    case 'ping':
    case 'pong':
      w.bytes(m.payload);
      return;
    case 'deregister':
      w.fixed(m.request.wgPublicKey, 32).fixed(m.request.proof, 32);
      return;
    case 'deregistered':
      w.fixed(m.wgPublicKey, 32);
      return;
  }
}

export function encodeAppMessage(m: AppMessage): Uint8Array {
  return encode((w) => writeAppMessage(w, m), 128);
}

/** Encodes `m` and hands `use` a view of the bytes valid only during the call (the per-packet send path). */
export function encodeAppMessageInto<T>(m: AppMessage, use: (bytes: Uint8Array) => T): T {
  return encodeInto((w) => writeAppMessage(w, m), use);
}

export function decodeAppMessage(b: Uint8Array): AppMessage {
  return decodeAll(b, (r): AppMessage => {
    const tag = r.variant(APP_VARIANTS, 'AppMessage');
    switch (tag) {
      case AppMessageTag.register:
        return { kind: 'register', request: readRequest(r) };
      case AppMessageTag.registerResponse:
        return { kind: 'registerResponse', response: readResponse(r) };
      case AppMessageTag.forward:
        return { kind: 'forward', forward: readForwardPacketData(r) };
      case AppMessageTag.forwardResponse:
        return { kind: 'forwardResponse', innerPacketBytes: r.bytes(MAX_CONTENT_LEN) };
      case AppMessageTag.error:
        return { kind: 'error', error: readError(r) };
      case AppMessageTag.ping:
        return { kind: 'ping', payload: r.bytes(MAX_CONTENT_LEN) };
      case AppMessageTag.pong:
        return { kind: 'pong', payload: r.bytes(MAX_CONTENT_LEN) };
      case AppMessageTag.deregister:
        return { kind: 'deregister', request: { wgPublicKey: r.fixed(32), proof: r.fixed(32) } };
      default:
        return { kind: 'deregistered', wgPublicKey: r.fixed(32) };
    }
  });
}

/** Longest prefix of `s` whose UTF-8 encoding fits `maxBytes`, never splitting a code point. */
export function truncateUtf8(s: string, maxBytes: number): string {
  const bytes = new TextEncoder().encode(s);
  if (bytes.length <= maxBytes) return s;
  let end = maxBytes;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--; // back up to a code point boundary
  return new TextDecoder().decode(bytes.subarray(0, end));
}

/** Convenience constructor for an Error reply; the message is cut to what the decoder accepts. */
export function errorMessage(code: string, message: string, retryAfterMs: number | null = null): AppMessage {
  if (new TextEncoder().encode(code).length > MAX_ERROR_CODE_LEN) fail(LpErrorCode.ENCODE_BAD_VALUE, 'error code too long');
  return { kind: 'error', error: { code, message: truncateUtf8(message, MAX_ERROR_MESSAGE_LEN), retryAfterMs } };
}
