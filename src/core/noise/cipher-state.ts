/**
 * Noise CipherState (section 5.1) for ChaChaPoly: nonce = 4 zero bytes ‖ 64-bit little-endian counter.
 * The implicit counter is kept as two uint32 halves so the hot path never touches bigint.
 */
import { LpErrorCode, fail } from '../errors.js';
import type { Primitives } from '../crypto/primitives.js';

export const NOISE_KEY_LENGTH = 32;
export const NOISE_TAG_LENGTH = 16;
/** 2^64 - 1 is reserved (spec 5.1), so it is never used as a nonce. */
export const NOISE_MAX_NONCE = 0xffff_ffff_ffff_ffffn;

// Everything is synchronous, so one shared nonce buffer suffices; bytes 0..3 stay zero forever.
const NONCE = new Uint8Array(12);
const NONCE_VIEW = new DataView(NONCE.buffer);
const EMPTY = new Uint8Array(0);
const ZERO_KEY = new Uint8Array(NOISE_KEY_LENGTH);

export class CipherState {
  private readonly prims: Primitives;
  private k: Uint8Array | null = null;
  /** False while the key is shared with a rollback snapshot, so it must not be wiped from here. */
  private keyOwned = false;
  private nLo = 0;
  private nHi = 0;

  /** Takes ownership of `key`: destroy() and a later initializeKey() zeroize it. */
  constructor(prims: Primitives, key?: Uint8Array) {
    this.prims = prims;
    if (key !== undefined) this.initializeKey(key);
  }

  hasKey(): boolean {
    return this.k !== null;
  }

  /** InitializeKey(k): installs `key` (taking ownership) and resets the nonce to 0. */
  initializeKey(key: Uint8Array): void {
    if (key.length !== NOISE_KEY_LENGTH) fail(LpErrorCode.NOISE_STATE, 'Noise cipher key must be 32 bytes');
    if (this.keyOwned && this.k !== null && this.k !== key) this.prims.zeroize(this.k);
    this.k = key;
    this.keyOwned = true;
    this.nLo = 0;
    this.nHi = 0;
  }

  /**
   * Move the key into caller-provided storage (32 bytes), zeroizing the old copy; the nonce is kept.
   * Lets a long-lived session keep all its keys in one allocation.
   */
  moveKeyInto(storage: Uint8Array): void {
    const k = this.requireKey();
    if (storage.length !== NOISE_KEY_LENGTH) fail(LpErrorCode.NOISE_STATE, 'key storage must be 32 bytes');
    storage.set(k);
    if (this.keyOwned) this.prims.zeroize(k);
    this.k = storage;
    this.keyOwned = true;
  }

