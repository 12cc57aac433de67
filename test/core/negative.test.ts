/**
 * Negative tests for the sans-I/O protocol core: every rejected input is asserted with its specific
 * LpErrorCode, and rejections of unauthenticated input are checked to leave the state machines usable
 * (the next genuine packet still succeeds).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type AppMessage,
  type KktContext,
  type ResponderConfig,
  type ResponderHandshake,
  FrameDecoder,
  InitiatorHandshake,
  InitiatorStage,
  KktHash,
  KktKem,
  KktMode,
  KktRole,
  KktSignature,
  KktStatus,
  LpError,
  LpErrorCode,
  MAX_CONTENT_LEN,
  MessageType,
  NOISE_PATTERN,
  REPLAY_WINDOW,
  ReplayWindow,
  ResponderStage,
  Session,
  SessionState,
  type KktOutcome,
  type PacketContext,
  GATEWAY_NONCE_LEN,
  MAX_KKT_ANSWERS,
  ROUTABILITY_TOKEN_LEN,
  ROUTABILITY_TOKEN_LIFETIME_SEC,
  RoutabilityTokens,
  acceptKktRequest,
  answerClientHello,
  concat,
  decodeKktResponseContent,
  kktBinding,
  buildKktRequest,
  clientKeysFromSeed,
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
  derivePsk,
  encodeAppMessage,
  encodeBusy,
  encodeClientHello,
  encodeForwardPacketData,
  encodeFrame,
  encodeHandshake1,
  msg1Binder,
  encodeKktFrame,
  encodeSubsessionPayload,
  encodeSubsessionReady,
  encodeTicket,
  kktTranscriptHash,
  makeSalt,
  mlKem768,
  openPacket,
  outerKeys,
  parseClear,
  parseHeader,
  processKktRequest,
  processKktResponse,
  sealPacket,
  serializeClear,
  splitPaddedFrame,
} from '../../src/core/index.js';
import { HandshakeState } from '../../src/core/noise/index.js';
import { MemoryGateway } from '../helpers/memory-gateway.js';
import { clientKeys, fill, gatewayKeys, otherGatewayKeys } from '../helpers/fixtures.js';
import { clientConfig, nowSec, rawPacket, runHandshake } from '../helpers/core-builders.js';

const { prims, kem } = defaultSuite;
const EMPTY = new Uint8Array(0);
const responderCfg: ResponderConfig = { suite: defaultSuite, keys: gatewayKeys };
/** A second client identity ("B"). */
const otherClientKeys = clientKeysFromSeed(defaultSuite, fill(9, 32));

/** Asserts that `fn` throws an LpError with exactly `code`. */
function assertLpError(fn: () => unknown, code: LpErrorCode, message?: string): void {
  assert.throws(
    fn,
    (e: unknown) => {
      assert.ok(e instanceof LpError, `expected an LpError, got ${String(e)}`);
      assert.equal(e.code, code, message ?? e.message);
      return true;
    },
    message,
  );
}

/** A copy of `b` with `patch` written at `offset`; `expect` checks the bytes being replaced (layout sanity). */
function patched(b: Uint8Array, offset: number, patch: ArrayLike<number>, expect?: ArrayLike<number>): Uint8Array {
  if (expect) assert.deepEqual([...b.subarray(offset, offset + expect.length)], [...Array.from(expect)], `layout: bytes at ${offset}`);
  const out = new Uint8Array(b);
  out.set(Array.from(patch), offset);
  return out;
}

function flip(b: Uint8Array, offset: number, mask = 0x01): Uint8Array {
  const out = new Uint8Array(b);
  out[offset] = (out[offset] as number) ^ mask;
  return out;
}

function append(b: Uint8Array, ...extra: number[]): Uint8Array {
  const out = new Uint8Array(b.length + extra.length);
  out.set(b);
  out.set(extra, b.length);
  return out;
}

function u64le(v: bigint): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return [...b];
}

function u32le(v: number): number[] {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return [...b];
}

function sendOf(out: { kind: string; packet?: Uint8Array }): Uint8Array {
  assert.equal(out.kind, 'send');
  assert.ok(out.packet);
  return out.packet;
}

/** Every proper prefix of a valid encoding is LP_ERR_DECODE_TRUNCATED; one extra byte is LP_ERR_DECODE_TRAILING_BYTES. */
function assertStrictLength(valid: Uint8Array, decode: (b: Uint8Array) => unknown, what: string): void {
  decode(valid);
  for (let n = 0; n < valid.length; n++) assertLpError(() => decode(valid.subarray(0, n)), LpErrorCode.DECODE_TRUNCATED, `${what}: prefix of ${n}/${valid.length} bytes`);
  for (const extra of [0x00, 0x01, 0xff]) assertLpError(() => decode(append(valid, extra)), LpErrorCode.DECODE_TRAILING_BYTES, `${what}: one extra byte ${extra}`);
}

// ---- fixed sample values --------------------------------------------------------------------------

const ticket = {
  issuerKeyId: fill(0x11, 8),
  serial: fill(0x22, 16),
  ticketType: 2 as const,
  bandwidthBytes: 1n << 30n,
  expiry: 1_900_000_000n,
  signature: fill(0x33, 64),
};

const forward = { targetGatewayIdentity: fill(0x44, 32), targetLpAddress: '192.0.2.7:41264', innerPacketBytes: fill(0x55, 40) };

/** One sample of every AppMessage variant (and of every nested enum/Option arm). */
const APP_SAMPLES: Record<string, AppMessage> = {
  'register dvpn/mock': {
    kind: 'register',
    request: { mode: { kind: 'dvpn', wgPublicKey: fill(5, 32) }, credential: { kind: 'mock', blob: new Uint8Array([1, 2, 3]) }, ticketType: 2, timestamp: 1_800_000_000n },
  },
  'register mixnet/ticket': {
    kind: 'register',
    request: { mode: { kind: 'mixnet', clientId: fill(6, 32) }, credential: { kind: 'ticket', ticket }, ticketType: 0, timestamp: 1_800_000_000n },
  },
  'registerResponse ok/v4': {
    kind: 'registerResponse',
    response: {
      success: true,
      error: null,
      gatewayData: { publicKey: fill(7, 32), endpoint: { family: 4, address: new Uint8Array([10, 0, 0, 1]), port: 51820 }, privateIpv4: new Uint8Array([10, 1, 0, 2]), privateIpv6: fill(1, 16) },
      allocatedBandwidth: 1073741824n,
    },
  },
  'registerResponse ok/v6': {
    kind: 'registerResponse',
    response: {
      success: true,
      error: null,
      gatewayData: { publicKey: fill(7, 32), endpoint: { family: 6, address: fill(0x20, 16), port: 443 }, privateIpv4: new Uint8Array([10, 1, 0, 3]), privateIpv6: fill(2, 16) },
      allocatedBandwidth: -1n,
    },
  },
  'registerResponse error': {
    kind: 'registerResponse',
    response: { success: false, error: { code: 'LP_ERR_CREDENTIAL', message: 'spent', retryAfterMs: 250 }, gatewayData: null, allocatedBandwidth: 0n },
  },
  forward: { kind: 'forward', forward },
  forwardResponse: { kind: 'forwardResponse', innerPacketBytes: fill(0x66, 34) },
  'error with retry': { kind: 'error', error: { code: 'LP_ERR_BUSY', message: 'try later ✓', retryAfterMs: 1000 } },
  'error without retry': { kind: 'error', error: { code: 'LP_ERR_X', message: '', retryAfterMs: null } },
  ping: { kind: 'ping', payload: fill(8, 16) },
  pong: { kind: 'pong', payload: EMPTY },
  deregister: { kind: 'deregister', request: { wgPublicKey: fill(9, 32), proof: fill(10, 32) } },
  deregistered: { kind: 'deregistered', wgPublicKey: fill(9, 32) },
};

// =====================================================================================================

describe('packet layout: parseHeader / parseClear / serializeClear', () => {
  const VARIABLE = [MessageType.Handshake, MessageType.EncryptedData, MessageType.KKTRequest, MessageType.KKTResponse, MessageType.ForwardPacket, MessageType.SubsessionKK1, MessageType.SubsessionKK2, MessageType.SubsessionReady];
  const EMPTY_ONLY = [MessageType.Collision, MessageType.Ack, MessageType.SubsessionRequest, MessageType.SubsessionAbort];

  test('message types are exactly 0x0000–0x000D', () => {
    assert.deepEqual(
      Object.values(MessageType).sort((a, b) => a - b),
      Array.from({ length: 14 }, (_, i) => i),
    );
  });

  test('every message type: valid content lengths parse, invalid ones are LP_ERR_BAD_CONTENT_LENGTH', () => {
    type Rule = { ok: number[]; bad: number[] };
    const rules = new Map<number, Rule>([
      [MessageType.Busy, { ok: [0, 4], bad: [1, 2, 3, 5, 8, 100] }],
      [MessageType.ClientHello, { ok: [100], bad: [0, 1, 99, 101, 200] }],
      ...EMPTY_ONLY.map((t): [number, Rule] => [t, { ok: [0], bad: [1, 4, 16, 100] }]),
      // Structured but variable: the packet layer accepts any length; the content decoders are tested below.
      ...VARIABLE.map((t): [number, Rule] => [t, { ok: [0, 1, 4, 100, 1138, 4096], bad: [] }]),
    ]);
    assert.equal(rules.size, 14, 'a rule for every type');
    for (const [type, { ok, bad }] of rules) {
      for (const n of ok) {
        const bytes = rawPacket({ receiverIndex: 7, counter: 3n, type, content: fill(0xa5, n) });
        const p = parseClear(bytes);
        assert.equal(p.type, type);
        assert.equal(p.content.length, n);
        assert.deepEqual(serializeClear({ receiverIndex: 7, counter: 3, type: p.type, content: p.content }), bytes, 'serializeClear is the inverse');
      }
      for (const n of bad) {
        assertLpError(() => parseClear(rawPacket({ receiverIndex: 7, type, content: fill(0, n) })), LpErrorCode.BAD_CONTENT_LENGTH, `type ${type}, ${n} content bytes`);
        assertLpError(() => serializeClear({ receiverIndex: 7, counter: 0, type: type as MessageType, content: fill(0, n) }), LpErrorCode.BAD_CONTENT_LENGTH);
      }
    }
  });

  test('unknown message types are LP_ERR_UNKNOWN_MESSAGE_TYPE', () => {
    for (const type of [0x000e, 0x000f, 0x0010, 0x00ff, 0x0100, 0x0101, 0x8000, 0xffff]) {
      assertLpError(() => parseClear(rawPacket({ type })), LpErrorCode.UNKNOWN_MESSAGE_TYPE, `type 0x${type.toString(16)}`);
      assertLpError(() => serializeClear({ receiverIndex: 0, counter: 0, type: type as MessageType, content: EMPTY }), LpErrorCode.UNKNOWN_MESSAGE_TYPE);
    }
  });

  test('version ≠ 1 is LP_ERR_BAD_VERSION', () => {
    for (const version of [0, 2, 0x10, 0xff]) assertLpError(() => parseClear(rawPacket({ version, type: MessageType.Ack })), LpErrorCode.BAD_VERSION);
  });

  test('non-zero reserved bytes are LP_ERR_BAD_RESERVED', () => {
    for (const reserved of [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0xff, 0xff, 0xff]] as [number, number, number][]) {
      assertLpError(() => parseClear(rawPacket({ reserved, type: MessageType.Ack })), LpErrorCode.BAD_RESERVED);
    }
  });

  test('a non-zero cleartext trailer is LP_ERR_BAD_TRAILER (any of its 16 bytes)', () => {
    for (let i = 0; i < 16; i++) {
      const trailer = new Uint8Array(16);
      trailer[i] = 0x80;
      assertLpError(() => parseClear(rawPacket({ type: MessageType.Ack, trailer })), LpErrorCode.BAD_TRAILER, `trailer byte ${i}`);
    }
  });

  test('size limits: < 34 bytes LP_ERR_PACKET_TOO_SHORT, > 65536 LP_ERR_PACKET_TOO_LARGE, 65536 accepted', () => {
    const min = rawPacket({ type: MessageType.Ack });
    assert.equal(min.length, 34);
    parseClear(min);
    for (let n = 0; n < 34; n++) {
      assertLpError(() => parseHeader(min.subarray(0, n)), LpErrorCode.PACKET_TOO_SHORT, `${n} bytes`);
      assertLpError(() => parseClear(min.subarray(0, n)), LpErrorCode.PACKET_TOO_SHORT, `${n} bytes`);
    }
    const max = rawPacket({ type: MessageType.EncryptedData, content: new Uint8Array(MAX_CONTENT_LEN) });
    assert.equal(max.length, 65536);
    assert.equal(parseClear(max).content.length, MAX_CONTENT_LEN);
    const over = rawPacket({ type: MessageType.EncryptedData, content: new Uint8Array(MAX_CONTENT_LEN + 1) });
    assertLpError(() => parseHeader(over), LpErrorCode.PACKET_TOO_LARGE);
    assertLpError(() => parseClear(over), LpErrorCode.PACKET_TOO_LARGE);
    assertLpError(() => serializeClear({ receiverIndex: 1, counter: 0, type: MessageType.EncryptedData, content: new Uint8Array(MAX_CONTENT_LEN + 1) }), LpErrorCode.PAYLOAD_TOO_LARGE);
  });

  test('counters past 2^53 - 1 are LP_ERR_COUNTER_EXHAUSTED (read and write)', () => {
    assert.equal(parseHeader(rawPacket({ type: MessageType.Ack, counter: (1n << 53n) - 1n })).counter, Number.MAX_SAFE_INTEGER);
    for (const counter of [1n << 53n, 1n << 63n, (1n << 64n) - 1n]) assertLpError(() => parseClear(rawPacket({ type: MessageType.Ack, counter })), LpErrorCode.COUNTER_EXHAUSTED);
    assertLpError(() => serializeClear({ receiverIndex: 1, counter: 2 ** 53, type: MessageType.Ack, content: EMPTY }), LpErrorCode.COUNTER_EXHAUSTED);
    assertLpError(() => serializeClear({ receiverIndex: 1, counter: -1, type: MessageType.Ack, content: EMPTY }), LpErrorCode.COUNTER_EXHAUSTED);
  });

  test('check order: length, then trailer, then version, then reserved, then type/length', () => {
    const all = rawPacket({ version: 2, reserved: [1, 1, 1], type: 0xffff, trailer: fill(1, 16) });
    assertLpError(() => parseClear(all), LpErrorCode.BAD_TRAILER);
    assertLpError(() => parseClear(rawPacket({ version: 2, reserved: [1, 1, 1], type: 0xffff })), LpErrorCode.BAD_VERSION);
    assertLpError(() => parseClear(rawPacket({ reserved: [1, 1, 1], type: 0xffff })), LpErrorCode.BAD_RESERVED);
  });
});

