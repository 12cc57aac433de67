/**
 * Fuzz/property harness for every parser and state-machine entry point of the protocol core.
 *
 * Each target gets its own PRNG stream derived from (seed, target name), so a failure reproduces with
 * `LP_FUZZ_SEED=<seed> LP_FUZZ_TARGETS=<name>` regardless of the other targets. A target feeds N random
 * inputs (pure random bytes and structure-aware random: valid framing around random content) and N mutations
 * of valid inputs (bit flips, byte replacement, truncation, extension, splice, length-field edits, insert,
 * delete, duplicate) and checks that every rejection is an LpError with a known code. Where a stronger
 * property holds it is checked too (canonical re-encoding, state unchanged after a rejection).
 *
 * Loaded in a worker thread by test/core/property.test.ts, so a hang inside one synchronous call can be
 * detected (heartbeats) and the worker terminated; `runTarget` also works in-thread.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import {
  type AppMessage,
  type CryptoSuite,
  type KktContext,
  type Packet,
  type ResponderConfig,
  type ResponderHandshake,
  FrameDecoder,
  InitiatorHandshake,
  KktKem,
  KktRole,
  KktStatus,
  LpError,
  MessageType,
  Session,
  acceptKktRequest,
  answerClientHello,
  kktBinding,
  RoutabilityTokens,
  type PacketContext,
  buildKktRequest,
  decodeAppMessage,
  decodeBusy,
  decodeClientHello,
  decodeForwardPacketData,
  decodeHandshake1,
  decodeKktFrame,
  decodeSubsessionPayload,
  decodeSubsessionReady,
  decodeTicket,
  defaultSuite,
  encodeAppMessage,
  encodeBusy,
  encodeClientHello,
  encodeForwardPacketData,
  encodeFrame,
  encodeKktFrame,
  encodeSubsessionPayload,
  encodeSubsessionReady,
  encodeTicket,
  makeSalt,
  openPacket,
  parseClear,
  parseHeader,
  processKktRequest,
  sealPacket,
  serializeClear,
  splitPaddedFrame,
} from '../../src/core/index.js';
import { clientKeys, fill, gatewayKeys, seededSuite } from './fixtures.js';
import { ALL_CODES, sessionPair } from './core-builders.js';

// ---- PRNG ---------------------------------------------------------------------------------------

export interface Rng {
  u32(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  chance(p: number): boolean;
  pick<T>(a: readonly T[]): T;
  bytes(n: number): Uint8Array;
}

/** mulberry32: tiny, fast, good enough for fuzzing, fully reproducible. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  const u32 = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const rng: Rng = {
    u32,
    int: (n) => (n <= 0 ? 0 : Math.floor((u32() / 0x100000000) * n)),
    chance: (p) => u32() / 0x100000000 < p,
    pick: <T>(arr: readonly T[]): T => {
      if (arr.length === 0) throw new Error('pick from empty array');
      return arr[rng.int(arr.length)] as T;
    },
    bytes: (n) => {
      const out = new Uint8Array(n);
      let i = 0;
      for (; i + 4 <= n; i += 4) {
        const v = u32();
        out[i] = v;
        out[i + 1] = v >>> 8;
        out[i + 2] = v >>> 16;
        out[i + 3] = v >>> 24;
      }
      for (; i < n; i++) out[i] = u32();
      return out;
    },
  };
  return rng;
}

/** Independent stream per target: FNV-1a of the label mixed with the seed. */
export function subSeed(seed: number, label: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

// ---- byte helpers -------------------------------------------------------------------------------

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

function hex(b: Uint8Array, max = 512): string {
  const s = Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, max)).toString('hex');
  return b.length > max ? `${s}… (${b.length} bytes)` : s;
}


// ---- mutations ----------------------------------------------------------------------------------

const INTERESTING = [0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400, 0x401, 0x440, 0x7fff, 0x8000, 0xffff, 0x10000, 0x10001, 0x7fffffff, 0x80000000, 0xffffffff];
const INTERESTING_BIG = [0n, 1n, 64n, 65n, 1024n, 1025n, 4096n, 4097n, 65502n, 65503n, (1n << 53n) - 1n, 1n << 53n, 1n << 63n, (1n << 64n) - 1n];

function writeInt(b: Uint8Array, off: number, width: number, value: bigint, littleEndian: boolean): void {
  for (let i = 0; i < width && off + i < b.length; i++) {
    const byte = Number((value >> BigInt(8 * i)) & 0xffn);
    b[off + (littleEndian ? i : width - 1 - i)] = byte;
  }
}

export function mutate(r: Rng, corpus: readonly Uint8Array[]): Uint8Array {
  let b: Uint8Array = new Uint8Array(r.pick(corpus));
  const rounds = r.chance(0.25) ? 2 + r.int(3) : 1;
  for (let k = 0; k < rounds; k++) {
    const len = b.length;
    switch (r.int(10)) {
      case 0: {
        // bit flips
        if (len === 0) break;
        const n = 1 + r.int(4);
        for (let i = 0; i < n; i++) {
          const at = r.int(len);
          b[at] = (b[at] as number) ^ (1 << r.int(8));
        }
        break;
      }
      case 1: {
        // byte replacement (random or boundary values)
        if (len === 0) break;
        const n = 1 + r.int(4);
        for (let i = 0; i < n; i++) b[r.int(len)] = r.chance(0.5) ? r.int(256) : r.pick([0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff]);
        break;
      }
      case 2:
        // truncation
        b = b.slice(0, r.int(len + 1));
        break;
      case 3: {
        // extension
        const n = r.chance(0.5) ? 1 : 1 + r.int(r.chance(0.9) ? 64 : 2048);
        b = concat(b, r.chance(0.5) ? new Uint8Array(n) : r.bytes(n));
        break;
      }
      case 4: {
        // splice of two valid inputs
        const other = r.pick(corpus);
        b = concat(b.slice(0, r.int(len + 1)), other.slice(r.int(other.length + 1)));
        break;
      }
      case 5:
      case 6: {
        // length-field edit: an interesting integer at a random offset, width 1/2/4/8, either endianness
        if (len === 0) break;
        const width = r.pick([1, 2, 4, 8, 8]);
        const value = width === 8 || r.chance(0.3) ? r.pick(INTERESTING_BIG) : BigInt(r.chance(0.2) ? (len + r.int(5) - 2) >>> 0 : r.pick(INTERESTING));
        writeInt(b, r.int(len), width, value, r.chance(0.8));
        break;
      }
      case 7: {
        // insertion
        const at = r.int(len + 1);
        b = concat(b.slice(0, at), r.bytes(1 + r.int(8)), b.slice(at));
        break;
      }
      case 8: {
        // deletion
        if (len === 0) break;
        const at = r.int(len);
        b = concat(b.slice(0, at), b.slice(Math.min(len, at + 1 + r.int(8))));
        break;
      }
      default: {
        // duplicate a chunk in place
        if (len === 0) break;
        const at = r.int(len);
        const chunk = b.slice(at, at + 1 + r.int(32));
        b = concat(b.slice(0, at), chunk, b.slice(at));
      }
    }
  }
  return b;
}

