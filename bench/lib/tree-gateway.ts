/**
 * A gateway process from a given source tree (its bin/lp-gateway.js and dist/), for the A/B scripts that compare
 * two trees in the same run (rt-ab.ts, collector-ab.ts): started on loopback with a fresh data directory and
 * the hello limit off, optionally inside a network namespace; stopped by PID; and stopped too if the script is
 * interrupted (SIGINT, SIGTERM), so no gateway or data directory outlives the run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface TreeGateway {
  proc: ChildProcess;
  pid: number;
  /** `http://host:port` of its HTTP API. */
  http: string;
  /** Its identity as logged at start. */
  identity: string;
  /** The collector program's id, or -1 (no `--collector`, or not attached). */
  progId: number;
  /** SIGTERM, then waits for the exit (it cannot miss it: the wait was set up at spawn) and removes its data. */
  stop(): Promise<void>;
}

/** Each running gateway and its data directory. */
const running = new Map<ChildProcess, string>();
const onInterrupt: (() => void)[] = [];

/** Runs `fn` (synchronously) if the script is interrupted, after the running gateways are killed. */
export function atInterrupt(fn: () => void): void {
  onInterrupt.push(fn);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`${sig}: stopping ${running.size} gateway(s)\n`);
    for (const [p, dir] of running) {
      p.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
    for (const fn of onInterrupt) {
      try {
        fn();
      } catch {
        /* best effort: the process is exiting */
      }
    }
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

export async function startTreeGateway(tree: string, o: { netns?: string; args?: string[] } = {}): Promise<TreeGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'lpgw-ab-'));
  const argv = [process.execPath, join(tree, 'bin/lp-gateway.js'), 'run', '--data-dir', dir, '--http', '127.0.0.1:0', '--lp-tcp', '127.0.0.1:0', '--lp-udp', '127.0.0.1:0', '--mock-ecash', '--log-level', 'info', ...(o.args ?? [])];
  const [cmd, ...args] = o.netns ? ['ip', 'netns', 'exec', o.netns, ...argv] : argv; // `ip netns exec` execs: the PID is the gateway's
  const proc = spawn(cmd as string, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LPGW_CONFIG: '/dev/null', LPGW_LP_HELLO_RATE_PER_SEC: '1000000', LPGW_LP_HELLO_BURST: '1000000', LP_GATEWAY_FROM_SOURCE: '0' },
  });
  running.set(proc, dir);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    proc.kill('SIGTERM');
    await exited;
    running.delete(proc);
    rmSync(dir, { recursive: true, force: true });
  };
  let identity = '';
  let progId = -1;
  try {
    const http = await new Promise<string>((resolve, reject) => {
      proc.once('exit', (c) => reject(new Error(`gateway from ${tree} exited ${c} before listening`)));
      createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (l) => {
        try {
          const rec = JSON.parse(l) as { msg?: string; http?: string; prog_id?: number; identity?: string };
          if (typeof rec.identity === 'string') identity = rec.identity;
          if (rec.msg === 'collector attached' && typeof rec.prog_id === 'number') progId = rec.prog_id;
          if (rec.msg === 'gateway listening') resolve(`http://${rec.http}`);
        } catch {
          /* not JSON */
        }
      });
    });
    return { proc, pid: proc.pid as number, http, identity, progId, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