  /** The next implicit nonce. */
  getNonce(): bigint {
    return (BigInt(this.nHi) << 32n) | BigInt(this.nLo);
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const k = this.requireKey();
    this.loadImplicitNonce();
    const out = this.prims.aeadSeal(k, NONCE, ad, plaintext);
    this.advance();
    return out;
  }

  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const k = this.requireKey();
    if (ciphertext.length < NOISE_TAG_LENGTH) fail(LpErrorCode.NOISE_BAD_MESSAGE, 'Noise ciphertext shorter than the tag');
    this.loadImplicitNonce();
    const out = this.prims.aeadOpen(k, NONCE, ad, ciphertext);
    if (out === null) fail(LpErrorCode.NOISE_DECRYPT, 'Noise decryption failed');
    this.advance();
    return out;
  }

  /** Encrypt under an explicit nonce (the transport's packet counter); the implicit counter is untouched. */
  encryptWithNonce(nonce: bigint, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const k = this.requireKey();
    loadExplicitNonce(nonce);
    return this.prims.aeadSeal(k, NONCE, ad, plaintext);
  }

  decryptWithNonce(nonce: bigint, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const k = this.requireKey();
    if (ciphertext.length < NOISE_TAG_LENGTH) fail(LpErrorCode.NOISE_BAD_MESSAGE, 'Noise ciphertext shorter than the tag');
    loadExplicitNonce(nonce);
    const out = this.prims.aeadOpen(k, NONCE, ad, ciphertext);
    if (out === null) fail(LpErrorCode.NOISE_DECRYPT, 'Noise decryption failed');
    return out;
  }

  /**
   * The transport's per-packet form of encryptWithNonce: encrypts buf[0..plaintextLength) in place and writes the
   * tag after it (empty AD). `counter` is the LP packet counter, a safe integer (< 2^53, so never the reserved
   * 2^64 - 1): no bigint on this path.
   */
  sealInPlaceAt(counter: number, buf: Uint8Array, plaintextLength: number): void {
    const k = this.requireKey();
    loadCounterNonce(counter);
    this.prims.aeadSealInPlace(k, NONCE, EMPTY, buf, plaintextLength);
  }

  /**
   * The per-packet form of decryptWithNonce: opens buf (ciphertext ‖ tag, empty AD) in place and returns the
   * plaintext, a view of buf. On failure buf's plaintext part is wiped (see Primitives.aeadOpenInPlace).
   */
  openInPlaceAt(counter: number, buf: Uint8Array): Uint8Array {
    const k = this.requireKey();
    if (buf.length < NOISE_TAG_LENGTH) fail(LpErrorCode.NOISE_BAD_MESSAGE, 'Noise ciphertext shorter than the tag');
    loadCounterNonce(counter);
    const out = this.prims.aeadOpenInPlace(k, NONCE, EMPTY, buf);
    if (out === null) fail(LpErrorCode.NOISE_DECRYPT, 'Noise decryption failed');
    return out;
  }

  /** Rekey() (spec 11.3): k = ENCRYPT(k, 2^64-1, ε, zeros)[0..32]; the nonce is kept. */
  rekey(): void {
    const k = this.requireKey();
    NONCE_VIEW.setUint32(4, 0xffff_ffff, true);
    NONCE_VIEW.setUint32(8, 0xffff_ffff, true);
    const next = this.prims.aeadSeal(k, NONCE, EMPTY, ZERO_KEY).subarray(0, NOISE_KEY_LENGTH);
    const { nLo, nHi } = this;
    this.initializeKey(next);
    this.nLo = nLo;
    this.nHi = nHi;
  }

  /** Zeroize the key (if this state owns it) and drop it. */
  destroy(): void {
    if (this.keyOwned && this.k !== null) this.prims.zeroize(this.k);
    this.k = null;
    this.keyOwned = false;
  }

  /** Copy sharing the key without owning it (handshake rollback snapshots). */
  fork(): CipherState {
    const c = new CipherState(this.prims);
    c.k = this.k;
    c.nLo = this.nLo;
    c.nHi = this.nHi;
    return c;
  }

  /**
   * `this` is being replaced by `next`, a fork of it that advanced: wipe this key unless `next` still
   * uses it, in which case `next` inherits ownership.
   */
  handOver(next: CipherState): void {
    if (this.keyOwned && this.k !== null) {
      if (next.k === this.k) next.keyOwned = true;
      else this.prims.zeroize(this.k);
    }
    this.k = null;
    this.keyOwned = false;
  }

  private requireKey(): Uint8Array {
    if (this.k === null) fail(LpErrorCode.NOISE_STATE, 'Noise cipher state has no key');
    return this.k;
  }

  private loadImplicitNonce(): void {
    if (this.nLo === 0xffff_ffff && this.nHi === 0xffff_ffff) fail(LpErrorCode.NOISE_NONCE_EXHAUSTED, 'Noise nonce exhausted');
    NONCE_VIEW.setUint32(4, this.nLo, true);
    NONCE_VIEW.setUint32(8, this.nHi, true);
  }

  private advance(): void {
    if (this.nLo === 0xffff_ffff) {
      this.nLo = 0;
      this.nHi++;
    } else {
      this.nLo++;
    }
  }
}

/** Nonce for a packet counter kept as a JS number (0 ≤ counter ≤ 2^53 - 1). */
function loadCounterNonce(counter: number): void {
  if (!Number.isSafeInteger(counter) || counter < 0) fail(LpErrorCode.NOISE_STATE, 'Noise nonce must be a non-negative safe integer');
  NONCE_VIEW.setUint32(4, counter % 0x100000000, true);
  NONCE_VIEW.setUint32(8, Math.floor(counter / 0x100000000), true);
}

function loadExplicitNonce(nonce: bigint): void {
  if (nonce < 0n) fail(LpErrorCode.NOISE_STATE, 'Noise nonce must be non-negative');
  if (nonce >= NOISE_MAX_NONCE) fail(LpErrorCode.NOISE_NONCE_EXHAUSTED, 'Noise nonce exhausted');
  NONCE_VIEW.setBigUint64(4, nonce, true);
}
