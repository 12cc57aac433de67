/**
 * The gateway's per-packet work without sockets, in this process: EncryptedData Pings from established client
 * sessions through the Dispatcher, an in-thread LocalShard and the application handler, exactly as the UDP
 * listener hands them over; only the gateway's side is timed (the client's packets are sealed beforehand and
 * its replies are checked afterwards). Next to it, the crypto floor of that work: the four ChaCha20-Poly1305
 * operations of a round trip (outer open, Noise open, Noise seal, outer seal) on the same sizes; and the cost of a
 * forged packet for a live session (its index and counter, a wrong tag).
 * Used for A/B comparisons of hot-path changes and in the round-trip section's breakdown.
 */
import { cpuUsage } from 'node:process';
import {
  KKT_UDP_PAD_TO,
  InitiatorHandshake,
  defaultSuite,
  clientKeysFromSeed,
  gatewayKeysFromSeeds,
  type Session,
} from '../../src/core/index.js';
import { GatewayAppHandler } from '../../src/gateway/app-handler.js';
import { Dispatcher } from '../../src/gateway/dispatcher.js';
import { GatewayMetrics } from '../../src/gateway/metrics.js';
import { TokenBucketLimiter } from '../../src/gateway/rate-limit.js';
import { LocalShard, type PacketSource } from '../../src/gateway/shard.js';
import { prometheusShardMetrics } from '../../src/gateway/shard-metrics.js';
import { silentLogger } from '../../src/log.js';

const { prims } = defaultSuite;

function cpuMicros(): number {
  const u = cpuUsage();
  return u.user + u.system;
}

export interface PacketPathFigures {
  /** Gateway CPU per Ping (Dispatcher → shard → app → sealed Pong), µs. */
  usPerPacket: number;
  /** Four ChaCha20-Poly1305 operations of the same sizes, µs. */
  aeadFloorUs: number;
  /** Gateway CPU per forged packet: a live session's index and counter, a wrong tag (dropped and counted), µs. */
  forgedUs: number;
}

