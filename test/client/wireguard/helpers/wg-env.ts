/**
 * Test plumbing for the WireGuard client against real wireguard-go: privilege/tool detection, network
 * namespaces and interfaces with names unique to this process (lpwg<pid><n>), wireguard-go instances
 * configured with `wg set` (keys through 0600 temp files removed at once, never argv or env), and a JSON
 * driver child running the TS client inside a namespace. Everything created here is torn down by `cleanup`.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { wgKeyToBase64 } from '../../../../src/client/wireguard/index.js';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const DRIVER = fileURLToPath(new URL('./wg-driver.ts', import.meta.url));
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin', '/bin'])) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

export const WIREGUARD_GO = which('wireguard-go');
export const WG = which('wg');
export const IP = which('ip');
export const SETPRIV = which('setpriv');

/** Why the wireguard-go tests cannot run here, or false when they can. */
export const WG_SKIP: string | false = !isRoot
  ? 'needs root (network namespaces, wireguard-go TUN interfaces)'
  : !WIREGUARD_GO
    ? 'wireguard-go is not installed (apt-get install wireguard-go)'
    : !WG
      ? 'wg (wireguard-tools) is not installed'
      : !IP
        ? 'ip (iproute2) is not installed'
        : false;

export function sh(cmd: string, args: readonly string[], timeout = 10_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout });
}

let counter = 0;
/** ≤ 15 characters (IFNAMSIZ), unique per process and call. */
export function uniqueName(): string {
  counter++;
  return `lpwg${process.pid % 1_000_000}${counter.toString(36)}`;
}

const cleanups: (() => void)[] = [];
// also when the runner exits without reaching `after` (everything registered here is synchronous)
process.once('exit', () => cleanup());
/** Runs every registered teardown, newest first; safe to call more than once. */
export function cleanup(): void {
  while (cleanups.length) {
    const f = cleanups.pop();
    try {
      f?.();
    } catch {
      // best effort: keep tearing down
    }
  }
}

export class Netns {
  private deleted = false;
  private constructor(readonly name: string) {}
  static create(): Netns {
    const ns = new Netns(uniqueName());
    sh('ip', ['netns', 'add', ns.name]);
    cleanups.push(() => ns.delete());
    ns.ip(['link', 'set', 'lo', 'up']);
    return ns;
  }
  ip(args: readonly string[]): string {
    return sh('ip', ['-n', this.name, ...args]);
  }
  exec(cmd: string, args: readonly string[], timeout = 10_000): string {
    return sh('ip', ['netns', 'exec', this.name, cmd, ...args], timeout);
  }
  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    spawnSync('ip', ['netns', 'delete', this.name], { stdio: 'ignore' });
  }
}

