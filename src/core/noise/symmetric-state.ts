/**
 * Noise SymmetricState (section 5.2) with SHA-256/HMAC-SHA256. `ck` and `h` are never mutated in place,
 * only replaced, so a fork can share them with its parent for free (handshake rollback).
 */
import type { Primitives } from '../crypto/primitives.js';
import { withJoined } from '../bytes.js';
import { CipherState } from './cipher-state.js';

export const NOISE_HASH_LENGTH = 32;

const BYTE_1 = Uint8Array.of(1);
const EMPTY = new Uint8Array(0);
// Synchronous HKDF scratch for `output_i ‖ byte(i+1)`; wiped after each use.
const SCRATCH = new Uint8Array(NOISE_HASH_LENGTH + 1);

/** Initial h per protocol name: constant data, shared read-only by every handshake. */
const initialHashes = new Map<string, Uint8Array>();

function initialHash(prims: Primitives, protocolName: string): Uint8Array {
  let h = initialHashes.get(protocolName);
  if (!h) {
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= NOISE_HASH_LENGTH) {
      h = new Uint8Array(NOISE_HASH_LENGTH);
      h.set(name);
    } else {
      h = prims.sha256(name);
    }
    initialHashes.set(protocolName, h);
  }
  return h;
}

/** HKDF(ck, ikm) with two or three outputs (spec 4.3), as direct HMAC calls. */
function hkdf(prims: Primitives, ck: Uint8Array, ikm: Uint8Array, three: false): [Uint8Array, Uint8Array];
function hkdf(prims: Primitives, ck: Uint8Array, ikm: Uint8Array, three: true): [Uint8Array, Uint8Array, Uint8Array];
function hkdf(prims: Primitives, ck: Uint8Array, ikm: Uint8Array, three: boolean): Uint8Array[] {
  const temp = prims.hmacSha256(ck, ikm);
  const o1 = prims.hmacSha256(temp, BYTE_1);
  SCRATCH.set(o1);
  SCRATCH[NOISE_HASH_LENGTH] = 2;
  const o2 = prims.hmacSha256(temp, SCRATCH);
  const out = [o1, o2];
  if (three) {
    SCRATCH.set(o2);
    SCRATCH[NOISE_HASH_LENGTH] = 3;
    out.push(prims.hmacSha256(temp, SCRATCH));
  }
  prims.zeroize(SCRATCH);
  prims.zeroize(temp);
  return out;
}

export class SymmetricState {
  private readonly prims: Primitives;
  private ck: Uint8Array;
  /** False while ck is shared (initial constant, or a fork's parent), so it must not be wiped here. */
  private ckOwned: boolean;
  private h: Uint8Array;
  private readonly cs: CipherState;

  private constructor(prims: Primitives, ck: Uint8Array, ckOwned: boolean, h: Uint8Array, cs: CipherState) {
    this.prims = prims;
    this.ck = ck;
    this.ckOwned = ckOwned;
    this.h = h;
    this.cs = cs;
  }

  /** InitializeSymmetric(protocol_name). */
  static initialize(prims: Primitives, protocolName: string): SymmetricState {
    const h = initialHash(prims, protocolName);
    return new SymmetricState(prims, h, false, h, new CipherState(prims));
  }

  hasKey(): boolean {
    return this.cs.hasKey();
  }

  /** Current h. Read-only: it is replaced, never mutated, so callers may keep the reference. */
  getHandshakeHash(): Uint8Array {
    return this.h;
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf(this.prims, this.ck, ikm, false);
    this.replaceCk(ck);
    this.cs.initializeKey(k);
  }

  mixHash(data: Uint8Array): void {
    this.h = withJoined([this.h, data], (m) => this.prims.sha256(m));
  }

  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, tempH, tempK] = hkdf(this.prims, this.ck, ikm, true);
    this.replaceCk(ck);
    this.mixHash(tempH);
    this.prims.zeroize(tempH);
    this.cs.initializeKey(tempK);
  }

  /** Ciphertext, or `plaintext` itself (not a copy) while there is no key yet. */
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const out = this.cs.hasKey() ? this.cs.encryptWithAd(this.h, plaintext) : plaintext;
    this.mixHash(out);
    return out;
  }

  /** Always returns a fresh buffer, never a view of `ciphertext` (which may be a caller's reused frame). */
  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const out = this.cs.hasKey() ? this.cs.decryptWithAd(this.h, ciphertext) : new Uint8Array(ciphertext);
    this.mixHash(ciphertext);
    return out;
  }

  /** Split(): [c1, c2]. Wipes ck: a second split would reuse the transport keys. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.prims, this.ck, EMPTY, false);
    this.destroy();
    return [new CipherState(this.prims, k1), new CipherState(this.prims, k2)];
  }

  /** Working copy sharing ck, h and the key with this state; commit with handOver() or drop with destroy(). */
  fork(): SymmetricState {
    return new SymmetricState(this.prims, this.ck, false, this.h, this.cs.fork());
  }

  /** `next` (a fork of this state) replaces this one: wipe what only this state still holds. */
  handOver(next: SymmetricState): void {
    if (this.ckOwned) {
      if (next.ck === this.ck) next.ckOwned = true;
      else this.prims.zeroize(this.ck);
    }
    this.ckOwned = false;
    this.cs.handOver(next.cs);
  }

  /** Wipe owned secrets (ck and the handshake key); h stays valid. */
  destroy(): void {
    if (this.ckOwned) this.prims.zeroize(this.ck);
    this.ckOwned = false;
    this.cs.destroy();
  }

  private replaceCk(ck: Uint8Array): void {
    if (this.ckOwned) this.prims.zeroize(this.ck);
    this.ck = ck;
    this.ckOwned = true;
  }
}
