/**
 * The PostgreSQL client library decision (DESIGN.md §10.6): node-postgres (`pg`, in use) against `postgres`
 * (porsager's postgres.js, not a dependency: `npm i --no-save postgres` to include it) on a throwaway cluster,
 * with a registration-shaped transaction: BEGIN; spend a serial (INSERT … ON CONFLICT DO NOTHING); read the
 * peer FOR UPDATE; two allocations (INSERT … ON CONFLICT DO NOTHING RETURNING); insert the peer; insert the
 * grant RETURNING id; COMMIT — 8 round trips on one pooled connection. Figures: sequential latency (p50/p99),
 * throughput with 16 concurrent transactions on a pool of 10, and the client's CPU per transaction.
 *
 * `node --import tsx bench/lib/pg-clients.ts` prints JSON lines; bench/run-all.ts (section `store`) uses it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { startCluster, type PgCluster } from '../../test/helpers/pg-cluster.js';

export interface ClientFigure {
  library: string;
  version: string;
  sequential: { p50Ms: number; p99Ms: number };
  concurrent: { perSec: number; p50Ms: number; p99Ms: number };
  cpuUsPerTx: number;
}

const DDL = `
CREATE TABLE s (k BYTEA PRIMARY KEY, b BIGINT NOT NULL, at BIGINT NOT NULL);
CREATE TABLE p (g BYTEA NOT NULL, k BYTEA NOT NULL, v4 BYTEA NOT NULL, v6 BYTEA NOT NULL, psk BYTEA, n BIGINT NOT NULL, PRIMARY KEY (g, k));
CREATE TABLE a (g BYTEA NOT NULL, pool TEXT NOT NULL, o BIGINT NOT NULL, addr BYTEA NOT NULL, k BYTEA NOT NULL, PRIMARY KEY (g, pool, o), UNIQUE (g, addr));
CREATE TABLE gr (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, g BYTEA NOT NULL, k BYTEA NOT NULL, b BIGINT NOT NULL);
`;

const GW = randomBytes(32);
let counter = 0;
/** One transaction's parameters: fresh serial, key and offsets (never conflicting, as in a quiet pool). */
function params(): { serial: Buffer; key: Buffer; o4: number; o6: number; psk: Buffer } {
  const n = counter++;
  return { serial: randomBytes(16), key: randomBytes(32), o4: n * 2, o6: n * 2 + 1, psk: randomBytes(32) };
}

type Tx = () => Promise<void>;

function pgTx(pool: pg.Pool): Tx {
  return async () => {
    const x = params();
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query({ name: 's', text: 'INSERT INTO s (k, b, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', values: [x.serial, 1n << 30n, 1] });
      await c.query({ name: 'p1', text: 'SELECT * FROM p WHERE g = $1 AND k = $2 FOR UPDATE', values: [GW, x.key] });
      await c.query({ name: 'a', text: 'INSERT INTO a (g, pool, o, addr, k) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING o', values: [GW, 'v4', x.o4, randomBytes(4), x.key] });
      await c.query({ name: 'a', text: 'INSERT INTO a (g, pool, o, addr, k) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING o', values: [GW, 'v6', x.o6, randomBytes(16), x.key] });
      await c.query({ name: 'p2', text: 'INSERT INTO p (g, k, v4, v6, psk, n) VALUES ($1, $2, $3, $4, $5, 1)', values: [GW, x.key, randomBytes(4), randomBytes(16), x.psk] });
      await c.query({ name: 'g', text: 'INSERT INTO gr (g, k, b) VALUES ($1, $2, $3) RETURNING id', values: [GW, x.key, 1n << 30n] });
      await c.query('COMMIT');
      c.release();
    } catch (e) {
      c.release(true);
      throw e;
    }
  };
}

interface PostgresJs {
  begin<T>(fn: (sql: PostgresJsTx) => Promise<T>): Promise<T>;
  end(): Promise<void>;
  unsafe(q: string): Promise<unknown>;
}
type PostgresJsTx = (strings: TemplateStringsArray, ...values: unknown[]) => Promise<unknown[]>;

