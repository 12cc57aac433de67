/**
 * TCP framing: u32 BIG-endian length ‖ packet, length ≤ 65536 (upstream §1). UDP carries one packet per
 * datagram with no prefix. FrameDecoder is an incremental, allocation-light stream parser: bytes in,
 * whole frames out, a typed error for an oversized or empty length.
 */
import { LpErrorCode, fail } from '../errors.js';
import { MAX_PACKET_LEN } from './packet.js';

export const FRAME_PREFIX_LEN = 4;
export const MAX_FRAME_LEN = MAX_PACKET_LEN;

export function encodeFrame(packet: Uint8Array): Uint8Array {
  if (packet.length > MAX_FRAME_LEN) fail(LpErrorCode.FRAME_TOO_LARGE, `frame of ${packet.length} bytes exceeds ${MAX_FRAME_LEN}`);
  const out = new Uint8Array(FRAME_PREFIX_LEN + packet.length);
  new DataView(out.buffer).setUint32(0, packet.length, false);
  out.set(packet, FRAME_PREFIX_LEN);
  return out;
}

export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private expected = -1;

  constructor(private readonly maxFrame = MAX_FRAME_LEN) {}

  /** Bytes received but not yet returned as a frame (a stalled partial frame shows here). */
  get pending(): number {
    return this.buffered;
  }

  /** Feed bytes; returns the frames completed by them, in order. Throws LpError on a bad length. */
  push(data: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    if (data.length > 0) {
      this.chunks.push(data);
      this.buffered += data.length;
    }
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < FRAME_PREFIX_LEN) break;
        const prefix = this.take(FRAME_PREFIX_LEN);
        const len = new DataView(prefix.buffer, prefix.byteOffset, 4).getUint32(0, false);
        if (len > this.maxFrame) fail(LpErrorCode.FRAME_TOO_LARGE, `frame length ${len} exceeds ${this.maxFrame}`);
        if (len === 0) fail(LpErrorCode.FRAME_TOO_SHORT, 'zero-length frame');
        this.expected = len;
      }
      if (this.buffered < this.expected) break;
      frames.push(this.take(this.expected));
      this.expected = -1;
    }
    return frames;
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0] as Uint8Array;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0] as Uint8Array;
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}
