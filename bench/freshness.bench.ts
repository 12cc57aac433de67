/**
 * Handshake v2 against v1, in one run (issue 12): the cost of gateway freshness and return routability.
 *   - server CPU per full handshake, v1 (HANDSHAKE_V1_REF, checked out into a temporary worktree) and v2 (this
 *     tree), alternating rounds of bench/lib/core-figures.ts `benchHandshakes` in fresh processes;
 *   - (root) a flood of ClientHellos from forged sources all over 127.64.0.0/10 against a real gateway of each
 *     version: gateway CPU per forged packet, handshakes held, RSS growth — next to packets for an unknown index (
 *     the cheapest thing a gateway can drop) as the anchor.
 * `node --import tsx bench/freshness.bench.ts` alone, or the `freshness` section of `npm run bench`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { statCpuSeconds } from '../src/gateway/thread-cpu.js';
import { startGatewayProcess, type GatewayProcess } from '../test/helpers/gateway-process.js';
import { clientHelloPacket, getStats, nowSec, randomClientKeys, randomIndex, unknownIndexPacket } from '../test/helpers/lp-e2e.js';
import { rssBytes, spoofUdpAll } from '../test/helpers/abuse.js';

/** The last main commit with handshake v1 (stateful ClientHello, no gateway nonce). */
export const HANDSHAKE_V1_REF = 'b3cb4c7';
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const isRoot = process.getuid?.() === 0;
const log = (s: string): void => void process.stderr.write(`[bench freshness] ${s}\n`);
const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

/** A detached worktree of `ref` sharing this tree's node_modules; `remove()` deletes it. */
function checkoutBaseline(ref: string): { dir: string; remove: () => void } {
  const dir = join(mkdtempSync(join(tmpdir(), 'lpgw-baseline-')), 'tree');
  execFileSync('git', ['-C', ROOT, 'worktree', 'add', '--detach', dir, ref], { stdio: 'ignore' });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return {
    dir,
    remove: () => {
      execFileSync('git', ['-C', ROOT, 'worktree', 'remove', '--force', dir], { stdio: 'ignore' });
      rmSync(join(dir, '..'), { recursive: true, force: true });
    },
  };
}

interface AbFigures {
  v1: { steps: number[]; total: number };
  v2: { steps: number[]; total: number };
}

/** bench/lib/handshake-ab.ts in a fresh process: v1 (the tree at `v1Dir`) and v2 interleaved handshake by handshake. */
function handshakeAb(v1Dir: string, n: number, reps: number): Promise<AbFigures> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/lib/handshake-ab.ts'), v1Dir, String(n), String(reps)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as AbFigures);
      } catch {
        reject(new Error(`handshake A/B exited ${code}: ${err.slice(-400)}`));
      }
    });
  });
}

function procCpu(pid: number): number {
  const s = statCpuSeconds(`/proc/${pid}/stat`);
  if (s === null) throw new Error(`cannot read /proc/${pid}/stat`);
  return s;
}

interface FloodFigures {
  usPerPacket: number;
  handshakesHeld: number;
  rssGrowthMb: number;
}

/** Forged-source packets at `pps` into a fresh gateway from `bin`; gateway CPU per packet beyond its idle rate. */
async function flood(bin: string, packets: Uint8Array[], count: number, pps: number): Promise<FloodFigures> {
  const env = { LPGW_LP_HELLO_RATE_PER_SEC: '1000000', LPGW_LP_HELLO_BURST: '1000000', LPGW_TABLES_MAX_HANDSHAKES: '100000' };
  const gw: GatewayProcess = await startGatewayProcess(['--mock-ecash'], { bin, env });
  try {
    const pid = gw.proc.pid as number;
    const idleMs = 2000;
    const i0 = procCpu(pid);
    await new Promise((r) => setTimeout(r, idleMs));
    const idlePerMs = (procCpu(pid) - i0) / idleMs;
    const rss0 = rssBytes(pid);
    const t0 = performance.now();
    const c0 = procCpu(pid);
    await spoofUdpAll({ from: '127.64.0.0/10:0', to: gw.lpUdp ?? '', packets, ratePps: pps, count });
    await new Promise((r) => setTimeout(r, 500)); // the last datagrams are served
    const cpu = procCpu(pid) - c0 - idlePerMs * (performance.now() - t0);
    const held = (await getStats(gw.http)).tables.handshakes;
    return { usPerPacket: (cpu * 1e6) / count, handshakesHeld: held, rssGrowthMb: (rssBytes(pid) - rss0) / 2 ** 20 };
  } finally {
    await gw.stop();
  }
}

