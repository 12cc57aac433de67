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

/**
 * `benchHandshakes` of the trees at `dirA` and `dirB`, both loaded into one fresh process and run in alternating
 * rounds (the machine's load then falls on both alike): server µs per handshake, per round.
 */
function handshakeCpuAB(dirA: string, dirB: string, rounds: number, n: number): Promise<{ a: number[]; b: number[] }> {
  const mod = (d: string): string => JSON.stringify(join(d, 'bench/lib/core-figures.ts'));
  const script = `const [A, B] = await Promise.all([import(${mod(dirA)}), import(${mod(dirB)})]);
    A.benchHandshakes(20); B.benchHandshakes(20);
    const a = [], b = [];
    for (let i = 0; i < ${rounds}; i++) { a.push(A.benchHandshakes(${n}).usPerHandshake); b.push(B.benchHandshakes(${n}).usPerHandshake); }
    console.log(JSON.stringify({ a, b }));`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: dirB, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as { a: number[]; b: number[] });
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
    const rounds = opts.quick ? 4 : 20;
    const n = opts.quick ? 20 : 40;
    const { a: v1, b: v2 } = await handshakeCpuAB(base.dir, ROOT, rounds, n);
    const m1 = median(v1);
    const m2 = median(v2);
    const ratio = median(v2.map((x, i) => x / (v1[i] as number)));
    log(`v1 ${fmt(m1)} µs, v2 ${fmt(m2)} µs per handshake, median ratio ${ratio.toFixed(3)}`);
    const lines = [
      `## Handshake v2: gateway freshness and return routability (issue 12)`,
      '',
      `Same run, both versions loaded into one process and run in ${rounds} alternating rounds of ${n} handshakes (the gateway replaying recorded client packets, bench/lib/core-figures.ts); v1 = ${HANDSHAKE_V1_REF} (stateful ClientHello), v2 = this tree (stateless ClientHello with token, KKTRequest carrying hello and token, gateway nonce). The ratio is the median of the per-round ratios.`,
      '',
      '| figure | v1 | v2 | v2 / v1 | target |',
      '|---|---|---|---|---|',
      `| server CPU per full handshake (median) | ${fmt(m1)} µs | ${fmt(m2)} µs | ${ratio.toFixed(3)} | ≤ 1.10 |`,
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
