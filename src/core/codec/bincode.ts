/**
 * bincode 1.x legacy encoding (fixint little-endian, u64 lengths, u32 enum tags, 1-byte Option tag),
 * as upstream's top-level bincode::serialize. Decoding is stricter than upstream: trailing bytes,
 * bad bool/enum/Option tags, invalid UTF-8 and over-long lengths are typed errors.
 */
import { LpErrorCode, fail } from '../errors.js';

export class BincodeWriter {
  private buf: Uint8Array;
  private dv: DataView;
  private len = 0;

  constructor(initialCapacity = 64) {
    this.buf = new Uint8Array(initialCapacity);
    this.dv = new DataView(this.buf.buffer);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) fail(LpErrorCode.ENCODE_BAD_VALUE, `u8 out of range: ${v}`);
    this.reserve(1);
    this.buf[this.len++] = v;
    return this;
  }

  u16(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) fail(LpErrorCode.ENCODE_BAD_VALUE, `u16 out of range: ${v}`);
    this.reserve(2);
    this.dv.setUint16(this.len, v, true);
    this.len += 2;
    return this;
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) fail(LpErrorCode.ENCODE_BAD_VALUE, `u32 out of range: ${v}`);
    this.reserve(4);
    this.dv.setUint32(this.len, v, true);
    this.len += 4;
    return this;
  }

  u64(v: bigint): this {
    if (v < 0n || v > 0xffffffffffffffffn) fail(LpErrorCode.ENCODE_BAD_VALUE, `u64 out of range: ${v}`);
    this.reserve(8);
    this.dv.setBigUint64(this.len, v, true);
    this.len += 8;
    return this;
  }

  i64(v: bigint): this {
    if (v < -0x8000000000000000n || v > 0x7fffffffffffffffn) fail(LpErrorCode.ENCODE_BAD_VALUE, `i64 out of range: ${v}`);
    this.reserve(8);
    this.dv.setBigInt64(this.len, v, true);
    this.len += 8;
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  /** `[u8; N]`: raw bytes, no length. */
  fixed(b: Uint8Array, n: number): this {
    if (b.length !== n) fail(LpErrorCode.ENCODE_BAD_VALUE, `expected ${n} bytes, got ${b.length}`);
    this.reserve(n);
    this.buf.set(b, this.len);
    this.len += n;
    return this;
  }

  /** `Vec<u8>`: u64 LE length then bytes (a buffer's length fits the low half: no bigint on this path). */
  bytes(b: Uint8Array): this {
    this.reserve(8 + b.length);
    this.dv.setUint32(this.len, b.length, true);
    this.dv.setUint32(this.len + 4, 0, true);
    this.len += 8;
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  str(s: string): this {
    return this.bytes(new TextEncoder().encode(s));
  }

  /** Enum variant tag. */
  variant(index: number): this {
    return this.u32(index);
  }

  option<T>(v: T | null | undefined, write: (w: this, v: T) => void): this {
    if (v === null || v === undefined) return this.u8(0);
    this.u8(1);
    write(this, v);
    return this;
  }

  /** The bytes written so far, not copied: valid until the writer is written to or reset. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  /** Bytes of scratch this writer holds (encode() drops a shared writer that grew large). */
  get capacity(): number {
    return this.buf.length;
  }

  /** Empty again, the bytes written so far wiped (a shared writer must not keep the last message's bytes). */
  reset(): void {
    this.buf.fill(0, 0, this.len);
    this.len = 0;
  }
}

export class BincodeReader {
  private off = 0;
  private readonly dv: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.off;
  }

  private need(n: number, what: string): void {
    if (this.off + n > this.buf.length) fail(LpErrorCode.DECODE_TRUNCATED, `truncated reading ${what}: need ${n}, have ${this.remaining}`);
  }

  u8(): number {
    this.need(1, 'u8');
    return this.buf[this.off++] as number;
  }

  u16(): number {
    this.need(2, 'u16');
    const v = this.dv.getUint16(this.off, true);
    this.off += 2;
    return v;
  }

  u32(): number {
    this.need(4, 'u32');
    const v = this.dv.getUint32(this.off, true);
    this.off += 4;
    return v;
  }

  u64(): bigint {
    this.need(8, 'u64');
    const v = this.dv.getBigUint64(this.off, true);
    this.off += 8;
    return v;
  }

  i64(): bigint {
    this.need(8, 'i64');
    const v = this.dv.getBigInt64(this.off, true);
    this.off += 8;
    return v;
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) fail(LpErrorCode.DECODE_BAD_BOOL, `invalid bool byte ${b}`);
    return b === 1;
  }

  /** `[u8; N]`; returns a zero-copy view. */
  fixed(n: number): Uint8Array {
    this.need(n, `[u8; ${n}]`);
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }

  /** `Vec<u8>` with an explicit cap; returns a zero-copy view. */
  bytes(maxLen: number): Uint8Array {
    this.need(8, 'u64');
    // Two u32 halves: no bigint unless the length is refused anyway (every cap is below 2^32).
    const lo = this.dv.getUint32(this.off, true);
    const hi = this.dv.getUint32(this.off + 4, true);
    this.off += 8;
    const len = hi === 0 ? lo : (BigInt(hi) << 32n) | BigInt(lo);
    if (len > maxLen) fail(LpErrorCode.DECODE_BAD_LENGTH, `length ${len} exceeds limit ${maxLen}`);
    if (len > this.remaining) fail(LpErrorCode.DECODE_TRUNCATED, `length ${len} exceeds remaining ${this.remaining}`);
    return this.fixed(Number(len));
  }

  str(maxLen: number): string {
    const raw = this.bytes(maxLen);
    try {
      // ignoreBOM: keep a leading U+FEFF as data, so decoding is canonical (as Rust's from_utf8).
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
    } catch {
      return fail(LpErrorCode.DECODE_BAD_UTF8, 'string is not valid UTF-8');
    }
  }

  /** Enum tag, checked against the number of variants. */
  variant(count: number, what: string): number {
    const v = this.u32();
    if (v >= count) fail(LpErrorCode.DECODE_BAD_ENUM, `unknown ${what} variant ${v}`);
    return v;
  }

  option<T>(read: (r: this) => T): T | null {
    const tag = this.u8();
    if (tag === 0) return null;
    if (tag !== 1) fail(LpErrorCode.DECODE_BAD_OPTION, `invalid Option tag ${tag}`);
    return read(this);
  }

  /** Strict end: trailing bytes are an error (upstream silently ignored them). */
  end(): void {
    if (this.off !== this.buf.length) fail(LpErrorCode.DECODE_TRAILING_BYTES, `${this.remaining} trailing bytes`);
  }
}

