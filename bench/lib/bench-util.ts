/** Helpers shared by `npm run bench` (bench/run-all.ts) and its section modules (bench/sections/). */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { statCpuSeconds } from '../../src/gateway/thread-cpu.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const QUICK = process.env.BENCH_QUICK === '1';
export const PHASE_S = QUICK ? 3 : 10;
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
/** Gateways under load: no per-source hello limit, production log level. */
export const LOAD_ENV = { LPGW_LP_HELLO_RATE_PER_SEC: '1000000', LPGW_LP_HELLO_BURST: '1000000', LPGW_LOG_LEVEL: 'warn' };
/**
 * startGatewayProcess passes --log-level debug (for tests); a flag given later wins: the benchmarks run at info,
 * the default an operator runs with (the helper waits for the info-level "gateway listening" line).
 */
export const BENCH_GATEWAY_ARGS = ['--log-level', 'info'];

export const log = (s: string): void => void process.stderr.write(`[bench] ${s}\n`);
export const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
export const pct = (r: number): string => `${(r * 100).toFixed(1)} %`;
export const median = (x: readonly number[]): number => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)] as number;

/** CPU seconds (user + system, all threads) of a process so far. */
export function procCpu(pid: number): number {
  const s = statCpuSeconds(`/proc/${pid}/stat`);
  if (s === null) throw new Error(`cannot read /proc/${pid}/stat`);
  return s;
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusy(): number {
  const cpu = (readFileSync('/proc/stat', 'utf8').split('\n')[0] as string).trim().split(/\s+/).slice(1).map(Number);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  return (cpu.reduce((a, b) => a + b, 0) - idle) / CLK_TCK;
}

/** Runs a command in the repository root and parses the last line of its stdout as JSON. */
export function runJson(cmd: string, args: string[], timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', () => {
      clearTimeout(t);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as Record<string, unknown>);
      } catch {
        reject(new Error(`${args.join(' ')}: no JSON report; stderr: ${err.slice(-500)}`));
      }
    });
  });
}
