/**
 * A/B of the gateway's CPU per EncryptedData round trip between two source trees, in the same run: real
 * gateway processes from each tree's bin/lp-gateway.js (their dist/), the same ping-load client (this tree's),
 * alternating. Prints one JSON line with each tree's per-round-trip CPU per round and the medians.
 * With a rate, both gateways get that many round trips per second (ping-load's pacing): CPU per round trip is then
 * compared at the same packets per second, which steadies the comparison on a noisy host.
 *   node --import tsx bench/lib/rt-ab.ts <A dir> <B dir> <udp|tcp-stream> [rounds] [seconds] [rate/s]
 */
import { median, procCpu, runJson } from './bench-util.js';
import { startTreeGateway } from './tree-gateway.js';

const [a, b, transport = 'udp', roundsArg = '4', secondsArg = '8', rateArg = '0'] = process.argv.slice(2);
if (!a || !b) {
  process.stderr.write('usage: rt-ab.ts <A dir> <B dir> <udp|tcp-stream> [rounds] [seconds] [rate/s]\n');
  process.exit(2);
}

async function trial(tree: string): Promise<{ us: number; perSec: number }> {
  const gw = await startTreeGateway(tree);
  try {
    const c0 = procCpu(gw.pid);
    const r = (await runJson(process.execPath, ['--import', 'tsx', 'bench/clients/ping-load.ts', gw.http, transport, '32', secondsArg, '64', rateArg], 120_000)) as { roundTrips: number; perSec: number };
    const c1 = procCpu(gw.pid);
    return { us: ((c1 - c0) * 1e6) / r.roundTrips, perSec: r.perSec };
  } finally {
    await gw.stop();
  }
}

const res = { a: [] as { us: number; perSec: number }[], b: [] as { us: number; perSec: number }[] };
for (let r = 0; r < Number(roundsArg); r++) {
  for (const side of r % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const)) res[side].push(await trial(side === 'a' ? a : b));
}
const mu = (x: { us: number }[]): number => median(x.map((y) => y.us));
process.stdout.write(`${JSON.stringify({ transport, aUs: mu(res.a), bUs: mu(res.b), ratio: mu(res.b) / mu(res.a), a: res.a, b: res.b })}\n`);
