/**
 * Shared test plumbing: privilege/tool detection, child processes that print JSON lines, network
 * namespaces with unique names (lpgwt-<pid>-…) that are always deleted, and kernel-object checks.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const NODE_TSX = [process.execPath, '--import', 'tsx'] as const;
export const LP_GATEWAY = fileURLToPath(new URL('../../../bin/lp-gateway.js', import.meta.url));
export const LP_PEER = fileURLToPath(new URL('./lp-peer.ts', import.meta.url));

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
export const ROOT_SKIP = isRoot ? false : 'needs root (bpf, netns)';

export function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (dir && existsSync(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  }
  return null;
}

export function sh(cmd: string, args: readonly string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Unique per test process. Interface names must stay ≤ 15 chars. */
export const PREFIX = `lpgwt-${process.pid}-`;

export class Netns {
  readonly name: string;
  private deleted = false;
  private constructor(name: string) {
    this.name = name;
  }
  static create(suffix: string): Netns {
    const ns = new Netns(`${PREFIX}${suffix}`);
    sh('ip', ['netns', 'add', ns.name]);
    ns.ip(['link', 'set', 'lo', 'up']);
    return ns;
  }
  ip(args: readonly string[]): string {
    return sh('ip', ['-n', this.name, ...args]);
  }
  exec(cmd: string, args: readonly string[]): string {
    return sh('ip', ['netns', 'exec', this.name, cmd, ...args]);
  }
  /** Spawns `argv` inside the namespace (ip netns exec execs it: the child pid is the program's). */
  spawn(argv: readonly string[]): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    try {
      sh('ip', ['netns', 'delete', this.name]);
    } catch {
      // already gone
    }
  }
}

/** Deletes namespaces a crashed earlier run of this same pid could not (defensive; names are per-pid). */
export function listOurNetns(): string[] {
  try {
    return sh('ip', ['netns', 'list'])
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(PREFIX));
  } catch {
    return [];
  }
}

export interface JsonLines {
  lines: Record<string, unknown>[];
  stderr: string[];
  /** resolves with the first JSON line matching `pred` */
  waitFor(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Collects a child's stdout JSON lines (non-JSON lines are kept as {raw}). */
export function jsonLines(child: ChildProcess): JsonLines {
  const lines: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  if (child.stdout) {
    createInterface({ input: child.stdout }).on('line', (text) => {
      let l: Record<string, unknown>;
      try {
        l = JSON.parse(text) as Record<string, unknown>;
      } catch {
        l = { raw: text };
      }
      lines.push(l);
      for (const w of [...waiters]) {
        if (w.pred(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    });
  }
  if (child.stderr) createInterface({ input: child.stderr }).on('line', (t) => stderr.push(t));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    lines,
    stderr,
    exited,
    waitFor(pred, timeoutMs = 15_000) {
      const hit = lines.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for a line; stdout: ${JSON.stringify(lines).slice(0, 2000)} stderr: ${stderr.join('\n').slice(0, 2000)}`)), timeoutMs);
        const w = {
          pred,
          resolve: (l: Record<string, unknown>) => {
            clearTimeout(t);
            resolve(l);
          },
        };
        waiters.push(w);
        void exited.then(() => {
          if (waiters.includes(w)) {
            clearTimeout(t);
            reject(new Error(`process exited before the line; stdout: ${JSON.stringify(lines).slice(0, 2000)} stderr: ${stderr.join('\n').slice(0, 2000)}`));
          }
        });
      });
    },
  };
}

export function killQuietly(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.exitCode === null && child.signalCode === null) {
    try {
      child.kill(signal);
    } catch {
      // gone
    }
  }
}

export async function poll(check: () => boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
