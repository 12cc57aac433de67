/**
 * Private address allocation for dVPN peers: one IPv4 and one IPv6 per WireGuard key, from configured
 * pools (CIDR strings). Policy: **uniformly random** over the free addresses of each pool, so an address
 * tells a client nothing about how many registered before it (upstream operators asked for this). Never
 * handed out: the network address (offset 0), the gateway's own tunnel address (the first host, offset 1,
 * unless configured otherwise), an address a live peer holds, and the IPv4 broadcast address. IPv6 has no
 * broadcast, so its last address is usable.
 *
 * Sampling: up to 32 uniform draws over the pool, rejecting taken addresses (rejection sampling is exactly
 * uniform over the free set); only a nearly full pool (each draw then hits a taken address with probability
 * > 97 %, or 32 misses happen) falls back to picking the k-th free offset, k uniform, by one ordered walk
 * over the allocated offsets. Both paths are uniform, so their mixture is.
 *
 * The allocator holds the policy; the bookkeeping lives in the store (`AllocationTable`) and runs inside
 * the same transaction that persists the peer, so an allocation exists exactly when its peer does, and a
 * removed peer's addresses are free again at once. A draw is taken by inserting it: the store's unique keys
 * refuse a taken offset or address (also one a concurrent registration at another gateway process holds,
 * on PostgreSQL), and a refused draw is simply rejected like any taken one. Allocations are keyed by (pool, host offset); a pool
 * larger than 2^32 addresses (e.g. an IPv6 /64) only uses its first 2^32 addresses.
 */
import { randomInt } from 'node:crypto';
import { formatIp, parseIp, type IpFamily } from '../../net/ip.js';
import { GatewayErrorCode, gwFail } from '../errors.js';

export { formatIp, parseIp, type IpFamily } from '../../net/ip.js';

export const DEFAULT_IPV4_POOL = '10.1.0.0/16';
export const DEFAULT_IPV6_POOL = 'fd00:1::/112';

/** Offset 0 is the network address; the first host (offset 1) is the gateway's own address by default. */
const FIRST_HOST_OFFSET = 1;
const GATEWAY_OFFSET = 1;
const MAX_OFFSET = 2 ** 32 - 1;
/** Rejection-sampling draws before the ordered walk. */
const RANDOM_DRAWS = 32;

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

/** One configured pool, e.g. `10.1.0.0/16`, and the gateway's own address in it. */
export class AddressPool {
  /** Canonical CIDR text; allocations are recorded against it. */
  readonly cidr: string;
  readonly bytesLen: 4 | 16;
  readonly firstOffset = FIRST_HOST_OFFSET;
  /** Highest usable host offset (inclusive). */
  readonly lastOffset: number;
  /** Offset of the gateway's own tunnel address (never allocated to a client). */
  readonly gatewayOffset: number;

  private constructor(
    readonly family: IpFamily,
    private readonly network: bigint,
    readonly prefix: number,
    gatewayOffset: number,
  ) {
    this.bytesLen = family === 4 ? 4 : 16;
    const bits = family === 4 ? 32 : 128;
    const size = 1n << BigInt(bits - prefix);
    const last = family === 4 ? size - 2n : size - 1n; // IPv4: skip the broadcast address
    this.lastOffset = last > BigInt(MAX_OFFSET) ? MAX_OFFSET : Number(last);
    this.cidr = `${formatIp(bigintToBytes(network, this.bytesLen))}/${prefix}`;
    this.gatewayOffset = gatewayOffset;
  }

  /**
   * Parses `address/prefix` (the address must be the network address of the prefix). `gatewayAddress`, if
   * given, is the gateway's own tunnel address and must be a usable host of the pool; default: the first host.
   */
  static parse(cidr: string, family: IpFamily, gatewayAddress = ''): AddressPool {
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
    let gatewayOffset = GATEWAY_OFFSET;
    if (gatewayAddress !== '') {
      const g = parseIp(gatewayAddress);
      if (!g || g.family !== family) gwFail(GatewayErrorCode.POOL_INVALID, `gateway tunnel address '${gatewayAddress}' is not an IPv${family} address`);
      const offset = bytesToBigint(g.bytes) - value;
      const pool = new AddressPool(family, value, prefix, GATEWAY_OFFSET);
      if (offset < BigInt(pool.firstOffset) || offset > BigInt(pool.lastOffset)) gwFail(GatewayErrorCode.POOL_INVALID, `gateway tunnel address ${gatewayAddress} is not a usable host address of the pool ${pool.cidr}`);
      gatewayOffset = Number(offset);
    }
    return new AddressPool(family, value, prefix, gatewayOffset);
  }

  /** Number of addresses clients can get (the gateway's own excluded). */
  get capacity(): number {
    return this.lastOffset - this.firstOffset;
  }

  addressAt(offset: number): Uint8Array {
    return bigintToBytes(this.network + BigInt(offset), this.bytesLen);
  }

  /** The gateway's own address in this pool, for its WireGuard interface. */
  get gatewayAddress(): Uint8Array {
    return this.addressAt(this.gatewayOffset);
  }

