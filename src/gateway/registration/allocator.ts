/**
 * Private address allocation for dVPN peers: one IPv4 and one IPv6 per WireGuard key, from configured
 * pools (CIDR strings). Policy: deterministic lowest-free host; the network address (offset 0) and the
 * first host (offset 1, kept by the gateway for its own WireGuard interface) are never handed out, nor
 * is the IPv4 broadcast address. IPv6 has no broadcast, so its last address is usable.
 *
 * The allocator holds the policy; the bookkeeping lives in the store (`AllocationTable`) and runs inside
 * the same transaction that persists the peer, so an allocation exists exactly when its peer does.
 * Allocations are keyed by (pool, host offset); a pool larger than 2^32 addresses (e.g. an IPv6 /64) only
 * uses its first 2^32 addresses. The store keeps a high-water mark and the released offsets below it per
 * pool, so finding the lowest free address costs O(log n), not a scan.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { GatewayErrorCode, gwFail } from '../errors.js';

export type IpFamily = 4 | 6;

export const DEFAULT_IPV4_POOL = '10.1.0.0/16';
export const DEFAULT_IPV6_POOL = 'fd00:1::/112';

/** Offsets below this are reserved: 0 = network, 1 = the gateway's own address. */
const FIRST_CLIENT_OFFSET = 2;
const MAX_OFFSET = 2 ** 32 - 1;

function bytesToBigint(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

function bigintToBytes(v: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

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

/** One configured pool, e.g. `10.1.0.0/16`. */
export class AddressPool {
  /** Canonical CIDR text; allocations are recorded against it. */
  readonly cidr: string;
  readonly bytesLen: 4 | 16;
  readonly firstOffset = FIRST_CLIENT_OFFSET;
  /** Highest usable host offset (inclusive). */
  readonly lastOffset: number;

  private constructor(
    readonly family: IpFamily,
    private readonly network: bigint,
    readonly prefix: number,
  ) {
    this.bytesLen = family === 4 ? 4 : 16;
    const bits = family === 4 ? 32 : 128;
    const size = 1n << BigInt(bits - prefix);
    const last = family === 4 ? size - 2n : size - 1n; // IPv4: skip the broadcast address
    this.lastOffset = last > BigInt(MAX_OFFSET) ? MAX_OFFSET : Number(last);
    this.cidr = `${formatIp(bigintToBytes(network, this.bytesLen))}/${prefix}`;
  }

  /** Parses `address/prefix`; the address must be the network address of the prefix. */
  static parse(cidr: string, family: IpFamily): AddressPool {
    const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
    const ip = m?.[1] !== undefined ? parseIp(m[1]) : null;
    if (!m || !ip || ip.family !== family) gwFail(GatewayErrorCode.POOL_INVALID, `invalid IPv${family} pool '${cidr}': expected an IPv${family} CIDR such as ${family === 4 ? DEFAULT_IPV4_POOL : DEFAULT_IPV6_POOL}`);
    const bits = family === 4 ? 32 : 128;
    const prefix = Number(m[2]);
    // room for the network address, the gateway and at least one client (IPv4: and the broadcast address)
    const maxPrefix = bits - 2;
    if (prefix > maxPrefix) gwFail(GatewayErrorCode.POOL_INVALID, `IPv${family} pool '${cidr}' is too small: the prefix must be at most /${maxPrefix}`);
    const value = bytesToBigint(ip.bytes);
    const hostMask = (1n << BigInt(bits - prefix)) - 1n;
    if ((value & hostMask) !== 0n) {
      const network = formatIp(bigintToBytes(value & ~hostMask, ip.bytes.length));
      gwFail(GatewayErrorCode.POOL_INVALID, `IPv${family} pool '${cidr}' has host bits set; did you mean ${network}/${prefix}?`);
    }
    return new AddressPool(family, value, prefix);
  }

  /** Number of addresses clients can get. */
  get capacity(): number {
    return this.lastOffset - this.firstOffset + 1;
  }

  addressAt(offset: number): Uint8Array {
    return bigintToBytes(this.network + BigInt(offset), this.bytesLen);
  }

  /** The gateway's own address in this pool (offset 1), for its WireGuard interface. */
  get gatewayAddress(): Uint8Array {
    return this.addressAt(1);
  }
}

/** Allocation bookkeeping, implemented by RegistrationStore; called inside its write transaction. */
export interface AllocationTable {
  /** Takes the lowest free offset in [first, last] of `pool` out of the free set; null when none is left. */
  claimLowestFree(pool: string, first: number, last: number): number | null;
  /** Whether an allocation (possibly from an earlier, overlapping pool configuration) holds `address`. */
  addressTaken(family: IpFamily, address: Uint8Array): boolean;
  insertAllocation(a: { family: IpFamily; pool: string; offset: number; address: Uint8Array; owner: Uint8Array; nowSec: number }): void;
}

export interface AllocatorOptions {
  /** IPv4 pool CIDR; default `10.1.0.0/16`. */
  ipv4Pool?: string;
  /** IPv6 pool CIDR; default `fd00:1::/112`. */
  ipv6Pool?: string;
}

export interface AllocatedAddresses {
  ipv4: Uint8Array;
  ipv6: Uint8Array;
}

export class AddressAllocator {
  readonly ipv4: AddressPool;
  readonly ipv6: AddressPool;

  constructor(opts: AllocatorOptions = {}) {
    this.ipv4 = AddressPool.parse(opts.ipv4Pool ?? DEFAULT_IPV4_POOL, 4);
    this.ipv6 = AddressPool.parse(opts.ipv6Pool ?? DEFAULT_IPV6_POOL, 6);
  }

  /**
   * Lowest free IPv4 and IPv6 for `owner` (a WireGuard public key). Must run inside the transaction that
   * persists the peer: on LPGW_ERR_POOL_EXHAUSTED (or any later failure) the transaction rolls back and
   * nothing stays allocated.
   */
  allocate(table: AllocationTable, owner: Uint8Array, nowSec: number): AllocatedAddresses {
    const take = (pool: AddressPool): Uint8Array => {
      for (;;) {
        const offset = table.claimLowestFree(pool.cidr, pool.firstOffset, pool.lastOffset);
        if (offset === null) gwFail(GatewayErrorCode.POOL_EXHAUSTED, `IPv${pool.family} pool ${pool.cidr} is exhausted (${pool.capacity} client addresses in use)`);
        const address = pool.addressAt(offset);
        // only after a pool reconfiguration can an older allocation hold this address: skip it
        if (table.addressTaken(pool.family, address)) continue;
        table.insertAllocation({ family: pool.family, pool: pool.cidr, offset, address, owner, nowSec });
        return address;
      }
    };
    return { ipv4: take(this.ipv4), ipv6: take(this.ipv6) };
  }
}