// =====================================================================================================

describe('structured contents: strict decoders', () => {
  test('Busy (0x0000): empty or u32 retry hint; 1/3 bytes truncated, 5 trailing (and the packet layer refuses them)', () => {
    assert.equal(decodeBusy(EMPTY), null);
    assert.equal(decodeBusy(encodeBusy(1500)), 1500);
    assert.equal(decodeBusy(parseClear(rawPacket({ type: MessageType.Busy, content: encodeBusy(0xffffffff) })).content), 0xffffffff);
    assertLpError(() => decodeBusy(fill(1, 1)), LpErrorCode.DECODE_TRUNCATED);
    assertLpError(() => decodeBusy(fill(1, 3)), LpErrorCode.DECODE_TRUNCATED);
    assertLpError(() => decodeBusy(fill(1, 5)), LpErrorCode.DECODE_TRAILING_BYTES);
    for (const n of [1, 3, 5]) assertLpError(() => parseClear(rawPacket({ type: MessageType.Busy, content: fill(1, n) })), LpErrorCode.BAD_CONTENT_LENGTH);
  });

  test('Handshake message 1 (0x0001): u16 KEM length ‖ ciphertext ‖ Noise msg1', () => {
    const ct = fill(0xc1, kem.ciphertextLength);
    const noise = fill(0xe1, 48);
    const valid = encodeHandshake1(ct, noise, new Uint8Array(16));
    const d = decodeHandshake1(valid, kem.ciphertextLength, 48);
    assert.deepEqual(d.kemCiphertext, ct);
    assert.deepEqual(d.noise, noise);
    assertLpError(() => decodeHandshake1(EMPTY, kem.ciphertextLength, 48), LpErrorCode.DECODE_TRUNCATED);
    assertLpError(() => decodeHandshake1(valid.subarray(0, 1), kem.ciphertextLength, 48), LpErrorCode.DECODE_TRUNCATED);
    for (const len of [0, 1087, 1089, 0xffff]) assertLpError(() => decodeHandshake1(patched(valid, 0, [len & 0xff, len >> 8], [0x40, 0x04]), kem.ciphertextLength, 48), LpErrorCode.KEM_BAD_CIPHERTEXT, `KEM length ${len}`);
    assertLpError(() => decodeHandshake1(valid.subarray(0, valid.length - 1), kem.ciphertextLength, 48), LpErrorCode.BAD_CONTENT_LENGTH);
    assertLpError(() => decodeHandshake1(valid.subarray(0, 2 + 1088), kem.ciphertextLength, 48), LpErrorCode.BAD_CONTENT_LENGTH);
    assertLpError(() => decodeHandshake1(append(valid, 0), kem.ciphertextLength, 48), LpErrorCode.BAD_CONTENT_LENGTH);
  });

  test('ClientHello (0x0003): exactly 100 bytes; 99 truncated, 101 trailing', () => {
    const valid = encodeClientHello({ receiverIndex: 9, clientX25519: clientKeys.x25519.publicKey, clientEd25519: clientKeys.ed25519.publicKey, salt: makeSalt(1_800_000_000, fill(4, 24)) });
    assert.equal(valid.length, 100);
    assert.equal(decodeClientHello(valid).receiverIndex, 9);
    assertStrictLength(valid, decodeClientHello, 'ClientHello');
    assertLpError(() => parseClear(rawPacket({ type: MessageType.ClientHello, content: valid.subarray(0, 99) })), LpErrorCode.BAD_CONTENT_LENGTH);
    assertLpError(() => parseClear(rawPacket({ type: MessageType.ClientHello, content: append(valid, 0) })), LpErrorCode.BAD_CONTENT_LENGTH);
  });

  test('ForwardPacket (0x0006): truncation, trailing bytes, over-long address/inner length, invalid UTF-8', () => {
    const valid = encodeForwardPacketData(forward);
    const d = decodeForwardPacketData(valid);
    assert.equal(d.targetLpAddress, forward.targetLpAddress);
    assertStrictLength(valid, decodeForwardPacketData, 'ForwardPacketData');
    const addrLen = forward.targetLpAddress.length;
    // layout: identity[32] ‖ addr len u64 @32 ‖ addr @40 ‖ inner len u64 ‖ inner
    assertLpError(() => decodeForwardPacketData(patched(valid, 32, u64le(65n), u64le(BigInt(addrLen)))), LpErrorCode.DECODE_BAD_LENGTH);
    assertLpError(() => decodeForwardPacketData(patched(valid, 32, u64le((1n << 64n) - 1n))), LpErrorCode.DECODE_BAD_LENGTH);
    assertLpError(() => decodeForwardPacketData(patched(valid, 32, u64le(64n))), LpErrorCode.DECODE_TRUNCATED, 'allowed length but more than remains');
    const innerLenAt = 40 + addrLen;
    assertLpError(() => decodeForwardPacketData(patched(valid, innerLenAt, u64le(BigInt(MAX_CONTENT_LEN + 1)), u64le(40n))), LpErrorCode.DECODE_BAD_LENGTH);
    assertLpError(() => decodeForwardPacketData(patched(valid, innerLenAt, u64le(BigInt(MAX_CONTENT_LEN)))), LpErrorCode.DECODE_TRUNCATED);
    for (const bad of [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
      assertLpError(() => decodeForwardPacketData(patched(valid, 40, bad)), LpErrorCode.DECODE_BAD_UTF8, `address bytes ${bad.join(',')}`);
    }
  });

  test('SubsessionKK1/KK2 payload (0x000A/0x000B): Vec<u8> ≤ 1024', () => {
    const valid = encodeSubsessionPayload(fill(3, 48));
    assert.deepEqual(decodeSubsessionPayload(valid), fill(3, 48));
    assertStrictLength(valid, decodeSubsessionPayload, 'SubsessionPayload');
    assertLpError(() => decodeSubsessionPayload(encodeSubsessionPayload(fill(0, 1025))), LpErrorCode.DECODE_BAD_LENGTH);
    assert.equal(decodeSubsessionPayload(encodeSubsessionPayload(fill(0, 1024))).length, 1024);
    assertLpError(() => decodeSubsessionPayload(patched(valid, 0, u64le(1n << 40n))), LpErrorCode.DECODE_BAD_LENGTH);
  });

  test('SubsessionReady (0x000C): exactly a u32', () => {
    const valid = encodeSubsessionReady(0xdeadbeef);
    assert.equal(decodeSubsessionReady(valid), 0xdeadbeef);
    assertStrictLength(valid, decodeSubsessionReady, 'SubsessionReady');
  });

  test('bandwidth ticket: truncation, trailing bytes, bad TicketType enum', () => {
    const valid = encodeTicket(ticket);
    assert.equal(valid.length, 108);
    assert.equal(decodeTicket(valid).bandwidthBytes, ticket.bandwidthBytes);
    assertStrictLength(valid, decodeTicket, 'ticket');
    for (const t of [4, 5, 0xffffffff]) assertLpError(() => decodeTicket(patched(valid, 24, u32le(t), u32le(2))), LpErrorCode.DECODE_BAD_ENUM);
  });

  test('AppMessage: every variant round-trips; every prefix truncated; one extra byte trailing', () => {
    for (const [name, msg] of Object.entries(APP_SAMPLES)) {
      const valid = encodeAppMessage(msg);
      assert.deepEqual(encodeAppMessage(decodeAppMessage(valid)), valid, `${name} round-trips`);
      assertStrictLength(valid, decodeAppMessage, name);
    }
  });

  test('AppMessage: bad enum tags are LP_ERR_DECODE_BAD_ENUM', () => {
    const ping = encodeAppMessage({ kind: 'ping', payload: EMPTY });
    for (const tag of [9, 10, 0xffffffff]) assertLpError(() => decodeAppMessage(patched(ping, 0, u32le(tag), u32le(5))), LpErrorCode.DECODE_BAD_ENUM, `AppMessage tag ${tag}`);
    const dvpn = encodeAppMessage(APP_SAMPLES['register dvpn/mock'] as AppMessage);
    // register: tag u32 ‖ RegistrationMode u32 @4 ‖ key[32] ‖ Credential u32 @40 ‖ blob len u64 @44 ‖ blob[3] @52 ‖ TicketType u32 @55 ‖ timestamp u64
    assertLpError(() => decodeAppMessage(patched(dvpn, 4, u32le(2), u32le(0))), LpErrorCode.DECODE_BAD_ENUM, 'RegistrationMode');
    assertLpError(() => decodeAppMessage(patched(dvpn, 40, u32le(2), u32le(0))), LpErrorCode.DECODE_BAD_ENUM, 'Credential');
    assertLpError(() => decodeAppMessage(patched(dvpn, 55, u32le(4), u32le(2))), LpErrorCode.DECODE_BAD_ENUM, 'request TicketType');
    const withTicket = encodeAppMessage(APP_SAMPLES['register mixnet/ticket'] as AppMessage);
    // Credential::Ticket @40, ticket @44: issuer[8] ‖ serial[16] ‖ TicketType u32 @68
    assertLpError(() => decodeAppMessage(patched(withTicket, 68, u32le(9), u32le(2))), LpErrorCode.DECODE_BAD_ENUM, 'ticket TicketType');
    const v4 = encodeAppMessage(APP_SAMPLES['registerResponse ok/v4'] as AppMessage);
    // registerResponse: tag ‖ success @4 ‖ Option<Error> @5 ‖ Option<GatewayData> @6 ‖ key[32] @7 ‖ SocketAddr u32 @39
    assertLpError(() => decodeAppMessage(patched(v4, 39, u32le(2), u32le(0))), LpErrorCode.DECODE_BAD_ENUM, 'SocketAddr');
  });

  test('AppMessage: bad bool and Option tags', () => {
    const v4 = encodeAppMessage(APP_SAMPLES['registerResponse ok/v4'] as AppMessage);
    for (const b of [2, 0x80, 0xff]) assertLpError(() => decodeAppMessage(patched(v4, 4, [b], [1])), LpErrorCode.DECODE_BAD_BOOL, `bool byte ${b}`);
    for (const o of [2, 0xff]) {
      assertLpError(() => decodeAppMessage(patched(v4, 5, [o], [0])), LpErrorCode.DECODE_BAD_OPTION, 'Option<ErrorBody>');
      assertLpError(() => decodeAppMessage(patched(v4, 6, [o], [1])), LpErrorCode.DECODE_BAD_OPTION, 'Option<GatewayData>');
    }
    const err = encodeAppMessage(APP_SAMPLES['error without retry'] as AppMessage);
    assert.equal(err[err.length - 1], 0, 'retryAfterMs None is the last byte');
    assertLpError(() => decodeAppMessage(patched(err, err.length - 1, [2])), LpErrorCode.DECODE_BAD_OPTION, 'Option<u32> retryAfterMs');
    assertLpError(() => decodeAppMessage(patched(err, err.length - 1, [1])), LpErrorCode.DECODE_TRUNCATED, 'Some without its u32');
  });

  test('AppMessage: over-long lengths are LP_ERR_DECODE_BAD_LENGTH (allowed-but-absent ones truncated)', () => {
    const ping = encodeAppMessage({ kind: 'ping', payload: fill(1, 4) });
    for (const kind of ['ping', 'pong', 'forwardResponse'] as const) {
      const b = patched(ping, 0, u32le({ ping: 5, pong: 6, forwardResponse: 3 }[kind]));
      assertLpError(() => decodeAppMessage(patched(b, 4, u64le(BigInt(MAX_CONTENT_LEN + 1)), u64le(4n))), LpErrorCode.DECODE_BAD_LENGTH, kind);
      assertLpError(() => decodeAppMessage(patched(b, 4, u64le((1n << 64n) - 1n))), LpErrorCode.DECODE_BAD_LENGTH, kind);
      assertLpError(() => decodeAppMessage(patched(b, 4, u64le(5n))), LpErrorCode.DECODE_TRUNCATED, kind);
    }
    const dvpn = encodeAppMessage(APP_SAMPLES['register dvpn/mock'] as AppMessage);
    assertLpError(() => decodeAppMessage(patched(dvpn, 44, u64le(4097n), u64le(3n))), LpErrorCode.DECODE_BAD_LENGTH, 'mock credential > 4096');
    assertLpError(() => decodeAppMessage(patched(dvpn, 44, u64le(4096n))), LpErrorCode.DECODE_TRUNCATED, 'mock credential 4096 but absent');
    const err = encodeAppMessage(APP_SAMPLES['error with retry'] as AppMessage);
    // error: tag ‖ code len u64 @4 ‖ code ‖ message len u64 ‖ message ‖ Option<u32>
    assertLpError(() => decodeAppMessage(patched(err, 4, u64le(65n), u64le(11n))), LpErrorCode.DECODE_BAD_LENGTH, 'error code > 64');
    const msgLenAt = 12 + 'LP_ERR_BUSY'.length;
    assertLpError(() => decodeAppMessage(patched(err, msgLenAt, u64le(1025n))), LpErrorCode.DECODE_BAD_LENGTH, 'error message > 1024');
    const fwd = encodeAppMessage({ kind: 'forward', forward });
    assertLpError(() => decodeAppMessage(patched(fwd, 36, u64le(65n), u64le(BigInt(forward.targetLpAddress.length)))), LpErrorCode.DECODE_BAD_LENGTH, 'forward address > 64');
  });

  test('AppMessage: invalid UTF-8 in strings is LP_ERR_DECODE_BAD_UTF8', () => {
    const err = encodeAppMessage(APP_SAMPLES['error with retry'] as AppMessage);
    const msgAt = 12 + 'LP_ERR_BUSY'.length + 8;
    for (const bad of [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80]]) {
      assertLpError(() => decodeAppMessage(patched(err, 12, bad)), LpErrorCode.DECODE_BAD_UTF8, `code ${bad.join(',')}`);
      assertLpError(() => decodeAppMessage(patched(err, msgAt, bad)), LpErrorCode.DECODE_BAD_UTF8, `message ${bad.join(',')}`);
    }
    const fwd = encodeAppMessage({ kind: 'forward', forward });
    assertLpError(() => decodeAppMessage(patched(fwd, 44, [0xfe])), LpErrorCode.DECODE_BAD_UTF8, 'forward address');
    const resp = encodeAppMessage(APP_SAMPLES['registerResponse error'] as AppMessage);
    // registerResponse: tag ‖ success ‖ Some(ErrorBody) @5 ‖ code len u64 @6 ‖ code @14
    assertLpError(() => decodeAppMessage(patched(resp, 14, [0xff], [0x4c])), LpErrorCode.DECODE_BAD_UTF8, 'nested ErrorBody code');
  });

  test('KKT frame: context, length and KEM checks', () => {
    const sid = fill(0x5a, 16);
    const req = buildKktRequest(prims, kem, clientKeys.ed25519, sid, kktBinding(1, fill(0x42, 32))).frame;
    assert.equal(req.length, 7 + 16 + 64);
    assert.deepEqual(decodeKktFrame(req).sessionId, sid);
    for (let n = 0; n < 7; n++) assertLpError(() => decodeKktFrame(req.subarray(0, n)), LpErrorCode.KKT_BAD_FRAME, `${n}-byte frame`);
    for (let n = 7; n < req.length; n++) assertLpError(() => decodeKktFrame(req.subarray(0, n)), LpErrorCode.KKT_BAD_FRAME, `${n}-byte frame`);
    assertLpError(() => decodeKktFrame(append(req, 0)), LpErrorCode.KKT_BAD_FRAME, 'one extra byte');
    for (const v of [0, 2, 15]) assertLpError(() => decodeKktFrame(patched(req, 0, [(v << 4) | 0], [0x10])), LpErrorCode.KKT_UNSUPPORTED_VERSION, `version ${v}`);
    assertLpError(() => decodeKktFrame(patched(req, 1, [2 << 2])), LpErrorCode.KKT_BAD_FRAME, 'mode 2');
    assertLpError(() => decodeKktFrame(patched(req, 1, [3])), LpErrorCode.KKT_BAD_FRAME, 'role 3');
    assertLpError(() => decodeKktFrame(patched(req, 6, [1], [0])), LpErrorCode.KKT_BAD_FRAME, 'reserved byte');
    for (const hl of [1, 8, 15]) assertLpError(() => decodeKktFrame(patched(req, 4, [hl], [0])), LpErrorCode.KKT_BAD_FRAME, `hash length ${hl}`);
    // A Responder Ok frame carries a KEM key whose length depends on the KEM code: unknown codes are refused.
    const resp = encodeKktFrame({ ...decodeKktFrame(req).context, sequence: 1, role: KktRole.Responder }, gatewayKeys.kem.publicKey, sid, (m) => prims.ed25519Sign(gatewayKeys.ed25519.secretKey, m));
    assert.equal(resp.length, 7 + 1184 + 16 + 64);
    assertLpError(() => decodeKktFrame(patched(resp, 2, [7], [KktKem.MlKem768])), LpErrorCode.KKT_UNSUPPORTED_CIPHERSUITE, 'unknown KEM');
    assertLpError(() => decodeKktFrame(patched(resp, 2, [KktKem.XWing])), LpErrorCode.KKT_BAD_FRAME, 'X-Wing key length differs');
    assertLpError(() => decodeKktFrame(resp.subarray(0, resp.length - 1)), LpErrorCode.KKT_BAD_FRAME);
    // encoder side
    assertLpError(() => encodeKktFrame(decodeKktFrame(req).context, EMPTY, fill(0, 15), () => fill(0, 64)), LpErrorCode.KKT_BAD_FRAME);
    assertLpError(() => encodeKktFrame(decodeKktFrame(req).context, fill(0, 1), sid, () => fill(0, 64)), LpErrorCode.KKT_BAD_FRAME);
    assertLpError(() => encodeKktFrame(decodeKktFrame(req).context, EMPTY, sid, null), LpErrorCode.KKT_BAD_FRAME);
  });

  test('KKT request padding (splitPaddedFrame): zero padding stripped, truncation and non-zero padding refused', () => {
    const { content, frame } = buildKktRequest(prims, kem, clientKeys.ed25519, fill(1, 16), kktBinding(1, fill(0x42, 32)), 1271);
    assert.equal(content.length, 1271);
    assert.deepEqual(splitPaddedFrame(content), frame);
    assert.deepEqual(splitPaddedFrame(frame), frame);
    for (let n = 0; n < 7; n++) assertLpError(() => splitPaddedFrame(frame.subarray(0, n)), LpErrorCode.KKT_BAD_FRAME);
    for (let n = 7; n < frame.length; n++) assertLpError(() => splitPaddedFrame(frame.subarray(0, n)), LpErrorCode.KKT_BAD_FRAME, `${n} bytes`);
    for (const at of [frame.length, 500, content.length - 1]) assertLpError(() => splitPaddedFrame(patched(content, at, [1], [0])), LpErrorCode.KKT_BAD_PADDING, `padding byte ${at}`);
    assertLpError(() => splitPaddedFrame(patched(content, 0, [0x20])), LpErrorCode.KKT_UNSUPPORTED_VERSION);
  });
});

