/**
 * Gateway freshness (issue 12.2, DESIGN.md §5.1): a recorded ClientHello, KKTRequest and message 1 replayed into a
 * restarted gateway (same long-term keys) within the timestamp window must not make it seal anything under a key
 * an earlier reply used. The recorded handshake's r2i key is rebuilt from the gateway's own keys (KEM decapsulation,
 * static DH, the recorded T1), checked against the recorded message 2, and every sealed reply the replays draw is
 * checked against it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  InitiatorHandshake,
  LpError,
  LpErrorCode,
  MessageType,
  NOISE_MSG1_LEN,
  type GatewayKeys,
  decodeHandshake1,
  decodeKktResponseContent,
  defaultSuite,
  derivePsk,
  kktTranscriptHash,
  openPacket,
  outerKeys,
  parseClear,
  parseHeader,
  serializeClear,
} from '../../src/core/index.js';
import { MemoryGateway } from '../helpers/memory-gateway.js';
import { gatewayKeys } from '../helpers/fixtures.js';
import { clientConfig } from '../helpers/core-builders.js';

const { prims, kem } = defaultSuite;
const NOW = Math.floor(Date.now() / 1000);

interface Recorded {
  hello: Uint8Array;
  kktRequest: Uint8Array;
  kktResponse: Uint8Array;
  msg1: Uint8Array;
  msg2: Uint8Array;
}

function record(gw: MemoryGateway): Recorded {
  const ini = new InitiatorHandshake(clientConfig());
  const step = (out: ReturnType<InitiatorHandshake['start']>): Uint8Array => {
    assert.equal(out.kind, 'send');
    return (out as { packet: Uint8Array }).packet;
  };
  const hello = step(ini.start(NOW));
  const ack = gw.handle(hello) as Uint8Array;
  const kktRequest = step(ini.receive(ack, NOW));
  const kktResponse = gw.handle(kktRequest) as Uint8Array;
  const msg1 = step(ini.receive(kktResponse, NOW));
  const msg2 = gw.handle(msg1) as Uint8Array;
  step(ini.receive(msg2, NOW));
  return { hello, kktRequest, kktResponse, msg1, msg2 };
}

/** The r2i key of a recorded handshake, from the gateway's long-term keys and the recorded packets alone. */
function rebuildR2i(keys: GatewayKeys, r: Recorded): Uint8Array {
  const req = parseClear(r.kktRequest).content;
  const hello = req.subarray(0, 100);
  const token = req.subarray(100, 132);
  const requestFrame = req.subarray(132, 132 + 87);
  const { frame, gatewayNonce } = decodeKktResponseContent(parseClear(r.kktResponse).content);
  const { kemCiphertext } = decodeHandshake1(parseClear(r.msg1).content, kem.ciphertextLength, NOISE_MSG1_LEN);
  const clientX25519 = hello.subarray(4, 36);
  const psk = derivePsk(prims, {
    kemSharedSecret: kem.decapsulate(kemCiphertext, keys.kem.secretKey),
    staticDh: prims.x25519(keys.x25519.secretKey, clientX25519),
    transcript: kktTranscriptHash(prims, hello, token, requestFrame, frame, gatewayNonce),
    kemCiphertext,
  });
  return outerKeys(prims, psk).r2i;
}

/** Feed `packet` to `gw`; the reply, or the code it was dropped with. */
function tryHandle(gw: MemoryGateway, packet: Uint8Array): Uint8Array | string {
  try {
    return gw.handle(packet) ?? 'no reply';
  } catch (e) {
    if (e instanceof LpError) return e.code;
    throw e;
  }
}

function assertNotUnder(key: Uint8Array, reply: Uint8Array | string, what: string): void {
  if (typeof reply === 'string') return;
  assert.throws(() => openPacket(prims, key, reply), (e: unknown) => e instanceof LpError && e.code === LpErrorCode.AEAD_TAG_MISMATCH, `${what}: sealed under the recorded key`);
}

