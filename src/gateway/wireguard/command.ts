/**
 * Runs an operator tool (`ip`, `wg`, `nft`, `wireguard-go`) as a child process with a time bound, capturing
 * bounded stdout/stderr. Arguments never carry secrets (keys travel through UAPI or private files), and the
 * child gets a minimal environment: no LPGW_* variable ever reaches it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

const MAX_STDERR = 4096;
const MAX_STDOUT = 64 * 1024 * 1024;
const SBIN = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The child's environment: a PATH that includes the sbin directories, and nothing else. */
export function childEnv(): NodeJS.ProcessEnv {
  const path = [...new Set([...(process.env.PATH ?? '').split(':').filter((d) => d !== ''), ...SBIN])].join(':');
  return { PATH: path };
}

/** Absolute path of `cmd` on PATH or in the sbin directories; null when absent. A path is returned as is if it exists. */
export function findExecutable(cmd: string): string | null {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : null;
  for (const dir of (childEnv().PATH ?? '').split(':')) if (existsSync(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  return null;
}

/**
 * Runs `cmd args` to completion. Resolves with the result (also for a non-zero exit); rejects only when the
 * command cannot be started or runs longer than `timeoutMs` (then it is killed), with an Error saying so.
 */
export function runCommand(cmd: string, args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<CommandResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise<CommandResult>((resolve, reject) => {
    // own timer: spawn's `timeout` option leaks its timer when the executable cannot be started
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
    const out: Buffer[] = [];
    let outLen = 0;
    let stderr = '';
    let settled = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`${cmd} ${args[0] ?? ''} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = (err: Error | null, code: number | null = null, signal: NodeJS.Signals | null = null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const stdout = Buffer.concat(out);
      for (const b of out) b.fill(0); // may hold secrets (e.g. `wg show dump`); the caller zeroes `stdout`
      if (err) {
        stdout.fill(0);
        reject(err);
      } else resolve({ code, signal, stdout, stderr: stderr.trim() });
    };
    child.stdout.on('data', (d: Buffer) => {
      if (outLen + d.length <= MAX_STDOUT) {
        out.push(d);
        outLen += d.length;
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (stderr.length < MAX_STDERR) stderr += d;
    });
    child.on('error', (e) => finish(new Error(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => finish(null, code, signal));
  });
}

/** One-line description of a failed command for an error message. */
export function describeFailure(cmd: string, args: readonly string[], r: CommandResult): string {
  const how = r.signal ? `signal ${r.signal}` : `exit ${r.code}`;
  return `${cmd} ${args.slice(0, 4).join(' ')} failed (${how}): ${r.stderr.slice(0, 500) || 'no output'}`;
}