// =====================================================================================================

interface ResponderRig {
  ini: InitiatorHandshake;
  hello: Uint8Array;
  kktRequest: Uint8Array;
  ctx: PacketContext;
  /** acceptKktRequest on this rig's tokens (from `ctx`, nothing in use unless `inUse` says so). */
  accept(bytes: Uint8Array, o?: { ctx?: PacketContext; inUse?: (i: number) => boolean }): KktOutcome;
  /** The genuine KKTRequest accepted: the handshake and its KKTResponse. */
  handshake(): { resp: ResponderHandshake; kktResponse: Uint8Array };
}

/** A genuine client and a directly held gateway side, stopped after ClientHello/Ack (the client has its KKTRequest). */
function responderRig(now = nowSec()): ResponderRig {
  const ini = new InitiatorHandshake(clientConfig());
  const tokens = new RoutabilityTokens(prims);
  const ctx: PacketContext = { nowSec: now, source: '192.0.2.1' };
  const hello = sendOf(ini.start(now));
  const answer = answerClientHello(responderCfg, tokens, hello, ctx);
  assert.equal(answer.kind, 'ack');
  const kktRequest = sendOf(ini.receive(answer.reply, now));
  const accept: ResponderRig['accept'] = (bytes, o = {}) => acceptKktRequest(responderCfg, tokens, bytes, parseHeader(bytes), o.ctx ?? ctx, o.inUse ?? (() => false));
  return {
    ini,
    hello,
    kktRequest,
    ctx,
    accept,
    handshake: () => {
      const out = accept(kktRequest);
      assert.equal(out.kind, 'accepted');
      if (out.kind !== 'accepted') throw new Error('unreachable');
      return { resp: out.handshake, kktResponse: out.reply };
    },
  };
}

function kktRequestPacket(index: number, content: Uint8Array, counter = 0): Uint8Array {
  return serializeClear({ receiverIndex: index, counter, type: MessageType.KKTRequest, content });
}

/** KKTRequest content: hello (100) ‖ token (32) ‖ frame; the frame starts here. */
const FRAME_AT = 132;

