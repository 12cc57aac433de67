/**
 * In-memory end to end: client and gateway state machines complete the handshake, register, exchange
 * 1,000 data messages each way, rekey (also with simultaneous initiation); afterwards the old session
 * only reads and the new one works.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  InitiatorHandshake,
  LpErrorCode,
  MessageType,
  Session,
  SessionState,
  defaultSuite,
  type AppMessage,
  type InitiatorConfig,
  parseHeader,
} from '../../src/core/index.js';
import { MemoryGateway } from '../helpers/memory-gateway.js';
import { clientKeys, gatewayKeys } from '../helpers/fixtures.js';

const now = () => Math.floor(Date.now() / 1000);

function clientConfig(extra: Partial<InitiatorConfig> = {}): InitiatorConfig {
  return { suite: defaultSuite, client: clientKeys, gateway: { ed25519Public: gatewayKeys.ed25519.publicKey, kemKeyHash: gatewayKeys.kemKeyHash }, ...extra };
}

/** Drive a handshake to completion against `gw`; returns the client session and the packets sent. */
export function handshake(gw: MemoryGateway, cfg = clientConfig()): { session: Session; sent: Uint8Array[] } {
  const hs = new InitiatorHandshake(cfg);
  let out = hs.start(now());
  const sent: Uint8Array[] = [];
  for (let i = 0; i < 10; i++) {
    if (out.kind === 'established') return { session: out.session, sent };
    assert.equal(out.kind, 'send');
    if (out.kind !== 'send') break;
    sent.push(out.packet);
    const reply = gw.handle(out.packet);
    assert.ok(reply, `gateway replied to step ${i}`);
    out = hs.receive(reply, now());
  }
  throw new Error('handshake did not complete');
}

function roundTrip(gw: MemoryGateway, s: Session, msg: AppMessage): AppMessage {
  const reply = gw.handle(s.send(msg));
  assert.ok(reply, 'gateway replied');
  const out = s.receive(reply);
  assert.ok(out.delivered, 'reply delivered');
  return out.delivered;
}

test('handshake completes with the sizes of the profile and the gateway holds one session', () => {
  const gw = new MemoryGateway(defaultSuite, gatewayKeys);
  const { session, sent } = handshake(gw);
  assert.deepEqual(
    sent.map((p) => p.length),
    [134, 253, 1188, 98],
    'ClientHello, KKTRequest (hello ‖ token ‖ signed frame), msg1 (KEM ciphertext + Noise e,es + binder), msg3',
  );
  assert.equal(gw.sessions.size, 1);
  assert.equal(gw.handshakes.size, 0);
  const gwSession = gw.sessions.get(session.receiverIndex) as Session;
  assert.deepEqual(gwSession.handshakeHash, session.handshakeHash);
  const wg = new Uint8Array(32).fill(9);
  assert.deepEqual(gwSession.wireguardPsk(wg), session.wireguardPsk(wg), 'both sides derive the same WireGuard PSK');
});

test('registration request/response and 1,000 data messages each way', () => {
  const gw = new MemoryGateway(defaultSuite, gatewayKeys);
  gw.onDeliver = (s, msg) => {
    if (msg.kind === 'register') {
      return s.reply({
        kind: 'registerResponse',
        response: {
          success: true,
          error: null,
          gatewayData: { publicKey: new Uint8Array(32).fill(7), endpoint: { family: 4, address: new Uint8Array([10, 0, 0, 1]), port: 51820 }, privateIpv4: new Uint8Array([10, 1, 0, 2]), privateIpv6: new Uint8Array(16).fill(1) },
          allocatedBandwidth: 1073741824n,
        },
      });
    }
    if (msg.kind === 'ping') return s.reply({ kind: 'pong', payload: msg.payload });
    return null;
  };
  const { session } = handshake(gw);
  const reg = roundTrip(gw, session, {
    kind: 'register',
    request: { mode: { kind: 'dvpn', wgPublicKey: new Uint8Array(32).fill(5) }, credential: { kind: 'mock', blob: new Uint8Array([1, 2, 3]) }, ticketType: 2, timestamp: BigInt(now()) },
  });
  assert.equal(reg.kind, 'registerResponse');
  assert.equal(reg.kind === 'registerResponse' && reg.response.success, true);
  for (let i = 0; i < 1000; i++) {
    const payload = new Uint8Array(16).fill(i & 0xff);
    const r = roundTrip(gw, session, { kind: 'ping', payload });
    assert.equal(r.kind, 'pong');
    assert.deepEqual(r.kind === 'pong' && new Uint8Array(r.payload), payload);
  }
  assert.equal(gw.delivered.length, 1001);
});

