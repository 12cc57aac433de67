/**
 * FrameDecoder memory follows the bytes that arrived, not the length a peer declares (issue 13, F5b), and
 * frames come out byte-exact however the stream is cut.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, encodeFrame } from '../../src/core/index.js';
import { seededRandom } from '../helpers/fixtures.js';

describe('FrameDecoder buffers grow with received bytes', () => {
  test('a length prefix alone allocates nothing; body bytes at most double what arrived (2 KiB first)', () => {
    const d = new FrameDecoder();
    assert.deepEqual(d.push(new Uint8Array([0, 1, 0, 0])), []); // declares 65,536
    assert.equal(d.bufferedCapacity, 0);
    assert.ok(d.midFrame);
    let received = 0;
    for (const n of [1, 10, 500, 3000, 7000, 20_000, 30_000]) {
      d.push(new Uint8Array(n));
      received += n;
      assert.ok(d.bufferedCapacity >= received && d.bufferedCapacity <= Math.max(2048, 2 * received), `capacity ${d.bufferedCapacity} after ${received} bytes`);
    }
    const [frame] = d.push(new Uint8Array(65_536 - received).fill(9));
    assert.equal(frame?.length, 65_536);
    assert.equal(d.bufferedCapacity, 0, 'nothing kept after the frame');
  });

  test('frames split at random points come out byte-exact', () => {
    const rnd = seededRandom('framing-split');
    const frames = Array.from({ length: 200 }, (_, i) => rnd(1 + ((rnd(2)[0] as number) * 256 + (rnd(1)[0] as number) + i * 37) % 20_000));
    const stream = new Uint8Array(frames.reduce((a, f) => a + 4 + f.length, 0));
    let off = 0;
    for (const f of frames) {
      stream.set(encodeFrame(f), off);
      off += 4 + f.length;
    }
    const d = new FrameDecoder();
    const out: Uint8Array[] = [];
    for (let i = 0; i < stream.length; ) {
      const n = 1 + ((rnd(2)[0] as number) % 3000);
      out.push(...d.push(stream.subarray(i, i + n)));
      i += n;
    }
    assert.equal(out.length, frames.length);
    frames.forEach((f, i) => assert.deepEqual(out[i], f));
    assert.equal(d.pending, 0);
  });
});