/** Runs `fn` with the path of a 0600 file holding `content`; the file is removed as soon as fn returns. */
export function withSecretFile<T>(content: string, fn: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'lpwg-'));
  const path = join(dir, 'k');
  try {
    writeFileSync(path, `${content}\n`, { mode: 0o600 });
    return fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface WgGoOptions {
  privateKey: Uint8Array;
  port: number;
  /** e.g. '10.91.0.1/24' */
  addr4: string;
  /** e.g. 'fd91::1/64' */
  addr6: string;
  /** wireguard-go's LOG_LEVEL (default 'verbose': the tests read its log). */
  logLevel?: 'verbose' | 'error' | 'silent';
}

/** A wireguard-go interface in `ns`, configured and up. */
export class WgGo {
  private stopped = false;
  private constructor(
    readonly ns: Netns,
    readonly ifname: string,
    readonly proc: ChildProcess,
    private readonly logDir: string,
  ) {}

  /**
   * wireguard-go's verbose log so far. It goes to a file, not a pipe: the tests call `wg` synchronously,
   * and a pipe nobody drains during such a call would block wireguard-go (and so the `wg` call) once full.
   */
  get logs(): string[] {
    try {
      return readFileSync(join(this.logDir, 'log'), 'utf8').split('\n');
    } catch {
      return [];
    }
  }

  static async start(ns: Netns, o: WgGoOptions): Promise<WgGo> {
    const ifname = uniqueName();
    const logDir = mkdtempSync(join(tmpdir(), 'lpwg-log-'));
    const fd = openSync(join(logDir, 'log'), 'w', 0o600);
    const proc = spawn('ip', ['netns', 'exec', ns.name, WIREGUARD_GO ?? 'wireguard-go', '-f', ifname], {
      stdio: ['ignore', fd, fd],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LOG_LEVEL: o.logLevel ?? 'verbose' },
    });
    closeSync(fd);
    const wg = new WgGo(ns, ifname, proc, logDir);
    cleanups.push(() => wg.stop());
    const sock = `/var/run/wireguard/${ifname}.sock`;
    const end = Date.now() + 5000;
    while (!existsSync(sock)) {
      if (Date.now() > end || proc.exitCode !== null) throw new Error(`wireguard-go did not start: ${wg.logs.join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    withSecretFile(wgKeyToBase64(o.privateKey), (f) => ns.exec('wg', ['set', ifname, 'listen-port', String(o.port), 'private-key', f]));
    ns.ip(['address', 'add', o.addr4, 'dev', ifname]);
    ns.ip(['-6', 'address', 'add', o.addr6, 'dev', ifname, 'nodad']);
    ns.ip(['link', 'set', ifname, 'up']);
    return wg;
  }

  /** Adds or updates a peer (the PSK through a 0600 temp file). */
  setPeer(p: { publicKey: Uint8Array; psk: Uint8Array | null; allowedIps: string; endpoint?: string; keepalive?: number }): void {
    const args = ['set', this.ifname, 'peer', wgKeyToBase64(p.publicKey), 'allowed-ips', p.allowedIps];
    if (p.endpoint) args.push('endpoint', p.endpoint);
    if (p.keepalive) args.push('persistent-keepalive', String(p.keepalive));
    if (p.psk) withSecretFile(wgKeyToBase64(p.psk), (f) => this.ns.exec('wg', [...args, 'preshared-key', f]));
    else this.ns.exec('wg', args);
  }

  /** Many peers in one `wg set` (all with the same PSK file). */
  setPeers(peers: readonly { publicKey: Uint8Array; allowedIps: string }[], psk: Uint8Array): void {
    withSecretFile(wgKeyToBase64(psk), (f) =>
      this.ns.exec('wg', ['set', this.ifname, ...peers.flatMap((p) => ['peer', wgKeyToBase64(p.publicKey), 'preshared-key', f, 'allowed-ips', p.allowedIps])]),
    );
  }

  /** CPU seconds (user + system) wireguard-go has used so far. */
  cpuSeconds(): number {
    const stat = readFileSync(`/proc/${this.proc.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  removePeer(publicKey: Uint8Array): void {
    this.ns.exec('wg', ['set', this.ifname, 'peer', wgKeyToBase64(publicKey), 'remove']);
  }

  /** `wg show <if> latest-handshakes` for one peer, in Unix seconds (0: never). */
  latestHandshake(publicKey: Uint8Array): number {
    const pk = wgKeyToBase64(publicKey);
    for (const line of this.ns.exec('wg', ['show', this.ifname, 'latest-handshakes']).split('\n')) {
      const [k, v] = line.split('\t');
      if (k === pk) return Number(v);
    }
    return -1;
  }

  /** `wg show <if> transfer` for one peer: bytes received from / sent to it. */
  transfer(publicKey: Uint8Array): { rx: number; tx: number } {
    const pk = wgKeyToBase64(publicKey);
    for (const line of this.ns.exec('wg', ['show', this.ifname, 'transfer']).split('\n')) {
      const [k, rx, tx] = line.split('\t');
      if (k === pk) return { rx: Number(rx), tx: Number(tx) };
    }
    return { rx: -1, tx: -1 };
  }

  /** Deleting the interface makes wireguard-go exit; it is killed if it does not within 2 s. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    spawnSync('ip', ['-n', this.ns.name, 'link', 'del', this.ifname], { stdio: 'ignore' });
    const end = Date.now() + 2000;
    while (Date.now() < end && isLive(this.proc.pid)) spawnSync('sleep', ['0.02']);
    if (isLive(this.proc.pid)) {
      try {
        this.proc.kill('SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(`/var/run/wireguard/${this.ifname}.sock`, { force: true });
    rmSync(this.logDir, { recursive: true, force: true });
  }
}

/** Whether a child pid is still running (not exited, not a zombie waiting to be reaped). */
function isLive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

export type Json = Record<string, unknown>;

/** The TS client in a child process inside a namespace, driven by JSON lines (requests on stdin). */
export class Driver {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void }>();
  readonly stderr: string[] = [];
  private constructor(readonly proc: ChildProcess) {
    if (proc.stdout) {
      createInterface({ input: proc.stdout }).on('line', (line) => {
        let msg: Json;
        try {
          msg = JSON.parse(line) as Json;
        } catch {
          this.stderr.push(line);
          return;
        }
        const p = this.pending.get(msg.id as number);
        if (p) {
          this.pending.delete(msg.id as number);
          p.resolve(msg);
        }
      });
    }
    if (proc.stderr) createInterface({ input: proc.stderr }).on('line', (l) => this.stderr.length < 500 && this.stderr.push(l));
    proc.on('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error(`driver exited; stderr:\n${this.stderr.join('\n')}`));
      this.pending.clear();
    });
  }

  /** Starts the driver inside `ns`, optionally as uid/gid 65534 without capabilities. */
  static start(ns: Netns, o: { unprivileged?: boolean } = {}): Driver {
    const node = [process.execPath, '--import', 'tsx', DRIVER];
    const drop = ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];
    const argv = o.unprivileged ? [SETPRIV ?? 'setpriv', ...drop, ...node] : node;
    const proc = spawn('ip', ['netns', 'exec', ns.name, ...argv], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp' },
    });
    const d = new Driver(proc);
    cleanups.push(() => d.kill());
    return d;
  }

  /** One request; rejects when the driver answers with an unexpected exception or does not answer in time. */
  call(op: string, args: Json = {}, timeoutMs = 20_000): Promise<Json> {
    const id = this.nextId++;
    return new Promise<Json>((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`driver: ${op} timed out; stderr:\n${this.stderr.join('\n')}`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          if (typeof v.crash === 'string') reject(new Error(`driver crashed in ${op}: ${v.crash}`));
          else resolve(v);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.proc.stdin?.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      try {
        this.proc.kill('SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

export const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');
export const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