describe('handshake state machines reject garbled input without changing state', () => {
  test('acceptKktRequest: garbled, forged, misdirected or stale KKTRequests get their codes and create nothing; the genuine one proceeds', () => {
    const { ini, kktRequest, ctx, accept, handshake } = responderRig();
    const idx = ini.receiverIndex;
    const content = parseClear(kktRequest).content;
    const cases: [string, Uint8Array, LpErrorCode, PacketContext?][] = [
      ['5-byte content', kktRequestPacket(idx, content.subarray(0, 5)), LpErrorCode.DECODE_TRUNCATED],
      ['hello ‖ token only', kktRequestPacket(idx, content.subarray(0, FRAME_AT)), LpErrorCode.KKT_BAD_FRAME],
      ['truncated frame', kktRequestPacket(idx, content.subarray(0, FRAME_AT + 50)), LpErrorCode.KKT_BAD_FRAME],
      ['KKT version 2', kktRequestPacket(idx, patched(content, FRAME_AT, [0x20], [0x10])), LpErrorCode.KKT_UNSUPPORTED_VERSION],
      ['non-zero padding', kktRequestPacket(idx, append(content, 0, 0, 1)), LpErrorCode.KKT_BAD_PADDING],
      ['sequence 1', kktRequestPacket(idx, patched(content, FRAME_AT, [0x11])), LpErrorCode.KKT_BAD_FRAME],
      ['Responder role', kktRequestPacket(idx, patched(content, FRAME_AT + 1, [KktRole.Responder])), LpErrorCode.KKT_BAD_FRAME],
      ['bad signature', kktRequestPacket(idx, flip(content, content.length - 1)), LpErrorCode.KKT_BAD_SIGNATURE],
      ['signed content altered', kktRequestPacket(idx, flip(content, FRAME_AT + 10)), LpErrorCode.KKT_BAD_SIGNATURE],
      ['token altered', kktRequestPacket(idx, flip(content, 110)), LpErrorCode.BAD_TOKEN],
      ['hello altered', kktRequestPacket(idx, flip(content, 50)), LpErrorCode.BAD_TOKEN],
      ['from another source', kktRequest, LpErrorCode.BAD_TOKEN, { ...ctx, source: '192.0.2.2' }],
      ['token expired', kktRequest, LpErrorCode.BAD_TOKEN, { ...ctx, nowSec: ctx.nowSec + ROUTABILITY_TOKEN_LIFETIME_SEC + 1 }],
      ['counter 1', kktRequestPacket(idx, content, 1), LpErrorCode.UNEXPECTED_COUNTER],
      ['wrong packet type', serializeClear({ receiverIndex: idx, counter: 0, type: MessageType.Handshake, content }), LpErrorCode.UNEXPECTED_MESSAGE],
      ['non-zero trailer', patched(kktRequest, kktRequest.length - 1, [1]), LpErrorCode.BAD_TRAILER],
      // The token is for this hello; the hello names its index: a request cannot be moved to another index.
      ['other receiver index', patched(kktRequest, 0, u32le((idx + 1) >>> 0)), LpErrorCode.RECEIVER_INDEX_MISMATCH],
    ];
    for (const [name, bytes, code, at] of cases) assertLpError(() => accept(bytes, { ctx: at }), code, name);
    // Index in use: Collision, nothing kept.
    const busy = accept(kktRequest, { inUse: (i) => i === idx });
    assert.equal(busy.kind, 'collision');
    assert.equal(parseClear(busy.reply).type, MessageType.Collision);
    const { resp, kktResponse } = handshake();
    assert.equal(resp.stage, ResponderStage.AwaitMsg1);
    assert.equal(kktResponse.length, 34 + 1271 + GATEWAY_NONCE_LEN, 'KKTResponse = frame ‖ gateway nonce');
    // Re-sent request: the same reply from the cache, MAX_KKT_ANSWERS times in all, then LP_ERR_KKT_RETRY_LIMIT.
    assert.ok(resp.isRepeat(kktRequest));
    for (let i = 1; i < MAX_KKT_ANSWERS; i++) assert.deepEqual(resp.receive(kktRequest).reply, kktResponse);
    assertLpError(() => resp.receive(kktRequest), LpErrorCode.KKT_RETRY_LIMIT);
    assert.equal(resp.stage, ResponderStage.AwaitMsg1);
    assert.equal(ini.stage, InitiatorStage.AwaitKktResponse);
    sendOf(ini.receive(kktResponse, nowSec()));
    assert.equal(ini.stage, InitiatorStage.AwaitMsg2);
  });

  test('the same hello and token accepted twice make two different gateway nonces (fresh keys per handshake)', () => {
    const rig = responderRig();
    const a = rig.handshake().kktResponse;
    const b = rig.handshake().kktResponse;
    assert.notDeepEqual(a.subarray(a.length - 16 - GATEWAY_NONCE_LEN, a.length - 16), b.subarray(b.length - 16 - GATEWAY_NONCE_LEN, b.length - 16));
  });

  test('ResponderHandshake: garbled message 1 / message 3 get their codes; stages unchanged; genuine ones complete', () => {
    const { ini, kktRequest, handshake } = responderRig();
    const { resp, kktResponse: kktResp } = handshake();
    const idx = resp.receiverIndex;
    const msg1 = sendOf(ini.receive(kktResp, nowSec()));
    assert.equal(msg1.length, 34 + 2 + 1088 + 48 + 16);
    const c1 = parseClear(msg1).content;
    const hs = (content: Uint8Array, counter = 0): Uint8Array => serializeClear({ receiverIndex: idx, counter, type: MessageType.Handshake, content });
    const cases: [string, Uint8Array, LpErrorCode][] = [
      ['empty content', hs(EMPTY), LpErrorCode.DECODE_TRUNCATED],
      ['1-byte content', hs(c1.subarray(0, 1)), LpErrorCode.DECODE_TRUNCATED],
      ['KEM length 1087', hs(patched(c1, 0, [0x3f, 0x04], [0x40, 0x04])), LpErrorCode.KEM_BAD_CIPHERTEXT],
      ['one byte short', hs(c1.subarray(0, c1.length - 1)), LpErrorCode.BAD_CONTENT_LENGTH],
      ['one byte extra', hs(append(c1, 0)), LpErrorCode.BAD_CONTENT_LENGTH],
      ['counter 1', hs(c1, 1), LpErrorCode.UNEXPECTED_COUNTER],
      // The binder covers ciphertext and Noise message: any change is refused before decapsulation or Noise.
      ['binder flipped', hs(flip(c1, c1.length - 1)), LpErrorCode.BAD_BINDER],
      ['KEM ciphertext flipped', hs(flip(c1, 2 + 100)), LpErrorCode.BAD_BINDER],
      ['Noise tag flipped', hs(flip(c1, c1.length - 17)), LpErrorCode.BAD_BINDER],
      ['Noise e flipped', hs(flip(c1, 2 + 1088 + 5)), LpErrorCode.BAD_BINDER],
      ['Noise e = 0 (low order)', hs(patched(c1, 2 + 1088, new Uint8Array(32))), LpErrorCode.BAD_BINDER],
      ['sealed-looking trailer', patched(msg1, msg1.length - 16, fill(0xaa, 16)), LpErrorCode.BAD_TRAILER],
      ['a KKTRequest with other padding', kktRequestPacket(idx, append(parseClear(kktRequest).content, 0)), LpErrorCode.UNEXPECTED_MESSAGE],
    ];
    for (const [name, bytes, code] of cases) {
      assertLpError(() => resp.receive(bytes), code, name);
      assert.equal(resp.stage, ResponderStage.AwaitMsg1, `${name}: stage unchanged`);
      assert.equal(resp.keyed, false);
    }
    const r2 = resp.receive(msg1);
    assert.equal(resp.stage, ResponderStage.AwaitMsg3);
    assert.equal(parseHeader(r2.reply as Uint8Array).counter, 0, 'message 2 is r2i counter 0');
    assert.deepEqual(resp.receive(msg1).reply, r2.reply, 'a re-sent message 1 gets the same message 2');
    const msg3 = sendOf(ini.receive(r2.reply as Uint8Array, nowSec()));
    assert.equal(parseHeader(msg3).counter, 0, 'message 3 is i2r counter 0');
    const cases3: [string, Uint8Array, LpErrorCode][] = [
      ['ciphertext flipped', flip(msg3, 20), LpErrorCode.AEAD_TAG_MISMATCH],
      ['tag flipped', flip(msg3, msg3.length - 1), LpErrorCode.AEAD_TAG_MISMATCH],
      ['counter altered', flip(msg3, 4, 0x40), LpErrorCode.UNEXPECTED_COUNTER],
      ['cleartext message 3', serializeClear({ receiverIndex: idx, counter: 0, type: MessageType.Handshake, content: fill(0, 64) }), LpErrorCode.AEAD_TAG_MISMATCH],
      ['truncated', msg3.subarray(0, 33), LpErrorCode.PACKET_TOO_SHORT],
    ];
    for (const [name, bytes, code] of cases3) {
      assertLpError(() => resp.receive(bytes), code, name);
      assert.equal(resp.stage, ResponderStage.AwaitMsg3, `${name}: stage unchanged`);
    }
    const done = resp.receive(msg3);
    assert.ok(done.session && done.reply && !done.failed);
    assert.equal(parseHeader(done.reply).counter, 1, 'the final Ack is r2i counter 1');
    assert.equal(resp.stage, ResponderStage.Established);
    const est = ini.receive(done.reply, nowSec());
    assert.equal(est.kind, 'established');
    assertLpError(() => resp.receive(flip(msg3, 20)), LpErrorCode.INVALID_STATE, 'established handshake takes no more input');
  });

  test('MemoryGateway: a garbled KKTRequest throws its code and creates nothing; a garbled message 1 leaves the stage', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const ini = new InitiatorHandshake(clientConfig());
    const ack = gw.handle(sendOf(ini.start(nowSec()))) as Uint8Array;
    assert.equal(gw.handshakes.size, 0, 'a ClientHello creates nothing');
    const kktReq = sendOf(ini.receive(ack, nowSec()));
    const idx = ini.receiverIndex;
    assertLpError(() => gw.handle(kktRequestPacket(idx, parseClear(kktReq).content.subarray(0, 40))), LpErrorCode.DECODE_TRUNCATED);
    assertLpError(() => gw.handle(kktRequestPacket(idx, flip(parseClear(kktReq).content, FRAME_AT + 80))), LpErrorCode.KKT_BAD_SIGNATURE);
    assert.equal(gw.handshakes.size, 0);
    let out = ini.receive(gw.handle(kktReq) as Uint8Array, nowSec());
    assert.equal(gw.handshakes.get(idx)?.stage, ResponderStage.AwaitMsg1);
    const msg1 = sendOf(out);
    assertLpError(() => gw.handle(serializeClear({ receiverIndex: idx, counter: 0, type: MessageType.Handshake, content: parseClear(msg1).content.subarray(0, 100) })), LpErrorCode.BAD_CONTENT_LENGTH);
    assert.equal(gw.handshakes.get(idx)?.stage, ResponderStage.AwaitMsg1);
    out = ini.receive(gw.handle(msg1) as Uint8Array, nowSec());
    out = ini.receive(gw.handle(sendOf(out)) as Uint8Array, nowSec());
    assert.equal(out.kind, 'established');
    assert.equal(gw.sessions.size, 1);
  });

  test('InitiatorHandshake: unexpected or garbled replies are rejected without changing its stage', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const ini = new InitiatorHandshake(clientConfig());
    assertLpError(() => ini.receive(rawPacket({ type: MessageType.Ack }), nowSec()), LpErrorCode.INVALID_STATE, 'nothing started');
    const ack = gw.handle(sendOf(ini.start(nowSec()))) as Uint8Array;
    const idx = ini.receiverIndex;
    assertLpError(() => ini.receive(rawPacket({ receiverIndex: idx, type: MessageType.KKTResponse }), nowSec()), LpErrorCode.UNEXPECTED_MESSAGE);
    assertLpError(() => ini.receive(rawPacket({ receiverIndex: (idx + 1) >>> 0 || 1, type: MessageType.Ack }), nowSec()), LpErrorCode.RECEIVER_INDEX_MISMATCH);
    assertLpError(() => ini.receive(rawPacket({ receiverIndex: idx, type: MessageType.Ack }), nowSec()), LpErrorCode.BAD_TOKEN, 'an Ack without a token');
    assertLpError(() => ini.receive(patched(ack, 4, [1]), nowSec()), LpErrorCode.UNEXPECTED_COUNTER, 'a cleartext Ack with counter 1');
    assert.equal(ini.stage, InitiatorStage.AwaitHelloReply);
    const kktReq = sendOf(ini.receive(ack, nowSec()));
    const kktResp = gw.handle(kktReq) as Uint8Array;
    for (const [bytes, code] of [
      [ack, LpErrorCode.UNEXPECTED_MESSAGE],
      [flip(kktResp, 100), LpErrorCode.KKT_BAD_SIGNATURE],
      [kktResp.subarray(0, 200), LpErrorCode.BAD_TRAILER],
      [serializeClear({ receiverIndex: idx, counter: 0, type: MessageType.KKTResponse, content: parseClear(kktResp).content.subarray(0, 100) }), LpErrorCode.KKT_BAD_FRAME],
      [flip(kktResp, kktResp.length - 20), LpErrorCode.KKT_BAD_SIGNATURE], // the gateway nonce is signed too
    ] as const) {
      assertLpError(() => ini.receive(bytes, nowSec()), code);
      assert.equal(ini.stage, InitiatorStage.AwaitKktResponse);
    }
    const msg1 = sendOf(ini.receive(kktResp, nowSec()));
    const msg2 = gw.handle(msg1) as Uint8Array;
    assertLpError(() => ini.receive(flip(msg2, 20), nowSec()), LpErrorCode.AEAD_TAG_MISMATCH);
    assertLpError(() => ini.receive(kktResp, nowSec()), LpErrorCode.AEAD_TAG_MISMATCH, 'a cleartext packet in a keyed stage');
    assert.equal(ini.stage, InitiatorStage.AwaitMsg2);
    const msg3 = sendOf(ini.receive(msg2, nowSec()));
    const finalAck = gw.handle(msg3) as Uint8Array;
    assertLpError(() => ini.receive(msg2, nowSec()), LpErrorCode.UNEXPECTED_COUNTER, 'message 2 again (counter 0), expecting the Ack (counter 1)');
    assertLpError(() => ini.receive(flip(finalAck, finalAck.length - 3), nowSec()), LpErrorCode.AEAD_TAG_MISMATCH);
    assert.equal(ini.stage, InitiatorStage.AwaitAck);
    assert.equal(ini.receive(finalAck, nowSec()).kind, 'established');
    assertLpError(() => ini.receive(finalAck, nowSec()), LpErrorCode.INVALID_STATE);
  });
});

