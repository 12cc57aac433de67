/**
 * Runs `lp-gateway run` as a real child process on loopback (ports 0) and reads its addresses from the
 * "gateway listening" log line. Every started process is killed by `stopAll()` (call it in `after`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const BIN = new URL('../../bin/lp-gateway.js', import.meta.url).pathname;

export interface GatewayProcess {
  proc: ChildProcess;
  dataDir: string;
  http: string;
  lpTcp: string;
  lpUdp: string | null;
  /** The gateway's Ed25519 identity key, hex (from its start log). */
  identity: string;
  /** `<http>#<identity>`: the HTTP API pinned to the identity, for an entry's --peer. */
  pinned: string;
  /** Every log line (parsed JSON) so far. */
  logs: Record<string, unknown>[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<GatewayProcess>();
const dirs = new Set<string>();

export function tempDataDir(prefix = 'lpgw-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export async function startGatewayProcess(
  args: string[] = [],
  opts: {
    dataDir?: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    /** command prefix, e.g. setpriv … */
    wrap?: string[];
    /** another checkout's bin/lp-gateway.js (the benchmarks' A/B against an earlier version) */
    bin?: string;
  } = {},
): Promise<GatewayProcess> {
  const dataDir = opts.dataDir ?? tempDataDir();
  const [cmd, ...pre] = [...(opts.wrap ?? []), process.execPath];
  const proc = spawn(cmd as string, [...pre, opts.bin ?? BIN, 'run', '--data-dir', dataDir, '--http', '127.0.0.1:0', '--lp-tcp', '127.0.0.1:0', '--lp-udp', '127.0.0.1:0', '--log-level', 'debug', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LPGW_CONFIG: '/dev/null', ...opts.env },
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const gp = await new Promise<GatewayProcess>((resolve, reject) => {
    // a gateway that never got ready is killed here: nobody else holds it, and its pipes would keep the test file alive
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`gateway did not start within ${opts.timeoutMs ?? 60_000} ms; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    void exited.then((code) => reject(new Error(`gateway exited with ${code} before listening; stderr: ${stderr}; logs: ${JSON.stringify(logs.slice(-5))}`)));
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(rec);
      if (rec.msg === 'gateway listening') {
        clearTimeout(timer);
        const identity = String(logs.find((l) => typeof l.identity === 'string')?.identity ?? '');
        const g: GatewayProcess = {
          proc,
          dataDir,
          identity,
          pinned: `http://${rec.http as string}#${identity}`,
          http: `http://${rec.http as string}`,
          lpTcp: rec.lpTcp as string,
          lpUdp: (rec.lpUdp as string | null) ?? null,
          logs,
          async stop(signal: NodeJS.Signals = 'SIGTERM') {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
            const code = await exited;
            running.delete(g);
            return code;
          },
        };
        running.add(g);
        resolve(g);
      }
    });
  });
  return gp;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((g) => g.stop('SIGKILL')));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

/** Parse Prometheus text into `name{labels}` → value. */
export async function scrape(http: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}
