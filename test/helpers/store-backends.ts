/**
 * The registration store backends a parameterised suite runs against: SQLite (a fresh data directory per
 * location) and PostgreSQL (a throwaway cluster per suite, a fresh database per location). Without PostgreSQL
 * installed its suite is skipped with the reason.
 *
 *   for (const b of storeBackends()) describe(`… (${b.name})`, { skip: b.skip }, () => {
 *     before(() => b.start()); after(() => b.stop());
 *     … const store = await b.open(await b.location()); …
 *   });
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { PgStore, SqliteStore, type RegistrationStore, type StoreBackend, type StoreObserver } from '../../src/gateway/registration/store.js';
import { postgresSkipReason, startCluster, type PgCluster } from './pg-cluster.js';

export interface OpenOptions {
  gatewayId?: Uint8Array;
  logger?: Logger;
  observer?: StoreObserver;
  probeIntervalMs?: number;
}

export interface BackendUnderTest {
  readonly name: StoreBackend;
  /** false, or why this backend's tests are skipped. */
  readonly skip: string | false;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A new, empty place for a store: a data directory, or a database. */
  location(): Promise<string>;
  open(location: string, opts?: OpenOptions): Promise<RegistrationStore>;
  /** For a child process: a file (0600) naming the location, readable by the helper `openFromSpec`. */
  specFile(location: string): string;
  /** PostgreSQL only. */
  readonly cluster: PgCluster | null;
}

/** The gateway identity tests use unless they say otherwise. */
export const TEST_GATEWAY_ID = new Uint8Array(32).fill(0x61);

export function sqliteBackend(): BackendUnderTest {
  let root = '';
  let n = 0;
  return {
    name: 'sqlite',
    skip: false,
    cluster: null,
    async start() {
      root = mkdtempSync(join(tmpdir(), 'lpgw-store-sqlite-'));
    },
    async stop() {
      if (root) rmSync(root, { recursive: true, force: true });
    },
    async location() {
      return join(root, `d${n++}`);
    },
    async open(location, opts = {}) {
      return SqliteStore.open(location, { ...(opts.logger ? { logger: opts.logger } : {}), ...(opts.observer ? { observer: opts.observer } : {}) });
    },
    specFile(location) {
      const f = join(root, `spec-${n++}`);
      writeFileSync(f, JSON.stringify({ backend: 'sqlite', location }), { mode: 0o600 });
      return f;
    },
  };
}

export function postgresBackend(): BackendUnderTest {
  let cluster: PgCluster | null = null;
  let root = '';
  let n = 0;
  const b: BackendUnderTest = {
    name: 'postgres',
    skip: postgresSkipReason(),
    get cluster() {
      return cluster;
    },
    async start() {
      root = mkdtempSync(join(tmpdir(), 'lpgw-store-pg-'));
      cluster = await startCluster({ fsync: false });
    },
    async stop() {
      cluster?.destroy();
      cluster = null;
      if (root) rmSync(root, { recursive: true, force: true });
    },
    async location() {
      if (!cluster) throw new Error('postgres backend not started');
      return cluster.url(await cluster.createDatabase('reg'));
    },
    async open(location, opts = {}) {
      return PgStore.open({
        url: location,
        sslmode: 'disable',
        gatewayId: opts.gatewayId ?? TEST_GATEWAY_ID,
        ...(opts.logger ? { logger: opts.logger } : {}),
        ...(opts.observer ? { observer: opts.observer } : {}),
        ...(opts.probeIntervalMs !== undefined ? { probeIntervalMs: opts.probeIntervalMs } : {}),
      });
    },
    specFile(location) {
      const f = join(root, `spec-${n++}`);
      writeFileSync(f, JSON.stringify({ backend: 'postgres', location }), { mode: 0o600 });
      return f;
    },
  };
  return b;
}

export function storeBackends(): BackendUnderTest[] {
  return [sqliteBackend(), postgresBackend()];
}

/** Opens the store a spec file names (child processes: the URL with its password stays off the command line). */
export async function openFromSpec(file: string, read: (f: string) => string): Promise<RegistrationStore> {
  const spec = JSON.parse(read(file)) as { backend: StoreBackend; location: string };
  return spec.backend === 'sqlite' ? SqliteStore.open(spec.location) : PgStore.open({ url: spec.location, sslmode: 'disable', gatewayId: TEST_GATEWAY_ID });
}
