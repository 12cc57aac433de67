/**
 * Minimal IPv4 (RFC 791) and IPv6 (RFC 8200) packets: enough to build the packets a probe sends through the
 * tunnel and to read the ones that come back. No options, fragments or extension headers are produced; on
 * input, IPv4 options are skipped, fragments and IPv6 extension headers are reported as such (the upper
 * layer of those is not parsed).
 */
import { formatIp as formatIpText, parseIp as parseIpText } from '../../net/ip.js';
import { finishChecksum, internetChecksum, sumWords } from './checksum.js';
import { WgError, WgErrorCode } from './errors.js';

export const IPPROTO_ICMP = 1;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;

export interface IpPacket {
  version: 4 | 6;
  src: Uint8Array;
  dst: Uint8Array;
  /** IPv4 protocol / IPv6 next header. */
  protocol: number;
  ttl: number;
  /** Upper-layer bytes (exactly the length the header declares). */
  payload: Uint8Array;
  /** IPv4 packet that is a fragment (MF set or offset ≠ 0): its payload is not a whole datagram. */
  fragment: boolean;
}

const bad = (msg: string): WgError => new WgError(WgErrorCode.BAD_IP_PACKET, msg);

export interface BuildIpOptions {
  ttl?: number;
  /** IPv4 identification (default 0; DF is set, so it identifies nothing). */
  id?: number;
}

export function buildIpPacket(src: Uint8Array, dst: Uint8Array, protocol: number, payload: Uint8Array, o: BuildIpOptions = {}): Uint8Array {
  const ttl = o.ttl ?? 64;
  if (src.length === 4 && dst.length === 4) {
    const total = 20 + payload.length;
    if (total > 0xffff) throw new WgError(WgErrorCode.BAD_ARGUMENT, 'IPv4 packet too large');
    const p = new Uint8Array(total);
    p[0] = 0x45;
    p[2] = total >> 8;
    p[3] = total & 0xff;
    p[4] = ((o.id ?? 0) >> 8) & 0xff;
    p[5] = (o.id ?? 0) & 0xff;
    p[6] = 0x40; // DF
    p[8] = ttl;
    p[9] = protocol;
    p.set(src, 12);
    p.set(dst, 16);
    const c = internetChecksum(p.subarray(0, 20));
    p[10] = c >> 8;
    p[11] = c & 0xff;
    p.set(payload, 20);
    return p;
  }
  if (src.length === 16 && dst.length === 16) {
    if (payload.length > 0xffff) throw new WgError(WgErrorCode.BAD_ARGUMENT, 'IPv6 payload too large');
    const p = new Uint8Array(40 + payload.length);
    p[0] = 0x60;
    p[4] = payload.length >> 8;
    p[5] = payload.length & 0xff;
    p[6] = protocol;
    p[7] = ttl;
    p.set(src, 8);
    p.set(dst, 24);
    p.set(payload, 40);
    return p;
  }
  throw new WgError(WgErrorCode.BAD_ARGUMENT, 'source and destination must both be IPv4 (4 bytes) or IPv6 (16 bytes)');
}

/** Parses and validates an IP packet (IPv4 header checksum included); throws LPWG_ERR_BAD_IP_PACKET / _BAD_CHECKSUM. */
export function parseIpPacket(p: Uint8Array): IpPacket {
  const version = (p[0] ?? 0) >> 4;
  if (version === 4) {
    if (p.length < 20) throw bad('IPv4 packet shorter than its header');
    const ihl = ((p[0] ?? 0) & 0x0f) * 4;
    const total = ((p[2] ?? 0) << 8) | (p[3] ?? 0);
    if (ihl < 20 || total < ihl || total > p.length) throw bad('IPv4 header lengths inconsistent');
    if (internetChecksum(p.subarray(0, ihl)) !== 0) throw new WgError(WgErrorCode.BAD_CHECKSUM, 'IPv4 header checksum');
    const frag = (((p[6] ?? 0) << 8) | (p[7] ?? 0)) & 0x3fff; // MF + offset
    return { version: 4, src: p.subarray(12, 16), dst: p.subarray(16, 20), protocol: p[9] ?? 0, ttl: p[8] ?? 0, payload: p.subarray(ihl, total), fragment: frag !== 0 };
  }
  if (version === 6) {
    if (p.length < 40) throw bad('IPv6 packet shorter than its header');
    const total = 40 + (((p[4] ?? 0) << 8) | (p[5] ?? 0));
    if (total > p.length) throw bad('IPv6 payload length beyond the packet');
    return { version: 6, src: p.subarray(8, 24), dst: p.subarray(24, 40), protocol: p[6] ?? 0, ttl: p[7] ?? 0, payload: p.subarray(40, total), fragment: false };
  }
  throw bad(`IP version ${version}`);
}

/** Running checksum sum of the pseudo-header of an upper-layer protocol (RFC 768 / RFC 8200 §8.1). */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  let s = sumWords(src);
  s = sumWords(dst, s);
  if (src.length === 4) return s + protocol + length;
  return s + (length >>> 16) + (length & 0xffff) + protocol;
}

/** Checksum of an upper-layer segment with its pseudo-header (its checksum field must be zero to compute it). */
export function upperLayerChecksum(src: Uint8Array, dst: Uint8Array, protocol: number, segment: Uint8Array): number {
  return finishChecksum(sumWords(segment, pseudoHeaderSum(src, dst, protocol, segment.length)));
}

export function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** '10.0.0.1' / 'fd00::1' → 4 / 16 bytes (the shared parser of src/net/ip.ts, with this module's error). */
export function parseIp(text: string): Uint8Array {
  const ip = parseIpText(text);
  if (!ip) throw new WgError(WgErrorCode.BAD_ARGUMENT, `not an IP address: '${text}'`);
  return ip.bytes;
}

/** '10.0.0.1' / 'fd00::1' (RFC 5952 compressed form). */
export function formatIp(b: Uint8Array): string {
  if (b.length !== 4 && b.length !== 16) throw new WgError(WgErrorCode.BAD_ARGUMENT, 'an IP address is 4 or 16 bytes');
  return formatIpText(b);
}
