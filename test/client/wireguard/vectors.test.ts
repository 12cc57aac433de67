/**
 * Known-answer vectors: published values for BLAKE2s / KDF / TAI64N, and a handshake recorded from a real
 * interoperation with wireguard-go (test/vectors/wireguard-handshake.json, see helpers/record-vectors.ts)
 * replayed offline through the core byte for byte. The initiation and the transport keys are also derived a
 * second, independent way (OpenSSL through node:crypto for X25519, ChaCha20-Poly1305, BLAKE2s and HMAC) so
 * a shared bug in the core's building blocks cannot hide.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import {
  WgErrorCode,
  WgPeer,
  buildEcho,
  defaultWgCrypto,
  parseIp,
  tai64n,
  wgCryptoWithRandom,
  wgHash,
  wgHmac,
  wgKdf1,
  wgKdf2,
  wgKdf3,
  wgKeyFromBase64,
  wgKeyToBase64,
  wgPublicKey,
  type WgOutput,
} from '../../../src/client/wireguard/index.js';

const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

interface Primitives {
  blake2s: { input: string; digest: string }[];
  blake2sSelftestGrandHash: string;
  kdf: { key: string; input: string; t0: string; t1: string; t2: string }[];
  tai64n: { unixMs: number; label: string }[];
}
interface Echo {
  src: string;
  dst: string;
  requestPacket: string;
  requestDatagram: string;
  replyDatagram: string;
  replyPacket: string;
}
interface Handshake {
  inputs: {
    clientPrivateKey: string;
    gatewayPrivateKey: string;
    presharedKey: string;
    timestampUnixMs: number;
    clientPublicKey: string;
    gatewayPublicKey: string;
    timestamp: string;
    echoId: number;
    echoData: string;
  };
  wgPubkey: { client: string; gateway: string };
  initiation: string;
  response: string;
  keepalive: string;
  echoes: Echo[];
  randomConsumed: string[];
}

const P = JSON.parse(readFileSync(new URL('../../vectors/wireguard-primitives.json', import.meta.url), 'utf8')) as Primitives;
const H = JSON.parse(readFileSync(new URL('../../vectors/wireguard-handshake.json', import.meta.url), 'utf8')) as Handshake;

test('BLAKE2s: RFC 7693 Appendix B, native (hash) and @noble/hashes agree', () => {
  for (const v of P.blake2s) {
    assert.equal(hex(wgHash(unhex(v.input))), v.digest);
    assert.equal(hex(blake2s(unhex(v.input))), v.digest);
  }
});

test('BLAKE2s: RFC 7693 Appendix E self-test (keyed, 16/20/28/32-byte outputs)', () => {
  const seq = (len: number, seed: number): Uint8Array => {
    const out = new Uint8Array(len);
    let a = Math.imul(0xdead4bad, seed) >>> 0;
    let b = 1;
    for (let i = 0; i < len; i++) {
      const t = (a + b) >>> 0;
      a = b;
      b = t;
      out[i] = t >>> 24;
    }
    return out;
  };
  const grand = blake2s.create({ dkLen: 32 });
  for (const outlen of [16, 20, 28, 32]) {
    for (const inlen of [0, 3, 64, 65, 255, 1024]) {
      const input = seq(inlen, inlen);
      grand.update(blake2s(input, { dkLen: outlen }));
      grand.update(blake2s(input, { dkLen: outlen, key: seq(outlen, outlen) }));
    }
  }
  assert.equal(hex(grand.digest()), P.blake2sSelftestGrandHash);
});

test('HMAC-BLAKE2s: OpenSSL (used by the KDF) and @noble/hashes agree, keys shorter and longer than a block', () => {
  for (const [kl, dl] of [
    [0, 0],
    [8, 10],
    [32, 1],
    [32, 33],
    [64, 64],
    [65, 200],
    [100, 1000],
  ] as const) {
    const k = randomBytes(kl);
    const d = randomBytes(dl);
    assert.equal(hex(wgHmac(k, d)), hex(nobleHmac(blake2s, k, d)));
  }
});

test('KDF1/KDF2/KDF3: wireguard-go device/kdf_test.go', () => {
  for (const v of P.kdf) {
    const k = unhex(v.key);
    const i = unhex(v.input);
    assert.deepEqual(wgKdf3(k, i).map(hex), [v.t0, v.t1, v.t2]);
    assert.deepEqual(wgKdf2(k, i).map(hex), [v.t0, v.t1]);
    assert.equal(hex(wgKdf1(k, i)), v.t0);
  }
});

test('TAI64N labels', () => {
  for (const v of P.tai64n) assert.equal(hex(tai64n(v.unixMs)), v.label);
  assert.equal(hex(tai64n(H.inputs.timestampUnixMs)), H.inputs.timestamp);
});

test('public keys match `wg pubkey` (wireguard-tools) and base64 round-trips', () => {
  assert.equal(wgKeyToBase64(wgPublicKey(unhex(H.inputs.clientPrivateKey))), H.wgPubkey.client);
  assert.equal(wgKeyToBase64(wgPublicKey(unhex(H.inputs.gatewayPrivateKey))), H.wgPubkey.gateway);
  assert.equal(hex(wgKeyFromBase64(H.wgPubkey.client)), H.inputs.clientPublicKey);
});

/** Replays the recorded random byte strings in order; fails loudly if the core asks for anything else. */
function recordedRandom(): (n: number) => Uint8Array {
  const queue = H.randomConsumed.map(unhex);
  return (n) => {
    const next = queue.shift();
    assert.ok(next, 'the core asked for more randomness than was recorded');
    assert.equal(next.length, n, 'the core asked for randomness in a different order than recorded');
    return next;
  };
}