export async function packetPath(sessions = 32, packetsPerRound = 4000, rounds = 10, payload = 64): Promise<PacketPathFigures> {
  const metrics = new GatewayMetrics();
  const keys = gatewayKeysFromSeeds(defaultSuite, { ed25519Seed: prims.randomBytes(32), kemSeed: prims.randomBytes(64) });
  const app = new GatewayAppHandler({ register: () => Promise.reject(new Error('no registrations here')) }, null, metrics);
  const shard = new LocalShard({
    suite: defaultSuite,
    keys,
    limits: { maxHandshakes: 1000, maxSessions: 100_000, handshakeTtlSec: 90, sessionIdleTtlSec: 86_400, demotedIdleTtlSec: 60 },
    timestampToleranceSec: 30,
    app,
    metrics: prometheusShardMetrics(metrics),
    logger: silentLogger(),
  });
  const limiter = (): TokenBucketLimiter => new TokenBucketLimiter(1e9, 1e9);
  const dispatcher = new Dispatcher([shard], { helloLimiters: { tcp: limiter(), udp: limiter() }, timestampToleranceSec: 30 }, metrics);
  const clients: { session: Session; src: PacketSource }[] = [];
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < sessions; i++) {
    const src: PacketSource = { transport: 'udp', address: '127.0.0.1', port: 40000 + i };
    // Padded as every UDP client pads its KKTRequest (a shorter one is not answered over UDP, DESIGN.md §4.2).
    const hs = new InitiatorHandshake({ suite: defaultSuite, client: clientKeysFromSeed(defaultSuite, prims.randomBytes(32)), gateway: { ed25519Public: keys.ed25519.publicKey, kemKeyHash: keys.kemKeyHash }, kktPadTo: KKT_UDP_PAD_TO });
    let out = hs.start(now);
    while (out.kind === 'send') {
      const r = await dispatcher.onPacket(out.packet, src);
      if (!r.reply) throw new Error('handshake step unanswered');
      out = hs.receive(r.reply, now);
    }
    if (out.kind !== 'established') throw new Error('handshake did not complete');
    clients.push({ session: out.session, src });
  }
  const body = new Uint8Array(payload).fill(7);
  /** A round's Pings, the sessions taking turns; `forged` flips each one's last byte (the outer tag's). */
  const pings = (forged: boolean): { c: (typeof clients)[number]; packet: Uint8Array }[] =>
    Array.from({ length: packetsPerRound }, (_, i) => {
      const c = clients[i % sessions] as (typeof clients)[number];
      const packet = c.session.send({ kind: 'ping', payload: body });
      if (forged) packet[packet.length - 1] = (packet[packet.length - 1] as number) ^ 1;
      return { c, packet };
    });
  let gatewayUs = 0;
  let packets = 0;
  for (let r = 0; r <= rounds; r++) {
    const batch = pings(false);
    const replies: (Uint8Array | null)[] = new Array<Uint8Array | null>(batch.length);
    const t0 = cpuMicros();
    // As the listener does: every datagram of a turn handed over, then the replies as their promises settle.
    // A Ping's result comes synchronously; anything asynchronous is awaited after the turn, as the listener does.
    const pending: Promise<void>[] = [];
    for (let i = 0; i < batch.length; i++) {
      const b = batch[i] as (typeof batch)[number];
      const r = dispatcher.onPacket(b.packet, b.c.src);
      if (r instanceof Promise) pending.push(r.then((x) => void (replies[i] = x.reply)));
      else replies[i] = r.reply;
    }
    await Promise.all(pending);
    const dt = cpuMicros() - t0;
    if (r > 0) {
      gatewayUs += dt; // round 0 warms up
      packets += batch.length;
    }
    for (let i = 0; i < batch.length; i++) {
      const reply = replies[i];
      const b = batch[i] as (typeof batch)[number];
      if (!reply) throw new Error('a Ping got no reply');
      const got = b.c.session.receive(reply);
      if (got.delivered?.kind !== 'pong') throw new Error('the reply is not a Pong');
    }
  }
  // Forged packets: what anyone who saw a session's cleartext index can send at will. A real Ping with its outer
  // tag altered: parsed, its session looked up, its counter checked, its tag refused.
  let forgedUs = 0;
  let forged = 0;
  for (let r = 0; r <= rounds; r++) {
    const batch = pings(true);
    const t0 = cpuMicros();
    let answered = 0;
    for (const b of batch) {
      const r0 = dispatcher.onPacket(b.packet, b.c.src);
      if ((r0 instanceof Promise ? await r0 : r0).reply) answered++;
    }
    const dt = cpuMicros() - t0;
    if (answered) throw new Error('a forged packet was answered');
    if (r > 0) {
      forgedUs += dt;
      forged += batch.length;
    }
  }
  shard.close();
  return { usPerPacket: gatewayUs / packets, aeadFloorUs: aeadFloor(payload), forgedUs: forgedUs / forged };
}

/**
 * CPU µs of one round trip's four ChaCha20-Poly1305 operations (outer open, inner open, inner seal, outer seal)
 * alone: in place on preallocated buffers, so no allocation is in the figure (the gateway's own path makes two:
 * the opened request and the reply packet).
 */
export function aeadFloor(payload: number, n = 50_000): number {
  const key = prims.randomBytes(32);
  const nonce = new Uint8Array(12);
  const aad = new Uint8Array(12);
  const empty = new Uint8Array(0);
  // Sizes as on the wire: app message (tag, length, payload) in Noise (+16), in the outer packet (+6 prefix, +16).
  const appLen = payload + 12;
  const innerCt = prims.aeadSeal(key, nonce, empty, new Uint8Array(appLen));
  const innerPart = new Uint8Array(6 + innerCt.length);
  innerPart.set(innerCt, 6);
  const outerCt = prims.aeadSeal(key, nonce, aad, innerPart);
  const request = new Uint8Array(outerCt.length);
  const reply = new Uint8Array(outerCt.length);
  const once = (): void => {
    request.set(outerCt);
    if (!prims.aeadOpenInPlace(key, nonce, aad, request)) throw new Error('outer open failed');
    if (!prims.aeadOpenInPlace(key, nonce, empty, request.subarray(6, 6 + innerCt.length))) throw new Error('inner open failed');
    prims.aeadSealInPlace(key, nonce, empty, reply.subarray(6, 6 + innerCt.length), appLen);
    prims.aeadSealInPlace(key, nonce, aad, reply, 6 + innerCt.length);
  };
  for (let i = 0; i < 5000; i++) once();
  const t0 = cpuMicros();
  for (let i = 0; i < n; i++) once();
  return (cpuMicros() - t0) / n;
}
