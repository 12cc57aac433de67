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

/** The first allocation for a frame's body; it then doubles with the bytes that arrive, up to the frame's length. */
const INITIAL_FRAME_CAPACITY = 2048;

/**
 * Incremental frame reader. A frame's buffer grows with the bytes that arrived (doubling, capped at the
 * declared length), never with the length a peer merely declares: a 4-byte prefix announcing 65,536 bytes
 * costs nothing until body bytes come, and at most twice what came after (DESIGN.md §10.4). Tiny TCP segments
 * still cost O(bytes) overall (amortised doubling), not O(chunks²). After an error it refuses all further input.
 */
export class FrameDecoder {
  /** The length prefix read so far, as a number (no buffer: an idle connection's decoder allocates nothing). */
  private prefixValue = 0;
  private prefixFill = 0;
  /** Declared length of the frame being read (0: reading a prefix). */
  private frameLen = 0;
  private frame: Uint8Array | null = null;
  private frameFill = 0;
  private failed: LpError | null = null;

  constructor(private readonly maxFrame = MAX_FRAME_LEN) {}

  /** Bytes of the current frame received so far (a partial length prefix, or the body once the prefix is read). */
  get pending(): number {
    return this.frameLen > 0 ? this.frameFill : this.prefixFill;
  }

  /** Bytes this decoder holds allocated for the frame being read (bounded by twice what arrived, see above). */
  get bufferedCapacity(): number {
    return this.frame?.length ?? 0;
  }

  /** True between the first byte of a frame and its last (read timeouts run then). */
  get midFrame(): boolean {
    return this.frameLen > 0 || this.prefixFill > 0;
  }

  /** Feed bytes; returns the frames completed by them, in order. Throws LpError on a bad length. */
  push(data: Uint8Array): Uint8Array[] {
    if (this.failed) throw this.failed;
    const frames: Uint8Array[] = [];
    let off = 0;
    while (off < data.length) {
      if (this.frameLen === 0) {
        while (this.prefixFill < FRAME_PREFIX_LEN && off < data.length) {
          this.prefixValue = this.prefixValue * 256 + (data[off++] as number);
          this.prefixFill++;
        }
        if (this.prefixFill < FRAME_PREFIX_LEN) break;
        const len = this.prefixValue;
        this.prefixValue = 0;
        if (len > this.maxFrame) this.fail(new LpError(LpErrorCode.FRAME_TOO_LARGE, `frame length ${len} exceeds ${this.maxFrame}`));
        if (len === 0) this.fail(new LpError(LpErrorCode.FRAME_TOO_SHORT, 'zero-length frame'));
        this.frameLen = len;
        this.frameFill = 0;
        this.prefixFill = 0;
        continue;
      }
      const k = Math.min(this.frameLen - this.frameFill, data.length - off);
      this.reserve(this.frameFill + k);
      const frame = this.frame as Uint8Array;
      frame.set(data.subarray(off, off + k), this.frameFill);
      this.frameFill += k;
      off += k;
      if (this.frameFill === this.frameLen) {
        frames.push(frame.length === this.frameLen ? frame : frame.slice(0, this.frameLen));
        this.frame = null;
        this.frameLen = 0;
        this.frameFill = 0;
      }
    }
    return frames;
  }

  /** Makes room for `need` bytes of the current frame: double, at least `need`, at most the declared length. */
  private reserve(need: number): void {
    const have = this.frame?.length ?? 0;
    if (need <= have) return;
    // A frame that completes within this chunk is allocated at its exact size (the common case).
    const size = need === this.frameLen ? need : Math.min(this.frameLen, Math.max(need, have * 2, INITIAL_FRAME_CAPACITY));
    const grown = new Uint8Array(size);
    if (this.frame) grown.set(this.frame.subarray(0, this.frameFill));
    this.frame = grown;
  }

  private fail(e: LpError): never {
    this.failed = e;
    throw e;
  }
}
