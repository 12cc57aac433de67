/**
 * Single-core measurements of the protocol core, shared by `npm run bench:core` and `npm run bench`:
 * server-side CPU per full handshake (gateway replaying recorded client packets), outer AEAD seal/open,
 * replay-window checks.
 */
import { cpuUsage } from 'node:process';
import {
  InitiatorHandshake,
  MessageType,
  ReplayWindow,
  defaultSuite,
  clientKeysFromSeed,
  gatewayKeysFromSeeds,
  openPacket,
  sealPacket,
  RoutabilityTokens,
  acceptKktRequest,
  answerClientHello,
  parseHeader,
  type CryptoSuite,
  type Kem,
  type ResponderHandshake,
} from '../../src/core/index.js';
import { seededSuite } from '../../test/helpers/fixtures.js';

const { prims } = defaultSuite;
const gwKeys = gatewayKeysFromSeeds(defaultSuite, { ed25519Seed: prims.randomBytes(32), kemSeed: prims.randomBytes(64) });
const pin = { ed25519Public: gwKeys.ed25519.publicKey, kemKeyHash: gwKeys.kemKeyHash };

function cpuMicros(): number {
  const u = cpuUsage();
  return u.user + u.system;
}

/**
 * The gateway's side of one handshake, packet by packet: the stateless ClientHello answer (token), the KKTRequest
 * checks that make the handshake, then the handshake itself. Its randomness (token secret and nonce, gateway nonce,
 * Noise ephemeral) comes from `suite`, so a replay with the same seed gives the same replies.
 */
class GatewaySide {
  private readonly tokens: RoutabilityTokens;
  private responder: ResponderHandshake | null = null;
  sessions = 0;

  constructor(
    private readonly suite: CryptoSuite,
    private readonly now: number,
  ) {
    this.tokens = new RoutabilityTokens(suite.prims);
  }

  step(packet: Uint8Array): Uint8Array | undefined {
    const cfg = { suite: this.suite, keys: gwKeys };
    const ctx = { nowSec: this.now, source: '127.0.0.1' };
    const h = parseHeader(packet);
    if (h.receiverIndex === 0) return answerClientHello(cfg, this.tokens, packet, ctx).reply;
    if (!this.responder) {
      const o = acceptKktRequest(cfg, this.tokens, packet, h, ctx, () => false);
      if (o.kind !== 'accepted') throw new Error(`KKT request ${o.kind}`);
      this.responder = o.handshake;
      return o.reply;
    }
    const out = this.responder.receive(packet, h);
    if (out.session) this.sessions++;
    return out.reply;
  }
}

/**
 * Clients run first and their packets are recorded; the gateway then replays them alone, so its CPU is
 * measured without client work or client garbage in the window. Each gateway handshake gets its own
 * deterministic random stream in both passes, so its token, nonce and msg2 (and hence the recorded client packets)
 * match.
 */
export function benchHandshakes(n: number, kem: Kem = defaultSuite.kem): { usPerHandshake: number; perSec: number } {
  const recorded = recordClientPackets(n);
  const suites = recorded.map((_, i) => ({ ...seededSuite(`bench-gateway-${i}`), kem }));
  const cpu0 = cpuMicros();
  const sessions = replayGateway(recorded, suites);
  const cpu = cpuMicros() - cpu0;
  if (sessions !== n) throw new Error(`only ${sessions}/${n} handshakes completed in the replay`);
  return { usPerHandshake: cpu / n, perSec: (1e6 * n) / cpu };
}

/** Client packets of `n` full handshakes (first recorded, then replayed into the gateway alone). */
export function recordClientPackets(n: number): Uint8Array[][] {
  const now = Math.floor(Date.now() / 1000);
  const recorded: Uint8Array[][] = [];
  for (let i = 0; i < n; i++) {
    const gw = new GatewaySide(seededSuite(`bench-gateway-${i}`), now);
    const client = clientKeysFromSeed(defaultSuite, prims.randomBytes(32));
    const hs = new InitiatorHandshake({ suite: defaultSuite, client, gateway: pin });
    const packets: Uint8Array[] = [];
    let out = hs.start(now);
    while (out.kind === 'send') {
      packets.push(out.packet);
      const reply = gw.step(out.packet);
      if (!reply) throw new Error('no reply');
      out = hs.receive(reply, now);
    }
    recorded.push(packets);
  }
  return recorded;
}

/**
 * The gateway's side of recorded handshakes: ClientHello, KKTRequest, message 1, message 3 into a fresh
 * responder each (handshake i with suites[i], whose random stream must be the recording's). Returns the
 * sessions established.
 */
export function replayGateway(recorded: Uint8Array[][], suites: CryptoSuite[]): number {
  const now = Math.floor(Date.now() / 1000);
  let sessions = 0;
  for (let i = 0; i < recorded.length; i++) {
    const gw = new GatewaySide(suites[i] as CryptoSuite, now);
    for (const p of recorded[i] as Uint8Array[]) gw.step(p);
    sessions += gw.sessions;
  }
  return sessions;
}

export function rate(fn: () => void, minMs = 600): number {
  for (let i = 0; i < 2000; i++) fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs) {
    for (let i = 0; i < 1000; i++) fn();
    n += 1000;
    t = performance.now();
  }
  return (n * 1000) / (t - t0);
}

export function benchAead(size: number): { seal: number; open: number } {
  const key = prims.randomBytes(32);
  const content = prims.randomBytes(size);
  let counter = 0;
  const seal = rate(() => {
    sealPacket(prims, key, { receiverIndex: 7, counter: counter++, type: MessageType.EncryptedData, content });
  });
  const packet = sealPacket(prims, key, { receiverIndex: 7, counter: 1, type: MessageType.EncryptedData, content });
  const open = rate(() => {
    openPacket(prims, key, packet);
  });
  return { seal, open };
}

export function benchReplay(): number {
  const w = new ReplayWindow();
  let c = 0;
  return rate(() => {
    w.check(c);
    w.mark(c);
    c++;
  });
}

