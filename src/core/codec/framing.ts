/**
 * TCP framing: u32 BIG-endian length ‖ packet, length ≤ 65536 (upstream §1). UDP carries one packet per
 * datagram with no prefix. FrameDecoder is an incremental, allocation-light stream parser: bytes in,
 * whole frames out, a typed error for an oversized or empty length.
 */
import { LpError, LpErrorCode, fail } from '../errors.js';
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

/**
 * Incremental frame reader. Once a length is known the frame's buffer is allocated and filled in place,
 * so tiny TCP segments cost O(bytes), not O(chunks²). After an error it refuses all further input.
 */
export class FrameDecoder {
  private readonly prefix = new Uint8Array(FRAME_PREFIX_LEN);
  private prefixFill = 0;
  private frame: Uint8Array | null = null;
  private frameFill = 0;
  private failed: LpError | null = null;

  constructor(private readonly maxFrame = MAX_FRAME_LEN) {}

  /** Bytes of the current frame received so far (a partial length prefix, or the body once the prefix is read). */
  get pending(): number {
    return this.frame ? this.frameFill : this.prefixFill;
  }

  /** True between the first byte of a frame and its last (read timeouts run then). */
  get midFrame(): boolean {
    return this.frame !== null || this.prefixFill > 0;
  }

  /** Feed bytes; returns the frames completed by them, in order. Throws LpError on a bad length. */
  push(data: Uint8Array): Uint8Array[] {
    if (this.failed) throw this.failed;
    const frames: Uint8Array[] = [];
    let off = 0;
    while (off < data.length) {
      if (!this.frame) {
        const k = Math.min(FRAME_PREFIX_LEN - this.prefixFill, data.length - off);
        this.prefix.set(data.subarray(off, off + k), this.prefixFill);
        this.prefixFill += k;
        off += k;
        if (this.prefixFill < FRAME_PREFIX_LEN) break;
        const len = new DataView(this.prefix.buffer).getUint32(0, false);
        if (len > this.maxFrame) this.fail(new LpError(LpErrorCode.FRAME_TOO_LARGE, `frame length ${len} exceeds ${this.maxFrame}`));
        if (len === 0) this.fail(new LpError(LpErrorCode.FRAME_TOO_SHORT, 'zero-length frame'));
        this.frame = new Uint8Array(len);
        this.frameFill = 0;
        this.prefixFill = 0;
      }
      const k = Math.min(this.frame.length - this.frameFill, data.length - off);
      this.frame.set(data.subarray(off, off + k), this.frameFill);
      this.frameFill += k;
      off += k;
      if (this.frameFill === this.frame.length) {
        frames.push(this.frame);
        this.frame = null;
        this.frameFill = 0;
      }
    }
    return frames;
  }

  private fail(e: LpError): never {
    this.failed = e;
    throw e;
  }
}
