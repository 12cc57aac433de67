/**
 * UDP (RFC 768) inside IPv4/IPv6 packets, checksum over the pseudo-header included (mandatory for IPv6,
 * always computed here for IPv4 too): what lets one tunnel carry another tunnel's datagrams.
 */
import { WgError, WgErrorCode } from './errors.js';
import { IPPROTO_UDP, buildIpPacket, upperLayerChecksum, type BuildIpOptions, type IpPacket } from './ip.js';

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export function buildUdpPacket(src: Uint8Array, srcPort: number, dst: Uint8Array, dstPort: number, payload: Uint8Array, o: BuildIpOptions = {}): Uint8Array {
  const len = 8 + payload.length;
  if (len > 0xffff) throw new WgError(WgErrorCode.BAD_ARGUMENT, 'UDP datagram too large');
  const u = new Uint8Array(len);
  u[0] = srcPort >> 8;
  u[1] = srcPort & 0xff;
  u[2] = dstPort >> 8;
  u[3] = dstPort & 0xff;
  u[4] = len >> 8;
  u[5] = len & 0xff;
  u.set(payload, 8);
  let c = upperLayerChecksum(src, dst, IPPROTO_UDP, u);
  if (c === 0) c = 0xffff; // 0 means "no checksum" in IPv4 and is forbidden in IPv6
  u[6] = c >> 8;
  u[7] = c & 0xff;
  return buildIpPacket(src, dst, IPPROTO_UDP, u, o);
}

/** The UDP datagram in a parsed IP packet, or null for other protocols; damaged ones throw coded errors. */
export function parseUdp(ip: IpPacket): UdpDatagram | null {
  if (ip.protocol !== IPPROTO_UDP || ip.fragment) return null;
  const u = ip.payload;
  if (u.length < 8) throw new WgError(WgErrorCode.BAD_IP_PACKET, 'UDP header truncated');
  const len = ((u[4] ?? 0) << 8) | (u[5] ?? 0);
  if (len < 8 || len > u.length) throw new WgError(WgErrorCode.BAD_IP_PACKET, 'UDP length inconsistent');
  const seg = u.subarray(0, len);
  const declared = ((u[6] ?? 0) << 8) | (u[7] ?? 0);
  if (declared === 0 && ip.version === 6) throw new WgError(WgErrorCode.BAD_CHECKSUM, 'UDP over IPv6 without checksum');
  if (declared !== 0 && upperLayerChecksum(ip.src, ip.dst, IPPROTO_UDP, seg) !== 0) throw new WgError(WgErrorCode.BAD_CHECKSUM, 'UDP checksum');
  return { srcPort: ((u[0] ?? 0) << 8) | (u[1] ?? 0), dstPort: ((u[2] ?? 0) << 8) | (u[3] ?? 0), payload: seg.subarray(8) };
}
