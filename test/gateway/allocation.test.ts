/**
 * Random address allocation (issue "WireGuard for real" §5): uniform over the free addresses of each pool,
 * never the gateway's own tunnel address nor a live peer's, on both the rejection-sampling path and the
 * nearly-full fallback walk; an exhausted pool is LPGW_ERR_POOL_EXHAUSTED.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressAllocator, type AllocationTable, type IpFamily, formatIp } from '../../src/gateway/registration/allocator.js';
import { GatewayError } from '../../src/gateway/errors.js';

/** An in-memory allocation table (the store's bookkeeping, without SQLite). */
class MemoryTable implements AllocationTable {
  readonly taken = new Map<string, Set<number>>();
  readonly addresses = new Set<string>();
  async allocatedOffsets(pool: string): Promise<readonly number[]> {
    return [...(this.taken.get(pool) ?? [])].sort((a, b) => a - b);
  }
  /** Both unique keys of the store: (pool, offset) and (family, address). */
  async tryInsertAllocation(a: { family: IpFamily; pool: string; offset: number; address: Uint8Array }): Promise<boolean> {
    if ((this.taken.get(a.pool)?.has(a.offset) ?? false) || this.addresses.has(`${a.family}/${formatIp(a.address)}`)) return false;
    this.insertAllocation(a);
    return true;
  }
  insertAllocation(a: { family: IpFamily; pool: string; offset: number; address: Uint8Array }): void {
    const set = this.taken.get(a.pool) ?? new Set<number>();
    set.add(a.offset);
    this.taken.set(a.pool, set);
    this.addresses.add(`${a.family}/${formatIp(a.address)}`);
  }
  release(pool: string, offset: number, family: IpFamily, address: Uint8Array): void {
    this.taken.get(pool)?.delete(offset);
    this.addresses.delete(`${family}/${formatIp(address)}`);
  }
}

const owner = new Uint8Array(32).fill(1);

/** Chi-square statistic of observed counts against a uniform expectation. */
function chiSquare(counts: Map<string, number>, n: number): number {
  const expected = n / counts.size;
  let x = 0;
  for (const c of counts.values()) x += (c - expected) ** 2 / expected;
  return x;
}

describe('random allocation', () => {
  test('uniform over the free addresses (rejection path), never the gateway address or a taken one', async () => {
    const alloc = new AddressAllocator({ ipv4Pool: '10.9.0.0/28', ipv6Pool: 'fd00:9::/124' }); // IPv4 hosts .1–.14, .1 = gateway
    const table = new MemoryTable();
    for (const o of [3, 7, 8]) table.insertAllocation({ family: 4, pool: alloc.ipv4.cidr, offset: o, address: alloc.ipv4.addressAt(o) });
    const counts = new Map<string, number>();
    const n = 5000;
    for (let i = 0; i < n; i++) {
      const { ipv4, ipv6 } = await alloc.allocate(table, owner, 0);
      const k = formatIp(ipv4);
      counts.set(k, (counts.get(k) ?? 0) + 1);
      table.release(alloc.ipv4.cidr, ipv4[3] ?? 0, 4, ipv4);
      table.release(alloc.ipv6.cidr, ipv6[15] ?? 0, 6, ipv6);
    }
    const free = [2, 4, 5, 6, 9, 10, 11, 12, 13, 14].map((o) => `10.9.0.${o}`);
    assert.deepEqual([...counts.keys()].sort(), free.sort(), 'exactly the free addresses come out');
    // 10 cells, 9 degrees of freedom: 33.72 is the 0.01 % critical value (a false alarm once in 10,000 runs)
    assert.ok(chiSquare(counts, n) < 33.72, `uniform: χ² = ${chiSquare(counts, n).toFixed(1)} ${JSON.stringify([...counts])}`);
  });

  test('a nearly full pool falls back to a uniform k-th free walk', async () => {
    let draws = 0;
    let fallbacks = 0;
    const counting = new AddressAllocator({
      ipv4Pool: '10.9.0.0/24',
      ipv6Pool: 'fd00:9::/112',
      randomBelow: (k) => {
        draws++;
        if (k < 254) fallbacks++; // the walk draws over the free count, the sampler over the whole span
        return Math.floor(Math.random() * k);
      },
    });
    const table = new MemoryTable();
    const free = new Set([17, 100, 254]);
    for (let o = 2; o <= 254; o++) if (!free.has(o)) table.insertAllocation({ family: 4, pool: counting.ipv4.cidr, offset: o, address: counting.ipv4.addressAt(o) });
    const counts = new Map<string, number>();
    const n = 3000;
    for (let i = 0; i < n; i++) {
      const { ipv4, ipv6 } = await counting.allocate(table, owner, 0);
      const k = formatIp(ipv4);
      counts.set(k, (counts.get(k) ?? 0) + 1);
      table.release(counting.ipv4.cidr, ipv4[3] ?? 0, 4, ipv4);
      table.release(counting.ipv6.cidr, (((ipv6[14] ?? 0) << 8) | (ipv6[15] ?? 0)), 6, ipv6);
    }
    assert.deepEqual([...counts.keys()].sort(), ['10.9.0.100', '10.9.0.17', '10.9.0.254']);
    assert.ok(fallbacks > 100, `the fallback walk ran (${fallbacks} of ${draws} draws)`);
    assert.ok(chiSquare(counts, n) < 18.42, `uniform: χ² = ${chiSquare(counts, n).toFixed(1)} ${JSON.stringify([...counts])}`); // 2 df, 0.01 %
  });

  test('a configured gateway address is excluded instead of the first host', async () => {
    const alloc = new AddressAllocator({ ipv4Pool: '10.9.0.0/29', ipv6Pool: 'fd00:9::/125', gatewayIpv4: '10.9.0.4', gatewayIpv6: 'fd00:9::7', randomBelow: () => 0 });
    const table = new MemoryTable();
    const got: string[] = [];
    for (let i = 0; i < 5; i++) got.push(formatIp((await alloc.allocate(table, owner, 0)).ipv4));
    assert.deepEqual(got, ['10.9.0.1', '10.9.0.2', '10.9.0.3', '10.9.0.5', '10.9.0.6']);
    await assert.rejects(alloc.allocate(table, owner, 0), (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_POOL_EXHAUSTED');
  });

  test('addresses held by an older, overlapping pool configuration are skipped', async () => {
    const alloc = new AddressAllocator({ ipv4Pool: '10.9.0.0/29', ipv6Pool: 'fd00:9::/125' });
    const table = new MemoryTable();
    // an allocation made under another pool's name holds 10.9.0.2–.5
    for (const o of [2, 3, 4, 5]) table.addresses.add(`4/10.9.0.${o}`);
    const got = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const { ipv4, ipv6 } = await alloc.allocate(table, owner, 0);
      got.add(formatIp(ipv4));
      table.release(alloc.ipv4.cidr, ipv4[3] ?? 0, 4, ipv4);
      table.release(alloc.ipv6.cidr, ipv6[15] ?? 0, 6, ipv6);
    }
    assert.deepEqual([...got].sort(), ['10.9.0.6']);
  });
});
