/** Default table bounds follow the machine's memory (DESIGN.md §10.4.5); configured ones are kept. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HANDSHAKE_RSS_BYTES, SESSION_RSS_BYTES, availableMemory, resolveTableBounds } from '../../src/gateway/table-bounds.js';

const GiB = 2 ** 30;

test('0 = from memory: half of it for sessions, a tenth for handshakes, at the measured size per entry, capped', () => {
  const small = resolveTableBounds({ maxSessions: 0, maxHandshakes: 0 }, 2 * GiB);
  assert.equal(small.maxSessions, Math.floor((GiB * 1) / SESSION_RSS_BYTES));
  assert.equal(small.maxHandshakes, Math.floor((0.2 * GiB) / HANDSHAKE_RSS_BYTES));
  assert.deepEqual(small.auto, { sessions: true, handshakes: true });
  const big = resolveTableBounds({ maxSessions: 0, maxHandshakes: 0 }, 64 * GiB);
  assert.equal(big.maxSessions, 1_000_000);
  assert.equal(big.maxHandshakes, 100_000);
  const tiny = resolveTableBounds({ maxSessions: 0, maxHandshakes: 0 }, 64 * 2 ** 20);
  assert.equal(tiny.maxSessions, 10_000);
  assert.equal(tiny.maxHandshakes, 1_000);
  // At their automatic bounds the tables fit in the shares they were given.
  assert.ok(small.maxSessions * SESSION_RSS_BYTES <= 0.5 * 2 * GiB && small.maxHandshakes * HANDSHAKE_RSS_BYTES <= 0.1 * 2 * GiB);
});

test('configured bounds are used as they are', () => {
  const b = resolveTableBounds({ maxSessions: 42, maxHandshakes: 7 }, 2 * GiB);
  assert.equal(b.maxSessions, 42);
  assert.equal(b.maxHandshakes, 7);
  assert.deepEqual(b.auto, { sessions: false, handshakes: false });
  assert.ok(availableMemory() > 0);
});
