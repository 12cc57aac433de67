/**
 * SHA-256 and HMAC-SHA-256 (RFC 2104) on libsodium's SHA-256, called through sodium-native's binding
 * (sodium-binding.ts). sodium-native has no HMAC-SHA-256; node:crypto's `createHmac` makes a native Hmac object
 * per call (an OpenSSL context, a JS wrapper with a weak handle for the GC to clear, an off-heap digest buffer).
 * A gateway handshake makes 24 HMAC (Noise's HKDF, the routability token) and 9 SHA-256 calls, on inputs of at
 * most 125 bytes. Measured in the handshake's crypto floor, side by side on this project's machines: 4.6 µs per
 * HMAC and 3.1 µs per SHA-256 through node:crypto, 2.9 and 1.5 µs here; server CPU per handshake −14 % (DESIGN.md
 * §10.8). libsodium's SHA-256 is portable C, so on long inputs OpenSSL's (SHA extensions) is faster: 1 KiB hashes
 * in 5.1 µs here against 1.9 µs; nothing on the handshake path hashes that much.
 *
 * HMAC is the textbook construction with a 64-byte block: H((K' ⊕ opad) ‖ H((K' ⊕ ipad) ‖ m)), K' = K padded
 * with zeros, or SHA-256(K) first when K is longer than a block. Each hash is one binding call over a
 * module-owned scratch buffer (key pad, then the message or the inner hash; a message above 4 KiB gets a buffer
 * of its own for the call); the scratch is zeroed after every call, as it holds key material. The module is
 * synchronous and each isolate has its own copy, so the scratch is never shared. The binding asserts only that
 * the output is 32 bytes (always so here); without the binding, sodium-native's public wrapper is used.
 */
import sodium from 'sodium-native';
import { bindingFunction } from './sodium-binding.js';

/** SHA-256 of `input` into the 32 bytes of `out`; the binding's signature (0 on success). */
export type HashInto = (out: Uint8Array, input: Uint8Array) => number;

const BLOCK = 64;
const DIGEST = 32;

/** The public wrapper in the binding's shape (used when the binding cannot be loaded; exported for the tests). */
export const wrapperHash: HashInto = (out, input) => {
  sodium.crypto_hash_sha256(out, input);
  return 0;
};
const direct = bindingFunction<HashInto>('crypto_hash_sha256');
const hashInto: HashInto = direct ?? wrapperHash;

/** Whether the binding is called directly (reported by the tests; false means the wrapper is in use). */
export const sha256Direct: boolean = direct !== null;

/** Output of every hash (off-heap once, so no call allocates a backing store for it). */
const digest = new Uint8Array(new ArrayBuffer(DIGEST));
/** Outer HMAC input: K' ⊕ opad ‖ inner hash. */
const outer = new Uint8Array(new ArrayBuffer(BLOCK + DIGEST));
const outerTail = outer.subarray(BLOCK);
/** Inner HMAC input: K' ⊕ ipad ‖ message; grows to the longest message seen, up to MAX_KEPT. */
let inner = new Uint8Array(new ArrayBuffer(BLOCK + 256));
/** A longer message gets a buffer of its own for the call, so one large MAC does not pin its size for good. */
const MAX_KEPT = 4096;

/** `impl` is for tests (the wrapper path); callers leave it. */
export function sha256(data: Uint8Array, impl: HashInto = hashInto): Uint8Array {
  try {
    impl(digest, data);
    return digest.slice();
  } finally {
    digest.fill(0);
  }
}

export function hmacSha256(key: Uint8Array, data: Uint8Array, impl: HashInto = hashInto): Uint8Array {
  const need = BLOCK + data.length;
  if (inner.length < need && need <= MAX_KEPT) inner = new Uint8Array(new ArrayBuffer(Math.min(MAX_KEPT, Math.max(need, 2 * inner.length))));
  const ipadded = need <= inner.length ? inner : new Uint8Array(need);
  try {
    let k = key;
    if (k.length > BLOCK) {
      impl(digest, k);
      k = digest;
    }
    for (let i = 0; i < BLOCK; i++) {
      const b = i < k.length ? (k[i] as number) : 0;
      ipadded[i] = b ^ 0x36;
      outer[i] = b ^ 0x5c;
    }
    ipadded.set(data, BLOCK);
    impl(outerTail, ipadded.subarray(0, need));
    impl(digest, outer);
    return digest.slice();
  } finally {
    // key pads, message and inner hash: wiped even if a caller passed something the binding rejects
    ipadded.fill(0, 0, need);
    outer.fill(0);
    digest.fill(0);
  }
}
