/** Small byte helpers shared by the core. All functions are pure. */

export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Scratch of `withJoined`: the core is synchronous and single-threaded per isolate. */
let joinScratch = new Uint8Array(2048);
let joinBusy = false;

/**
 * `fn(concat(...parts))` without allocating: the parts are copied into a shared scratch buffer, `fn` gets a view of
 * it that is valid only during the call (a hash, MAC, signature or verification input: never kept), and the bytes
 * used are zeroed afterwards, as the parts may be secrets. A nested call gets a fresh buffer.
 */
export function withJoined<T>(parts: readonly Uint8Array[], fn: (joined: Uint8Array) => T): T {
  let len = 0;
  for (const p of parts) len += p.length;
  if (joinBusy) return fn(concat(...parts));
  if (len > joinScratch.length) joinScratch = new Uint8Array(Math.max(len, 2 * joinScratch.length));
  const buf = joinScratch;
  let off = 0;
  for (const p of parts) {
    buf.set(p, off);
    off += p.length;
  }
  joinBusy = true;
  try {
    return fn(buf.subarray(0, len));
  } finally {
    joinBusy = false;
    buf.fill(0, 0, len);
  }
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new TypeError('invalid hex string');
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/** Constant-time comparison for equal-length secrets; length mismatch returns false at once. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** Lexicographic compare from byte 0 (used by the subsession tie-break). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

export function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i] ?? 0;
  return acc === 0;
}

/** u32 little-endian into b at off (the caller checked the room), byte by byte: no DataView, no `.buffer`. */
export function writeU32le(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = v >>> 24;
}

export function u32le(v: number): Uint8Array {
  const out = new Uint8Array(4);
  writeU32le(out, 0, v);
  return out;
}

export function u64le(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, v, true);
  return out;
}

export const utf8 = {
  encode: (s: string): Uint8Array => new TextEncoder().encode(s),
};

/** A real copy (Buffer#slice returns a view into the same memory). */
export function copyBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}