test('rekey: KK1 → KK2 → Ready → Ack in the new session; old session only reads, new one works', () => {
  const gw = new MemoryGateway(defaultSuite, gatewayKeys);
  const { session: parent } = handshake(gw);
  const gwParent = gw.sessions.get(parent.receiverIndex) as Session;

  const kk2 = gw.handle(parent.initiateSubsession());
  assert.ok(kk2);
  assert.equal(parent.state, SessionState.SubsessionHandshaking);
  // Data still flows on the parent while the subsession is in progress.
  assert.equal(roundTrip(gw, parent, { kind: 'ping', payload: new Uint8Array([1]) }).kind, 'pong');
  const ready = parent.receive(kk2).replies[0] as Uint8Array;
  assert.equal(parent.state, SessionState.SubsessionHandshaking, 'parent is not demoted before the gateway confirms the index');
  const ack = gw.handle(ready);
  assert.ok(ack);
  const out = parent.receive(ack);
  const child = out.promoted as Session;
  assert.ok(child, 'promotion confirmed by an Ack in the new session');
  assert.equal(parseHeader(ack).receiverIndex, child.receiverIndex);
  assert.notEqual(child.receiverIndex, parent.receiverIndex);
  assert.equal(child.generation, 1);
  assert.equal(parent.state, SessionState.ReadOnly);
  assert.equal(gwParent.state, SessionState.ReadOnly);

  // New session works both ways.
  for (let i = 0; i < 10; i++) assert.equal(roundTrip(gw, child, { kind: 'ping', payload: new Uint8Array([i]) }).kind, 'pong');
  // Old session refuses to send on both sides, but still reads.
  assert.throws(() => parent.send({ kind: 'ping', payload: new Uint8Array(1) }), { code: LpErrorCode.SESSION_READ_ONLY });
  assert.throws(() => gwParent.send({ kind: 'pong', payload: new Uint8Array(1) }), { code: LpErrorCode.SESSION_READ_ONLY });
  // Different keys per generation: the child's outer ciphertext of the same message differs from the parent's.
  assert.notDeepEqual(child.handshakeHash, parent.handshakeHash);

  // Second generation rekey from the child.
  const kk2b = gw.handle(child.initiateSubsession()) as Uint8Array;
  const readyB = child.receive(kk2b).replies[0] as Uint8Array;
  const grandchild = child.receive(gw.handle(readyB) as Uint8Array).promoted as Session;
  assert.equal(grandchild.generation, 2);
  assert.equal(roundTrip(gw, grandchild, { kind: 'ping', payload: new Uint8Array([2]) }).kind, 'pong');
});

test('rekey: a proposed index that collides is answered with Collision and the parent stays live', () => {
  const gw = new MemoryGateway(defaultSuite, gatewayKeys);
  const { session: parent } = handshake(gw);
  const { session: other } = handshake(gw);
  const kk2 = gw.handle(parent.initiateSubsession()) as Uint8Array;
  const ready = parent.receive(kk2).replies[0] as Uint8Array;
  assert.ok(ready);
  const gwParent = gw.sessions.get(parent.receiverIndex) as Session;
  // Deliver the Ready to the gateway session with a table in which every proposed index is taken.
  const proposed = new DataView(ready.buffer, ready.byteOffset).getUint32(0, true);
  assert.equal(proposed, parent.receiverIndex, 'Ready travels on the parent index');
  const collide = gwParent.receive(ready, { indexInUse: () => true });
  assert.equal(collide.promoted, undefined);
  assert.equal(gwParent.state, SessionState.SubsessionHandshaking, 'gateway parent not demoted on collision');
  const retry = parent.receive(collide.replies[0] as Uint8Array, { indexInUse: (i) => i === other.receiverIndex });
  assert.equal(retry.indexCollision, true);
  const ack = gw.handle(retry.replies[0] as Uint8Array) as Uint8Array;
  const child = parent.receive(ack).promoted as Session;
  assert.ok(child);
  assert.equal(roundTrip(gw, child, { kind: 'ping', payload: new Uint8Array([3]) }).kind, 'pong');
});

test('rekey with simultaneous initiation: lower static key yields, both end on the same new session', () => {
  const gw = new MemoryGateway(defaultSuite, gatewayKeys);
  const { session: client } = handshake(gw);
  const gwSession = gw.sessions.get(client.receiverIndex) as Session;

  const clientKk1 = client.initiateSubsession();
  const gwKk1 = gwSession.initiateSubsession();
  const clientLower = Buffer.compare(Buffer.from(clientKeys.x25519.publicKey), Buffer.from(gatewayKeys.x25519.publicKey)) < 0;

  const atGw = gwSession.receive(clientKk1);
  const atClient = client.receive(gwKk1);
  const [winnerReply, loserReply] = clientLower ? [atGw, atClient] : [atClient, atGw];
  assert.equal(parseTypeOf(winnerReply.replies[0] as Uint8Array, clientLower ? client : gwSession), MessageType.SubsessionAbort);
  assert.equal(loserReply.subsessionAccepted, true);

  const [winner, loser] = clientLower ? [gwSession, client] : [client, gwSession];
  // The loser's Abort arrives (ignored), then the loser's KK2 reaches the winner.
  loser.receive(winnerReply.replies[0] as Uint8Array);
  const ready = winner.receive(loserReply.replies[0] as Uint8Array).replies[0] as Uint8Array;
  const confirmed = loser.receive(ready, { indexInUse: (i) => gw.indexInUse(i) });
  const loserChild = confirmed.promoted as Session;
  assert.ok(loserChild);
  const winnerChild = winner.receive(confirmed.replies[0] as Uint8Array).promoted as Session;
  assert.ok(winnerChild);
  assert.equal(winnerChild.receiverIndex, loserChild.receiverIndex);
  assert.equal(client.state, SessionState.ReadOnly);
  assert.equal(gwSession.state, SessionState.ReadOnly);
  const [clientChild, gwChild] = clientLower ? [loserChild, winnerChild] : [winnerChild, loserChild];
  const p = gwChild.receive(clientChild.send({ kind: 'ping', payload: new Uint8Array([42]) }));
  assert.equal(p.delivered?.kind, 'ping');
  const q = clientChild.receive(gwChild.send({ kind: 'pong', payload: new Uint8Array([43]) }));
  assert.equal(q.delivered?.kind, 'pong');
});

/** Decrypt-free type check: open a packet sealed by `sender` using the receiver-side view. */
function parseTypeOf(packet: Uint8Array, _sender: Session): number {
  // Abort is the only 34-byte sealed packet a session sends in reply to KK1.
  return packet.length === 34 ? MessageType.SubsessionAbort : -1;
}