// =====================================================================================================

describe('sessions: replay, old counters, tampering', () => {
  test('re-delivering the last answered request returns the cached reply; an older packet is LP_ERR_REPLAY; state unchanged', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const { session: client, sent } = runHandshake(gw);
    const gws = gw.sessions.get(client.receiverIndex) as Session;
    // The responder remembered its Ack as the reply to message 3: a retransmitted msg3 gets the same Ack.
    const msg3 = sent[3] as Uint8Array;
    const ack1 = gw.handle(msg3);
    assert.deepEqual(gw.handle(msg3), ack1);

    const p1 = client.send({ kind: 'ping', payload: fill(1, 8) });
    const r1 = gw.handle(p1) as Uint8Array;
    assert.equal(gw.delivered.length, 1);
    const again = gw.handle(p1);
    assert.deepEqual(again, r1, 'same reply bytes for the retransmitted request');
    assert.equal(gw.delivered.length, 1, 'not delivered twice');
    assert.equal(client.receive(r1).delivered?.kind, 'pong');
    assertLpError(() => client.receive(r1), LpErrorCode.REPLAY, 'a reply is not a request: its replay is refused');

    const p2 = client.send({ kind: 'ping', payload: fill(2, 8) });
    const r2 = gw.handle(p2) as Uint8Array;
    assertLpError(() => gw.handle(p1), LpErrorCode.REPLAY, 'older request');
    assertLpError(() => gw.handle(msg3), LpErrorCode.REPLAY, 'message 3 after newer traffic');
    assert.deepEqual(gw.handle(p2), r2);
    assert.equal(gw.delivered.length, 2);
    // A retransmission of the last request must still authenticate.
    assertLpError(() => gws.receive(flip(p2, 30)), LpErrorCode.AEAD_TAG_MISMATCH);
    // The next genuine packet works.
    const r3 = gw.handle(client.send({ kind: 'ping', payload: fill(3, 8) })) as Uint8Array;
    assert.equal(client.receive(r3).delivered?.kind, 'pong');
  });

  test('a request that got no reply is not re-answered: its replay is LP_ERR_REPLAY', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    gw.onDeliver = () => null;
    const { session: client } = runHandshake(gw);
    const p = client.send({ kind: 'pong', payload: EMPTY });
    assert.equal(gw.handle(p), null);
    assertLpError(() => gw.handle(p), LpErrorCode.REPLAY);
  });

  test('counters REPLAY_WINDOW (1024) or more behind the highest are LP_ERR_COUNTER_TOO_OLD; within the window out-of-order works', () => {
    assert.equal(REPLAY_WINDOW, 1024);
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    gw.onDeliver = () => null;
    const { session: client } = runHandshake(gw);
    const packets = Array.from({ length: 2100 }, (_, i) => client.send({ kind: 'ping', payload: new Uint8Array(u32le(i)) }));
    const counter = (i: number): number => parseHeader(packets[i] as Uint8Array).counter;
    gw.handle(packets[2050] as Uint8Array);
    assert.equal(counter(2050) - counter(0), 2050);
    assertLpError(() => gw.handle(packets[0] as Uint8Array), LpErrorCode.COUNTER_TOO_OLD);
    assertLpError(() => gw.handle(packets[2050 - REPLAY_WINDOW] as Uint8Array), LpErrorCode.COUNTER_TOO_OLD, 'exactly REPLAY_WINDOW behind');
    gw.handle(packets[2051 - REPLAY_WINDOW] as Uint8Array); // REPLAY_WINDOW - 1 behind: inside the window, never seen
    assertLpError(() => gw.handle(packets[2050] as Uint8Array), LpErrorCode.REPLAY, 'replay of the highest');
    gw.handle(packets[2049] as Uint8Array);
    assertLpError(() => gw.handle(packets[2051 - REPLAY_WINDOW] as Uint8Array), LpErrorCode.REPLAY);
    // far ahead, then the old ones are too old
    gw.handle(packets[2099] as Uint8Array);
    assertLpError(() => gw.handle(packets[60] as Uint8Array), LpErrorCode.COUNTER_TOO_OLD);
    gw.handle(packets[2098] as Uint8Array);
    assert.equal(gw.delivered.length, 5);
  });

  test('ReplayWindow unit: boundaries, word wrap, large jumps', () => {
    const w = new ReplayWindow();
    w.mark(0);
    assertLpError(() => w.check(0), LpErrorCode.REPLAY);
    w.mark(5000);
    assertLpError(() => w.check(0), LpErrorCode.COUNTER_TOO_OLD);
    assertLpError(() => w.check(5000 - REPLAY_WINDOW), LpErrorCode.COUNTER_TOO_OLD);
    for (let c = 5000 - REPLAY_WINDOW + 1; c < 5000; c++) w.check(c);
    for (let c = 5000 - REPLAY_WINDOW + 1; c < 5000; c += 7) w.mark(c);
    for (let c = 5000 - REPLAY_WINDOW + 1; c < 5000; c++) {
      if ((c - (5000 - REPLAY_WINDOW + 1)) % 7 === 0) assertLpError(() => w.check(c), LpErrorCode.REPLAY, `counter ${c}`);
      else w.check(c);
    }
    w.mark(5000 + 64 * 32 * 3 + 17); // jump over several full windows: everything before is gone
    for (let c = 5000 - REPLAY_WINDOW + 1; c <= 5000; c += 7) assertLpError(() => w.check(c), LpErrorCode.COUNTER_TOO_OLD);
    w.check(5000 + 64 * 32 * 3 + 16);
    assertLpError(() => w.mark(5000 + 64 * 32 * 3 + 17), LpErrorCode.REPLAY);
    const big = new ReplayWindow();
    big.mark(Number.MAX_SAFE_INTEGER - 1);
    assertLpError(() => big.check(Number.MAX_SAFE_INTEGER - 1), LpErrorCode.REPLAY);
    big.check(Number.MAX_SAFE_INTEGER);
    assertLpError(() => big.check(0), LpErrorCode.COUNTER_TOO_OLD);
  });

  test('openPacket: any altered header byte, ciphertext byte or tag byte is LP_ERR_AEAD_TAG_MISMATCH', () => {
    const key = fill(7, 32);
    const sealed = sealPacket(prims, key, { receiverIndex: 0x0a0b0c0d, counter: 9, type: MessageType.EncryptedData, content: fill(0x3c, 40) });
    assert.equal(openPacket(prims, key, sealed).content.length, 40);
    for (let i = 0; i < sealed.length; i++) {
      // Byte 11 is the counter's top byte: any bit there pushes the counter past 2^53 - 1, which the header
      // parser refuses before the AEAD is tried.
      if (i === 11) continue;
      assertLpError(() => openPacket(prims, key, flip(sealed, i)), LpErrorCode.AEAD_TAG_MISMATCH, `byte ${i}`);
    }
    assertLpError(() => openPacket(prims, key, flip(sealed, 11)), LpErrorCode.COUNTER_EXHAUSTED);
    assertLpError(() => openPacket(prims, key, flip(sealed, 10, 0x10)), LpErrorCode.AEAD_TAG_MISMATCH, 'counter high bits still below 2^53');
    assertLpError(() => openPacket(prims, fill(8, 32), sealed), LpErrorCode.AEAD_TAG_MISMATCH, 'wrong key');
    assertLpError(() => openPacket(prims, key, sealed.subarray(0, sealed.length - 1)), LpErrorCode.AEAD_TAG_MISMATCH, 'truncated');
    assertLpError(() => openPacket(prims, key, append(sealed, 0)), LpErrorCode.AEAD_TAG_MISMATCH, 'extended');
    assertLpError(() => openPacket(prims, key, sealed.subarray(0, 33)), LpErrorCode.PACKET_TOO_SHORT);
    // A packet sealed with an invalid inner layout is refused after authentication.
    const badInner = sealPacket(prims, key, { receiverIndex: 1, counter: 1, type: MessageType.Busy, content: EMPTY });
    assert.equal(openPacket(prims, key, badInner).type, MessageType.Busy);
  });

  test('Session.receive: tampered counter/ciphertext/tag → LP_ERR_AEAD_TAG_MISMATCH, tampered index → LP_ERR_RECEIVER_INDEX_MISMATCH; nothing changes', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const { session: client } = runHandshake(gw);
    const gws = gw.sessions.get(client.receiverIndex) as Session;
    const p = client.send({ kind: 'ping', payload: fill(4, 20) });
    // Session.receive checks the receiver index (cheap, cleartext routing field) before any crypto, so an
    // altered index is reported as a misroute, not as an AEAD failure (the AAD would catch it otherwise).
    assertLpError(() => gws.receive(flip(p, 0)), LpErrorCode.RECEIVER_INDEX_MISMATCH);
    assertLpError(() => gws.receive(flip(p, 3, 0x80)), LpErrorCode.RECEIVER_INDEX_MISMATCH);
    // Through the router an altered index is simply unknown: dropped without a reply.
    assert.equal(gw.handle(flip(p, 0)), null);
    // Counter bumped upwards (so the replay window lets it through to the AEAD).
    assertLpError(() => gws.receive(flip(p, 5, 0x01)), LpErrorCode.AEAD_TAG_MISMATCH);
    assertLpError(() => gws.receive(flip(p, 4, 0x80)), LpErrorCode.AEAD_TAG_MISMATCH);
    for (const i of [12, 17, 18, 30, p.length - 17]) assertLpError(() => gws.receive(flip(p, i)), LpErrorCode.AEAD_TAG_MISMATCH, `ciphertext byte ${i}`);
    for (let i = p.length - 16; i < p.length; i++) assertLpError(() => gws.receive(flip(p, i)), LpErrorCode.AEAD_TAG_MISMATCH, `tag byte ${i}`);
    assertLpError(() => gws.receive(p.subarray(0, 30)), LpErrorCode.PACKET_TOO_SHORT);
    assert.equal(gws.state, SessionState.Transport);
    const out = gws.receive(p);
    assert.equal(out.delivered?.kind, 'ping');
  });

  test('Session.receive: authenticated but undecodable inner content gets the inner code (an AppMessage: reported, its counter spent)', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const { session: client } = runHandshake(gw);
    const gws = gw.sessions.get(client.receiverIndex) as Session;
    assertLpError(() => gws.receive(client.seal(MessageType.EncryptedData, fill(1, 10))), LpErrorCode.NOISE_BAD_MESSAGE, 'shorter than a Noise tag');
    assertLpError(() => gws.receive(client.seal(MessageType.EncryptedData, fill(1, 40))), LpErrorCode.NOISE_DECRYPT);
    // A Noise-authenticated plaintext that is no AppMessage this side knows: reported (the gateway answers Error with
    // the code, DESIGN.md §8), and its counter is spent (a copy is a retransmission, not a second attempt).
    for (const [plain, code] of [
      [new Uint8Array(u32le(9)), LpErrorCode.DECODE_BAD_ENUM],
      [append(encodeAppMessage({ kind: 'ping', payload: EMPTY }), 0), LpErrorCode.DECODE_TRAILING_BYTES],
      [new Uint8Array([5, 0, 0]), LpErrorCode.DECODE_TRUNCATED],
    ] as const) {
      const packet = client.sendRaw(plain);
      const out = gws.receive(packet);
      assert.equal(out.undecodable?.code, code);
      assert.equal(out.delivered, undefined);
      assertLpError(() => gws.receive(packet), LpErrorCode.REPLAY, 'its counter was spent');
    }
    assertLpError(() => gws.receive(client.seal(MessageType.SubsessionKK1, fill(0, 3))), LpErrorCode.DECODE_TRUNCATED, 'KK1 payload');
    assertLpError(() => gws.receive(client.seal(MessageType.SubsessionKK1, encodeSubsessionPayload(fill(0, 1025)))), LpErrorCode.DECODE_BAD_LENGTH, 'KK1 payload');
    assertLpError(() => gws.receive(client.seal(MessageType.SubsessionKK1, encodeSubsessionPayload(fill(0, 10)))), LpErrorCode.NOISE_BAD_MESSAGE, 'KK1 too short for e');
    assertLpError(() => gws.receive(client.seal(MessageType.SubsessionKK1, encodeSubsessionPayload(fill(0, 48)))), LpErrorCode.BAD_DH, 'KK1 with a low-order e');
    assertLpError(() => gws.receive(client.seal(MessageType.SubsessionKK1, encodeSubsessionPayload(fill(0x5a, 48)))), LpErrorCode.NOISE_DECRYPT, 'KK1 with a forged tag');
    assertLpError(() => gws.receive(client.seal(MessageType.SubsessionKK2, encodeSubsessionPayload(fill(0, 48)))), LpErrorCode.INVALID_STATE, 'KK2 without our KK1');
    assertLpError(() => gws.receive(client.seal(MessageType.SubsessionReady, encodeSubsessionReady(5))), LpErrorCode.INVALID_STATE, 'Ready without a subsession');
    assertLpError(() => gws.receive(client.seal(MessageType.Collision, EMPTY)), LpErrorCode.UNEXPECTED_MESSAGE);
    for (const type of [MessageType.Busy, MessageType.Handshake, MessageType.ClientHello, MessageType.KKTRequest, MessageType.KKTResponse, MessageType.ForwardPacket, MessageType.Ack, MessageType.SubsessionRequest]) {
      const content = type === MessageType.ClientHello ? fill(0, 100) : EMPTY;
      assertLpError(() => gws.receive(client.seal(type, content)), LpErrorCode.UNEXPECTED_MESSAGE, `type ${type} in a session`);
    }
    assert.equal(gws.state, SessionState.Transport);
    const r = gw.handle(client.send({ kind: 'ping', payload: fill(9, 3) })) as Uint8Array;
    assert.equal(client.receive(r).delivered?.kind, 'pong');
  });

  test('subsession contents: a Ready that is truncated, extended, or proposes index 0 / the parent index / a used index', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const { session: parent } = runHandshake(gw);
    const gws = gw.sessions.get(parent.receiverIndex) as Session;
    const kk2 = gw.handle(parent.initiateSubsession()) as Uint8Array;
    assertLpError(() => gws.receive(parent.seal(MessageType.SubsessionReady, fill(1, 3))), LpErrorCode.DECODE_TRUNCATED);
    assertLpError(() => gws.receive(parent.seal(MessageType.SubsessionReady, fill(1, 5))), LpErrorCode.DECODE_TRAILING_BYTES);
    const proposed = parent.receive(kk2).replies[0] as Uint8Array;
    assert.ok(proposed);
    for (const bad of [0, parent.receiverIndex]) {
      const collision = gw.handle(parent.seal(MessageType.SubsessionReady, encodeSubsessionReady(bad))) as Uint8Array;
      assert.equal(gws.state, SessionState.SubsessionHandshaking, 'gateway parent not demoted');
      const retry = parent.receive(collision);
      assert.equal(retry.indexCollision, true, `index ${bad} answered with Collision`);
      assert.equal(retry.promoted, undefined);
      assert.equal(parent.state, SessionState.SubsessionHandshaking);
    }
    const other = runHandshake(gw).session;
    const collision = gws.receive(parent.seal(MessageType.SubsessionReady, encodeSubsessionReady(other.receiverIndex)), { indexInUse: gw.indexInUse });
    assert.equal(parent.receive(collision.replies[0] as Uint8Array, { indexInUse: gw.indexInUse }).indexCollision, true);
    // Finally a valid Ready promotes.
    const ready = parent.receive(gws.receive(parent.seal(MessageType.SubsessionReady, encodeSubsessionReady(0))).replies[0] as Uint8Array, { indexInUse: gw.indexInUse }).replies[0] as Uint8Array;
    const ack = gw.handle(ready) as Uint8Array;
    const child = parent.receive(ack).promoted;
    assert.ok(child);
    assert.notEqual(child.receiverIndex, 0);
    assert.equal(parent.state, SessionState.ReadOnly);
  });
});