/** Random length: mostly small, sometimes large, rarely up to `max`. */
function randomLength(r: Rng, max: number): number {
  const x = r.int(100);
  if (x < 35) return r.int(Math.min(max, 17));
  if (x < 65) return r.int(Math.min(max, 129));
  if (x < 97) return r.int(Math.min(max, 2049));
  return r.int(max + 1);
}

/** Loosely bincode-shaped random bytes: small enum tags, plausible lengths followed by that many bytes, bools. */
function bincodeish(r: Rng, maxLen = 512): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  const n = 1 + r.int(10);
  for (let i = 0; i < n && total < maxLen; i++) {
    let part: Uint8Array;
    switch (r.int(6)) {
      case 0:
        part = new Uint8Array(4);
        new DataView(part.buffer).setUint32(0, r.int(9), true);
        break;
      case 1: {
        const l = r.chance(0.8) ? r.int(70) : r.int(2000);
        const body = r.chance(0.5) ? Uint8Array.from({ length: l }, () => 0x20 + r.int(0x5f)) : r.bytes(l);
        part = new Uint8Array(8 + l);
        // usually the true length, sometimes off by one either way
        new DataView(part.buffer).setBigUint64(0, BigInt(r.chance(0.9) ? l : Math.max(0, l + r.int(3) - 1)), true);
        part.set(body, 8);
        break;
      }
      case 2:
        part = new Uint8Array([r.int(3)]);
        break;
      case 3:
        part = r.bytes(r.pick([4, 8, 16, 32, 64]));
        break;
      case 4:
        part = r.bytes(r.int(8));
        break;
      default:
        part = new Uint8Array(r.pick([1, 2, 4, 8]));
    }
    parts.push(part);
    total += part.length;
  }
  return concat(...parts);
}

function rawPacket(index: number, counter: number, type: number, content: Uint8Array, trailer: Uint8Array = new Uint8Array(16), version = 1, reserved = 0): Uint8Array {
  const out = new Uint8Array(34 + content.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, index, true);
  dv.setUint32(4, counter, true);
  out[12] = version;
  out[13] = reserved;
  dv.setUint16(16, type, true);
  out.set(content, 18);
  out.set(trailer, 18 + content.length);
  return out;
}

const EMPTY_TYPES: ReadonlySet<number> = new Set([MessageType.Collision, MessageType.Ack, MessageType.SubsessionRequest, MessageType.SubsessionAbort]);

/** Content length that the packet layer accepts for `type` (mostly), or anything. */
function contentFor(r: Rng, type: number, maxLen: number): Uint8Array {
  if (r.chance(0.8)) {
    if (type === MessageType.Busy) return r.bytes(r.pick([0, 4]));
    if (type === MessageType.ClientHello) return r.bytes(100);
    if (EMPTY_TYPES.has(type)) return new Uint8Array(0);
  }
  return r.chance(0.5) ? bincodeish(r, maxLen) : r.bytes(randomLength(r, maxLen));
}

/** A packet with a plausible layout around random content (type mostly 0x0000–0x000D). */
function structuredPacket(r: Rng, index: number, maxLen = 4096): Uint8Array {
  const type = r.chance(0.9) ? r.int(14) : r.chance(0.5) ? r.int(0x20) : r.int(0x10000);
  const trailer = r.chance(0.85) ? new Uint8Array(16) : r.bytes(16);
  const version = r.chance(0.9) ? 1 : r.int(256);
  const reserved = r.chance(0.9) ? 0 : r.int(256);
  return rawPacket(index, r.chance(0.9) ? r.int(1 << 20) : r.u32(), type, contentFor(r, type, maxLen), trailer, version, reserved);
}

function pureRandom(r: Rng, max: number): Uint8Array {
  return r.bytes(randomLength(r, max));
}

// ---- shared valid samples -----------------------------------------------------------------------

const NOW = 1_800_000_000;
/** X25519 points of small order (and non-canonical encodings of them): DH with them must be LP_ERR_BAD_DH. */
const LOW_ORDER: Uint8Array[] = [
  new Uint8Array(32),
  Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0)),
  Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex'),
  Buffer.from('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', 'hex'),
  Buffer.from('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex'),
  fill(0xff, 32),
];
const { prims, kem } = defaultSuite;
const OUTER_KEY = fill(0x42, 32);

const ticket = { issuerKeyId: fill(0x11, 8), serial: fill(0x22, 16), ticketType: 3 as const, bandwidthBytes: 123456789n, expiry: 1_900_000_000n, signature: fill(0x33, 64) };
const forwards = [
  { targetGatewayIdentity: fill(0x44, 32), targetLpAddress: '192.0.2.7:41264', innerPacketBytes: fill(0x55, 40) },
  { targetGatewayIdentity: fill(0x45, 32), targetLpAddress: '[2001:db8::1]:51264', innerPacketBytes: new Uint8Array(0) },
  { targetGatewayIdentity: fill(0x46, 32), targetLpAddress: 'é'.repeat(32), innerPacketBytes: fill(0x56, 200) },
];

