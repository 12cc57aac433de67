/**
 * The initiator's half of Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (whitepaper §5.4.2–5.4.5; wireguard-go's
 * CreateMessageInitiation / ConsumeMessageResponse / BeginSymmetricSession). One InitiatorHandshake is one
 * attempt: a fresh ephemeral key and sender index; a retransmission is a new attempt. It only computes —
 * the peer (peer.ts) decides when to create one and what to do with the result.
 */
import { KEY_SIZE, TAG_SIZE } from './constants.js';
import type { WgCrypto } from './crypto.js';
import { WgError, WgErrorCode } from './errors.js';
import { INITIAL_CHAIN_KEY, INITIAL_HASH, hash, kdf1, kdf2, kdf3 } from './kdf.js';
import { buildInitiation, type ResponseFields } from './messages.js';

const EMPTY = new Uint8Array(0);

/** Long-term inputs of every handshake with one peer. */
export interface StaticKeys {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  peerPublicKey: Uint8Array;
  /** 32 zero bytes when the peer has no preshared key (as in WireGuard). */
  presharedKey: Uint8Array;
  /** DH(privateKey, peerPublicKey), computed once. */
  staticStatic: Uint8Array;
}

export interface SessionKeys {
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  /** The responder's sender index: the receiver index of everything we send in this session. */
  remoteIndex: number;
}

export class InitiatorHandshake {
  private chainKey: Uint8Array;
  private hash: Uint8Array;
  private readonly ephemeralSecret: Uint8Array;
  /** The 148-byte initiation, macs not yet added (cookie.ts adds them). */
  readonly message: Uint8Array;

  /**
   * Builds the initiation. `ephemeralSeed` (32 random bytes) is clamped like wireguard-go's newPrivateKey;
   * `timestamp` is a 12-byte TAI64N value.
   */
  constructor(
    private readonly keys: StaticKeys,
    private readonly crypto: WgCrypto,
    readonly senderIndex: number,
    ephemeralSeed: Uint8Array,
    timestamp: Uint8Array,
    readonly createdAt: number,
  ) {
    const e = new Uint8Array(ephemeralSeed);
    e[0] = (e[0] ?? 0) & 248;
    e[31] = ((e[31] ?? 0) & 127) | 64;
    this.ephemeralSecret = e;
    const ephemeral = crypto.x25519Public(e);

    let h = hash(INITIAL_HASH, keys.peerPublicKey);
    let ck = kdf1(INITIAL_CHAIN_KEY, ephemeral);
    h = hash(h, ephemeral);

    const es = crypto.x25519(e, keys.peerPublicKey);
    if (!es) throw new WgError(WgErrorCode.BAD_DH, 'the peer public key is a low-order point');
    let k: Uint8Array;
    [ck, k] = kdf2(ck, es);
    crypto.zeroize(es);
    const encryptedStatic = crypto.seal(k, 0, h, keys.publicKey);
    h = hash(h, encryptedStatic);

    [ck, k] = kdf2(ck, keys.staticStatic);
    const encryptedTimestamp = crypto.seal(k, 0, h, timestamp);
    crypto.zeroize(k);
    h = hash(h, encryptedTimestamp);

    this.chainKey = ck;
    this.hash = h;
    this.message = buildInitiation({ sender: senderIndex, ephemeral, encryptedStatic, encryptedTimestamp });
  }

  /**
   * Completes the handshake with a response whose mac1 and receiver index the caller has checked. Throws
   * LPWG_ERR_BAD_DH or LPWG_ERR_DECRYPT (wrong preshared key, wrong keys, or a forgery) and leaves this
   * attempt usable for a genuine response.
   */
  consumeResponse(r: ResponseFields): SessionKeys {
    let h = hash(this.hash, r.ephemeral);
    let ck = kdf1(this.chainKey, r.ephemeral);

    const ee = this.crypto.x25519(this.ephemeralSecret, r.ephemeral);
    if (!ee) throw new WgError(WgErrorCode.BAD_DH, 'response ephemeral is a low-order point');
    ck = kdf1(ck, ee);
    this.crypto.zeroize(ee);
    const se = this.crypto.x25519(this.keys.privateKey, r.ephemeral);
    if (!se) throw new WgError(WgErrorCode.BAD_DH, 'response ephemeral is a low-order point');
    ck = kdf1(ck, se);
    this.crypto.zeroize(se);

    const [ck2, tau, k] = kdf3(ck, this.keys.presharedKey);
    h = hash(h, tau);
    const empty = this.crypto.open(k, 0, h, r.encryptedNothing);
    this.crypto.zeroize(k);
    this.crypto.zeroize(tau);
    if (!empty || empty.length !== 0 || r.encryptedNothing.length !== TAG_SIZE) {
      this.crypto.zeroize(ck2);
      throw new WgError(WgErrorCode.DECRYPT, 'handshake response does not authenticate (preshared key or keys do not match)');
    }
    const [sendKey, receiveKey] = kdf2(ck2, EMPTY);
    this.crypto.zeroize(ck2);
    this.zeroize();
    return { sendKey, receiveKey, remoteIndex: r.sender };
  }

  /** Wipes the ephemeral secret and the transcript state. */
  zeroize(): void {
    this.crypto.zeroize(this.ephemeralSecret);
    this.crypto.zeroize(this.chainKey);
    this.crypto.zeroize(this.hash);
  }
}

export function makeStaticKeys(crypto: WgCrypto, privateKey: Uint8Array, peerPublicKey: Uint8Array, presharedKey: Uint8Array | null): StaticKeys {
  const publicKey = crypto.x25519Public(privateKey);
  const staticStatic = crypto.x25519(privateKey, peerPublicKey);
  if (!staticStatic) throw new WgError(WgErrorCode.BAD_KEY, 'the peer public key is a low-order point');
  return {
    privateKey: new Uint8Array(privateKey),
    publicKey,
    peerPublicKey: new Uint8Array(peerPublicKey),
    presharedKey: presharedKey ? new Uint8Array(presharedKey) : new Uint8Array(KEY_SIZE),
    staticStatic,
  };
}
