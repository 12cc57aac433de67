import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LruTable, type DropReason } from '../../src/gateway/lru-table.js';

function table(max: number, ttlMs: number) {
  let t = 1_000;
  const dropped: [string, number, DropReason][] = [];
  const lru = new LruTable<string>({ max, ttlMs, onDrop: (v, k, r) => dropped.push([v, k, r]), now: () => t });
  return { lru, dropped, advance: (ms: number) => void (t += ms) };
}

void test('LruTable: evicts the least recently used, get makes an entry the most recent', () => {
  const { lru, dropped } = table(3, 60_000);
  lru.set(1, 'a');
  lru.set(2, 'b');
  lru.set(3, 'c');
  assert.equal(lru.get(1), 'a'); // 1 is now the most recent: 2 goes first
  lru.set(4, 'd');
  assert.deepEqual(dropped, [['b', 2, 'evict']]);
  assert.equal(lru.has(2), false);
  assert.deepEqual([...lru.values()], ['c', 'a', 'd']);
  lru.set(3, 'c2'); // a replacement is not a drop, and makes 3 the most recent
  lru.set(5, 'e');
  assert.deepEqual(dropped, [['b', 2, 'evict'], ['a', 1, 'evict']]);
  assert.equal(lru.size, 3);
});

void test('LruTable: a lifetime from insertion unless refreshed; expired entries are dropped by get and the sweep', () => {
  const { lru, dropped, advance } = table(10, 1_000);
  lru.set(1, 'a');
  lru.set(2, 'b');
  lru.set(3, 'c');
  advance(600);
  assert.equal(lru.get(1), 'a'); // no refresh: still expires at 1,000 ms after insertion
  assert.equal(lru.get(2, true), 'b'); // refreshed: expires 1,000 ms from now
  advance(500);
  assert.equal(lru.has(1), false);
  assert.equal(lru.has(3), false);
  assert.equal(lru.get(1), undefined);
  assert.deepEqual(dropped, [['a', 1, 'expire']]);
  lru.purgeStale();
  assert.deepEqual(dropped, [['a', 1, 'expire'], ['c', 3, 'expire']]);
  assert.equal(lru.size, 1);
  assert.equal(lru.get(2), 'b');
  advance(600);
  lru.purgeStale();
  assert.equal(lru.size, 0);
  assert.deepEqual(dropped.at(-1), ['b', 2, 'expire']);
});

void test('LruTable: delete and clear never drop; removing the last entry is O(1) at any bound', () => {
  const { lru, dropped } = table(1_000_000, 60_000);
  const t0 = process.hrtime.bigint();
  for (let i = 1; i <= 1_000; i++) {
    lru.set(i, 'x');
    assert.equal(lru.delete(i), true);
  }
  const usEach = Number(process.hrtime.bigint() - t0) / 1_000 / 1_000;
  // lru-cache cleared its preallocated arrays here: ~5 ms per removal at this bound (issue 17).
  assert.ok(usEach < 100, `set + delete of a lone entry took ${usEach.toFixed(1)} µs`);
  lru.set(7, 'y');
  lru.clear();
  assert.equal(lru.size, 0);
  assert.deepEqual(dropped, []);
  assert.equal(lru.delete(7), false);
  assert.throws(() => new LruTable({ max: 0, ttlMs: 1 }), RangeError);
});

void test('LruTable: peek neither moves nor refreshes an entry, and drops an expired one', () => {
  const { lru, dropped, advance } = table(2, 1_000);
  lru.set(1, 'a');
  lru.set(2, 'b');
  assert.equal(lru.peek(1), 'a'); // 1 stays the least recent
  lru.set(3, 'c');
  assert.deepEqual(dropped, [['a', 1, 'evict']]);
  advance(1_000);
  assert.equal(lru.peek(2), undefined);
  assert.deepEqual(dropped.at(-1), ['b', 2, 'expire']);
  assert.equal(lru.peek(42), undefined);
});

void test('SessionTables: only touch (an authenticated packet) keeps a session from eviction, not the look-up', async () => {
  const { SessionTables } = await import('../../src/gateway/tables.js');
  type S = import('../../src/core/index.js').Session;
  const closed: number[] = [];
  const session = (i: number): S => ({ receiverIndex: i, close: () => void closed.push(i) }) as unknown as S;
  const limits = { maxHandshakes: 1, maxSessions: 2, handshakeTtlSec: 90, sessionIdleTtlSec: 3600, demotedIdleTtlSec: 60 };
  // Junk naming session 1's cleartext index: looked up, never authenticated.
  const t = new SessionTables(limits);
  t.sessions.set(1, session(1));
  t.sessions.set(2, session(2));
  assert.equal(t.peekSession(1)?.session.receiverIndex, 1);
  t.sessions.set(3, session(3));
  assert.deepEqual(closed, [1], 'the least recently authenticated session goes, whatever junk named it');
  // An authenticated packet for session 2: it becomes the most recent.
  t.touch(2, false);
  t.sessions.set(4, session(4));
  assert.deepEqual(closed, [1, 3]);
});