function recordedPeer(): WgPeer {
  return new WgPeer({
    privateKey: unhex(H.inputs.clientPrivateKey),
    peerPublicKey: unhex(H.inputs.gatewayPublicKey),
    presharedKey: unhex(H.inputs.presharedKey),
    crypto: wgCryptoWithRandom(defaultWgCrypto, recordedRandom()),
    timestamp: () => tai64n(H.inputs.timestampUnixMs),
  });
}

const only = (o: WgOutput): Uint8Array => {
  assert.equal(o.rejected, null, o.rejected?.message);
  assert.equal(o.network.length, 1);
  return o.network[0] as Uint8Array;
};

test('recorded wireguard-go handshake replays byte for byte through the core', () => {
  const peer = recordedPeer();
  let now = 1000;
  assert.equal(hex(only(peer.initiate(now))), H.initiation);
  const r = peer.receive(unhex(H.response), ++now);
  assert.ok(r.events.some((e) => e.type === 'handshake-complete'));
  assert.equal(hex(only(r)), H.keepalive, 'key confirmation keepalive');
  for (const e of H.echoes) {
    const request = buildEcho('request', parseIp(e.src), parseIp(e.dst), H.inputs.echoId, 1, unhex(H.inputs.echoData));
    assert.equal(hex(request), e.requestPacket);
    assert.equal(hex(only(peer.send(request, ++now))), e.requestDatagram);
    const reply = peer.receive(unhex(e.replyDatagram), ++now);
    assert.equal(reply.rejected, null);
    assert.deepEqual(reply.tunnel.map(hex), [e.replyPacket]);
  }
  // the same datagrams again are refused with codes, nothing else happens
  const again = peer.receive(unhex(H.response), ++now);
  assert.equal(again.rejected?.code, WgErrorCode.UNKNOWN_INDEX);
  const replay = peer.receive(unhex((H.echoes[0] as Echo).replyDatagram), ++now);
  assert.equal(replay.rejected?.code, WgErrorCode.REPLAY);
  assert.equal(replay.tunnel.length, 0);
  peer.close();
});

// --- an independent derivation with OpenSSL (node:crypto) ---------------------------------------------

const x25519 = (sk: Uint8Array, pk: Uint8Array): Uint8Array =>
  new Uint8Array(
    diffieHellman({
      privateKey: createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), sk]), format: 'der', type: 'pkcs8' }),
      publicKey: createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), pk]), format: 'der', type: 'spki' }),
    }),
  );
