/**
 * CLI start against its floor, `node -e 0`: `gateway-probe --help` and `lp-gateway --help` as operators run
 * them (the compiled dist/), alternating with the floor run by run; wall time measured here around each run,
 * CPU and peak RSS from GNU time when installed. The TypeScript sources through tsx (what the binaries ran
 * before they ran dist/) are measured alongside, as the older anchor.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { QUICK, ROOT, fmt, log, median } from '../lib/bench-util.js';
import { recordTarget } from '../lib/targets.js';

export const CLI_START_TARGET = 2;
const GNU_TIME = '/usr/bin/time';

interface Run {
  wallMs: number;
  cpuMs: number | null;
  rssMiB: number | null;
}

function once(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const timed = existsSync(GNU_TIME);
  const cmd = timed ? GNU_TIME : process.execPath;
  const argv = timed ? ['-f', '%U %S %M', process.execPath, ...args] : args;
  const t0 = performance.now();
  const r = spawnSync(cmd, argv, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-300)}`);
  if (!timed) return { wallMs, cpuMs: null, rssMiB: null };
  const m = /(\d+\.\d+) (\d+\.\d+) (\d+)\s*$/.exec(r.stderr);
  return { wallMs, cpuMs: m ? (Number(m[1]) + Number(m[2])) * 1000 : null, rssMiB: m ? Number(m[3]) / 1024 : null };
}

export function cliStartSection(): string {
  const RUNS = QUICK ? 5 : 15;
  const cases: { name: string; args: string[]; env?: NodeJS.ProcessEnv }[] = [
    { name: '`node -e 0` (floor)', args: ['-e', '0'] },
    { name: '`gateway-probe --help`', args: [join('bin', 'gateway-probe.js'), '--help'], env: { LP_GATEWAY_FROM_SOURCE: '0' } },
    { name: '`lp-gateway --help`', args: [join('bin', 'lp-gateway.js'), '--help'], env: { LP_GATEWAY_FROM_SOURCE: '0' } },
    { name: '`gateway-probe --help` from the sources through tsx (before)', args: [join('bin', 'gateway-probe.js'), '--help'], env: { LP_GATEWAY_FROM_SOURCE: '1' } },
  ];
  log(`CLI start: ${RUNS} alternating runs of ${cases.length} commands`);
  for (const c of cases) once(c.args, c.env); // page cache warm
  const runs: Run[][] = cases.map(() => []);
  for (let i = 0; i < RUNS; i++) cases.forEach((c, k) => (runs[k] as Run[]).push(once(c.args, c.env)));
  const med = (k: number, f: (r: Run) => number | null): number | null => {
    const xs = (runs[k] as Run[]).map(f).filter((x): x is number => x !== null);
    return xs.length ? median(xs) : null;
  };
  const floorWall = med(0, (r) => r.wallMs) as number;
  const floorCpu = med(0, (r) => r.cpuMs);
  const floorRss = med(0, (r) => r.rssMiB);
  const rows = cases.map((c, k) => {
    const wall = med(k, (r) => r.wallMs) as number;
    const cpu = med(k, (r) => r.cpuMs);
    const rss = med(k, (r) => r.rssMiB);
    const x = (v: number | null, f: number | null): string => (v === null || f === null ? 'n/a' : `${(v / f).toFixed(2)}×`);
    return `| ${c.name} | ${fmt(wall)} ms | ${x(wall, floorWall)} | ${cpu === null ? 'n/a' : `${fmt(cpu)} ms`} | ${x(cpu, floorCpu)} | ${rss === null ? 'n/a' : `${fmt(rss, 1)} MiB`} | ${x(rss, floorRss)} |`;
  });
  for (const k of [1, 2]) {
    // Per-run ratios: run i of the command against run i of the floor (taken back to back).
    const trials = (runs[k] as Run[]).map((r, i) => r.wallMs / ((runs[0] as Run[])[i] as Run).wallMs);
    recordTarget({
      figure: `${k === 1 ? 'gateway-probe' : 'lp-gateway'} --help wall ÷ node -e 0`,
      ratio: (med(k, (r) => r.wallMs) as number) / floorWall,
      trials: [median(trials.slice(0, Math.ceil(RUNS / 3))), median(trials.slice(Math.ceil(RUNS / 3), Math.ceil((2 * RUNS) / 3))), median(trials.slice(Math.ceil((2 * RUNS) / 3)))],
      max: CLI_START_TARGET,
      detail: `${fmt(med(k, (r) => r.wallMs) as number)} ms vs ${fmt(floorWall)} ms`,
      section: 'CLI start',
    });
  }
  return `## CLI start against \`node -e 0\`

${RUNS} runs of each, alternating (the floor, then each command, then the floor again …), medians; wall time
measured around each run here (process start to exit, including the spawn), CPU (user + system) and peak RSS from
GNU time${existsSync(GNU_TIME) ? '' : ' (not installed here: CPU and RSS not measured)'}. The binaries run the compiled JavaScript in \`dist/\` that \`npm ci\` builds (the package's
\`prepare\` script), and a command's \`--help\` loads only the command-line modules: no crypto backend (the
ML-KEM WebAssembly, sodium-native), logger, HTTP server, metrics or database (test/cli/built-cli.test.ts checks
this). The last row is the previous way, the TypeScript sources compiled by tsx at every start.

| command | wall | ÷ floor | CPU | ÷ floor | peak RSS | ÷ floor |
|---|---|---|---|---|---|---|
${rows.join('\n')}

Target: both \`--help\` wall times ≤ ${CLI_START_TARGET}× \`node -e 0\`. Per-trial ratios in the summary are medians of thirds of the
runs.`;
}
