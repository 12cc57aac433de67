/**
 * Regression tests for bugs found in src/core by the negative and property suites (all fixed):
 * message 1 not bound to the ClientHello key, errorMessage() limits in UTF-16 units instead of UTF-8
 * bytes, a leading BOM dropped by the string decoder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  InitiatorHandshake,
  LpError,
  LpErrorCode,
  MessageType,
  NOISE_PATTERN,
  ResponderStage,
  type ResponderHandshake,
  decodeAppMessage,
  decodeForwardPacketData,
  defaultSuite,
  encodeAppMessage,
  encodeForwardPacketData,
  encodeHandshake1,
  errorMessage,
  parseClear,
  serializeClear,
} from '../../src/core/index.js';
import { HandshakeState } from '../../src/core/noise/index.js';
import { MemoryGateway } from '../helpers/memory-gateway.js';
import { fill, gatewayKeys } from '../helpers/fixtures.js';
import { clientConfig, nowSec } from '../helpers/core-builders.js';

const { prims, kem } = defaultSuite;

function send(out: { kind: string; packet?: Uint8Array }): Uint8Array {
  assert.equal(out.kind, 'send');
  assert.ok(out.packet);
  return out.packet;
}

function assertLpError(fn: () => unknown, code: LpErrorCode, message?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LpError, `expected an LpError, got ${String(e)}`);
    assert.equal(e.code, code, message ?? e.message);
    return true;
  });
}

test(
  'msg1 binder: a message 1 with an altered KEM ciphertext is rejected and leaves the handshake as it was',
  () => {
    const ini = new InitiatorHandshake(clientConfig());
    const now = nowSec();
    const gw = new MemoryGateway(defaultSuite, gatewayKeys, () => now);
    const ack = gw.handle(send(ini.start(now))) as Uint8Array;
    const kktResponse = gw.handle(send(ini.receive(ack, now))) as Uint8Array;
    const resp = gw.handshakes.get(ini.receiverIndex) as ResponderHandshake;
    const msg1 = send(ini.receive(kktResponse, now));
    const tampered = new Uint8Array(msg1);
    const at = 18 + 2 + 100; // a byte of the ML-KEM ciphertext (cleartext, unauthenticated)
    tampered[at] = (tampered[at] as number) ^ 0x01;
    // DESIGN.md §4.3: the binder covers the ciphertext, so the tampered message is refused before decapsulation.
    assertLpError(() => resp.receive(tampered), LpErrorCode.BAD_BINDER);
    assert.equal(resp.stage, ResponderStage.AwaitMsg1);
    // and the genuine message 1 still completes the handshake
    const msg2 = resp.receive(msg1).reply as Uint8Array;
    const msg3 = send(ini.receive(msg2, now));
    assert.ok(resp.receive(msg3).session);
  },
);

test(
  'msg1 binder: a third party who knows only the receiver index cannot kill a pending handshake with its own message 1',
  () => {
    const gw = new MemoryGateway(defaultSuite, gatewayKeys);
    const ini = new InitiatorHandshake(clientConfig());
    let out = ini.receive(gw.handle(send(ini.start(nowSec()))) as Uint8Array, nowSec());
    const kktResponse = gw.handle(send(out)) as Uint8Array;
    // The attacker saw the (cleartext) receiver index go by and uses only public data: the gateway's KEM key
    // (from any KKTResponse or its descriptor) and its static X25519 key (from its Ed25519 identity).
    const gwX25519 = prims.ed25519PkToX25519(gatewayKeys.ed25519.publicKey);
    const { ciphertext } = kem.encapsulate(gatewayKeys.kem.publicKey, fill(0x66, 32));
    const attacker = new HandshakeState(prims, { pattern: NOISE_PATTERN, initiator: true, s: prims.x25519FromSecret(fill(0x77, 32)), rs: gwX25519, psks: [fill(0x88, 32)] });
    const forged = serializeClear({ receiverIndex: ini.receiverIndex, counter: 0, type: MessageType.Handshake, content: encodeHandshake1(ciphertext, attacker.writeMessage(new Uint8Array(0)), fill(0x99, 16)) });
    // Without the client's static secret the attacker cannot compute the binder.
    assertLpError(() => gw.handle(forged), LpErrorCode.BAD_BINDER);
    out = ini.receive(kktResponse, nowSec());
    const msg2 = gw.handle(send(out));
    assert.ok(msg2);
    out = ini.receive(msg2, nowSec());
    out = ini.receive(gw.handle(send(out)) as Uint8Array, nowSec());
    assert.equal(out.kind, 'established');
  },
);

test(
  'errorMessage: errorMessage() output always decodes (limits are UTF-8 bytes, not UTF-16 units)',
  () => {
    for (const message of ['é'.repeat(1024), 'a'.repeat(1023) + '😀', '€'.repeat(400)]) {
      const m = errorMessage('LP_ERR_X', message);
      const back = decodeAppMessage(encodeAppMessage(m));
      assert.equal(back.kind, 'error');
    }
    // A code over 64 bytes must be refused when the message is built, not by the peer's decoder.
    assertLpError(() => errorMessage('É'.repeat(40), 'x'), LpErrorCode.ENCODE_BAD_VALUE);
  },
);

test(
  'utf-8: bincode strings keep a leading U+FEFF (decoding is canonical, as Rust String::from_utf8)',
  () => {
    const code = '\uFEFFLP_ERR_X';
    const bytes = encodeAppMessage({ kind: 'error', error: { code, message: '\uFEFFm', retryAfterMs: null } });
    const back = decodeAppMessage(bytes);
    assert.equal(back.kind === 'error' && back.error.code, code);
    assert.deepEqual(encodeAppMessage(back), bytes, 'decode → encode is the identity');
    const fwd = { targetGatewayIdentity: fill(1, 32), targetLpAddress: '\uFEFF192.0.2.1:41264', innerPacketBytes: fill(2, 34) };
    assert.equal(decodeForwardPacketData(encodeForwardPacketData(fwd)).targetLpAddress, fwd.targetLpAddress);
    assert.equal(parseClear(serializeClear({ receiverIndex: 1, counter: 0, type: MessageType.ForwardPacket, content: encodeForwardPacketData(fwd) })).content.length, 32 + 8 + 18 + 8 + 34);
  },
);