const APP_SAMPLES: AppMessage[] = [
  { kind: 'register', request: { mode: { kind: 'dvpn', wgPublicKey: fill(5, 32) }, credential: { kind: 'mock', blob: new Uint8Array([1, 2, 3]) }, ticketType: 2, timestamp: 1_800_000_000n } },
  { kind: 'register', request: { mode: { kind: 'mixnet', clientId: fill(6, 32) }, credential: { kind: 'ticket', ticket }, ticketType: 0, timestamp: 1_800_000_000n } },
  {
    kind: 'registerResponse',
    response: {
      success: true,
      error: null,
      gatewayData: { publicKey: fill(7, 32), endpoint: { family: 4, address: new Uint8Array([10, 0, 0, 1]), port: 51820 }, privateIpv4: new Uint8Array([10, 1, 0, 2]), privateIpv6: fill(1, 16) },
      allocatedBandwidth: 1073741824n,
    },
  },
  {
    kind: 'registerResponse',
    response: {
      success: true,
      error: null,
      gatewayData: { publicKey: fill(7, 32), endpoint: { family: 6, address: fill(0x20, 16), port: 443 }, privateIpv4: new Uint8Array([10, 1, 0, 3]), privateIpv6: fill(2, 16) },
      allocatedBandwidth: -5n,
    },
  },
  { kind: 'registerResponse', response: { success: false, error: { code: 'LP_ERR_CREDENTIAL', message: 'spent', retryAfterMs: 250 }, gatewayData: null, allocatedBandwidth: 0n } },
  ...forwards.map((forward): AppMessage => ({ kind: 'forward', forward })),
  { kind: 'forwardResponse', innerPacketBytes: fill(0x66, 34) },
  { kind: 'error', error: { code: 'LP_ERR_BUSY', message: 'try later ✓', retryAfterMs: 1000 } },
  { kind: 'error', error: { code: 'LP_ERR_X', message: '', retryAfterMs: null } },
  { kind: 'ping', payload: fill(8, 16) },
  { kind: 'pong', payload: new Uint8Array(0) },
  { kind: 'deregister', request: { wgPublicKey: fill(9, 32), proof: fill(10, 32) } },
  { kind: 'deregistered', wgPublicKey: fill(9, 32) },
];
const APP_BYTES = APP_SAMPLES.map(encodeAppMessage);

const FUZZ_BINDING = kktBinding(0x0badf00d, fill(0x42, 32));

function kktRequestFrames(): Uint8Array[] {
  const req = buildKktRequest(prims, kem, clientKeys.ed25519, fill(0x5a, 16), FUZZ_BINDING);
  const padded = buildKktRequest(prims, kem, clientKeys.ed25519, fill(0x5b, 16), FUZZ_BINDING, 1271).content;
  const ok = processKktRequest(prims, kem, gatewayKeys.ed25519, gatewayKeys.kem.publicKey, clientKeys.ed25519.publicKey, req.content, FUZZ_BINDING, kktBinding(0x0badf00d, fill(0x42, 32), fill(0x45, 32)));
  const refusalCtx: KktContext = { ...decodeKktFrame(req.frame).context, sequence: 1, role: KktRole.Responder, status: KktStatus.UnsupportedCiphersuite, kem: KktKem.X25519 };
  const refusal = encodeKktFrame(refusalCtx, new Uint8Array(0), fill(0x5a, 16), (m) => prims.ed25519Sign(gatewayKeys.ed25519.secretKey, m));
  const anon = encodeKktFrame({ ...decodeKktFrame(req.frame).context, role: KktRole.AnonymousInitiator }, new Uint8Array(0), fill(1, 16), null);
  return [req.frame, padded, ok.response, refusal, anon];
}

function randomKktFrame(r: Rng): Uint8Array {
  const ctx = new Uint8Array([
    (r.chance(0.9) ? 0x10 : r.int(256) & 0xf0) | (r.chance(0.8) ? r.int(2) : r.int(16)),
    (r.chance(0.7) ? 0 : r.int(8)) << 5 | (r.chance(0.8) ? r.int(2) : r.int(8)) << 2 | r.int(4),
    r.pick([0, 1, 2, 255, r.int(256)]),
    r.int(5),
    r.pick([0, 16, 32, r.int(256)]),
    r.chance(0.9) ? 0 : r.int(256),
    r.chance(0.9) ? 0 : r.int(256),
  ]);
  const bodyLen = r.pick([0, 0, 16 + 64, 16, 1184 + 16 + 64, 1216 + 16 + 64, 32 + 16 + 64, r.int(1400)]);
  const rest = r.bytes(bodyLen + (r.chance(0.8) ? 0 : r.int(5) - 2 < 0 ? 0 : r.int(3)));
  const frame = concat(ctx, rest);
  return r.chance(0.3) ? concat(frame, new Uint8Array(r.int(1300))) : frame;
}

// ---- genuine handshake transcript (deterministic) -----------------------------------------------

interface Transcript {
  hello: Uint8Array;
  kktRequest: Uint8Array;
  msg1: Uint8Array;
  msg3: Uint8Array;
  helloAck: Uint8Array;
  kktResponse: Uint8Array;
  msg2: Uint8Array;
  finalAck: Uint8Array;
  index: number;
}

const CLIENT_LABEL = 'fuzz-client';
const GATEWAY_LABEL = 'fuzz-gateway';
const FUZZ_INDEX = 0x0badf00d;

function gatewaySuite(): CryptoSuite {
  return seededSuite(GATEWAY_LABEL);
}

/** The source every fuzzed packet comes from (tokens bind it). */
const FUZZ_SOURCE = '192.0.2.7';

/** A gateway's responder configuration and token issuer on one fresh deterministic random stream. */
function gatewayRig(): { cfg: ResponderConfig; tokens: RoutabilityTokens; ctx: PacketContext } {
  const suite = gatewaySuite();
  return { cfg: { suite, keys: gatewayKeys }, tokens: new RoutabilityTokens(suite.prims), ctx: { nowSec: NOW, source: FUZZ_SOURCE } };
}

/** Hello → Ack (token) → KKTRequest → an accepted handshake, on `rig`. */
function acceptOn(rig: ReturnType<typeof gatewayRig>, kktRequest: Uint8Array): ResponderHandshake {
  const out = acceptKktRequest(rig.cfg, rig.tokens, kktRequest, parseHeader(kktRequest), rig.ctx, () => false);
  if (out.kind !== 'accepted') throw new Error(`KKT request ${out.kind}`);
  return out.handshake;
}

