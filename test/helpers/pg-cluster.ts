/**
 * Throwaway PostgreSQL clusters for tests and the bench: `initdb` + `pg_ctl` from Debian's `postgresql`
 * package in a temporary directory, on a free loopback port, as a non-root user (PostgreSQL refuses to run as
 * root: as root the commands run through `setpriv` as the `postgres` user, else `nobody`). Password
 * authentication (SCRAM) with a random superuser password, so tests exercise a real password. Every cluster
 * is stopped (by its postmaster PID if pg_ctl fails) and its directory removed by `destroy()`, and at process
 * exit whatever is left.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const PG_USER = 'lpgw';

/** Where initdb/pg_ctl live, or why PostgreSQL cannot be used here. */
export function findPostgres(): { bindir: string } | { missing: string } {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => /^\d+$/.test(v) && existsSync(join(base, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0] !== undefined) return { bindir: join(base, versions[0], 'bin') };
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return { bindir: dir };
  }
  return { missing: 'PostgreSQL is not installed (initdb/pg_ctl not found; apt-get install postgresql)' };
}

/** A skip reason for node:test, or false when PostgreSQL tests can run. */
export function postgresSkipReason(): string | false {
  const found = findPostgres();
  if ('missing' in found) return found.missing;
  if (process.getuid?.() === 0 && runAsUser() === null) return 'running as root and neither a postgres nor a nobody user exists to run PostgreSQL as';
  return false;
}

function idOf(user: string): { uid: number; gid: number } | null {
  try {
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : null;
  } catch {
    return null;
  }
}

/** The non-root user the cluster runs as when we are root. */
function runAsUser(): { uid: number; gid: number } | null {
  return idOf('postgres') ?? idOf('nobody');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface PgCluster {
  readonly dir: string;
  readonly port: number;
  readonly password: string;
  /** postgres://lpgw:<password>@127.0.0.1:<port>/<db> */
  url(db?: string): string;
  /** The same without the password (for PGPASSFILE / PGPASSWORD). */
  urlWithoutPassword(db?: string): string;
  /** A fresh, empty database; returns its name. */
  createDatabase(prefix?: string): Promise<string>;
  /** SQL as the superuser against `db` (default postgres). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], db?: string): Promise<R[]>;
  start(): void;
  /** fast: clients disconnected, checkpoint; immediate: like a crash (recovery from WAL at the next start). */
  stop(mode?: 'fast' | 'immediate'): void;
  readonly running: boolean;
  /** Stops (immediate) and removes everything; idempotent. */
  destroy(): void;
}

const live = new Set<PgCluster>();
let exitHook = false;

export async function startCluster(opts: { fsync?: boolean; maxConnections?: number } = {}): Promise<PgCluster> {
  const found = findPostgres();
  if ('missing' in found) throw new Error(found.missing);
  const bin = (name: string): string => join(found.bindir, name);
  const asRoot = process.getuid?.() === 0;
  const who = asRoot ? runAsUser() : null;
  if (asRoot && !who) throw new Error('no postgres or nobody user to run PostgreSQL as');
  const dir = mkdtempSync(join(tmpdir(), 'lpgw-pg-'));
  const data = join(dir, 'data');
  const password = randomBytes(18).toString('base64url');
  const port = await freePort();
  if (who) chownSync(dir, who.uid, who.gid);
  // Minimal environment: nothing of ours (no secrets) reaches PostgreSQL's processes.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' };
  const run = (cmd: string, args: string[], timeoutMs = 60_000): string => {
    const [file, argv] = who ? ['setpriv', [`--reuid=${who.uid}`, `--regid=${who.gid}`, '--clear-groups', '--', cmd, ...args]] : [cmd, args];
    const r = spawnSync(file, argv as string[], { cwd: dir, env, encoding: 'utf8', timeout: timeoutMs });
    if (r.status !== 0) throw new Error(`${cmd} ${args[0] ?? ''} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  let running = false;
  const pidFile = join(data, 'postmaster.pid');
  const postmasterPid = (): number | null => {
    try {
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  };
  const cluster: PgCluster = {
    dir,
    port,
    password,
    url: (db = 'postgres') => `postgres://${PG_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`,
    urlWithoutPassword: (db = 'postgres') => `postgres://${PG_USER}@127.0.0.1:${port}/${db}`,
    async createDatabase(prefix = 't') {
      const name = `${prefix}_${randomBytes(6).toString('hex')}`;
      await cluster.query(`CREATE DATABASE ${name}`);
      return name;
    },
    async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = [], db = 'postgres'): Promise<R[]> {
      const c = new pg.Client({ host: '127.0.0.1', port, user: PG_USER, password, database: db });
      await c.connect();
      try {
        return (await c.query<R>(sql, params)).rows;
      } finally {
        await c.end();
      }
    },
    start() {
      const options = [`-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', `-c max_connections=${opts.maxConnections ?? 200}`];
      if (opts.fsync === false) options.push('-c fsync=off');
      run(bin('pg_ctl'), ['start', '-D', data, '-l', join(dir, 'postgres.log'), '-w', '-t', '60', '-o', options.join(' ')]);
      running = true;
    },
    stop(mode = 'fast') {
      if (!running) return;
      try {
        run(bin('pg_ctl'), ['stop', '-D', data, '-m', mode, '-w', '-t', '60']);
      } catch (e) {
        const pid = postmasterPid();
        if (pid === null) throw e;
        try {
          process.kill(pid, 'SIGQUIT'); // the postmaster's immediate shutdown
        } catch {
          // already gone
        }
      }
      running = false;
    },
    get running() {
      return running;
    },
    destroy() {
      try {
        if (running) cluster.stop('immediate');
      } catch {
        // removed below either way
      }
      live.delete(cluster);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(cluster);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const c of live) c.destroy();
    });
  }
  try {
    const pwFile = join(dir, 'pw');
    writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    if (who) chownSync(pwFile, who.uid, who.gid);
    try {
      run(bin('initdb'), ['-D', data, '-U', PG_USER, `--pwfile=${pwFile}`, '-A', 'scram-sha-256', '-E', 'UTF8', '--no-locale', '--no-sync']);
    } finally {
      rmSync(pwFile, { force: true });
    }
    cluster.start();
  } catch (e) {
    cluster.destroy();
    throw e;
  }
  return cluster;
}
