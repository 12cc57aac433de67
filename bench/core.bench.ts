/**
 * `npm run bench:core`: single-core figures of the protocol core, next to the anchors measured on these
 * machines (../shared/reference/dependency-evaluation.md). Only the gateway's work is timed.
 */
import { benchAead, benchHandshakes, benchReplay } from './lib/core-figures.js';
import { handshakeVsFloor, warmUpHandshakes } from './lib/crypto-floor.js';

const ANCHOR_HANDSHAKES = 968; // sodium-native + noble ML-KEM-768, per core
const AIM_HANDSHAKES = 900;
const ANCHOR_SEAL_64 = 1_886_506;
const AIM_OPEN_64 = 500_000;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

warmUpHandshakes(3000); // steady state: V8 compiles the handshake code over the first few thousand
const hs = benchHandshakes(Number(process.env.BENCH_HANDSHAKES ?? 600));
// The handshake against its crypto floor, interleaved (bench/lib/crypto-floor.ts): the figure that does not move with the host.
const vs = handshakeVsFloor(40, 15);
const a64 = benchAead(64);
const a1k = benchAead(1024);
const replay = benchReplay();

const rows: [string, string, string][] = [
  ['server CPU per full handshake', `${hs.usPerHandshake.toFixed(0)} µs`, `anchor 1,033 µs`],
  ['handshake CPU ÷ its crypto floor', `${vs.ratio.toFixed(2)}×`, `${vs.handshakeUs.toFixed(0)} µs vs ${vs.floor.usPerHandshake.toFixed(0)} µs of primitive operations, interleaved; target ≤ 1.3× → ${vs.ratio <= 1.3 ? 'met' : 'MISSED'}`],
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