  /** Whether `address` (4 or 16 bytes) lies inside this pool's prefix. */
  contains(address: Uint8Array): boolean {
    if (address.length !== this.bytesLen) return false;
    const bits = this.family === 4 ? 32 : 128;
    return bytesToBigint(address) >> BigInt(bits - this.prefix) === this.network >> BigInt(bits - this.prefix);
  }
}

/**
 * Allocation bookkeeping, implemented by the store's transaction (`StoreTx`). Uniqueness is the store's: an
 * allocation is refused (false) when its offset in the pool or its address (from any pool configuration) is
 * taken — also by a concurrent transaction of another registration, which a PostgreSQL fleet must expect.
 */
export interface AllocationTable {
  /** Allocated offsets of `pool` in ascending order. */
  allocatedOffsets(pool: string): Promise<readonly number[]>;
  /** Records the allocation unless its offset or its address is taken; false when taken. */
  tryInsertAllocation(a: { family: IpFamily; pool: string; offset: number; address: Uint8Array; owner: Uint8Array; nowSec: number }): Promise<boolean>;
}

export interface AllocatorOptions {
  /** IPv4 pool CIDR; default `10.1.0.0/16`. */
  ipv4Pool?: string;
  /** IPv6 pool CIDR; default `fd00:1::/112`. */
  ipv6Pool?: string;
  /** The gateway's own tunnel addresses; default the first host of each pool. */
  gatewayIpv4?: string;
  gatewayIpv6?: string;
  /** Uniform integer in [0, n); default node:crypto randomInt (tests inject their own). */
  randomBelow?: (n: number) => number;
}

export interface AllocatedAddresses {
  ipv4: Uint8Array;
  ipv6: Uint8Array;
}

export class AddressAllocator {
  readonly ipv4: AddressPool;
  readonly ipv6: AddressPool;
  private readonly randomBelow: (n: number) => number;

  constructor(opts: AllocatorOptions = {}) {
    this.ipv4 = AddressPool.parse(opts.ipv4Pool ?? DEFAULT_IPV4_POOL, 4, opts.gatewayIpv4 ?? '');
    this.ipv6 = AddressPool.parse(opts.ipv6Pool ?? DEFAULT_IPV6_POOL, 6, opts.gatewayIpv6 ?? '');
    this.randomBelow = opts.randomBelow ?? ((n) => randomInt(n));
  }

  /**
   * A random free IPv4 and IPv6 for `owner` (a WireGuard public key). Must run inside the transaction that
   * persists the peer: on LPGW_ERR_POOL_EXHAUSTED (or any later failure) the transaction rolls back and
   * nothing stays allocated.
   */
  async allocate(table: AllocationTable, owner: Uint8Array, nowSec: number): Promise<AllocatedAddresses> {
    const ipv4 = await this.take(table, this.ipv4, owner, nowSec);
    const ipv6 = await this.take(table, this.ipv6, owner, nowSec);
    return { ipv4, ipv6 };
  }

  private async take(table: AllocationTable, pool: AddressPool, owner: Uint8Array, nowSec: number): Promise<Uint8Array> {
    const exhausted = (): never => gwFail(GatewayErrorCode.POOL_EXHAUSTED, `IPv${pool.family} pool ${pool.cidr} is exhausted (${pool.capacity} client addresses in use)`);
    // Offsets found taken (by this pool's allocations, an earlier overlapping pool's, or a concurrent
    // registration's): not tried again.
    const taken = new Set<number>([pool.gatewayOffset]);
    const tryTake = async (offset: number): Promise<boolean> => {
      if (taken.has(offset)) return false;
      if (await table.tryInsertAllocation({ family: pool.family, pool: pool.cidr, offset, address: pool.addressAt(offset), owner, nowSec })) return true;
      taken.add(offset);
      return false;
    };
    const span = pool.lastOffset - pool.firstOffset + 1;
    // No count up front (it would scan the pool at every registration): a full pool fails every draw and
    // the walk below finds no free offset.
    for (let i = 0; i < RANDOM_DRAWS; i++) {
      const o = pool.firstOffset + this.randomBelow(span);
      if (await tryTake(o)) return pool.addressAt(o);
    }
    // Nearly full: the k-th free offset, k uniform (bounded retries when it turns out taken after all).
    for (let attempt = 0; attempt < RANDOM_DRAWS; attempt++) {
      const known = new Set<number>(taken);
      for (const o of await table.allocatedOffsets(pool.cidr)) known.add(o);
      const sorted = [...known].filter((o) => o >= pool.firstOffset && o <= pool.lastOffset).sort((a, b) => a - b);
      const freeCount = span - sorted.length;
      if (freeCount <= 0) exhausted();
      const target = this.randomBelow(freeCount);
      // the target-th free offset: skip every taken offset at or below the candidate
      let candidate = pool.firstOffset + target;
      for (const t of sorted) {
        if (t <= candidate) candidate++;
        else break;
      }
      if (await tryTake(candidate)) return pool.addressAt(candidate);
    }
    return exhausted();
  }
}