function newInitiator(): InitiatorHandshake {
  return new InitiatorHandshake({ suite: seededSuite(CLIENT_LABEL), client: clientKeys, gateway: { ed25519Public: gatewayKeys.ed25519.publicKey, kemKeyHash: gatewayKeys.kemKeyHash }, receiverIndex: FUZZ_INDEX });
}

function sent(out: ReturnType<InitiatorHandshake['receive']>): Uint8Array {
  if (out.kind !== 'send') throw new Error(`expected a packet, got ${out.kind}`);
  return out.packet;
}

let transcriptCache: Transcript | null = null;
function transcript(): Transcript {
  if (transcriptCache) return transcriptCache;
  const ini = newInitiator();
  const rig = gatewayRig();
  const hello = sent(ini.start(NOW));
  const helloAck = answerClientHello(rig.cfg, rig.tokens, hello, rig.ctx).reply;
  const kktRequest = sent(ini.receive(helloAck, NOW));
  const out = acceptKktRequest(rig.cfg, rig.tokens, kktRequest, parseHeader(kktRequest), rig.ctx, () => false);
  if (out.kind !== 'accepted') throw new Error(`KKT request ${out.kind}`);
  const resp = out.handshake;
  const kktResponse = out.reply;
  const msg1 = sent(ini.receive(kktResponse, NOW));
  const msg2 = resp.receive(msg1).reply as Uint8Array;
  const msg3 = sent(ini.receive(msg2, NOW));
  const finalAck = resp.receive(msg3).reply as Uint8Array;
  if (ini.receive(finalAck, NOW).kind !== 'established') throw new Error('transcript did not establish');
  transcriptCache = { hello, kktRequest, msg1, msg3, helloAck, kktResponse, msg2, finalAck, index: ini.receiverIndex };
  return transcriptCache;
}

type ResponderStageName = 'await-msg1' | 'await-msg3';

/** A fresh gateway-side handshake at `stage`, built by replaying the deterministic transcript. */
function responderAt(stage: ResponderStageName): ResponderHandshake {
  const t = transcript();
  const rig = gatewayRig();
  answerClientHello(rig.cfg, rig.tokens, t.hello, rig.ctx); // same random stream as the transcript: same token
  const h = acceptOn(rig, t.kktRequest);
  if (stage === 'await-msg3') h.receive(t.msg1);
  if (h.stage !== stage) throw new Error(`responder rebuild reached ${h.stage}, wanted ${stage}`);
  return h;
}

type InitiatorStageName = 'await-hello-reply' | 'await-kkt-response' | 'await-msg2' | 'await-ack';

function initiatorAt(stage: InitiatorStageName): InitiatorHandshake {
  const t = transcript();
  const ini = newInitiator();
  ini.start(NOW);
  if (stage !== 'await-hello-reply') ini.receive(t.helloAck, NOW);
  if (stage === 'await-msg2' || stage === 'await-ack') ini.receive(t.kktResponse, NOW);
  if (stage === 'await-ack') ini.receive(t.msg2, NOW);
  if (ini.stage !== stage) throw new Error(`initiator rebuild reached ${ini.stage}, wanted ${stage}`);
  return ini;
}

// ---- targets ------------------------------------------------------------------------------------

/** Cheap guess of what an input is meant to be: its type field if the trailer is zero (cleartext), else 'sealed'. */
function shapeOf(b: Uint8Array): number | 'sealed' {
  if (b.length < 34) return -1;
  for (let i = b.length - 16; i < b.length; i++) if (b[i] !== 0) return 'sealed';
  return (b[16] as number) | ((b[17] as number) << 8);
}

export interface Harness {
  corpus: Uint8Array[];
  randomInput(r: Rng): Uint8Array;
  /** Feed one input; throw for a rejection; throw a plain Error (not LpError) for a violated property. */
  run(input: Uint8Array, r: Rng): void;
}

export interface TargetSpec {
  name: string;
  random: number;
  mutated: number;
  setup(): Harness;
}

/** Raised by a harness when a property other than "only LpError" is violated. */
class PropertyViolation extends Error {
  override name = 'PropertyViolation';
}

function prop(ok: boolean, what: string): void {
  if (!ok) throw new PropertyViolation(what);
}

/** Stateless decoder target: random + bincode-shaped random, mutations of valid encodings, canonical round-trip. */
function decoderTarget<T>(name: string, n: number, corpus: Uint8Array[], decode: (b: Uint8Array) => T, reencode: ((v: T) => Uint8Array) | null, random?: (r: Rng) => Uint8Array): TargetSpec {
  return {
    name,
    random: n,
    mutated: n,
    setup: () => ({
      corpus,
      randomInput: random ?? ((r) => (r.chance(0.5) ? bincodeish(r) : pureRandom(r, 4096))),
      run: (input) => {
        const v = decode(input);
        // A strict decoder is canonical: re-encoding an accepted input gives the same bytes.
        if (reencode) prop(equal(reencode(v), input), `${name}: accepted input does not re-encode to itself`);
      },
    }),
  };
}

const FAST = 7200;

