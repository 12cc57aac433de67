/** Prints the in-process per-packet figures (bench/lib/packet-path.ts) as one JSON line; used for A/B runs. */
import { packetPath } from './lib/packet-path.js';

const r = await packetPath(32, 4000, Number(process.env.BENCH_PP_ROUNDS ?? 10));
process.stdout.write(`${JSON.stringify(r)}\n`);