const x25519Base = (sk: Uint8Array): Uint8Array => {
  const der = createPublicKey(createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), sk]), format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' });
  return new Uint8Array(der.subarray(der.length - 32));
};
const H2 = (...p: Uint8Array[]): Uint8Array => {
  const h = createHash('blake2s256');
  for (const x of p) h.update(x);
  return new Uint8Array(h.digest());
};
const HM = (k: Uint8Array, ...p: Uint8Array[]): Uint8Array => {
  const h = createHmac('blake2s256', k);
  for (const x of p) h.update(x);
  return new Uint8Array(h.digest());
};
const KDF = (k: Uint8Array, i: Uint8Array, n: number): Uint8Array[] => {
  const prk = HM(k, i);
  const out: Uint8Array[] = [];
  let prev: Uint8Array = new Uint8Array(0);
  for (let j = 1; j <= n; j++) {
    prev = HM(prk, prev, Uint8Array.of(j));
    out.push(prev);
  }
  return out;
};
const nonce = (c: number): Buffer => {
  const n = Buffer.alloc(12);
  n.writeBigUInt64LE(BigInt(c), 4);
  return n;
};
const seal = (k: Uint8Array, c: number, ad: Uint8Array, pt: Uint8Array): Uint8Array => {
  const ci = createCipheriv('chacha20-poly1305', k, nonce(c), { authTagLength: 16 });
  ci.setAAD(ad, { plaintextLength: pt.length });
  return new Uint8Array(Buffer.concat([ci.update(pt), ci.final(), ci.getAuthTag()]));
};
const open = (k: Uint8Array, c: number, ct: Uint8Array, ad: Uint8Array = new Uint8Array(0)): Uint8Array => {
  const d = createDecipheriv('chacha20-poly1305', k, nonce(c), { authTagLength: 16 });
  d.setAAD(ad, { plaintextLength: ct.length - 16 });
  d.setAuthTag(ct.subarray(ct.length - 16));
  return new Uint8Array(Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]));
};
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

test('the recorded initiation and session keys, derived independently with OpenSSL', () => {
  const I = H.inputs;
  const [idx, seed] = H.randomConsumed.map(unhex) as [Uint8Array, Uint8Array];
  const e = new Uint8Array(seed);
  e[0] = (e[0] ?? 0) & 248;
  e[31] = ((e[31] ?? 0) & 127) | 64;
  const Si = unhex(I.clientPrivateKey);
  const Sr = unhex(I.gatewayPublicKey);
  const Ei = x25519Base(e);
  const C0 = H2(utf8('Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s'));
  let h = H2(H2(C0, utf8('WireGuard v1 zx2c4 Jason@zx2c4.com')), Sr);
  let [ck] = KDF(C0, Ei, 1) as [Uint8Array];
  h = H2(h, Ei);
  let k: Uint8Array;
  [ck, k] = KDF(ck, x25519(e, Sr), 2) as [Uint8Array, Uint8Array];
  const encStatic = seal(k, 0, h, x25519Base(Si));
  h = H2(h, encStatic);
  [ck, k] = KDF(ck, x25519(Si, Sr), 2) as [Uint8Array, Uint8Array];
  const encTs = seal(k, 0, h, unhex(I.timestamp));
  h = H2(h, encTs);
  const body = Buffer.concat([Buffer.from([1, 0, 0, 0]), idx, Ei, encStatic, encTs]);
  const mac1 = blake2s(body, { key: H2(utf8('mac1----'), Sr), dkLen: 16 });
  assert.equal(hex(Buffer.concat([body, mac1, Buffer.alloc(16)])), H.initiation);

  // the response wireguard-go sent, processed the same way → transport keys
  const resp = unhex(H.response);
  const Er = resp.subarray(12, 44);
  h = H2(h, Er);
  [ck] = KDF(ck, Er, 1) as [Uint8Array];
  [ck] = KDF(ck, x25519(e, Er), 1) as [Uint8Array];
  [ck] = KDF(ck, x25519(Si, Er), 1) as [Uint8Array];
  const [ck2, tau, k2] = KDF(ck, unhex(I.presharedKey), 3) as [Uint8Array, Uint8Array, Uint8Array];
  h = H2(h, tau);
  assert.equal(open(k2, 0, resp.subarray(44, 60), h).length, 0, 'the response authenticates the transcript');
  const [send, recv] = KDF(ck2, new Uint8Array(0), 2) as [Uint8Array, Uint8Array];
  for (const ex of H.echoes) {
    const reply = unhex(ex.replyDatagram);
    const counter = Number(Buffer.from(reply).readBigUInt64LE(8));
    const pt = open(recv, counter, reply.subarray(16));
    assert.equal(hex(pt.subarray(0, unhex(ex.replyPacket).length)), ex.replyPacket);
    const req = unhex(ex.requestDatagram);
    assert.equal(hex(open(send, Number(Buffer.from(req).readBigUInt64LE(8)), req.subarray(16)).subarray(0, unhex(ex.requestPacket).length)), ex.requestPacket);
  }
});