function postgresJsTx(sql: PostgresJs): Tx {
  return async () => {
    const x = params();
    await sql.begin(async (t) => {
      await t`INSERT INTO s (k, b, at) VALUES (${x.serial}, ${(1n << 30n).toString()}, 1) ON CONFLICT DO NOTHING`;
      await t`SELECT * FROM p WHERE g = ${GW} AND k = ${x.key} FOR UPDATE`;
      await t`INSERT INTO a (g, pool, o, addr, k) VALUES (${GW}, 'v4', ${x.o4}, ${randomBytes(4)}, ${x.key}) ON CONFLICT DO NOTHING RETURNING o`;
      await t`INSERT INTO a (g, pool, o, addr, k) VALUES (${GW}, 'v6', ${x.o6}, ${randomBytes(16)}, ${x.key}) ON CONFLICT DO NOTHING RETURNING o`;
      await t`INSERT INTO p (g, k, v4, v6, psk, n) VALUES (${GW}, ${x.key}, ${randomBytes(4)}, ${randomBytes(16)}, ${x.psk}, 1)`;
      await t`INSERT INTO gr (g, k, b) VALUES (${GW}, ${x.key}, ${(1n << 30n).toString()}) RETURNING id`;
    });
  };
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

async function measure(tx: Tx, sequentialN: number, concurrentN: number): Promise<Omit<ClientFigure, 'library' | 'version'>> {
  for (let i = 0; i < 200; i++) await tx(); // warm: JIT, prepared statements, pool
  const seq: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < sequentialN; i++) {
    const t = performance.now();
    await tx();
    seq.push(performance.now() - t);
  }
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next++ < concurrentN) {
        const t = performance.now();
        await tx();
        lat.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    sequential: { p50Ms: quantile(seq, 0.5), p99Ms: quantile(seq, 0.99) },
    concurrent: { perSec: concurrentN / elapsed, p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99) },
    cpuUsPerTx: (cpu.user + cpu.system) / (sequentialN + concurrentN),
  };
}

function version(name: string): string {
  try {
    return (JSON.parse(readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'n/a';
  }
}

/** Both libraries on one fresh cluster (fsync on: the figures include the commit's WAL flush), alternating rounds. */
export async function clientFigures(opts: { rounds?: number; sequential?: number; concurrent?: number } = {}): Promise<ClientFigure[]> {
  const cluster: PgCluster = await startCluster({ fsync: true });
  try {
    const out = new Map<string, Omit<ClientFigure, 'library' | 'version'>[]>();
    const libs: { name: string; make: (db: string) => Promise<{ tx: Tx; end: () => Promise<void> }> }[] = [
      {
        name: 'pg',
        make: async (db) => {
          const pool = new pg.Pool({ host: '127.0.0.1', port: cluster.port, user: 'lpgw', password: cluster.password, database: db, max: 10 });
          return { tx: pgTx(pool), end: () => pool.end() };
        },
      },
    ];
    try {
      const modName = 'postgres';
      const mod = (await import(modName)) as { default: (o: Record<string, unknown>) => PostgresJs };
      libs.push({
        name: 'postgres',
        make: async (db) => {
          const sql = mod.default({ host: '127.0.0.1', port: cluster.port, user: 'lpgw', password: cluster.password, database: db, max: 10, onnotice: () => undefined });
          return { tx: postgresJsTx(sql), end: () => sql.end() };
        },
      });
    } catch {
      // optional: not installed
    }
    for (let r = 0; r < (opts.rounds ?? 3); r++) {
      for (const lib of libs) {
        const db = await cluster.createDatabase('clients');
        await cluster.query(DDL, [], db);
        const { tx, end } = await lib.make(db);
        const f = await measure(tx, opts.sequential ?? 1000, opts.concurrent ?? 4000);
        await end();
        out.set(lib.name, [...(out.get(lib.name) ?? []), f]);
      }
    }
    const med = (xs: number[]): number => quantile(xs, 0.5);
    return [...out].map(([library, fs]) => ({
      library,
      version: version(library),
      sequential: { p50Ms: med(fs.map((f) => f.sequential.p50Ms)), p99Ms: med(fs.map((f) => f.sequential.p99Ms)) },
      concurrent: { perSec: med(fs.map((f) => f.concurrent.perSec)), p50Ms: med(fs.map((f) => f.concurrent.p50Ms)), p99Ms: med(fs.map((f) => f.concurrent.p99Ms)) },
      cpuUsPerTx: med(fs.map((f) => f.cpuUsPerTx)),
    }));
  } finally {
    cluster.destroy();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of await clientFigures()) process.stdout.write(`${JSON.stringify(f)}\n`);
}
