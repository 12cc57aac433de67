/** The Internet checksum (RFC 1071): one's-complement sum of 16-bit big-endian words. */

/** Adds `data` to a running 32-bit sum (odd lengths are padded with a zero byte). */
export function sumWords(data: Uint8Array, initial = 0): number {
  let s = initial;
  const n = data.length & ~1;
  for (let i = 0; i < n; i += 2) s += ((data[i] ?? 0) << 8) | (data[i + 1] ?? 0);
  if (data.length & 1) s += (data[data.length - 1] ?? 0) << 8;
  // fold now and then so the sum stays a small integer
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Final checksum of a running sum: folded and complemented. */
export function finishChecksum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export function internetChecksum(...parts: readonly Uint8Array[]): number {
  let s = 0;
  parts.forEach((p, i) => {
    if (p.length & 1 && i !== parts.length - 1) throw new RangeError('only the last part may have an odd length');
    s = sumWords(p, s);
  });
  return finishChecksum(s);
}