export const TARGETS: TargetSpec[] = [
  {
    name: 'parseHeader',
    random: FAST,
    mutated: FAST,
    setup: () => {
      const t = transcript();
      return {
        corpus: [t.hello, t.kktRequest, t.msg1, t.msg3, t.helloAck, t.kktResponse, t.msg2, t.finalAck],
        randomInput: (r) => (r.chance(0.5) ? structuredPacket(r, r.u32()) : pureRandom(r, r.chance(0.01) ? 70000 : 4096)),
        run: (input) => {
          const h = parseHeader(input);
          prop(Number.isSafeInteger(h.counter) && h.counter >= 0 && h.receiverIndex >= 0 && h.receiverIndex <= 0xffffffff, 'header fields in range');
        },
      };
    },
  },
  {
    name: 'parseClear',
    random: FAST,
    mutated: FAST,
    setup: () => {
      const t = transcript();
      const extra = [
        serializeClear({ receiverIndex: 5, counter: 1, type: MessageType.Busy, content: encodeBusy(100) }),
        serializeClear({ receiverIndex: 5, counter: 1, type: MessageType.Busy, content: new Uint8Array(0) }),
        serializeClear({ receiverIndex: 5, counter: 2, type: MessageType.Collision, content: new Uint8Array(0) }),
        serializeClear({ receiverIndex: 5, counter: 3, type: MessageType.ForwardPacket, content: encodeForwardPacketData(forwards[0] as (typeof forwards)[0]) }),
        serializeClear({ receiverIndex: 5, counter: 4, type: MessageType.SubsessionReady, content: encodeSubsessionReady(9) }),
      ];
      return {
        corpus: [t.hello, t.kktRequest, t.msg1, t.helloAck, t.kktResponse, ...extra, t.msg2],
        randomInput: (r) => (r.chance(0.6) ? structuredPacket(r, r.u32()) : pureRandom(r, r.chance(0.01) ? 70000 : 4096)),
        run: (input) => {
          const p = parseClear(input);
          prop(equal(serializeClear(p), input), 'parseClear: accepted packet re-serializes to itself');
        },
      };
    },
  },
  {
    name: 'openPacket',
    random: FAST,
    mutated: FAST,
    setup: () => {
      const seal = (p: Packet): Uint8Array => sealPacket(prims, OUTER_KEY, p);
      const corpus = [
        seal({ receiverIndex: 7, counter: 0, type: MessageType.EncryptedData, content: fill(1, 100) }),
        seal({ receiverIndex: 7, counter: 1, type: MessageType.Ack, content: new Uint8Array(0) }),
        seal({ receiverIndex: 7, counter: 2, type: MessageType.Busy, content: encodeBusy(5) }),
        seal({ receiverIndex: 7, counter: 3, type: MessageType.Handshake, content: fill(2, 64) }),
        seal({ receiverIndex: 7, counter: 2 ** 40, type: MessageType.SubsessionKK1, content: encodeSubsessionPayload(fill(3, 48)) }),
        seal({ receiverIndex: 7, counter: 9, type: MessageType.SubsessionReady, content: encodeSubsessionReady(1) }),
      ];
      return {
        corpus,
        randomInput: (r) => {
          const x = r.int(3);
          if (x === 0) return pureRandom(r, 4096);
          if (x === 1) return structuredPacket(r, 7);
          // Authenticated garbage: a correctly sealed but arbitrary inner layer (version, reserved, type, length).
          const header = r.bytes(12);
          header[11] = 0;
          header[10] = (header[10] as number) & 0x1f;
          const inner = r.chance(0.7) ? concat(new Uint8Array([r.chance(0.8) ? 1 : r.int(256), 0, 0, 0, r.int(16), r.chance(0.9) ? 0 : r.int(256)]), contentFor(r, 0, 512)) : r.bytes(r.int(64));
          const nonce = new Uint8Array(12);
          nonce.set(header.subarray(4, 12)); // counter u64 LE ‖ 0⁴, as outerNonce
          return concat(header, prims.aeadSeal(OUTER_KEY, nonce, header, inner));
        },
        run: (input) => {
          const p = openPacket(prims, OUTER_KEY, input);
          prop(equal(seal(p), input), 'openPacket: accepted packet re-seals to itself');
        },
      };
    },
  },
  {
    name: 'FrameDecoder.push',
    random: FAST,
    mutated: FAST,
    setup: () => {
      const t = transcript();
      const packets = [t.hello, t.kktRequest, t.msg1, t.msg3, t.helloAck, t.kktResponse, t.msg2, t.finalAck];
      const corpus = [0, 1, 2, 3].map((k) => concat(...packets.slice(k, k + 1 + k).map(encodeFrame)));
      return {
        corpus,
        randomInput: (r) => {
          if (r.chance(0.4)) return pureRandom(r, 4096);
          const frames: Uint8Array[] = [];
          const n = 1 + r.int(5);
          for (let i = 0; i < n; i++) {
            const len = r.chance(0.9) ? r.int(300) : r.pick([0, 65536, 65537, 0xffffffff, r.u32()]);
            const prefix = new Uint8Array(4);
            new DataView(prefix.buffer).setUint32(0, len >>> 0, false);
            frames.push(prefix, r.bytes(Math.min(len, r.chance(0.8) ? len : r.int(400), 70000)));
          }
          return concat(...frames);
        },
        run: (input, r) => {
          // Reference parse of the whole stream.
          const expected: Uint8Array[] = [];
          let off = 0;
          let bad = false;
          while (off + 4 <= input.length) {
            const len = new DataView(input.buffer, input.byteOffset + off, 4).getUint32(0, false);
            if (len === 0 || len > 65536) {
              bad = true;
              break;
            }
            if (off + 4 + len > input.length) break;
            expected.push(input.subarray(off + 4, off + 4 + len));
            off += 4 + len;
          }
          // Feed the stream in random chunks (sometimes byte by byte, sometimes all at once).
          const d = new FrameDecoder();
          const got: Uint8Array[] = [];
          let pos = 0;
          const mode = r.int(4);
          try {
            while (pos < input.length) {
              const step = mode === 0 ? input.length : mode === 1 ? 1 + r.int(3) : 1 + r.int(mode === 2 ? 64 : 2048);
              for (const f of d.push(input.subarray(pos, pos + step))) got.push(new Uint8Array(f));
              pos += step;
            }
            if (input.length === 0) d.push(input);
          } catch (e) {
            prop(bad, `FrameDecoder threw ${String(e)} on a stream whose prefixes are all valid`);
            throw e;
          }
          prop(!bad, 'FrameDecoder accepted an invalid length prefix');
          prop(got.length === expected.length && got.every((f, i) => equal(f, expected[i] as Uint8Array)), 'FrameDecoder frames differ from the reference parse');
          prop(d.pending === input.length - off - (input.length - off >= 4 ? 4 : 0), `FrameDecoder pending ${d.pending} ≠ reference`);
        },
      };
    },
  },
  decoderTarget(
    'decodeClientHello',
    FAST,
    [encodeClientHello({ receiverIndex: 1, clientX25519: clientKeys.x25519.publicKey, clientEd25519: clientKeys.ed25519.publicKey, salt: makeSalt(NOW, fill(4, 24)) })],
    decodeClientHello,
    encodeClientHello,
    (r) => (r.chance(0.5) ? r.bytes(r.pick([99, 100, 100, 101])) : pureRandom(r, 512)),
  ),
  decoderTarget('decodeForwardPacketData', FAST, forwards.map(encodeForwardPacketData), decodeForwardPacketData, encodeForwardPacketData, (r) =>
    r.chance(0.6) ? concat(r.bytes(32), bincodeish(r)) : pureRandom(r, 4096),
  ),
  decoderTarget('decodeSubsessionPayload', FAST, [encodeSubsessionPayload(fill(3, 48)), encodeSubsessionPayload(new Uint8Array(0)), encodeSubsessionPayload(fill(4, 1024))], decodeSubsessionPayload, encodeSubsessionPayload),
  decoderTarget('decodeSubsessionReady', FAST, [encodeSubsessionReady(0), encodeSubsessionReady(0xffffffff), encodeSubsessionReady(77)], decodeSubsessionReady, encodeSubsessionReady, (r) => r.bytes(r.int(10))),
  decoderTarget('decodeBusy', FAST, [encodeBusy(), encodeBusy(1500), encodeBusy(0xffffffff)], decodeBusy, (v) => encodeBusy(v ?? undefined), (r) => r.bytes(r.int(10))),
  decoderTarget(
    'decodeHandshake1',
    FAST,
    [parseClear(transcript().msg1).content],
    (b) => decodeHandshake1(b, kem.ciphertextLength, 48),
    null,
    (r) => {
      if (r.chance(0.3)) return pureRandom(r, 2048);
      const len = r.chance(0.7) ? 1088 : r.pick([0, 1087, 1089, 0xffff, r.int(0x10000)]);
      const head = new Uint8Array([len & 0xff, len >> 8]);
      return concat(head, r.bytes(r.chance(0.6) ? 1136 : 1136 + r.int(7) - 3));
    },
  ),
  decoderTarget('decodeAppMessage', FAST, APP_BYTES, decodeAppMessage, encodeAppMessage),
  decoderTarget('decodeTicket', FAST, [encodeTicket(ticket), encodeTicket({ ...ticket, ticketType: 0, bandwidthBytes: 0n })], decodeTicket, encodeTicket, (r) =>
    r.chance(0.5) ? concat(r.bytes(24), new Uint8Array([r.int(6), 0, 0, 0]), r.bytes(79 + r.int(3))) : pureRandom(r, 512),
  ),
  decoderTarget('decodeKktFrame', FAST, kktRequestFrames().filter((_, i) => i !== 1), decodeKktFrame, (f) => encodeKktFrame(f.context, f.body, f.sessionId, () => f.signature), (r) => (r.chance(0.7) ? randomKktFrame(r) : pureRandom(r, 2048))),
  decoderTarget('splitPaddedFrame', FAST, kktRequestFrames(), splitPaddedFrame, null, (r) => (r.chance(0.7) ? randomKktFrame(r) : pureRandom(r, 2048))),

  // ---- state machines ----
  {
    name: 'answerClientHello',
    random: 5000,
    mutated: 5000,
    setup: () => {
      const t = transcript();
      const rig = gatewayRig();
      const hellos = [t.hello, ...[1, 2, 0xffffffff].map((index) => serializeClear({ receiverIndex: 0, counter: 0, type: MessageType.ClientHello, content: encodeClientHello({ receiverIndex: index, clientX25519: clientKeys.x25519.publicKey, clientEd25519: clientKeys.ed25519.publicKey, salt: makeSalt(NOW - 29, fill(9, 24)) }) }))];
      return {
        corpus: hellos,
        randomInput: (r) => {
          const x = r.int(4);
          if (x === 0) return pureRandom(r, 512);
          if (x === 1) return structuredPacket(r, 0, 256);
          // A well-formed ClientHello with random keys/index and a timestamp near the edges of the window.
          const salt = makeSalt(NOW + r.int(81) - 40, r.bytes(24));
          const ed = r.chance(0.3) ? clientKeys.ed25519.publicKey : r.bytes(32);
          const x25519 = r.chance(0.5) ? clientKeys.x25519.publicKey : r.bytes(32);
          return serializeClear({ receiverIndex: 0, counter: r.int(3), type: MessageType.ClientHello, content: encodeClientHello({ receiverIndex: r.chance(0.1) ? 0 : r.u32(), clientX25519: x25519, clientEd25519: ed, salt }) });
        },
        run: (input) => {
          const out = answerClientHello(rig.cfg, rig.tokens, input, rig.ctx);
          const reply = parseClear(out.reply);
          // Stateless and never amplifying: a 66-byte Ack (or a 34-byte Collision) for a 134-byte hello.
          prop(out.reply.length <= input.length, 'hello answer larger than the hello');
          if (out.kind === 'ack') prop(reply.type === MessageType.Ack && reply.content.length === 32 && reply.receiverIndex !== 0, 'Ack carries a token for a nonzero index');
          else prop(reply.type === MessageType.Collision, 'collision reply is a Collision');
        },
      };
    },
  },
  {
    name: 'acceptKktRequest',
    random: 3000,
    mutated: 3000,
    setup: () => {
      const t = transcript();
      const rig = gatewayRig();
      answerClientHello(rig.cfg, rig.tokens, t.hello, rig.ctx); // the transcript's token verifies on this rig
      const content = parseClear(t.kktRequest).content;
      return {
        corpus: [t.kktRequest],
        randomInput: (r) => {
          const x = r.int(4);
          if (x === 0) return pureRandom(r, 2048);
          if (x === 1) return structuredPacket(r, t.index, 1400);
          // The genuine hello ‖ token, then a random frame (sometimes signed by the hello's key with the binding).
          const frame = randomKktFrame(r);
          if (r.chance(0.5) && frame.length >= 7 + 16 + 64) frame.set(prims.ed25519Sign(clientKeys.ed25519.secretKey, concat(frame.subarray(0, frame.length - 64), kktBinding(t.index, content.subarray(100, 132)))), frame.length - 64);
          const prefix = new Uint8Array(content.subarray(0, 132));
          if (x === 3) {
            const at = r.int(132); // a flipped bit in the hello or the token
            prefix[at] = (prefix[at] as number) ^ (1 << r.int(8));
          }
          return serializeClear({ receiverIndex: r.chance(0.9) ? t.index : r.u32(), counter: r.chance(0.9) ? 0 : r.int(4), type: MessageType.KKTRequest, content: concat(prefix, frame) });
        },
        run: (input, r) => {
          const out = acceptKktRequest(rig.cfg, rig.tokens, input, parseHeader(input), rig.ctx, () => r.chance(0.1));
          const reply = parseClear(out.reply);
          prop(reply.receiverIndex === t.index, 'answered an index other than the transcript one (the token binds it)');
          if (out.kind === 'collision') prop(reply.type === MessageType.Collision, 'collision reply is a Collision');
          else prop(reply.type === MessageType.KKTResponse, 'KKT answer is a KKTResponse');
          if (out.kind === 'accepted') out.handshake.destroy();
        },
      };
    },
  },
  {
    name: 'ResponderHandshake.receive',
    random: 3000,
    mutated: 3000,
    setup: () => {
      const t = transcript();
      const stages: ResponderStageName[] = ['await-msg1', 'await-msg3'];
      const live = new Map<ResponderStageName, ResponderHandshake>(stages.map((s) => [s, responderAt(s)]));
      let turn = 0;
      return {
        corpus: [t.kktRequest, t.msg1, t.msg3, t.hello],
        randomInput: (r) => {
          const x = r.int(5);
          if (x === 0) return pureRandom(r, 2048);
          if (x === 1) return structuredPacket(r, t.index, 1400);
          if (x === 4) {
            // msg1-shaped: right lengths, random KEM ciphertext and Noise bytes (decapsulation + Noise read).
            const content = concat(new Uint8Array([0x40, 0x04]), r.bytes(1088 + 48));
            if (r.chance(0.5)) content.set(parseClear(t.msg1).content.subarray(2, 2 + 1088), 2); // genuine KEM ct
            if (r.chance(0.2)) content.set(r.pick(LOW_ORDER), 2 + 1088); // low-order Noise e
            return serializeClear({ receiverIndex: t.index, counter: r.chance(0.9) ? 0 : 1, type: MessageType.Handshake, content });
          }
          if (x === 2) {
            // KKTRequest-shaped: random frame, sometimes signed by the ClientHello key.
            const frame = randomKktFrame(r);
            if (r.chance(0.5) && frame.length >= 7 + 16 + 64) frame.set(prims.ed25519Sign(clientKeys.ed25519.secretKey, frame.subarray(0, frame.length - 64)), frame.length - 64);
            return serializeClear({ receiverIndex: t.index, counter: 0, type: MessageType.KKTRequest, content: frame });
          }
          return concat(t.msg3.subarray(0, 12), r.bytes(r.int(120)));
        },
        run: (input, r) => {
          // Mostly route each input to the stage its shape targets (by its type field and trailer); sometimes anywhere.
          const shape = shapeOf(input);
          const byShape: ResponderStageName = shape === MessageType.Handshake || shape === MessageType.KKTRequest ? 'await-msg1' : 'await-msg3';
          const stage = r.chance(0.8) ? byShape : (stages[turn++ % 2] as ResponderStageName);
          const h = live.get(stage) as ResponderHandshake;
          const before = { stage: h.stage, keyed: h.keyed };
          let ok = false;
          try {
            h.receive(input);
            ok = true;
          } catch (e) {
            // Unauthenticated (or failed) input is rejected without any state change.
            prop(h.stage === before.stage && h.keyed === before.keyed, `ResponderHandshake state changed on a rejected input (${before.stage} → ${h.stage})`);
            throw e;
          } finally {
            if (ok && h.stage !== before.stage) live.set(stage, responderAt(stage));
          }
        },
      };
    },
  },
  {
    name: 'Session.receive',
    random: 5000,
    mutated: 5000,
    setup: () => {
      let gen = 0;
      let pair = sessionPair(`fuzz-session-${gen}`);
      let corpus: Uint8Array[] = [];
      let awaiting: { client: Session; gateway: Session; kk2: Uint8Array } | null = null;
      const rebuild = (): void => {
        gen++;
        pair = sessionPair(`fuzz-session-${gen}`, 0x01020304 + gen);
        const { client } = pair;
        const second = sessionPair(`fuzz-session-b-${gen}`, 0x0a0b0c0d + gen);
        const kk1 = second.client.initiateSubsession();
        const kk2 = second.gateway.receive(kk1).replies[0] as Uint8Array;
        awaiting = { client: second.client, gateway: second.gateway, kk2 };
        corpus = [
          ...APP_SAMPLES.map((m) => client.send(m)),
          client.seal(MessageType.SubsessionAbort, new Uint8Array(0)),
          client.seal(MessageType.SubsessionReady, encodeSubsessionReady(5)),
          client.seal(MessageType.Collision, new Uint8Array(0)),
          client.seal(MessageType.Ack, new Uint8Array(0)),
          pair.client.initiateSubsession(),
          kk2,
        ];
      };
      rebuild();
      let count = 0;
      return {
        get corpus() {
          return corpus;
        },
        randomInput: (r) => {
          const x = r.int(5);
          if (x === 0) return pureRandom(r, 2048);
          if (x === 1) return structuredPacket(r, pair.client.receiverIndex, 1024);
          // Authenticated garbage from the peer: EncryptedData whose Noise plaintext is arbitrary (reaches
          // decodeAppMessage), a sealed packet of any type with arbitrary content, or a subsession message
          // with an arbitrary (sometimes low-order-e) KKpsk0 payload.
          if (x === 2) return pair.client.sendRaw(r.chance(0.5) ? bincodeish(r) : r.bytes(r.int(200)));
          if (x === 3) {
            const type = r.int(14) as MessageType;
            const content = contentFor(r, type, 512);
            try {
              return pair.client.seal(type, content);
            } catch (e) {
              if (!(e instanceof LpError)) throw e;
              return pair.client.seal(MessageType.EncryptedData, content); // layout refused by the sender
            }
          }
          const payload = r.bytes(r.pick([0, 16, 32, 48, 48, 64, 1024]));
          if (payload.length >= 32 && r.chance(0.3)) payload.set(r.pick(LOW_ORDER));
          return pair.client.seal(r.pick([MessageType.SubsessionKK1, MessageType.SubsessionKK1, MessageType.SubsessionKK2, MessageType.SubsessionReady]), encodeSubsessionPayload(payload));
        },
        run: (input, r) => {
          if (++count % 250 === 0) rebuild();
          // Receiver: mostly the gateway session; sometimes the client side awaiting KK2 / our own replies.
          const receiver = r.chance(0.8) ? pair.gateway : r.chance(0.5) ? (awaiting?.client ?? pair.gateway) : pair.client;
          const before = receiver.state;
          const ctx = { indexInUse: (i: number): boolean => i % 5 === 0 };
          try {
            receiver.receive(input, ctx);
          } catch (e) {
            prop(receiver.state === before, `Session state changed on a rejected input (${before} → ${receiver.state})`);
            throw e;
          }
          if (receiver.state === 'read-only' || receiver.state === 'closed') rebuild();
        },
      };
    },
  },
  {
    name: 'InitiatorHandshake.receive',
    random: 4000,
    mutated: 4000,
    setup: () => {
      const t = transcript();
      const stages: InitiatorStageName[] = ['await-hello-reply', 'await-kkt-response', 'await-msg2', 'await-ack'];
      const live = new Map<InitiatorStageName, InitiatorHandshake>(stages.map((s) => [s, initiatorAt(s)]));
      const busy = [serializeClear({ receiverIndex: t.index, counter: 0, type: MessageType.Busy, content: encodeBusy(250) }), serializeClear({ receiverIndex: 0, counter: 0, type: MessageType.Busy, content: new Uint8Array(0) })];
      const collision = serializeClear({ receiverIndex: t.index, counter: 0, type: MessageType.Collision, content: new Uint8Array(0) });
      let turn = 0;
      return {
        corpus: [t.helloAck, t.kktResponse, t.msg2, t.finalAck, ...busy, collision],
        randomInput: (r) => {
          const x = r.int(3);
          if (x === 0) return pureRandom(r, 2048);
          if (x === 1) return structuredPacket(r, r.chance(0.8) ? t.index : 0, 1400);
          const frame = randomKktFrame(r);
          if (r.chance(0.5) && frame.length >= 7 + 16 + 64) frame.set(prims.ed25519Sign(gatewayKeys.ed25519.secretKey, frame.subarray(0, frame.length - 64)), frame.length - 64);
          return serializeClear({ receiverIndex: t.index, counter: 0, type: MessageType.KKTResponse, content: frame });
        },
        run: (input, r) => {
          const shape = shapeOf(input);
          const byShape: InitiatorStageName =
            shape === MessageType.KKTResponse ? 'await-kkt-response' : shape === 'sealed' ? (r.chance(0.5) ? 'await-msg2' : 'await-ack') : 'await-hello-reply';
          const stage = r.chance(0.8) ? byShape : (stages[turn++ % 4] as InitiatorStageName);
          const ini = live.get(stage) as InitiatorHandshake;
          const before = { stage: ini.stage, index: ini.receiverIndex };
          try {
            ini.receive(input, NOW);
          } catch (e) {
            prop(ini.stage === before.stage && ini.receiverIndex === before.index, `InitiatorHandshake state changed on a rejected input (${before.stage} → ${ini.stage})`);
            throw e;
          } finally {
            // accepted (a genuine reply, or a Collision that restarts with a new index): start over at this stage
            if (ini.stage !== before.stage || ini.receiverIndex !== before.index) live.set(stage, initiatorAt(stage));
          }
        },
      };
    },
  },
];

