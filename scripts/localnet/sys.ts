/**
 * Synchronous system plumbing for the localnet: running `ip` and friends with a time bound, listing
 * namespaces, links and processes. Synchronous on purpose: teardown also runs from signal and error paths,
 * where nothing may be left half-awaited. Nothing here throws except `must()`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

export class LocalnetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalnetError';
  }
}

export interface RunResult {
  /** Exit status; null when the command could not run or was killed (see `error`). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the command did not run or timed out. */
  error: string | null;
}

const SBIN = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/** Absolute path of a command (PATH plus the sbin directories, which a non-login root shell may lack), or null. */
export function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(SBIN)) {
    if (dir !== '' && existsSync(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  }
  return null;
}

/** Runs a command to completion within `timeoutMs` (default 15 s). Never throws. */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: opts.timeoutMs ?? 15_000,
    killSignal: 'SIGKILL',
    maxBuffer: 16 * 1024 * 1024,
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.env !== undefined ? { env: opts.env } : {}),
  });
  let error: string | null = null;
  if (r.error) error = (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `timed out after ${opts.timeoutMs ?? 15_000} ms` : r.error.message;
  else if (r.signal) error = `killed by ${r.signal}`;
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error };
}

/** Runs a command and returns stdout; throws LocalnetError naming the command and its stderr on failure. */
export function must(cmd: string, args: readonly string[], opts: { timeoutMs?: number } = {}): string {
  const r = run(cmd, args, opts);
  if (r.code !== 0) throw new LocalnetError(`${cmd} ${args.join(' ')}: ${r.error ?? (r.stderr.trim() || `exit status ${String(r.code)}`)}`);
  return r.stdout;
}

let ipPath: string | null | undefined;
/** The `ip` binary (iproute2); throws when it is missing. */
export function ipBin(): string {
  ipPath ??= which('ip');
  if (ipPath === null) throw new LocalnetError('`ip` (iproute2) not found; install it: apt-get install iproute2');
  return ipPath;
}

export function ip(args: readonly string[]): string {
  return must(ipBin(), args);
}

/** `ip` that may fail (teardown): returns whether it succeeded. */
export function ipTry(args: readonly string[]): boolean {
  return run(ipBin(), args).code === 0;
}

/** Names of all network namespaces (`ip netns list`). */
export function listNetns(): string[] {
  const r = run(ipBin(), ['netns', 'list']);
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/** Interface names in a namespace (null = the caller's, i.e. the host's); `veth@ifN` suffixes removed. */
export function listLinks(netns: string | null = null): string[] {
  const r = run(ipBin(), [...(netns === null ? [] : ['-n', netns]), '-o', 'link', 'show']);
  if (r.code !== 0) return [];
  const names: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m?.[1]) names.push(m[1]);
  }
  return names;
}

/** Pids of the processes in a namespace (`ip netns pids`). */
export function netnsPids(netns: string): number[] {
  const r = run(ipBin(), ['netns', 'pids', netns]);
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isSafeInteger(n) && n > 0);
}

/** True while the process exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** argv of a process, or null when it is gone. */
export function cmdline(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s) => s !== '');
  } catch {
    return null;
  }
}

/** Working directory of a process, or null. */
export function cwdOf(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return null;
  }
}

/** Every pid in /proc. */
export function allPids(): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  return names
    .map((s) => (/^\d+$/.test(s) ? Number(s) : NaN))
    .filter((n) => Number.isSafeInteger(n) && n > 0);
}

export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread for `ms` (teardown is synchronous). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
