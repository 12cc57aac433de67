/**
 * One transport session (whitepaper §5.4.6; wireguard-go's Keypair): the two ChaCha20-Poly1305 keys a
 * handshake derived, the indices both sides address it by, a send counter and the receive replay window.
 * Sealing pads the plaintext to a multiple of 16 (never beyond the MTU) exactly like wireguard-go's
 * calculatePaddingSize; opening authenticates first and only then consults the replay window.
 */
import { PADDING_MULTIPLE, TAG_SIZE, TRANSPORT_HEADER_SIZE } from './constants.js';
import type { WgCrypto } from './crypto.js';
import { WgError, WgErrorCode } from './errors.js';
import { writeTransportHeader } from './messages.js';
import { ReplayWindow } from './replay-window.js';

export function paddingFor(length: number, mtu: number): number {
  if (mtu <= 0) return ((length + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1)) - length;
  const lastUnit = length > mtu ? length % mtu : length;
  const padded = Math.min((lastUnit + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1), mtu);
  return Math.max(0, padded - lastUnit);
}

export class Keypair {
  private sendCounter = 0;
  private readonly replay = new ReplayWindow();
  private zeroed = false;

  constructor(
    private readonly crypto: WgCrypto,
    private readonly sendKey: Uint8Array,
    private readonly receiveKey: Uint8Array,
    /** Our index: the receiver field of transport messages the peer sends us. */
    readonly localIndex: number,
    /** The peer's index: the receiver field of what we send. */
    readonly remoteIndex: number,
    readonly createdAt: number,
    readonly isInitiator: boolean,
  ) {}

  /** Messages sent so far (the next counter). */
  get sent(): number {
    return this.sendCounter;
  }

  get isZeroed(): boolean {
    return this.zeroed;
  }

  /** Seals one plaintext (empty = keepalive) into a transport message; LPWG_ERR_COUNTER_EXHAUSTED at the limit. */
  seal(plaintext: Uint8Array, mtu: number, rejectAfterMessages: number): Uint8Array {
    if (this.zeroed) throw new WgError(WgErrorCode.KEYS_EXPIRED, 'keypair was wiped');
    if (this.sendCounter >= rejectAfterMessages) throw new WgError(WgErrorCode.COUNTER_EXHAUSTED, 'send counter reached REJECT_AFTER_MESSAGES');
    const counter = this.sendCounter++;
    const padded = plaintext.length + paddingFor(plaintext.length, mtu);
    const out = new Uint8Array(TRANSPORT_HEADER_SIZE + padded + TAG_SIZE);
    writeTransportHeader(out, this.remoteIndex, counter);
    const body = out.subarray(TRANSPORT_HEADER_SIZE);
    body.set(plaintext);
    this.crypto.sealInPlace(this.sendKey, counter, body, padded);
    return out;
  }

  /**
   * Opens a transport message addressed to this keypair (receiver already matched). Returns the padded
   * plaintext; throws LPWG_ERR_DECRYPT, LPWG_ERR_REPLAY or LPWG_ERR_COUNTER_EXHAUSTED.
   */
  open(msg: Uint8Array, counter: number, rejectAfterMessages: number): Uint8Array {
    if (this.zeroed) throw new WgError(WgErrorCode.KEYS_EXPIRED, 'keypair was wiped');
    if (counter < 0) throw new WgError(WgErrorCode.COUNTER_EXHAUSTED, 'counter beyond 2^53');
    const plaintext = this.crypto.open(this.receiveKey, counter, new Uint8Array(0), msg.subarray(TRANSPORT_HEADER_SIZE));
    if (!plaintext) throw new WgError(WgErrorCode.DECRYPT, 'transport message does not authenticate');
    if (counter >= rejectAfterMessages) throw new WgError(WgErrorCode.COUNTER_EXHAUSTED, 'counter at REJECT_AFTER_MESSAGES');
    if (!this.replay.check(counter, rejectAfterMessages)) throw new WgError(WgErrorCode.REPLAY, `counter ${counter} already seen or behind the window`, { counter });
    return plaintext;
  }

  zeroize(): void {
    this.crypto.zeroize(this.sendKey);
    this.crypto.zeroize(this.receiveKey);
    this.zeroed = true;
  }
}