// ---- runner -------------------------------------------------------------------------------------

export interface Failure {
  phase: 'random' | 'mutated';
  iteration: number;
  error: string;
  input: string;
}

export interface TargetResult {
  name: string;
  seed: number;
  random: number;
  mutated: number;
  accepted: number;
  codes: Record<string, number>;
  failures: Failure[];
  failureCount: number;
  slowestCallMs: number;
  elapsedMs: number;
}

export type Progress = { name: string; phase: 'setup' | 'random' | 'mutated'; iteration: number };

const MAX_RECORDED_FAILURES = 10;

export function runTarget(spec: TargetSpec, seed: number, scale: number, onProgress: (p: Progress) => void): TargetResult {
  const t0 = performance.now();
  onProgress({ name: spec.name, phase: 'setup', iteration: 0 });
  const h = spec.setup();
  const result: TargetResult = { name: spec.name, seed, random: 0, mutated: 0, accepted: 0, codes: {}, failures: [], failureCount: 0, slowestCallMs: 0, elapsedMs: 0 };
  const r = mulberry32(subSeed(seed, spec.name));
  for (const phase of ['random', 'mutated'] as const) {
    const n = Math.ceil((phase === 'random' ? spec.random : spec.mutated) * scale);
    for (let i = 0; i < n; i++) {
      if (i % 64 === 0) onProgress({ name: spec.name, phase, iteration: i });
      const input = phase === 'random' ? h.randomInput(r) : mutate(r, h.corpus);
      const c0 = performance.now();
      try {
        h.run(input, r);
        result.accepted++;
      } catch (e) {
        if (e instanceof LpError && ALL_CODES.has(e.code)) {
          result.codes[e.code] = (result.codes[e.code] ?? 0) + 1;
        } else {
          result.failureCount++;
          if (result.failures.length < MAX_RECORDED_FAILURES) {
            const err = e instanceof Error ? `${e.name}: ${e.message}\n${(e.stack ?? '').split('\n').slice(1, 6).join('\n')}` : String(e);
            result.failures.push({ phase, iteration: i, error: err, input: hex(input) });
          }
        }
      }
      const dt = performance.now() - c0;
      if (dt > result.slowestCallMs) result.slowestCallMs = dt;
      result[phase]++;
    }
  }
  result.elapsedMs = performance.now() - t0;
  return result;
}

// ---- worker entry -------------------------------------------------------------------------------

interface WorkerJob {
  lpFuzz: true;
  target: string;
  seed: number;
  scale: number;
}

function isJob(d: unknown): d is WorkerJob {
  return typeof d === 'object' && d !== null && (d as { lpFuzz?: unknown }).lpFuzz === true;
}

if (!isMainThread && parentPort && isJob(workerData)) {
  const port = parentPort;
  const job = workerData;
  const spec = TARGETS.find((s) => s.name === job.target);
  if (!spec) throw new Error(`unknown fuzz target ${job.target}`);
  const result = runTarget(spec, job.seed, job.scale, (p) => port.postMessage({ type: 'progress', progress: p }));
  port.postMessage({ type: 'done', result });
}
