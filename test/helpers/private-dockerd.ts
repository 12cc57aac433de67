/**
 * A Docker engine of the test's own: Debian's dockerd (docker.io) with its socket, data root, exec root and
 * client configuration under one temporary directory, started and stopped by PID. It leaves the host's
 * network alone where it can: no iptables rules, no ip_forward, no default bridge (docker0) — containers on
 * one user-defined bridge network still reach each other, which is all the localnet needs.
 *
 * Its containers' cgroups live under a parent named after the test process (`lpgw-dockerd-<pid>`), not
 * Docker's shared `docker`, so that they can be found and removed by name.
 *
 * stop() is synchronous and idempotent (it also runs from after() and on process exit): SIGTERM and a
 * bounded wait (dockerd stops its containers and its containerd), SIGKILL otherwise; then, by PID, any
 * process still using the directory (containerd, shims) or in the cgroup parent; then the mounts under the
 * directory; then the directory; then the cgroup parent; then the few host paths dockerd creates elsewhere,
 * when they were not there before it started.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Set when the time bound killed the command. */
  timedOut: boolean;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Commands runCommand() started that have not ended: teardown ends them first. */
const running = new Set<ChildProcess>();

/** SIGKILLs every command runCommand() started that still runs, with what it started, and waits (bounded) until they are gone (teardown). */
export function killRunningCommands(): number {
  const groups = [...running].map((c) => c.pid).filter((p): p is number => p !== undefined);
  for (const child of running) killGroup(child, 'SIGKILL');
  running.clear();
  // Zombies do not count: the leader stays one until the event loop reaps it, which it cannot do here.
  const groupAlive = (pgid: number): boolean => allPids().some((p) => {
    const st = procStat(p);
    return st !== null && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X';
  });
  const end = Date.now() + 10_000;
  while (groups.some(groupAlive) && Date.now() < end) sleepSync(50);
  return groups.length;
}

/**
 * Runs a command to completion, asynchronously (a long synchronous spawn would stall the test runner's own
 * timers), SIGKILLed after `timeoutMs` together with its process group.
 */
export function runCommand(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number }): Promise<CommandResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    // Its own process group, so that the time bound also reaches what it started (debootstrap's children).
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...(opts.env ? { env: opts.env } : {}), ...(opts.cwd ? { cwd: opts.cwd } : {}) });
    running.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, opts.timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code: null, stdout, stderr: `${stderr}${e.message}`, ms: Date.now() - t0, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr, ms: Date.now() - t0, timedOut });
    });
  });
}

function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    // already gone
  }
}

/** Synchronous and bounded: teardown only. */
export function runSync(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): CommandResult {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, ...(opts.env ? { env: opts.env } : {}) });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error?.message ?? ''), ms: Date.now() - t0, timedOut: (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT' };
}

/** State and process group of a process, from /proc/<pid>/stat (after the command name, which may hold spaces). */
function procStat(pid: number): { state: string; pgrp: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state = '', , pgrp = ''] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state, pgrp: Number(pgrp) };
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  const st = procStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
}

function readProc(pid: number, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
}

/** Mount points at or under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // Field 5 is the mount point, with spaces and the like octal-escaped.
    const mp = line.split(' ')[4]?.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mp !== undefined && (mp === dir || mp.startsWith(`${dir}/`))) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

/**
 * Unmounts whatever is mounted under `dir` (an engine's overlays, an interrupted debootstrap's proc), then
 * deletes it — never through a mount. Returns why it was kept, or null.
 */
export function removeTree(dir: string): string | null {
  for (const m of mountsUnder(dir)) runSync('umount', ['-l', m]);
  const still = mountsUnder(dir);
  if (still.length > 0) return `${dir} kept: still mounted ${still.join(', ')}`;
  rmSync(dir, { recursive: true, force: true });
  return null;
}

/** Mount points of the cgroup hierarchies (v1 controllers and v2). */
function cgroupRoots(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / - cgroup2? /.test(l))
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m !== '');
}

