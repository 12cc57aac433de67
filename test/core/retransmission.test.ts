/**
 * A session's answers to re-sent requests (DESIGN.md §4.5): a copy of the last request is marked, gets the cached
 * reply and changes nothing; the caller's re-send count stops at 8; a late answer to an older request is not
 * taken for the newest request's reply.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LpError, LpErrorCode, MAX_RETRANSMISSION_ANSWERS } from '../../src/core/index.js';
import { sessionPair } from '../helpers/core-builders.js';

const rejectsWith = (fn: () => unknown, code: string): void => void assert.throws(fn, (e: unknown) => e instanceof LpError && e.code === code);

test('a copy of the last request: the cached reply, marked, nothing changes; 8 re-sends counted', () => {
  const { client, gateway } = sessionPair('retransmit');
  const req = client.send({ kind: 'ping', payload: new Uint8Array([1]) });
  const first = gateway.receive(req);
  assert.equal(first.retransmission, undefined);
  const answer = gateway.reply({ kind: 'pong', payload: new Uint8Array([1]) });
  for (let i = 0; i < MAX_RETRANSMISSION_ANSWERS + 3; i++) {
    const again = gateway.receive(req);
    assert.equal(again.retransmission, true);
    assert.equal(again.delivered, undefined, 'not delivered again');
    assert.deepEqual(again.replies, [answer]);
    assert.equal(gateway.takeRetransmissionAnswer(), i < MAX_RETRANSMISSION_ANSWERS);
  }
  // A forged copy (one bit changed) is no copy: rejected by the AEAD.
  const forged = new Uint8Array(req);
  forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
  assert.throws(() => gateway.receive(forged));
  // A new request resets the count.
  gateway.receive(client.send({ kind: 'ping', payload: new Uint8Array([2]) }));
  gateway.reply({ kind: 'pong', payload: new Uint8Array([2]) });
  assert.equal(gateway.takeRetransmissionAnswer(), true);
});

test('an answer to an older request, sent after a newer one arrived, is not cached for the newer one', () => {
  const { client, gateway } = sessionPair('late-answer');
  const a = client.send({ kind: 'ping', payload: new Uint8Array([1]) });
  const b = client.send({ kind: 'ping', payload: new Uint8Array([2]) });
  gateway.receive(a);
  gateway.receive(b);
  gateway.reply({ kind: 'pong', payload: new Uint8Array([1]) }, 3); // a's counter: late
  const bAnswer = gateway.reply({ kind: 'pong', payload: new Uint8Array([2]) }, 4);
  assert.deepEqual(gateway.receive(b).replies, [bAnswer]);
  rejectsWith(() => gateway.receive(a), LpErrorCode.REPLAY);
});