// =====================================================================================================

describe('KKT', () => {
  test('a KKTResponse whose KEM key does not hash to the pinned value is LP_ERR_KKT_KEY_HASH_MISMATCH', () => {
    for (const kemKeyHash of [fill(0, 32), otherGatewayKeys.kemKeyHash, gatewayKeys.kemKeyHash.subarray(0, 16)]) {
      const gw = new MemoryGateway(defaultSuite, gatewayKeys);
      const ini = new InitiatorHandshake(clientConfig({ gateway: { ed25519Public: gatewayKeys.ed25519.publicKey, kemKeyHash } }));
      const ack = gw.handle(sendOf(ini.start(nowSec()))) as Uint8Array;
      const resp = gw.handle(sendOf(ini.receive(ack, nowSec()))) as Uint8Array;
      assertLpError(() => ini.receive(resp, nowSec()), LpErrorCode.KKT_KEY_HASH_MISMATCH);
      assert.equal(ini.stage, InitiatorStage.AwaitKktResponse);
    }
  });

  test('a KKTResponse signed by another key is LP_ERR_KKT_BAD_SIGNATURE (checked before the key pin)', () => {
    // Gateway with the right KEM key but another identity key; and one with both wrong.
    for (const keys of [{ ...gatewayKeys, ed25519: otherGatewayKeys.ed25519 }, otherGatewayKeys]) {
      const gw = new MemoryGateway(defaultSuite, keys);
      const ini = new InitiatorHandshake(clientConfig());
      const ack = gw.handle(sendOf(ini.start(nowSec()))) as Uint8Array;
      const resp = gw.handle(sendOf(ini.receive(ack, nowSec()))) as Uint8Array;
      assertLpError(() => ini.receive(resp, nowSec()), LpErrorCode.KKT_BAD_SIGNATURE);
    }
  });

  test('a genuinely signed KKTResponse for another session id is LP_ERR_KKT_SESSION_ID_MISMATCH', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const ini = new InitiatorHandshake(clientConfig());
    const ack = gw.handle(sendOf(ini.start(nowSec()))) as Uint8Array;
    const kktReq = sendOf(ini.receive(ack, nowSec()));
    const kc = parseClear(kktReq).content;
    const idx = ini.receiverIndex;
    const token = kc.subarray(100, FRAME_AT);
    const sid = decodeKktFrame(kc.subarray(FRAME_AT)).sessionId;
    const otherSid = flip(sid, 0);
    const nonce = fill(0x45, 32);
    const otherReq = buildKktRequest(prims, kem, clientKeys.ed25519, otherSid, kktBinding(idx, token));
    const outcome = processKktRequest(prims, kem, gatewayKeys.ed25519, gatewayKeys.kem.publicKey, clientKeys.ed25519.publicKey, otherReq.content, kktBinding(idx, token), kktBinding(idx, token, nonce));
    assert.equal(outcome.ok, true);
    const forged = serializeClear({ receiverIndex: idx, counter: 0, type: MessageType.KKTResponse, content: concat(outcome.response, nonce) });
    assertLpError(() => ini.receive(forged, nowSec()), LpErrorCode.KKT_SESSION_ID_MISMATCH);
    assertLpError(() => processKktResponse(prims, kem, gatewayKeys.ed25519.publicKey, gatewayKeys.kemKeyHash, kc.subarray(FRAME_AT), outcome.response, kktBinding(idx, token, nonce)), LpErrorCode.KKT_SESSION_ID_MISMATCH);
    assert.equal(ini.stage, InitiatorStage.AwaitKktResponse);
    // The genuine response still works.
    sendOf(ini.receive(gw.handle(kktReq) as Uint8Array, nowSec()));
    assert.equal(ini.stage, InitiatorStage.AwaitMsg2);
  });

  test('a KKTRequest signed by a key other than the ClientHello key, or for another index or token, is LP_ERR_KKT_BAD_SIGNATURE', () => {
    const { ini, kktRequest, accept, handshake } = responderRig();
    const idx = ini.receiverIndex;
    const prefix = parseClear(kktRequest).content.subarray(0, FRAME_AT);
    const token = prefix.subarray(100);
    const foreign = buildKktRequest(prims, kem, otherClientKeys.ed25519, fill(0x77, 16), kktBinding(idx, token));
    assertLpError(() => accept(kktRequestPacket(idx, concat(prefix, foreign.content))), LpErrorCode.KKT_BAD_SIGNATURE, 'another key');
    // A request pre-signed for another index or token cannot serve this handshake (the flood of issue 12).
    for (const binding of [kktBinding((idx + 1) >>> 0, token), kktBinding(idx, fill(0x42, 32)), kktBinding(idx, token, fill(1, 32))]) {
      const other = buildKktRequest(prims, kem, clientKeys.ed25519, fill(0x78, 16), binding);
      assertLpError(() => accept(kktRequestPacket(idx, concat(prefix, other.content))), LpErrorCode.KKT_BAD_SIGNATURE);
    }
    assert.equal(handshake().resp.stage, ResponderStage.AwaitMsg1);
  });

  function x25519Request(sessionId: Uint8Array, binding: Uint8Array): Uint8Array {
    const ctx: KktContext = { version: 1, sequence: 0, status: KktStatus.Ok, mode: KktMode.OneWay, role: KktRole.Initiator, kem: KktKem.X25519, hash: KktHash.Blake3, hashLen: 0, signature: KktSignature.Ed25519 };
    return encodeKktFrame(ctx, EMPTY, sessionId, (m) => prims.ed25519Sign(clientKeys.ed25519.secretKey, concat(m, binding)));
  }

  test('a KKTRequest for X25519 (KEM 255) gets a signed UnsupportedCiphersuite refusal and nothing is kept', () => {
    const sid = fill(0x31, 16);
    const { ini, kktRequest, accept } = responderRig();
    const idx = ini.receiverIndex;
    const prefix = parseClear(kktRequest).content.subarray(0, FRAME_AT);
    const token = prefix.subarray(100);
    const request = kktRequestPacket(idx, concat(prefix, x25519Request(sid, kktBinding(idx, token))));
    const out = accept(request);
    assert.equal(out.kind, 'refused');
    if (out.kind !== 'refused') return;
    assert.equal(out.error.code, LpErrorCode.KKT_UNSUPPORTED_CIPHERSUITE);
    const reply = out.reply;
    assert.ok(reply.length <= request.length, 'refusal is no larger than the request (anti-amplification)');
    const content = parseClear(reply).content;
    const nonce = content.subarray(content.length - GATEWAY_NONCE_LEN);
    const frame = decodeKktFrame(content.subarray(0, content.length - GATEWAY_NONCE_LEN));
    assert.equal(parseClear(reply).type, MessageType.KKTResponse);
    assert.equal(frame.context.status, KktStatus.UnsupportedCiphersuite);
    assert.equal(frame.context.role, KktRole.Responder);
    assert.equal(frame.context.sequence, 1);
    assert.equal(frame.context.kem, KktKem.X25519);
    assert.equal(frame.body.length, 0);
    assert.deepEqual(frame.sessionId, sid);
    assert.ok(prims.ed25519Verify(gatewayKeys.ed25519.publicKey, concat(frame.signed, kktBinding(idx, token, nonce)), frame.signature), 'refusal is signed by the gateway over frame ‖ index ‖ token ‖ nonce');

    // Through the router: nothing is kept.
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const ini2 = new InitiatorHandshake(clientConfig());
    const ack = gw.handle(sendOf(ini2.start(nowSec()))) as Uint8Array;
    const prefix2 = parseClear(sendOf(ini2.receive(ack, nowSec()))).content.subarray(0, FRAME_AT);
    const refusal = gw.handle(kktRequestPacket(ini2.receiverIndex, concat(prefix2, x25519Request(sid, kktBinding(ini2.receiverIndex, prefix2.subarray(100))))));
    assert.ok(refusal);
    assert.equal(gw.handshakes.size, 0);
  });

  test('a client receiving an UnsupportedCiphersuite refusal throws LP_ERR_KKT_UNSUPPORTED_CIPHERSUITE', () => {
    // A gateway that serves only X-Wing refuses the client's ML-KEM-768 request with its own session id.
    const xwingOnly = { ...mlKem768, name: 'X-Wing', kktCode: KktKem.XWing };
    const gw = new MemoryGateway({ prims, kem: xwingOnly }, gatewayKeys);
    const ini = new InitiatorHandshake(clientConfig());
    const ack = gw.handle(sendOf(ini.start(nowSec()))) as Uint8Array;
    const refusal = gw.handle(sendOf(ini.receive(ack, nowSec()))) as Uint8Array;
    assert.equal(gw.handshakes.size, 0, 'gateway dropped the failed handshake');
    assert.equal(decodeKktFrame(decodeKktResponseContent(parseClear(refusal).content).frame).context.status, KktStatus.UnsupportedCiphersuite);
    assertLpError(() => ini.receive(refusal, nowSec()), LpErrorCode.KKT_UNSUPPORTED_CIPHERSUITE);

    // Same with a hand-built refusal of an X25519 request carrying the client's session id.
    const gw2 = new MemoryGateway(defaultSuite, gatewayKeys);
    const ini2 = new InitiatorHandshake(clientConfig());
    const ack2 = gw2.handle(sendOf(ini2.start(nowSec()))) as Uint8Array;
    const c2 = parseClear(sendOf(ini2.receive(ack2, nowSec()))).content;
    const req2 = decodeKktFrame(c2.subarray(FRAME_AT));
    const nonce = fill(0x45, 32);
    const sign = (m: Uint8Array): Uint8Array => prims.ed25519Sign(gatewayKeys.ed25519.secretKey, concat(m, kktBinding(ini2.receiverIndex, c2.subarray(100, FRAME_AT), nonce)));
    const refusalFrame = encodeKktFrame({ ...req2.context, sequence: 1, role: KktRole.Responder, status: KktStatus.UnsupportedCiphersuite }, EMPTY, req2.sessionId, sign);
    assertLpError(() => ini2.receive(serializeClear({ receiverIndex: ini2.receiverIndex, counter: 0, type: MessageType.KKTResponse, content: concat(refusalFrame, nonce) }), nowSec()), LpErrorCode.KKT_UNSUPPORTED_CIPHERSUITE);
    // Other statuses are a generic responder error.
    const other = encodeKktFrame({ ...req2.context, sequence: 1, role: KktRole.Responder, status: KktStatus.InvalidKey }, EMPTY, req2.sessionId, sign);
    assertLpError(() => ini2.receive(serializeClear({ receiverIndex: ini2.receiverIndex, counter: 0, type: MessageType.KKTResponse, content: concat(other, nonce) }), nowSec()), LpErrorCode.KKT_RESPONDER_ERROR);
  });
});