/** Removes a cgroup directory and the ones below it (cgroupfs removes a directory only when it has no children). */
function removeCgroup(dir: string): boolean {
  if (!existsSync(dir)) return true;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(join(dir, e.name));
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

/** Paths dockerd 20.10 creates outside its data and exec roots (the trust key, plugin and shim socket dirs). */
const HOST_PATHS = { files: ['/etc/docker/key.json'], dirs: ['/run/docker/plugins', '/run/docker', '/run/containerd/s', '/run/containerd'] } as const;

export interface DockerdBinaries {
  dockerd: string;
  /** The client that belongs to that engine (Debian's /usr/bin/docker; a newer client elsewhere on PATH would default to BuildKit). */
  docker: string;
}

export class PrivateDockerd {
  readonly socket: string;
  /** Environment for docker, docker-compose and the scripts: this engine, the legacy builder, a private client config. */
  readonly env: NodeJS.ProcessEnv;
  /** The cgroup parent of this engine's containers (cgroupfs driver). */
  readonly cgroupParent = `lpgw-dockerd-${process.pid}`;
  private proc: ChildProcess | null = null;
  private readonly preexisting: Set<string>;
  private stopped = false;

  private constructor(
    readonly dir: string,
    readonly bin: DockerdBinaries,
  ) {
    this.socket = join(dir, 'docker.sock');
    this.preexisting = new Set([...HOST_PATHS.files, ...HOST_PATHS.dirs].filter((p) => existsSync(p)));
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${this.socket}`, DOCKER_CONFIG: join(dir, 'client'), DOCKER_BUILDKIT: '0', COMPOSE_DOCKER_CLI_BUILD: '0', DOCKER: bin.docker };
    // The node:test runner marks its children; nothing started from here is a test.
    delete env.NODE_TEST_CONTEXT;
    this.env = env;
  }

  /** Starts dockerd and waits (bounded) until it answers. `dir` must exist and be empty. */
  static async start(dir: string, bin: DockerdBinaries, timeoutMs = 60_000): Promise<PrivateDockerd> {
    const d = new PrivateDockerd(dir, bin);
    mkdirSync(join(dir, 'client'), { recursive: true });
    const log = openSync(join(dir, 'dockerd.log'), 'a');
    const args = [
      '--data-root', join(dir, 'root'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'),
      '--host', `unix://${d.socket}`, '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false',
      '--bridge=none', '--userland-proxy=false', '--log-level=warn',
      '--exec-opt', 'native.cgroupdriver=cgroupfs', '--cgroup-parent', `/${d.cgroupParent}`,
    ];
    d.proc = spawn(bin.dockerd, args, { stdio: ['ignore', log, log] });
    closeSync(log);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (d.proc.exitCode !== null || d.proc.signalCode !== null) throw new Error(`dockerd exited at start (${String(d.proc.exitCode ?? d.proc.signalCode)}):\n${d.logTail()}`);
      if (existsSync(d.socket) && (await d.docker(['version', '--format', '{{.Server.Version}}'], 10_000)).code === 0) return d;
      if (Date.now() > deadline) {
        d.stop();
        throw new Error(`dockerd did not answer within ${timeoutMs} ms:\n${d.logTail()}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  docker(args: readonly string[], timeoutMs: number): Promise<CommandResult> {
    return runCommand(this.bin.docker, args, { env: this.env, timeoutMs });
  }

  dockerSync(args: readonly string[], timeoutMs = 60_000): CommandResult {
    return runSync(this.bin.docker, args, { env: this.env, timeoutMs });
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(join(this.dir, 'dockerd.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no dockerd log)';
    }
  }

  /** Stops everything (see the file comment); returns what could not be cleaned up (empty: all gone). */
  stop(): string[] {
    if (this.stopped) return [];
    this.stopped = true;
    const problems: string[] = [];
    const pid = this.proc?.pid;
    if (pid !== undefined && alive(pid)) {
      process.kill(pid, 'SIGTERM');
      const end = Date.now() + 45_000;
      while (alive(pid) && Date.now() < end) sleepSync(100);
      if (alive(pid)) {
        problems.push(`dockerd ${pid} ignored SIGTERM for 45 s; killed`);
        process.kill(pid, 'SIGKILL');
        const killEnd = Date.now() + 5_000;
        while (alive(pid) && Date.now() < killEnd) sleepSync(50);
      }
    }
    // What dockerd left running: its containerd and shims name the directory on their command lines; the
    // containers' processes are in the cgroup parent.
    const leftovers = allPids().filter((p) => p !== process.pid && (readProc(p, 'cmdline').includes(this.dir) || readProc(p, 'cgroup').includes(`/${this.cgroupParent}/`)));
    for (const p of leftovers) {
      problems.push(`left running: pid ${p} ${readProc(p, 'cmdline').split('\0').join(' ').slice(0, 120)}; killed`);
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (leftovers.length > 0) sleepSync(500);
    const kept = removeTree(this.dir);
    if (kept !== null) problems.push(kept);
    for (const root of cgroupRoots()) if (!removeCgroup(join(root, this.cgroupParent))) problems.push(`cgroup ${root}/${this.cgroupParent} not removed`);
    for (const f of HOST_PATHS.files) if (!this.preexisting.has(f)) rmSync(f, { force: true });
    for (const d of HOST_PATHS.dirs) {
      if (this.preexisting.has(d) || !existsSync(d)) continue;
      try {
        rmdirSync(d); // only when empty: another engine may use it
      } catch {
        problems.push(`${d} not empty; kept`);
      }
    }
    return problems;
  }
}
