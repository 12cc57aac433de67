/**
 * Builders shared by the negative and property tests of the protocol core: raw (possibly invalid) packet
 * bytes, a handshake driver over MemoryGateway that records every packet, and directly constructed
 * session pairs (no handshake cost) for high-volume tests.
 */
import assert from 'node:assert/strict';
import { CipherState } from '../../src/core/noise/index.js';
import {
  type CryptoSuite,
  type InitiatorConfig,
  InitiatorHandshake,
  LpErrorCode,
  Session,
  defaultSuite,
  outerKeys,
} from '../../src/core/index.js';
import type { MemoryGateway } from './memory-gateway.js';
import { clientKeys, gatewayKeys, seededRandom } from './fixtures.js';

export const nowSec = (): number => Math.floor(Date.now() / 1000);

/** Every LpErrorCode value, for "is this a coded error" checks. */
export const ALL_CODES: ReadonlySet<string> = new Set<string>(Object.values(LpErrorCode));

export function clientConfig(extra: Partial<InitiatorConfig> = {}, suite: CryptoSuite = defaultSuite): InitiatorConfig {
  return { suite, client: clientKeys, gateway: { ed25519Public: gatewayKeys.ed25519.publicKey, kemKeyHash: gatewayKeys.kemKeyHash }, ...extra };
}

export interface RawPacketFields {
  receiverIndex?: number;
  /** Full u64 counter; a bigint so out-of-range values can be written. */
  counter?: bigint;
  version?: number;
  reserved?: [number, number, number];
  type: number;
  content?: Uint8Array;
  trailer?: Uint8Array;
}

/** Hand-built cleartext packet bytes: every field can be made invalid. */
export function rawPacket(f: RawPacketFields): Uint8Array {
  const content = f.content ?? new Uint8Array(0);
  const trailer = f.trailer ?? new Uint8Array(16);
  const out = new Uint8Array(12 + 6 + content.length + trailer.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, f.receiverIndex ?? 0, true);
  dv.setBigUint64(4, f.counter ?? 0n, true);
  out[12] = f.version ?? 1;
  out.set(f.reserved ?? [0, 0, 0], 13);
  dv.setUint16(16, f.type, true);
  out.set(content, 18);
  out.set(trailer, 18 + content.length);
  return out;
}

export interface HandshakeRun {
  session: Session;
  /** Client → gateway: ClientHello, KKTRequest, msg1, msg3. */
  sent: Uint8Array[];
  /** Gateway → client: Ack, KKTResponse, msg2, Ack. */
  replies: Uint8Array[];
}

/** Drive a full handshake against `gw`, recording both directions. */
export function runHandshake(gw: MemoryGateway, cfg: InitiatorConfig = clientConfig()): HandshakeRun {
  const hs = new InitiatorHandshake(cfg);
  let out = hs.start(nowSec());
  const sent: Uint8Array[] = [];
  const replies: Uint8Array[] = [];
  for (let i = 0; i < 10; i++) {
    if (out.kind === 'established') return { session: out.session, sent, replies };
    assert.equal(out.kind, 'send');
    if (out.kind !== 'send') break;
    sent.push(out.packet);
    const reply = gw.handle(out.packet);
    assert.ok(reply, `gateway replied to step ${i}`);
    replies.push(reply);
    out = hs.receive(reply, nowSec());
  }
  throw new Error('handshake did not complete');
}

/**
 * A client/gateway Session pair with matching keys, built directly (no KEM, no Noise handshake), so
 * tests can make thousands of them. Static keys are the fixture keys, so subsessions work too.
 */
export function sessionPair(label: string, receiverIndex = 0x01020304): { client: Session; gateway: Session } {
  const rnd = seededRandom(label);
  const { prims } = defaultSuite;
  const keys = outerKeys(prims, rnd(32));
  const c1 = rnd(32);
  const c2 = rnd(32);
  const secret = rnd(32);
  const handshakeHash = rnd(32);
  // Each side owns copies: Session.close() zeroizes its keys in place.
  const copyKeys = () => ({ i2r: new Uint8Array(keys.i2r), r2i: new Uint8Array(keys.r2i) });
  const common = { prims, receiverIndex, handshakeHash, generation: 0 };
  const client = new Session({
    ...common,
    role: 'initiator',
    keys: copyKeys(),
    noiseSend: new CipherState(prims, new Uint8Array(c1)),
    noiseRecv: new CipherState(prims, new Uint8Array(c2)),
    secret: new Uint8Array(secret),
    localStatic: clientKeys.x25519,
    remoteStatic: gatewayKeys.x25519.publicKey,
    sendCounter: 3,
    receivedCounters: [1, 2],
  });
  const gateway = new Session({
    ...common,
    role: 'responder',
    keys: copyKeys(),
    noiseSend: new CipherState(prims, new Uint8Array(c2)),
    noiseRecv: new CipherState(prims, new Uint8Array(c1)),
    secret: new Uint8Array(secret),
    localStatic: gatewayKeys.x25519,
    remoteStatic: clientKeys.x25519.publicKey,
    sendCounter: 3,
    receivedCounters: [2],
  });
  return { client, gateway };
}
