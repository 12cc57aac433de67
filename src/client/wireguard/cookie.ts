/**
 * mac1/mac2 and cookie replies (whitepaper §5.4.4, §5.4.7; wireguard-go's CookieGenerator), client side.
 *
 * - mac1 = MAC(HASH("mac1----" ‖ receiver's static public key), message up to mac1) on every handshake
 *   message: the peer drops messages without it before any Diffie-Hellman work.
 * - A responder under load answers an initiation with a cookie reply instead: the cookie
 *   (MAC(secret, our source address)) encrypted with XChaCha20-Poly1305 under
 *   HASH("cookie--" ‖ responder's public key), with the mac1 of our message as associated data. Holding a
 *   cookie less than 120 s old, we add mac2 = MAC(cookie, message up to mac2) to the next handshake message.
 */
import { COOKIE_REFRESH_TIME, MAC_SIZE } from './constants.js';
import type { WgCrypto } from './crypto.js';
import { WgError, WgErrorCode } from './errors.js';
import { LABEL_COOKIE, LABEL_MAC1, hash, mac } from './kdf.js';
import { macOffsets } from './messages.js';

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return d === 0;
}

/** mac1 key for messages sent to the holder of `publicKey`. */
export const mac1Key = (publicKey: Uint8Array): Uint8Array => hash(LABEL_MAC1, publicKey);
/** Cookie-reply key of the holder of `publicKey`. */
export const cookieKey = (publicKey: Uint8Array): Uint8Array => hash(LABEL_COOKIE, publicKey);

/** Writes mac1 (and mac2 when `cookie` is given) into the last 32 bytes of a handshake message. */
export function writeMacs(msg: Uint8Array, key1: Uint8Array, cookie: Uint8Array | null): void {
  const { mac1, mac2 } = macOffsets(msg.length);
  msg.set(mac(key1, msg.subarray(0, mac1)), mac1);
  if (cookie) msg.set(mac(cookie, msg.subarray(0, mac2)), mac2);
  else msg.fill(0, mac2);
}

/** Whether a handshake message carries a valid mac1 for the holder of the key `key1` was derived from. */
export function checkMac1(msg: Uint8Array, key1: Uint8Array): boolean {
  const { mac1, mac2 } = macOffsets(msg.length);
  return equal(mac(key1, msg.subarray(0, mac1)), msg.subarray(mac1, mac2));
}

export class CookieState {
  private readonly sendMac1Key: Uint8Array;
  private readonly receiveMac1Key: Uint8Array;
  private readonly replyKey: Uint8Array;
  private cookie: Uint8Array | null = null;
  private cookieSetAt = 0;
  private lastMac1: Uint8Array | null = null;

  constructor(
    peerPublicKey: Uint8Array,
    ownPublicKey: Uint8Array,
    private readonly crypto: WgCrypto,
    private readonly refreshTime: number = COOKIE_REFRESH_TIME,
  ) {
    this.sendMac1Key = mac1Key(peerPublicKey);
    this.receiveMac1Key = mac1Key(ownPublicKey);
    this.replyKey = cookieKey(peerPublicKey);
  }

  /** A cookie younger than COOKIE_REFRESH_TIME, if we hold one. */
  freshCookie(now: number): Uint8Array | null {
    return this.cookie && now - this.cookieSetAt <= this.refreshTime ? this.cookie : null;
  }

  /** Adds mac1 and (with a fresh cookie) mac2 to a message we send; remembers its mac1 for a cookie reply. */
  addMacs(msg: Uint8Array, now: number): void {
    writeMacs(msg, this.sendMac1Key, this.freshCookie(now));
    const { mac1, mac2 } = macOffsets(msg.length);
    this.lastMac1 = msg.slice(mac1, mac2);
  }

  /** mac1 of a message the peer sent us (keyed with our own public key). */
  checkReceivedMac1(msg: Uint8Array): boolean {
    return checkMac1(msg, this.receiveMac1Key);
  }

  /** Decrypts a cookie reply to our last handshake message and keeps the cookie; throws LPWG_ERR_BAD_COOKIE_REPLY. */
  consumeReply(nonce: Uint8Array, encryptedCookie: Uint8Array, now: number): void {
    if (!this.lastMac1) throw new WgError(WgErrorCode.STALE_COOKIE, 'cookie reply before any handshake message of ours');
    const cookie = this.crypto.xopen(this.replyKey, nonce, this.lastMac1, encryptedCookie);
    if (!cookie || cookie.length !== MAC_SIZE) {
      throw new WgError(WgErrorCode.BAD_COOKIE_REPLY, 'cookie reply does not decrypt with the mac1 of our last handshake message');
    }
    if (this.cookie) this.crypto.zeroize(this.cookie);
    this.cookie = cookie;
    this.cookieSetAt = now;
  }

  clear(): void {
    if (this.cookie) this.crypto.zeroize(this.cookie);
    this.cookie = null;
    this.lastMac1 = null;
  }
}
