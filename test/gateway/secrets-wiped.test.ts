/**
 * Secrets are wiped where the library allows (issue 13, F9), checked in process on the objects themselves:
 * an abandoned handshake (evicted, expired, failed or cleared at shutdown) zeroes its outer keys and its cached
 * request and reply; a closed session zeroes all its 32-byte values; the application handler zeroes the
 * WireGuard PSK it derived once the registrar (which keeps and wipes its own copy) is done.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InitiatorHandshake, type RegisterRequest, type RegisterResponse, ResponderHandshake, type Session, defaultSuite } from '../../src/core/index.js';
import { GatewayAppHandler, type Registrar } from '../../src/gateway/app-handler.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { SessionTables } from '../../src/gateway/tables.js';
import { clientConfig, nowSec, sessionPair } from '../helpers/core-builders.js';
import { gatewayKeys } from '../helpers/fixtures.js';
import { MemoryGateway } from '../helpers/memory-gateway.js';
import { mockDvpnRequest } from '../helpers/lp-e2e.js';

const allZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

/** A gateway-side handshake that answered message 1 (outer keys exist) and then was abandoned by its client. */
function abandonedHandshake(): { hs: ResponderHandshake; secrets: Uint8Array[] } {
  const gw = new MemoryGateway(defaultSuite, gatewayKeys);
  const client = new InitiatorHandshake(clientConfig());
  let out = client.start(nowSec());
  for (let i = 0; i < 3; i++) {
    assert.ok(out.kind === 'send');
    const reply = gw.handle(out.packet);
    assert.ok(reply);
    if (i < 2) out = client.receive(reply, nowSec());
  }
  const hs = [...gw.handshakes.values()][0] as ResponderHandshake;
  const inside = hs as unknown as { keys: { i2r: Uint8Array; r2i: Uint8Array } | null; lastRequest: Uint8Array | null; lastReply: Uint8Array | null; transcript: Uint8Array | null };
  assert.ok(inside.keys && inside.lastRequest && inside.lastReply && inside.transcript, 'the handshake holds outer keys, the transcript hash and a cached message 1 and message 2');
  const secrets = [inside.keys.i2r, inside.keys.r2i, inside.lastRequest, inside.lastReply, inside.transcript];
  for (const b of secrets) assert.ok(!allZero(b));
  return { hs, secrets };
}

const limits = { maxHandshakes: 1, maxSessions: 1, handshakeTtlSec: 90, sessionIdleTtlSec: 3600, demotedIdleTtlSec: 60 };

describe('F9: secrets wiped', () => {
  test('an abandoned handshake pushed out of a full table zeroes its outer keys and cached request and reply', () => {
    const tables = new SessionTables(limits);
    const first = abandonedHandshake();
    tables.handshakes.set(first.hs.receiverIndex, first.hs);
    const second = abandonedHandshake();
    tables.handshakes.set(second.hs.receiverIndex + 1, second.hs); // evicts the first
    for (const b of first.secrets) assert.ok(allZero(b), 'evicted handshake wiped');
    tables.clear(); // shutdown
    for (const b of second.secrets) assert.ok(allZero(b), 'cleared handshake wiped');
  });

  test('a closed session zeroes its keys, secret, handshake hash and peer key (evicted, cleared, or closed)', () => {
    const tables = new SessionTables(limits);
    const mem = (s: Session): Uint8Array => (s as unknown as { mem: Uint8Array }).mem;
    const a = sessionPair('wipe-a', 11).gateway;
    const b = sessionPair('wipe-b', 12).gateway;
    assert.ok(!allZero(mem(a)) && !allZero(mem(b)));
    tables.sessions.set(11, a);
    tables.sessions.set(12, b); // evicts a
    assert.ok(allZero(mem(a)), 'evicted session wiped');
    tables.clear();
    assert.ok(allZero(mem(b)), 'cleared session wiped');
  });

  test("the application handler zeroes the WireGuard PSK after the registrar returns", async () => {
    let seen: Uint8Array | null = null;
    let nonZeroDuringCall = false;
    const registrar: Registrar = {
      register(_req: RegisterRequest, ctx): RegisterResponse {
        seen = ctx.wireguardPsk;
        nonZeroDuringCall = !allZero(ctx.wireguardPsk);
        return { success: false, error: { code: 'LPGW_ERR_TEST', message: 'test', retryAfterMs: null }, gatewayData: null, allocatedBandwidth: 0n };
      },
    };
    const handler = new GatewayAppHandler(registrar, null, new GatewayMetrics({ processMetrics: false }));
    await handler.handle({ kind: 'register', request: mockDvpnRequest() }, { src: { transport: 'udp', address: '127.0.0.1', port: 1 }, session: 1, wireguardPsk: () => new Uint8Array(32).fill(7) });
    assert.ok(seen && nonZeroDuringCall, 'the registrar got the PSK');
    assert.ok(allZero(seen), "the handler's copy is wiped");
  });
});