// =====================================================================================================

/** ClientHello packet bytes with explicit fields. */
function helloPacket(o: { index?: number; ts: number; x25519?: Uint8Array; ed25519?: Uint8Array }): Uint8Array {
  const content = encodeClientHello({
    receiverIndex: o.index ?? 0x1234,
    clientX25519: o.x25519 ?? clientKeys.x25519.publicKey,
    clientEd25519: o.ed25519 ?? clientKeys.ed25519.publicKey,
    salt: makeSalt(o.ts, fill(0x24, 24)),
  });
  return serializeClear({ receiverIndex: 0, counter: 0, type: MessageType.ClientHello, content });
}

describe('ClientHello and identity binding', () => {
  const NOW = 1_800_000_000;

  const hctx = { nowSec: NOW, source: '192.0.2.1' };
  const tokens = new RoutabilityTokens(prims);
  const answer = (cfg: ResponderConfig, b: Uint8Array): ReturnType<typeof answerClientHello> => answerClientHello(cfg, tokens, b, hctx);

  test('timestamp: 31 s old → LP_ERR_TIMESTAMP_TOO_OLD, 31 s ahead → LP_ERR_TIMESTAMP_TOO_NEW, exactly ±30 s accepted', () => {
    assertLpError(() => answer(responderCfg, helloPacket({ ts: NOW - 31 })), LpErrorCode.TIMESTAMP_TOO_OLD);
    assertLpError(() => answer(responderCfg, helloPacket({ ts: NOW + 31 })), LpErrorCode.TIMESTAMP_TOO_NEW);
    assertLpError(() => answer(responderCfg, helloPacket({ ts: 0 })), LpErrorCode.TIMESTAMP_TOO_OLD);
    for (const ts of [NOW - 30, NOW, NOW + 30]) assert.equal(answer(responderCfg, helloPacket({ ts })).kind, 'ack', `ts ${ts - NOW}`);
    // configurable tolerance
    const strict = { ...responderCfg, timestampToleranceSec: 5 };
    assertLpError(() => answer(strict, helloPacket({ ts: NOW - 6 })), LpErrorCode.TIMESTAMP_TOO_OLD);
    assert.equal(answer(strict, helloPacket({ ts: NOW - 5 })).kind, 'ack');
    // u64 timestamps far in the future
    const far = patched(helloPacket({ ts: NOW }), 18 + 68 + 4, [0xff, 0xff, 0xff, 0xff]);
    assertLpError(() => answer(responderCfg, far), LpErrorCode.TIMESTAMP_TOO_NEW);
  });

  test('answerClientHello: a 66-byte Ack with a 32-byte token to the proposed index, counter 0; nothing kept', () => {
    const reply = parseClear(answer(responderCfg, helloPacket({ ts: NOW, index: 0x4321 })).reply);
    assert.equal(reply.type, MessageType.Ack);
    assert.equal(reply.receiverIndex, 0x4321);
    assert.equal(reply.counter, 0);
    assert.equal(reply.content.length, ROUTABILITY_TOKEN_LEN);
    assert.equal(answer(responderCfg, helloPacket({ ts: NOW })).reply.length, 66);
  });

  test('answerClientHello: wrong header index / counter / type / content are refused with their codes', () => {
    const good = helloPacket({ ts: NOW });
    assertLpError(() => answer(responderCfg, patched(good, 0, [1])), LpErrorCode.RECEIVER_INDEX_MISMATCH);
    assertLpError(() => answer(responderCfg, patched(good, 4, [1])), LpErrorCode.UNEXPECTED_COUNTER);
    assertLpError(() => answer(responderCfg, rawPacket({ type: MessageType.Ack })), LpErrorCode.UNEXPECTED_MESSAGE);
    assertLpError(() => answer(responderCfg, rawPacket({ type: MessageType.ClientHello, content: fill(0, 99) })), LpErrorCode.BAD_CONTENT_LENGTH);
  });

  test('receiver index 0: a ClientHello proposing it gets Collision; an InitiatorHandshake refuses it', () => {
    const out = answer(responderCfg, helloPacket({ index: 0, ts: NOW }));
    assert.equal(out.kind, 'collision');
    assert.equal(parseClear(out.reply).type, MessageType.Collision);

    const gw = new MemoryGateway(defaultSuite, gatewayKeys, () => NOW);
    assert.equal(parseClear(gw.handle(helloPacket({ index: 0, ts: NOW })) as Uint8Array).type, MessageType.Collision);
    assert.equal(gw.handshakes.size, 0, 'nothing kept for index 0');

    const ini = new InitiatorHandshake(clientConfig({ receiverIndex: 0 }));
    assertLpError(() => ini.start(NOW), LpErrorCode.RECEIVER_INDEX_ZERO);
    assertLpError(() => ini.retransmit(), LpErrorCode.INVALID_STATE);
  });

  test('an initiator answered with Collision retries with a fresh non-zero index', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const first = runHandshake(gw, clientConfig({ receiverIndex: 4242 }));
    const ini = new InitiatorHandshake(clientConfig({ receiverIndex: 4242 }));
    // The index is checked when the KKTRequest arrives (the hello is answered statelessly).
    const ack = gw.handle(sendOf(ini.start(nowSec()))) as Uint8Array;
    const collision = gw.handle(sendOf(ini.receive(ack, nowSec()))) as Uint8Array;
    assert.equal(parseClear(collision).type, MessageType.Collision);
    assert.equal(ini.stage, InitiatorStage.AwaitKktResponse);
    const hello2 = sendOf(ini.receive(collision, nowSec()));
    assert.equal(ini.collisions, 1);
    assert.notEqual(ini.receiverIndex, 4242);
    assert.notEqual(ini.receiverIndex, 0);
    assert.equal(decodeClientHello(parseClear(hello2).content).receiverIndex, ini.receiverIndex);
    assert.equal(first.session.receiverIndex, 4242);
  });

  test('a ClientHello whose X25519 key is not the conversion of its Ed25519 key is LP_ERR_CLIENT_KEY_MISMATCH', () => {
    const mixed = { ed25519: clientKeys.ed25519, x25519: otherClientKeys.x25519 };
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const ini = new InitiatorHandshake(clientConfig({ client: mixed }));
    const ack = gw.handle(sendOf(ini.start(nowSec()))) as Uint8Array;
    assertLpError(() => gw.handle(sendOf(ini.receive(ack, nowSec()))), LpErrorCode.CLIENT_KEY_MISMATCH);
    assert.equal(gw.handshakes.size, 0);
  });

  /**
   * Hand-driven client for the message-3 static-key check. The ClientHello and KKT request are A's (so the
   * gateway accepts them and mixes X25519(gateway, A) into the PSK). The client computes the same PSK with A's
   * X25519 secret, so the PSK and both outer keys match and message 3 authenticates at every layer, but runs
   * Noise with static `noiseStatic`. Only the explicit check of the Noise static against the ClientHello
   * key can then catch the substitution.
   */
  function runToMsg3(noiseStatic: typeof clientKeys.x25519): { resp: ResponderHandshake; out: ReturnType<ResponderHandshake['receive']> } {
    const { ini, hello, kktRequest, handshake } = responderRig();
    const { resp, kktResponse: kktResp } = handshake();
    const index = ini.receiverIndex;
    const reqContent = parseClear(kktRequest).content; // unpadded: hello ‖ token ‖ frame
    const token = reqContent.subarray(100, FRAME_AT);
    const requestFrame = reqContent.subarray(FRAME_AT);
    const helloContent = parseClear(hello).content;
    const { clientEd25519 } = decodeClientHello(helloContent);
    assert.deepEqual(new Uint8Array(clientEd25519), new Uint8Array(clientKeys.ed25519.publicKey), 'ClientHello is A');
    const { frame: responseFrame, gatewayNonce } = decodeKktResponseContent(parseClear(kktResp).content);
    const { kemPublicKey, frame } = processKktResponse(prims, kem, gatewayKeys.ed25519.publicKey, gatewayKeys.kemKeyHash, requestFrame, responseFrame, kktBinding(index, token, gatewayNonce));
    const { ciphertext, sharedSecret } = kem.encapsulate(kemPublicKey, fill(0x99, 32));
    const gatewayX = prims.ed25519PkToX25519(gatewayKeys.ed25519.publicKey);
    const transcript = kktTranscriptHash(prims, helloContent, token, requestFrame, frame.raw, gatewayNonce);
    const staticDh = prims.x25519(clientKeys.x25519.secretKey, gatewayX);
    const psk = derivePsk(prims, { kemSharedSecret: sharedSecret, staticDh, transcript, kemCiphertext: ciphertext });
    const noise = new HandshakeState(prims, { pattern: NOISE_PATTERN, initiator: true, s: noiseStatic, rs: gatewayX, psks: [psk] });
    const noiseMsg1 = noise.writeMessage(EMPTY);
    const binder = msg1Binder(prims, staticDh, transcript, encodeHandshake1(ciphertext, noiseMsg1));
    const msg1 = serializeClear({ receiverIndex: index, counter: 0, type: MessageType.Handshake, content: encodeHandshake1(ciphertext, noiseMsg1, binder) });
    const keys = outerKeys(prims, psk);
    const msg2 = resp.receive(msg1).reply as Uint8Array;
    assert.equal(resp.stage, ResponderStage.AwaitMsg3);
    noise.readMessage(openPacket(prims, keys.r2i, msg2).content);
    const msg3 = sealPacket(prims, keys.i2r, { receiverIndex: index, counter: 0, type: MessageType.Handshake, content: noise.writeMessage(EMPTY) });
    return { resp, out: resp.receive(msg3) };
  }

  test('message 3 with a Noise static other than the ClientHello key: failed with LP_ERR_STATIC_KEY_MISMATCH', () => {
    // Control: the hand-driven client with the right static completes, so the failure below is the static key only.
    const control = runToMsg3(clientKeys.x25519);
    assert.ok(control.out.session, 'control run establishes');
    assert.equal(control.out.failed, undefined);

    const { resp, out } = runToMsg3(otherClientKeys.x25519);
    assert.ok(out.failed instanceof LpError);
    assert.equal(out.failed.code, LpErrorCode.STATIC_KEY_MISMATCH);
    assert.equal(out.session, undefined);
    assert.equal(out.reply, undefined, 'no Ack for a failed handshake');
    assert.equal(resp.stage, ResponderStage.Failed);
  });

  test('InitiatorConfig with mismatched x25519 keys never gets past message 1 (binder uses the static DH)', () => {
    // ClientHello carries A's X25519 public key (so it is accepted), but the client's secret is B's: the gateway's
    // binder key uses X25519(gw, A) and the client's X25519(B, gw), so message 1 is refused.
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const liar = { ed25519: clientKeys.ed25519, x25519: { publicKey: clientKeys.x25519.publicKey, secretKey: otherClientKeys.x25519.secretKey } };
    const ini = new InitiatorHandshake(clientConfig({ client: liar }));
    let out = ini.receive(gw.handle(sendOf(ini.start(nowSec()))) as Uint8Array, nowSec());
    out = ini.receive(gw.handle(sendOf(out)) as Uint8Array, nowSec());
    assertLpError(() => gw.handle(sendOf(out)), LpErrorCode.BAD_BINDER);
  });
});