export async function runFreshnessBench(opts: { quick?: boolean } = {}): Promise<string> {
  const base = checkoutBaseline(HANDSHAKE_V1_REF);
  try {
    const runs = opts.quick ? 1 : 3;
    const n = 40;
    const reps = opts.quick ? 3 : 10;
    const ab: AbFigures[] = [];
    for (let r = 0; r < runs; r++) {
      ab.push(await handshakeAb(base.dir, n, reps));
      const last = ab.at(-1) as AbFigures;
      log(`run ${r + 1}/${runs}: v1 ${fmt(last.v1.total)} µs, v2 ${fmt(last.v2.total)} µs per handshake`);
    }
    const ratio = median(ab.map((x) => x.v2.total / x.v1.total));
    const mid = ab.find((x) => x.v2.total / x.v1.total === ratio) as AbFigures;
    const steps = (f: { steps: number[] }): string => f.steps.map((x) => fmt(x)).join(' / ');
    const lines = [
      `## Handshake v2: gateway freshness and return routability (issue 12)`,
      '',
      `Server CPU per handshake, v1 = ${HANDSHAKE_V1_REF} (stateful ClientHello) against v2 = this tree (stateless ClientHello with token, KKTRequest carrying hello and token, gateway nonce): both loaded into one process and interleaved handshake by handshake (bench/lib/handshake-ab.ts; ${n} recorded handshakes replayed ${reps} times each), ${runs} run(s); the median run is shown.`,
      '',
      '| figure | v1 | v2 | v2 / v1 | target |',
      '|---|---|---|---|---|',
      `| server CPU per full handshake | ${fmt(mid.v1.total)} µs | ${fmt(mid.v2.total)} µs | ${ratio.toFixed(3)} | ≤ 1.10 |`,
      `| per step: hello / KKTRequest / msg1 / msg3 | ${steps(mid.v1)} µs | ${steps(mid.v2)} µs | | |`,
      `| all runs, v2 / v1 | | | ${ab.map((x) => (x.v2.total / x.v1.total).toFixed(3)).join(', ')} | |`,
    ];
    if (!isRoot) {
      lines.push('', 'Forged-source floods: skipped (needs root for raw sockets).');
      return lines.join('\n');
    }
    const count = opts.quick ? 4000 : 16_000;
    const pps = 4000;
    const keys = randomClientKeys();
    // Every hello distinct (v1 makes a handshake for each), all valid for the whole flood (±30 s).
    const indexes = new Set<number>();
    while (indexes.size < count) indexes.add(randomIndex());
    const hellos = [...indexes].map((receiverIndex) => clientHelloPacket({ receiverIndex, keys, nowSec: nowSec() + 15 }));
    const junk = Array.from({ length: 1000 }, () => unknownIndexPacket(randomIndex()));
    const v1Bin = join(base.dir, 'bin/lp-gateway.js');
    const v2Bin = join(ROOT, 'bin/lp-gateway.js');
    if (!existsSync(v1Bin)) throw new Error(`no ${v1Bin}`);
    const h1 = await flood(v1Bin, hellos, count, pps);
    log(`v1 hello flood: ${fmt(h1.usPerPacket, 1)} µs/packet, ${h1.handshakesHeld} held`);
    const h2 = await flood(v2Bin, hellos, count, pps);
    log(`v2 hello flood: ${fmt(h2.usPerPacket, 1)} µs/packet, ${h2.handshakesHeld} held`);
    const j2 = await flood(v2Bin, junk, count, pps);
    log(`v2 junk flood: ${fmt(j2.usPerPacket, 1)} µs/packet`);
    lines.push(
      '',
      `Forged-source floods (root, raw sockets): ${fmt(count)} datagrams at ${fmt(pps)}/s from random addresses in 127.64.0.0/10 to a fresh gateway of each version (hello rate limit off, handshake table bound 100,000); gateway CPU per datagram beyond its idle rate, from /proc/<pid>/stat.`,
      '',
      '| flood | gateway CPU per datagram | handshakes held after | RSS growth |',
      '|---|---|---|---|',
      `| ClientHello, v1 | ${fmt(h1.usPerPacket, 1)} µs | ${fmt(h1.handshakesHeld)} | ${fmt(h1.rssGrowthMb, 1)} MiB |`,
      `| ClientHello, v2 | ${fmt(h2.usPerPacket, 1)} µs | ${fmt(h2.handshakesHeld)} | ${fmt(h2.rssGrowthMb, 1)} MiB |`,
      `| an 82-byte packet to an unknown index, v2 (anchor: the cheapest drop) | ${fmt(j2.usPerPacket, 1)} µs | ${fmt(j2.handshakesHeld)} | ${fmt(j2.rssGrowthMb, 1)} MiB |`,
    );
    return lines.join('\n');
  } finally {
    base.remove();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runFreshnessBench({ quick: process.env.BENCH_QUICK === '1' })
    .then((md) => process.stdout.write(`${md}\n`))
    .catch((e: unknown) => {
      process.stderr.write(`${String(e)}\n`);
      process.exitCode = 1;
    });
}
