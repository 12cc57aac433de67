/** IP address text ↔ bytes, shared by the gateway (pools, descriptors) and the client (tunnel configuration). */
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

/** Parses an IPv4 or IPv6 literal (no zone id) into 4 or 16 bytes; null if it is not one. */
export function parseIp(text: string): { family: IpFamily; bytes: Uint8Array } | null {
  if (isIPv4(text)) return { family: 4, bytes: new Uint8Array(text.split('.').map(Number)) };
  if (!isIPv6(text) || text.includes('%')) return null;
  let s = text;
  const lastColon = s.lastIndexOf(':');
  const dotted = s.slice(lastColon + 1);
  if (dotted.includes('.')) {
    // embedded IPv4 (e.g. ::ffff:192.0.2.1): rewrite its four octets as two hex groups
    const b = dotted.split('.').map(Number);
    s = `${s.slice(0, lastColon + 1)}${(((b[0] ?? 0) << 8) | (b[1] ?? 0)).toString(16)}:${(((b[2] ?? 0) << 8) | (b[3] ?? 0)).toString(16)}`;
  }
  const parseGroups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  let groups: number[];
  const dbl = s.indexOf('::');
  if (dbl >= 0) {
    const head = parseGroups(s.slice(0, dbl));
    const rest = parseGroups(s.slice(dbl + 2));
    const zeros = 8 - head.length - rest.length;
    if (zeros < 1) return null;
    groups = [...head, ...new Array<number>(zeros).fill(0), ...rest];
  } else {
    groups = parseGroups(s);
  }
  if (groups.length !== 8 || groups.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return null;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return { family: 6, bytes: out };
}

/** Text form of a 4- or 16-byte address (IPv6 in RFC 5952 canonical form). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new TypeError(`not an IP address: ${bytes.length} bytes`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 1; // RFC 5952 §4.2.2: a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}
