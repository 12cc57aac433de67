/**
 * `npm run bench:core`: single-core figures of the protocol core, next to the anchors measured on these
 * machines (../shared/reference/dependency-evaluation.md):
 *   - server-side CPU per full handshake (ClientHello → Ack after msg3), µs and handshakes/s;
 *   - outer AEAD seal and open per second at 64 B and 1 KiB;
 *   - replay-window checks per second.
 * Only the gateway's work is timed (process.cpuUsage around each gateway call); the client runs untimed.
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
  acceptClientHello,
  type CryptoSuite,
  type ResponderHandshake,
} from '../src/core/index.js';
import { seededSuite } from '../test/helpers/fixtures.js';

const ANCHOR_HANDSHAKES = 968; // sodium-native + noble ML-KEM-768, per core
const AIM_HANDSHAKES = 900;
const ANCHOR_SEAL_64 = 1_886_506;
const AIM_OPEN_64 = 500_000;

const { prims } = defaultSuite;
const gwKeys = gatewayKeysFromSeeds(defaultSuite, { ed25519Seed: prims.randomBytes(32), kemSeed: prims.randomBytes(64) });
const pin = { ed25519Public: gwKeys.ed25519.publicKey, kemKeyHash: gwKeys.kemKeyHash };

function cpuMicros(): number {
  const u = cpuUsage();
  return u.user + u.system;
}

/**
 * Clients run first and their packets are recorded; the gateway then replays them alone, so its CPU is
 * measured without client work or client garbage in the window. Each gateway handshake gets its own
 * deterministic random stream in both passes, so its msg2 (and hence the recorded msg3) match.
 */
function benchHandshakes(n: number): { usPerHandshake: number; perSec: number } {
  const now = Math.floor(Date.now() / 1000);
  const recorded: Uint8Array[][] = [];
  for (let i = 0; i < n; i++) {
    const suite = seededSuite(`bench-gateway-${i}`);
    const cfg = { suite, keys: gwKeys };
    const client = clientKeysFromSeed(defaultSuite, prims.randomBytes(32));
    const hs = new InitiatorHandshake({ suite: defaultSuite, client, gateway: pin });
    const packets: Uint8Array[] = [];
    let out = hs.start(now);
    let responder: ResponderHandshake | null = null;
    while (out.kind === 'send') {
      packets.push(out.packet);
      let reply: Uint8Array | undefined;
      if (!responder) {
        const o = acceptClientHello(cfg, out.packet, now, () => false);
        if (o.kind !== 'accepted') throw new Error('hello refused');
        responder = o.handshake;
        reply = o.reply;
      } else reply = responder.receive(out.packet).reply;
      if (!reply) throw new Error('no reply');
      out = hs.receive(reply, now);
    }
    recorded.push(packets);
  }
  const suites = recorded.map((_, i) => seededSuite(`bench-gateway-${i}`));
  const cpu0 = cpuMicros();
  let sessions = 0;
  for (let i = 0; i < n; i++) {
    const packets = recorded[i] as Uint8Array[];
    const o = acceptClientHello({ suite: suites[i] as CryptoSuite, keys: gwKeys }, packets[0] as Uint8Array, now, () => false);
    if (o.kind !== 'accepted') throw new Error('hello refused');
    for (let j = 1; j < packets.length; j++) if (o.handshake.receive(packets[j] as Uint8Array).session) sessions++;
  }
  const cpu = cpuMicros() - cpu0;
  if (sessions !== n) throw new Error(`only ${sessions}/${n} handshakes completed in the replay`);
  return { usPerHandshake: cpu / n, perSec: (1e6 * n) / cpu };
}

function rate(fn: () => void, minMs = 600): number {
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

function benchAead(size: number): { seal: number; open: number } {
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

function benchReplay(): number {
  const w = new ReplayWindow();
  let c = 0;
  return rate(() => {
    w.check(c);
    w.mark(c);
    c++;
  });
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

const warm = benchHandshakes(50);
void warm;
const hs = benchHandshakes(Number(process.env.BENCH_HANDSHAKES ?? 600));
const a64 = benchAead(64);
const a1k = benchAead(1024);
const replay = benchReplay();

const rows: [string, string, string][] = [
  ['server CPU per full handshake', `${hs.usPerHandshake.toFixed(0)} µs`, `anchor 1,033 µs`],
  ['handshakes/s/core (server side)', fmt(hs.perSec), `anchor ${fmt(ANCHOR_HANDSHAKES)}, aim ≥ ${fmt(AIM_HANDSHAKES)} → ${hs.perSec >= AIM_HANDSHAKES ? 'met' : 'MISSED'} (${((hs.perSec / ANCHOR_HANDSHAKES) * 100).toFixed(0)} % of anchor)`],
  ['outer AEAD packet seal/s, 64 B', fmt(a64.seal), `raw AEAD anchor ${fmt(ANCHOR_SEAL_64)} (${((a64.seal / ANCHOR_SEAL_64) * 100).toFixed(0)} %; ours includes header + packet build)`],
  ['outer AEAD packet open/s, 64 B', fmt(a64.open), `aim ≥ ${fmt(AIM_OPEN_64)} → ${a64.open >= AIM_OPEN_64 ? 'met' : 'MISSED'}`],
  ['outer AEAD packet seal/s, 1 KiB', fmt(a1k.seal), 'raw AEAD anchor 946,374'],
  ['outer AEAD packet open/s, 1 KiB', fmt(a1k.open), 'raw AEAD anchor 974,502'],
  ['replay check+mark/s', fmt(replay), '—'],
];
process.stdout.write(`lp-gateway core benchmark (single core, node ${process.version})\n\n`);
const w0 = Math.max(...rows.map((r) => r[0].length));
const w1 = Math.max(...rows.map((r) => r[1].length));
for (const [a, b, c] of rows) process.stdout.write(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}\n`);
