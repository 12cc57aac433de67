/**
 * LpError: rejected input carries no stack (hostile traffic makes it at will; capturing one dominated a forged
 * packet's cost), a caller's misuse does, and the process-wide stack limit is left as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LpError, LpErrorCode, isLpError } from '../../src/core/errors.js';
import { defaultSuite, parseHeader } from '../../src/core/index.js';

const frames = (e: Error): number => (e.stack ?? '').split('\n').filter((l) => l.trimStart().startsWith('at ')).length;

test('rejected input has no stack frames; misuse keeps them; Error.stackTraceLimit is restored', () => {
  const before = Error.stackTraceLimit;
  const input = new LpError(LpErrorCode.AEAD_TAG_MISMATCH, 'outer AEAD authentication failed');
  assert.equal(frames(input), 0);
  assert.equal(input.code, LpErrorCode.AEAD_TAG_MISMATCH);
  assert.equal(input.message, 'outer AEAD authentication failed');
  assert.ok(input instanceof Error && isLpError(input));
  const misuse = new LpError(LpErrorCode.INVALID_STATE, 'a caller bug');
  assert.ok(frames(misuse) > 0, 'a misuse error keeps its stack');
  assert.equal(Error.stackTraceLimit, before);
  assert.ok(frames(new Error('plain')) > 0, 'other errors keep their stacks');
});

test('the core: a hostile header is typed and stackless, a wrong-length AEAD key (a caller bug) keeps its stack', () => {
  const header = new Uint8Array(34).fill(0xff); // counter's high word above 2^21: more than 2^53 - 1
  assert.throws(
    () => parseHeader(header),
    (e: unknown) => isLpError(e) && e.code === LpErrorCode.COUNTER_EXHAUSTED && frames(e) === 0,
  );
  const { prims } = defaultSuite;
  assert.throws(
    () => prims.aeadOpen(new Uint8Array(31), new Uint8Array(12), new Uint8Array(0), new Uint8Array(32)),
    (e: unknown) => isLpError(e) && e.code === LpErrorCode.INVALID_STATE && frames(e) > 0,
  );
});