/** Decode `buf` completely with `read`, rejecting trailing bytes. */
export function decodeAll<T>(buf: Uint8Array, read: (r: BincodeReader) => T): T {
  const r = new BincodeReader(buf);
  const v = read(r);
  r.end();
  return v;
}

/** Scratch writer encode() reuses (every call is synchronous); a nested encode() gets a writer of its own. */
let shared: BincodeWriter | null = null;
let sharedBusy = false;
const SHARED_INITIAL = 1024;
const SHARED_KEEP_MAX = 64 * 1024;

/**
 * Encode with `write`. The result is one fresh allocation of exactly the encoded length: the writing happens in
 * a scratch buffer reused across calls (wiped after each), so the per-packet path does not allocate, grow and
 * copy a writer's buffer every time. `capacity` sizes a writer that is not the shared one.
 */
export function encode(write: (w: BincodeWriter) => void, capacity?: number): Uint8Array {
  return encodeInto(write, (bytes) => bytes.slice(), capacity);
}

/**
 * As encode, but `use` gets a view of the encoded bytes, valid only during the call, instead of a copy: for a
 * caller that copies them into a packet anyway (an off-heap copy costs more than the encoding).
 */
export function encodeInto<T>(write: (w: BincodeWriter) => void, use: (bytes: Uint8Array) => T, capacity?: number): T {
  if (sharedBusy) {
    // Nested (a `write` or `use` that encodes): a writer of its own.
    const w = new BincodeWriter(capacity);
    write(w);
    return use(w.view());
  }
  sharedBusy = true;
  const w = (shared ??= new BincodeWriter(SHARED_INITIAL));
  try {
    write(w);
    return use(w.view());
  } finally {
    w.reset();
    if (w.capacity > SHARED_KEEP_MAX) shared = null;
    sharedBusy = false;
  }
}
