/**
 * TAI64N timestamps of handshake initiations (whitepaper §5.1): the responder accepts an initiation only if
 * its timestamp is greater than the last one it accepted from that peer, which is what stops a replayed
 * initiation. Not whitened like wireguard-go's (that hides the sender's clock to ~16 ms from the
 * responder): a probe may reconnect with the same key within milliseconds, and an equal timestamp would be
 * refused as a replay. Timestamps issued by this process are strictly increasing across all tunnels.
 */
import { TIMESTAMP_SIZE } from './constants.js';

/** 2^62 + 10: TAI64 label of the Unix epoch (TAI was 10 s ahead of UTC in 1970). */
const TAI64_BASE = 0x400000000000000an;

export function tai64n(unixMs: number): Uint8Array {
  const out = new Uint8Array(TIMESTAMP_SIZE);
  const dv = new DataView(out.buffer);
  const ms = Math.floor(unixMs);
  const secs = Math.floor(ms / 1000);
  dv.setBigUint64(0, TAI64_BASE + BigInt(secs), false);
  dv.setUint32(8, (ms - secs * 1000) * 1_000_000, false);
  return out;
}

/** Byte order is time order for TAI64N. */
export function compareTai64n(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < TIMESTAMP_SIZE; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** The next TAI64N value after `t` (one nanosecond later). */
function successor(t: Uint8Array): Uint8Array {
  const out = new Uint8Array(t);
  const dv = new DataView(out.buffer);
  const ns = dv.getUint32(8, false) + 1;
  if (ns >= 1_000_000_000) {
    dv.setUint32(8, 0, false);
    dv.setBigUint64(0, dv.getBigUint64(0, false) + 1n, false);
  } else {
    dv.setUint32(8, ns, false);
  }
  return out;
}

let lastIssued: Uint8Array = new Uint8Array(TIMESTAMP_SIZE);

/** The wall clock as TAI64N, strictly greater than every timestamp this process issued before. */
export function monotonicTai64n(unixMs: number = Date.now()): Uint8Array {
  let t = tai64n(unixMs);
  if (compareTai64n(t, lastIssued) <= 0) t = successor(lastIssued);
  lastIssued = t;
  return new Uint8Array(t);
}