// =====================================================================================================

describe('TCP framing', () => {
  function prefix(len: number): Uint8Array {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, len, false);
    return b;
  }

  test('FrameDecoder: length 65537 → LP_ERR_FRAME_TOO_LARGE, 0 → LP_ERR_FRAME_TOO_SHORT, 65536 accepted', () => {
    assertLpError(() => new FrameDecoder().push(prefix(65537)), LpErrorCode.FRAME_TOO_LARGE);
    assertLpError(() => new FrameDecoder().push(prefix(0xffffffff)), LpErrorCode.FRAME_TOO_LARGE);
    assertLpError(() => new FrameDecoder().push(prefix(0)), LpErrorCode.FRAME_TOO_SHORT);
    // The bad prefix is detected as soon as its 4th byte arrives.
    const d = new FrameDecoder();
    assert.deepEqual(d.push(new Uint8Array([0, 1, 0])), []);
    assertLpError(() => d.push(new Uint8Array([1])), LpErrorCode.FRAME_TOO_LARGE);
    const ok = new FrameDecoder();
    assert.deepEqual(ok.push(prefix(65536)), []);
    const frames = ok.push(new Uint8Array(65536).fill(3));
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.length, 65536);
    assert.equal(ok.pending, 0);
    // after a good frame, a bad prefix
    assertLpError(() => new FrameDecoder().push(new Uint8Array([...encodeFrame(fill(1, 5)), ...prefix(0)])), LpErrorCode.FRAME_TOO_SHORT);
    assertLpError(() => new FrameDecoder(100).push(prefix(101)), LpErrorCode.FRAME_TOO_LARGE, 'custom limit');
  });

  test('encodeFrame: 65537 bytes → LP_ERR_FRAME_TOO_LARGE; 65536 and 1 byte fine', () => {
    assertLpError(() => encodeFrame(new Uint8Array(65537)), LpErrorCode.FRAME_TOO_LARGE);
    assert.equal(encodeFrame(new Uint8Array(65536)).length, 65540);
    assert.deepEqual(encodeFrame(new Uint8Array([9])), new Uint8Array([0, 0, 0, 1, 9]));
  });

  test('several frames split at every byte boundary (and into every 2-way/3-way split) reassemble exactly', () => {
    const packets = [fill(1, 1), fill(2, 34), Uint8Array.from({ length: 300 }, (_, i) => i & 0xff), fill(4, 2), fill(5, 7)];
    const stream = new Uint8Array(packets.reduce<number[]>((acc, p) => [...acc, ...encodeFrame(p)], []));
    const collect = (chunks: Uint8Array[]): Uint8Array[] => {
      const d = new FrameDecoder();
      const out: Uint8Array[] = [];
      for (const c of chunks) out.push(...d.push(c).map((f) => new Uint8Array(f)));
      assert.equal(d.pending, 0);
      return out;
    };
    assert.deepEqual(collect([stream]), packets);
    assert.deepEqual(collect(Array.from(stream, (b) => new Uint8Array([b]))), packets, 'one byte at a time');
    for (let i = 0; i <= stream.length; i++) assert.deepEqual(collect([stream.subarray(0, i), stream.subarray(i)]), packets, `split at ${i}`);
    for (let i = 0; i <= stream.length; i += 3) {
      for (let j = i; j <= stream.length; j += 5) assert.deepEqual(collect([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]), packets, `split at ${i},${j}`);
    }
    assert.deepEqual(collect([EMPTY, stream, EMPTY]), packets, 'empty pushes are harmless');
    const partial = new FrameDecoder();
    partial.push(stream.subarray(0, 10));
    assert.equal(partial.pending, 10 - 4 - 1 - 4, 'prefixes are consumed; a partial frame body is pending');
  });
});

// =====================================================================================================

describe('session lifecycle states', () => {
  test('read-only: send → LP_ERR_SESSION_READ_ONLY (also seal/initiateSubsession); it still receives', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const { session: parent } = runHandshake(gw);
    const gwParent = gw.sessions.get(parent.receiverIndex) as Session;
    const lateFromGw = gwParent.send({ kind: 'pong', payload: fill(1, 1) }); // in flight during the rekey
    const lateKk1 = parent.seal(MessageType.SubsessionKK1, encodeSubsessionPayload(fill(0, 48))); // ditto
    const kk2 = gw.handle(parent.initiateSubsession()) as Uint8Array;
    const child = parent.receive(gw.handle(parent.receive(kk2).replies[0] as Uint8Array) as Uint8Array).promoted;
    assert.ok(child);
    assert.equal(parent.state, SessionState.ReadOnly);
    assertLpError(() => parent.send({ kind: 'ping', payload: EMPTY }), LpErrorCode.SESSION_READ_ONLY);
    assertLpError(() => parent.sendRaw(EMPTY), LpErrorCode.SESSION_READ_ONLY);
    assertLpError(() => parent.seal(MessageType.Ack, EMPTY), LpErrorCode.SESSION_READ_ONLY);
    assertLpError(() => parent.initiateSubsession(), LpErrorCode.SESSION_READ_ONLY);
    // It still answers what it receives (DESIGN.md §6: a request on a demoted session gets an Error).
    assert.equal(parent.receive(gwParent.reply({ kind: 'error', error: { code: 'LP_ERR_SESSION_READ_ONLY', message: '', retryAfterMs: null } })).delivered?.kind, 'error');
    assert.equal(parent.receive(lateFromGw).delivered?.kind, 'pong', 'demoted session still reads');
    // A KK1 reaching a read-only session cannot be answered (checked before its payload is even decoded).
    assertLpError(() => gwParent.receive(lateKk1), LpErrorCode.SESSION_READ_ONLY);
  });

  test('closed: receive → LP_ERR_SESSION_CLOSED, send → LP_ERR_SESSION_CLOSED; close is idempotent', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const { session: client } = runHandshake(gw);
    const gws = gw.sessions.get(client.receiverIndex) as Session;
    const p = client.send({ kind: 'ping', payload: EMPTY });
    gws.close();
    gws.close();
    assert.equal(gws.state, SessionState.Closed);
    assertLpError(() => gws.receive(p), LpErrorCode.SESSION_CLOSED);
    assertLpError(() => gws.receive(fill(0, 3)), LpErrorCode.SESSION_CLOSED, 'checked before parsing');
    assertLpError(() => gws.send({ kind: 'pong', payload: EMPTY }), LpErrorCode.SESSION_CLOSED);
    assertLpError(() => gws.initiateSubsession(), LpErrorCode.SESSION_CLOSED);
    client.close();
    assertLpError(() => client.send({ kind: 'ping', payload: EMPTY }), LpErrorCode.SESSION_CLOSED);
  });

  test('initiateSubsession twice → LP_ERR_SUBSESSION_IN_PROGRESS; a KK2 while awaiting confirmation is LP_ERR_INVALID_STATE', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const { session: client } = runHandshake(gw);
    const kk1 = client.initiateSubsession();
    assertLpError(() => client.initiateSubsession(), LpErrorCode.SUBSESSION_IN_PROGRESS);
    const kk2 = gw.handle(kk1) as Uint8Array;
    client.receive(kk2);
    assertLpError(() => client.initiateSubsession(), LpErrorCode.SUBSESSION_IN_PROGRESS, 'still in progress while awaiting confirmation');
    const gws = gw.sessions.get(client.receiverIndex) as Session;
    assertLpError(() => client.receive(gws.seal(MessageType.SubsessionKK2, encodeSubsessionPayload(fill(0, 48)))), LpErrorCode.INVALID_STATE);
    assertLpError(() => client.receive(gws.seal(MessageType.SubsessionKK1, encodeSubsessionPayload(fill(0, 48)))), LpErrorCode.SUBSESSION_IN_PROGRESS, 'KK1 while our promotion awaits confirmation');
  });

  test('a promotion Ack under the new index must authenticate with the new keys', () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const { session: client } = runHandshake(gw);
    const ready = client.receive(gw.handle(client.initiateSubsession()) as Uint8Array).replies[0] as Uint8Array;
    const ack = gw.handle(ready) as Uint8Array;
    assert.notEqual(parseHeader(ack).receiverIndex, client.receiverIndex, 'the Ack travels under the proposed index');
    assertLpError(() => client.receive(flip(ack, 20)), LpErrorCode.AEAD_TAG_MISMATCH);
    assert.equal(client.state, SessionState.SubsessionHandshaking);
    assert.ok(client.receive(ack).promoted);
  });
});