test('the recorded r2i key rebuilt from the gateway keys opens the recorded message 2 at counter 0 (the check below can fail)', () => {
  const r = record(new MemoryGateway(defaultSuite, gatewayKeys, () => NOW));
  const p = openPacket(prims, rebuildR2i(gatewayKeys, r), r.msg2);
  assert.equal(p.type, MessageType.Handshake);
  assert.equal(p.counter, 0);
});

test('replayed into a restarted gateway: the old token is refused (BAD_TOKEN), nothing is sealed, nothing kept', () => {
  const r = record(new MemoryGateway(defaultSuite, gatewayKeys, () => NOW));
  const r2i = rebuildR2i(gatewayKeys, r);
  const restarted = new MemoryGateway(defaultSuite, gatewayKeys, () => NOW + 5);
  const ack = tryHandle(restarted, r.hello);
  assert.ok(typeof ack !== 'string' && parseClear(ack).type === MessageType.Ack, 'the hello is answered (statelessly) with a new token');
  assert.equal(tryHandle(restarted, r.kktRequest), LpErrorCode.BAD_TOKEN);
  // With padding varied (the unsigned bytes an attacker controls): still the old token.
  const repadded = serializeClear({ ...parseClear(r.kktRequest), content: new Uint8Array([...parseClear(r.kktRequest).content, 0, 0]) });
  assert.equal(tryHandle(restarted, repadded), LpErrorCode.BAD_TOKEN);
  const m1 = tryHandle(restarted, r.msg1);
  assert.equal(m1, 'no reply', 'message 1 for an index the restarted gateway does not know is dropped');
  assertNotUnder(r2i, m1, 'message 1 replay');
  assert.equal(restarted.handshakes.size, 0);
});

test('even with the token secret kept (handshake evicted, same process), a replay gets a new gateway nonce and its message 1 is refused', () => {
  const gw = new MemoryGateway(defaultSuite, gatewayKeys, () => NOW);
  const r = record(gw);
  const r2i = rebuildR2i(gatewayKeys, r);
  gw.handshakes.clear(); // as after TTL or eviction: the token is still valid, the handshake state is gone
  const again = tryHandle(gw, r.kktRequest);
  assert.ok(typeof again !== 'string' && parseClear(again).type === MessageType.KKTResponse);
  assert.notDeepEqual(decodeKktResponseContent(parseClear(again).content).gatewayNonce, decodeKktResponseContent(parseClear(r.kktResponse).content).gatewayNonce, 'a fresh gateway nonce');
  // The recorded message 1 is bound (binder over T1) to the old nonce: refused before decapsulation, nothing sealed.
  const m1 = tryHandle(gw, r.msg1);
  assert.equal(m1, LpErrorCode.BAD_BINDER);
  assertNotUnder(r2i, m1, 'message 1 replay');
  // Varying the unsigned padding changes nothing that is signed or keyed: same result, and no counter moves.
  gw.handshakes.clear();
  const repadded = serializeClear({ ...parseClear(r.kktRequest), content: new Uint8Array([...parseClear(r.kktRequest).content, 0, 0, 0]) });
  const again2 = tryHandle(gw, repadded);
  assert.ok(typeof again2 !== 'string');
  assert.equal(parseHeader(again2).counter, 0);
  assert.equal(tryHandle(gw, r.msg1), LpErrorCode.BAD_BINDER);
});

test('a replayed handshake cannot reach message 2 under a recorded key by any order of the recorded packets', () => {
  const r = record(new MemoryGateway(defaultSuite, gatewayKeys, () => NOW));
  const r2i = rebuildR2i(gatewayKeys, r);
  const gw = new MemoryGateway(defaultSuite, gatewayKeys, () => NOW + 10);
  const seq = [r.hello, r.kktRequest, r.msg1, r.hello, r.msg1, r.kktRequest, r.msg1];
  for (const [i, p] of seq.entries()) assertNotUnder(r2i, tryHandle(gw, p), `replay step ${i}`);
  assert.equal(gw.handshakes.size, 0);
  assert.equal(gw.sessions.size, 0);
});
