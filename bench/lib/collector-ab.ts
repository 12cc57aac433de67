/**
 * A/B of the collector's in-kernel cost between two source trees, in the same run (root): a gateway with
 * `--collector` from each tree's bin/lp-gateway.js (its dist/ and its bpf/collector.bpf.o), UDP handshake load
 * from this tree's gateway-probe, alternating; the program's run time per handshake from the kernel's BPF
 * run-time statistics and the gateway's CPU per handshake. Gateway and load run in a network namespace of
 * their own, so the program on its loopback sees their packets and no one else's.
 *   node --import tsx bench/lib/collector-ab.ts <A dir> <B dir> [rounds] [seconds]
 */
import { BpfSys } from '../../src/collector/bpf-syscall.js';
import { execFileSync } from 'node:child_process';
import { median, procCpu, runJson } from './bench-util.js';
import { atInterrupt, startTreeGateway } from './tree-gateway.js';

const [a, b, roundsArg = '4', secondsArg = '8'] = process.argv.slice(2);
if (!a || !b) {
  process.stderr.write('usage: collector-ab.ts <A dir> <B dir> [rounds] [seconds]\n');
  process.exit(2);
}
const NS = `lpgw-cab-${process.pid}`;
let deleted = false;
/** Deletes the namespace once (tree-gateway.ts has killed any gateway inside it first on an interrupt). */
function deleteNamespace(): void {
  if (deleted) return;
  deleted = true;
  execFileSync('ip', ['netns', 'del', NS]);
}
atInterrupt(deleteNamespace);
execFileSync('ip', ['netns', 'add', NS]);
execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
const sys = await BpfSys.open();
const statsFd = sys.bpf(32 /* BPF_ENABLE_STATS, BPF_STATS_RUN_TIME */, Buffer.alloc(16), 'BPF_ENABLE_STATS');

interface Figures {
  bpfUsPerHs: number;
  nsPerRun: number;
  gwUsPerHs: number;
  share: number;
}

async function trial(tree: string): Promise<Figures> {
  const gw = await startTreeGateway(tree, { netns: NS, args: ['--collector'] });
  try {
    const { progId, http, identity } = gw;
    const stats = (): { ns: bigint; cnt: bigint } => {
      const fd = sys.fdById('prog', progId);
      if (fd === null) throw new Error('collector program not found');
      const info = sys.objInfo(fd, 256); // bpf_prog_info: run_time_ns @192, run_cnt @200
      sys.close(fd);
      return { ns: info.readBigUInt64LE(192), cnt: info.readBigUInt64LE(200) };
    };
    const load = (s: string): Promise<Record<string, unknown>> =>
      runJson('ip', ['netns', 'exec', NS, process.execPath, 'bin/gateway-probe.js', 'load', '--compact', '-q', '--entry', http, '--entry-identity', identity, '--transport', 'udp', '--concurrency', '16', '--duration', s], 120_000);
    await load('1');
    const s0 = stats();
    const c0 = procCpu(gw.pid);
    const report = (await load(secondsArg)) as { handshakes: { completed: number } };
    const c1 = procCpu(gw.pid);
    const s1 = stats();
    const hs = report.handshakes.completed;
    const bpfUsPerHs = Number(s1.ns - s0.ns) / 1000 / hs;
    const gwUsPerHs = ((c1 - c0) * 1e6) / hs;
    return { bpfUsPerHs, nsPerRun: Number(s1.ns - s0.ns) / Number(s1.cnt - s0.cnt), gwUsPerHs, share: bpfUsPerHs / gwUsPerHs };
  } finally {
    await gw.stop();
  }
}

const res = { a: [] as Figures[], b: [] as Figures[] };
try {
  for (let r = 0; r < Number(roundsArg); r++) {
    for (const side of r % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const)) res[side].push(await trial(side === 'a' ? a : b));
  }
} finally {
  sys.close(statsFd);
  deleteNamespace();
}
const med = (x: Figures[], f: keyof Figures): number => median(x.map((y) => y[f]));
process.stdout.write(
  `${JSON.stringify({ a: { bpfUsPerHs: med(res.a, 'bpfUsPerHs'), nsPerRun: med(res.a, 'nsPerRun'), gwUsPerHs: med(res.a, 'gwUsPerHs'), share: med(res.a, 'share') }, b: { bpfUsPerHs: med(res.b, 'bpfUsPerHs'), nsPerRun: med(res.b, 'nsPerRun'), gwUsPerHs: med(res.b, 'gwUsPerHs'), share: med(res.b, 'share') }, runs: res })}\n`,
);
