/**
 * A minimal WireGuard responder for unit tests of the client core, written from the whitepaper's
 * responder steps (§5.4.2–5.4.4, what wireguard-go's ConsumeMessageInitiation / CreateMessageResponse /
 * CookieChecker do): it consumes initiations (mac1, optional mac2 "under load", timestamp replay check),
 * answers with responses or cookie replies, and seals/opens transport messages. Test-only: no timers.
 */
import {
  INITIAL_CHAIN_KEY,
  INITIAL_HASH,
  hash,
  kdf1,
  kdf2,
  kdf3,
  mac,
} from '../../../../src/client/wireguard/kdf.js';
import {
  buildCookieReply,
  buildResponse,
  compareTai64n,
  cookieKey,
  checkMac1,
  mac1Key,
  parseInitiation,
  parseTransportHeader,
  writeMacs,
  writeTransportHeader,
  type WgCrypto,
} from '../../../../src/client/wireguard/index.js';

export interface ResponderSession {
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  localIndex: number;
  remoteIndex: number;
  sendCounter: number;
}

export type InitiationResult =
  | { kind: 'response'; datagram: Uint8Array; session: ResponderSession; peerPublicKey: Uint8Array }
  | { kind: 'cookie'; datagram: Uint8Array }
  | { kind: 'dropped'; reason: string };

export class TestResponder {
  readonly publicKey: Uint8Array;
  underLoad = false;
  private lastTimestamp: Uint8Array = new Uint8Array(12);
  private readonly cookieSecret: Uint8Array;
  private nextIndex = 0x1000;
  session: ResponderSession | null = null;

  constructor(
    private readonly crypto: WgCrypto,
    private readonly privateKey: Uint8Array,
    private readonly psk: Uint8Array | null,
    /** The one peer this responder knows (its static public key). */
    private readonly peerPublicKey: Uint8Array,
  ) {
    this.publicKey = crypto.x25519Public(privateKey);
    this.cookieSecret = crypto.randomBytes(32);
  }

  /** The cookie a source address earns (what mac2 must be keyed with). */
  cookieFor(src: Uint8Array): Uint8Array {
    return mac(this.cookieSecret, src);
  }

  consumeInitiation(d: Uint8Array, src: Uint8Array = Uint8Array.of(127, 0, 0, 1, 0xca, 0x6c)): InitiationResult {
    const m = parseInitiation(d);
    if (!checkMac1(d, mac1Key(this.publicKey))) return { kind: 'dropped', reason: 'mac1' };
    if (this.underLoad) {
      const mac2 = mac(this.cookieFor(src), d.subarray(0, 132));
      if (!Buffer.from(mac2).equals(Buffer.from(m.mac2))) {
        const nonce = this.crypto.randomBytes(24);
        const enc = this.crypto.xseal(cookieKey(this.publicKey), nonce, m.mac1, this.cookieFor(src));
        return { kind: 'cookie', datagram: buildCookieReply({ receiver: m.sender, nonce, encryptedCookie: enc }) };
      }
    }
    let h = hash(INITIAL_HASH, this.publicKey);
    h = hash(h, m.ephemeral);
    let ck = kdf1(INITIAL_CHAIN_KEY, m.ephemeral);
    const es = this.crypto.x25519(this.privateKey, m.ephemeral);
    if (!es) return { kind: 'dropped', reason: 'dh' };
    let k: Uint8Array;
    [ck, k] = kdf2(ck, es);
    const peerPk = this.crypto.open(k, 0, h, m.encryptedStatic);
    if (!peerPk) return { kind: 'dropped', reason: 'static' };
    if (!Buffer.from(peerPk).equals(Buffer.from(this.peerPublicKey))) return { kind: 'dropped', reason: 'unknown peer' };
    h = hash(h, m.encryptedStatic);
    const ss = this.crypto.x25519(this.privateKey, peerPk);
    if (!ss) return { kind: 'dropped', reason: 'dh' };
    [ck, k] = kdf2(ck, ss);
    const ts = this.crypto.open(k, 0, h, m.encryptedTimestamp);
    if (!ts) return { kind: 'dropped', reason: 'timestamp' };
    if (compareTai64n(ts, this.lastTimestamp) <= 0) return { kind: 'dropped', reason: 'replay' };
    this.lastTimestamp = ts;
    h = hash(h, m.encryptedTimestamp);

    // response
    const e = this.crypto.randomBytes(32);
    const ephemeral = this.crypto.x25519Public(e);
    h = hash(h, ephemeral);
    ck = kdf1(ck, ephemeral);
    ck = kdf1(ck, this.crypto.x25519(e, m.ephemeral) ?? new Uint8Array(32));
    ck = kdf1(ck, this.crypto.x25519(e, peerPk) ?? new Uint8Array(32));
    const [ck2, tau, k2] = kdf3(ck, this.psk ?? new Uint8Array(32));
    h = hash(h, tau);
    const encryptedNothing = this.crypto.seal(k2, 0, h, new Uint8Array(0));
    const localIndex = this.nextIndex++;
    const datagram = buildResponse({ sender: localIndex, receiver: m.sender, ephemeral, encryptedNothing });
    writeMacs(datagram, mac1Key(peerPk), null);
    const [receiveKey, sendKey] = kdf2(ck2, new Uint8Array(0));
    this.session = { sendKey, receiveKey, localIndex, remoteIndex: m.sender, sendCounter: 0 };
    return { kind: 'response', datagram, session: this.session, peerPublicKey: peerPk };
  }

  /** A transport message from the responder (counter chosen by the caller for replay tests). */
  seal(plaintext: Uint8Array, counter?: number): Uint8Array {
    const s = this.session;
    if (!s) throw new Error('no session');
    const n = counter ?? s.sendCounter++;
    const out = new Uint8Array(16 + plaintext.length + 16);
    writeTransportHeader(out, s.remoteIndex, n);
    out.set(this.crypto.seal(s.sendKey, n, new Uint8Array(0), plaintext), 16);
    return out;
  }

  open(d: Uint8Array): Uint8Array | null {
    const s = this.session;
    if (!s) return null;
    const h = parseTransportHeader(d);
    if (h.receiver !== s.localIndex) return null;
    return this.crypto.open(s.receiveKey, h.counter, new Uint8Array(0), d.subarray(16));
  }
}
