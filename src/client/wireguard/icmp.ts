/**
 * ICMP echo (RFC 792) and ICMPv6 echo (RFC 4443 §4), the packets `ping` uses: type, code, checksum,
 * identifier, sequence number, data. The ICMPv6 checksum covers the IPv6 pseudo-header, the ICMPv4 one
 * does not.
 */
import { WgError, WgErrorCode } from './errors.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, buildIpPacket, upperLayerChecksum, type BuildIpOptions, type IpPacket } from './ip.js';
import { internetChecksum } from './checksum.js';

export const ICMP_ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;

export interface Echo {
  kind: 'request' | 'reply';
  id: number;
  seq: number;
  data: Uint8Array;
}

/** A whole IP packet carrying an echo request or reply from `src` to `dst` (IPv4 or IPv6 by address length). */
export function buildEcho(kind: Echo['kind'], src: Uint8Array, dst: Uint8Array, id: number, seq: number, data: Uint8Array, o: BuildIpOptions = {}): Uint8Array {
  const v6 = src.length === 16;
  const icmp = new Uint8Array(8 + data.length);
  icmp[0] = v6 ? (kind === 'request' ? ICMPV6_ECHO_REQUEST : ICMPV6_ECHO_REPLY) : kind === 'request' ? ICMP_ECHO_REQUEST : ICMP_ECHO_REPLY;
  icmp[4] = (id >> 8) & 0xff;
  icmp[5] = id & 0xff;
  icmp[6] = (seq >> 8) & 0xff;
  icmp[7] = seq & 0xff;
  icmp.set(data, 8);
  const c = v6 ? upperLayerChecksum(src, dst, IPPROTO_ICMPV6, icmp) : internetChecksum(icmp);
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  return buildIpPacket(src, dst, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP, icmp, o);
}

/**
 * The echo request/reply in a parsed IP packet, or null when it is some other packet. A damaged echo
 * (bad checksum, short) throws LPWG_ERR_BAD_CHECKSUM / LPWG_ERR_BAD_IP_PACKET.
 */
export function parseEcho(ip: IpPacket): Echo | null {
  const isV4 = ip.version === 4 && ip.protocol === IPPROTO_ICMP;
  const isV6 = ip.version === 6 && ip.protocol === IPPROTO_ICMPV6;
  if ((!isV4 && !isV6) || ip.fragment) return null;
  const m = ip.payload;
  if (m.length < 8) throw new WgError(WgErrorCode.BAD_IP_PACKET, 'ICMP message shorter than 8 bytes');
  const type = m[0] ?? 0;
  const kind = isV4 ? (type === ICMP_ECHO_REQUEST ? 'request' : type === ICMP_ECHO_REPLY ? 'reply' : null) : type === ICMPV6_ECHO_REQUEST ? 'request' : type === ICMPV6_ECHO_REPLY ? 'reply' : null;
  if (kind === null || m[1] !== 0) return null;
  const ok = isV4 ? internetChecksum(m) === 0 : upperLayerChecksum(ip.src, ip.dst, IPPROTO_ICMPV6, m) === 0;
  if (!ok) throw new WgError(WgErrorCode.BAD_CHECKSUM, `${isV4 ? 'ICMP' : 'ICMPv6'} checksum`);
  return { kind, id: ((m[4] ?? 0) << 8) | (m[5] ?? 0), seq: ((m[6] ?? 0) << 8) | (m[7] ?? 0), data: m.subarray(8) };
}
