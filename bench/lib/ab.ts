/**
 * A/B in the same run: a script that prints one JSON line is run alternately from two source trees (A: a
 * checkout of the base, B: this tree), `rounds` times each, so the host's slow and fast moments fall on both;
 * medians and the ratio B/A of a named figure. For claims in commits and docs/BENCHMARKS.md.
 *   node --import tsx bench/lib/ab.ts <A dir> <B dir> <script relative to the tree> <figure> [rounds] [args...]
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const [a, b, script, figure, roundsArg, ...args] = process.argv.slice(2);
if (!a || !b || !script || !figure) {
  process.stderr.write('usage: ab.ts <A dir> <B dir> <script> <figure> [rounds] [args...]\n');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 5);
const run = (dir: string): number => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(dir, script), ...args], { cwd: dir, encoding: 'utf8' });
  return Number((JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, unknown>)[figure]);
};
const res = { a: [] as number[], b: [] as number[] };
for (let r = 0; r < rounds; r++) {
  for (const side of r % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const)) res[side].push(run(side === 'a' ? a : b));
}
const median = (x: number[]): number => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)] as number;
process.stdout.write(`${JSON.stringify({ figure, a: median(res.a), b: median(res.b), ratio: median(res.b) / median(res.a), aRuns: res.a, bRuns: res.b })}\n`);
