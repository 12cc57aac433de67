/**
 * The registration store on PostgreSQL (node-postgres), shared by a fleet of gateways: one ledger of spent
 * ticket serials for all of them, and each gateway's peers, allocations, mixnet clients and grants under its
 * identity key (`gateway_id`, schema.ts).
 *
 * Transactions: one pooled connection from BEGIN to COMMIT, READ COMMITTED, and the concurrency control in the
 * statements themselves —
 * - a serial is spent by `INSERT … ON CONFLICT DO NOTHING` on its primary key: a concurrent spender of the same
 *   serial (at any gateway) waits for the first one's transaction and then inserts nothing, so exactly one
 *   registration per serial commits;
 * - a registration reads its peer `FOR UPDATE` (a concurrent renewal or removal of the same key waits);
 * - an address is taken by inserting its allocation (`ON CONFLICT DO NOTHING` on both unique keys): a draw a
 *   concurrent registration holds is simply refused and the allocator draws again;
 * - two first registrations of one new key race on the peer's primary key: the loser's transaction fails with
 *   unique_violation and runs again from the start (then as a renewal), like serialization failures and
 *   deadlocks, up to MAX_ATTEMPTS times.
 * `transaction()` resolves only after COMMIT returned: an answered registration is committed.
 *
 * Faults: a failure to reach the database (refused, reset, timed out, the server shutting down or read-only
 * during a failover) makes the store unavailable (availability.ts): registrations get LPGW_ERR_STORE_UNAVAILABLE
 * with a retry hint, a probe reconnects in the background, the log says it once each way. A pool with every
 * connection busy is only refused with the same retryable code, without declaring an outage. Every message
 * that leaves this file has the password removed.
 */
import pg from 'pg';
import type { Logger } from '../../../log.js';
import { GatewayError, GatewayErrorCode, gwFail } from '../../errors.js';
import type { IpFamily } from '../allocator.js';
import { NOOP_OBSERVER, StoreAvailability, assertOutsideTransaction, insideTransaction, storeUnavailable } from './availability.js';
import { type PgSslMode, type PgTarget, parsePostgresUrl, redactSecret, redactUrl, resolvePassword, tlsOptions } from './postgres-target.js';
import { SCHEMA_VERSION, renderSchema } from './schema.js';
import { bytes, peerFromRow, type PeerRow } from './sqlite.js';
import type {
  BandwidthGrantRecord,
  NewPeer,
  PeerUsageRow,
  PeerUsageUpdate,
  RegistrationModeName,
  RegistrationStore,
  SpentSerialRecord,
  StoreCounts,
  StoreHealth,
  StoreObserver,
  StoreTx,
  StoredMixnetClient,
  StoredPeer,
} from './types.js';

/** PostgreSQL's migrations: version → SQL. Version 3 is the baseline (schema.ts rendered); never edit an entry. */
export const PG_MIGRATIONS: readonly { version: number; description: string; sql: string }[] = [
  { version: 3, description: 'baseline: the version-3 schema, per gateway identity', sql: renderSchema('postgres') },
];

const MAX_ATTEMPTS = 5;
/** pg_advisory_lock key serializing migrations across the fleet ('lpgw' 'mig'). */
const MIGRATION_LOCK = 0x6c706777_6d6967n;
/** Usage updates per statement. */
const USAGE_BATCH = 1000;
/** How long a starting gateway waits for its identity lock (a crashed predecessor's to be dropped). */
const IDENTITY_LOCK_WAIT_MS = 30_000;

export interface PgStoreOptions {
  url: string;
  sslmode: PgSslMode;
  /** PEM CA bundle for verify-full; '' = the system's CAs. */
  caFile?: string;
  poolMax?: number;
  /** Bound on connecting and on waiting for a free pooled connection. */
  connectTimeoutMs?: number;
  /** Bound on one statement (server-side statement_timeout and the client's read timeout). */
  queryTimeoutMs?: number;
  /** The gateway identity (Ed25519 public key, 32 bytes) whose rows this store reads and writes. */
  gatewayId: Uint8Array;
  logger?: Logger;
  observer?: StoreObserver;
  probeIntervalMs?: number;
  /** PGPASSWORD / PGPASSFILE source (tests). */
  env?: NodeJS.ProcessEnv;
  /** How long to wait at open for another process's lock on this identity to go; default 30 s. */
  identityLockWaitMs?: number;
}

/** int8 as bigint (pg's default is a string), for this pool only. */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 20 && format !== 'binary' ? (v: string) => BigInt(v) : pg.types.getTypeParser(oid, format ?? 'text'))) as typeof pg.types.getTypeParser,
};

type Failure = 'race' | 'unavailable' | 'busy' | 'other';

/** What kind of failure `e` is (see the file comment). */
export function classify(e: unknown): Failure {
  if (e instanceof GatewayError) return 'other';
  const code = (e as { code?: unknown }).code;
  if (e instanceof pg.DatabaseError && typeof code === 'string') {
    if (code === '40001' || code === '40P01' || code === '23505') return 'race';
    // 08 connection exception, 53 insufficient resources, 57 operator intervention (shutdown, statement
    // timeout), 58 system error, 25006 read-only transaction (a standby, mid-failover)
    if (/^(08|53|57|58)/.test(code) || code === '25006') return 'unavailable';
    return 'other';
  }
  if (!(e instanceof Error)) return 'other';
  if (e.message === 'timeout exceeded when trying to connect') return 'busy';
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return 'unavailable';
  if (/connection|terminated|timeout|not queryable|closed/i.test(e.message)) return 'unavailable';
  return 'other';
}

const buf = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

const PEER_COLUMNS = 'wg_public_key, ipv4, ipv6, psk, registered_at, updated_at, registrations, granted_bytes, expires_at, rx_bytes, tx_bytes, seen_rx, seen_tx, last_handshake';

type Queryable = Pick<pg.PoolClient, 'query'>;

class PgTx implements StoreTx {
  constructor(
    private readonly c: Queryable,
    private readonly g: Buffer,
  ) {}

  private async run(name: string, text: string, values: unknown[]): Promise<pg.QueryResult> {
    return this.c.query({ name, text, values });
  }

  async getPeer(wgPublicKey: Uint8Array, opts: { forUpdate?: boolean } = {}): Promise<StoredPeer | null> {
    const lock = opts.forUpdate === true;
    const r = await this.run(lock ? 'peer_get_lock' : 'peer_get', `SELECT ${PEER_COLUMNS} FROM dvpn_peers WHERE gateway_id = $1 AND wg_public_key = $2${lock ? ' FOR UPDATE' : ''}`, [this.g, buf(wgPublicKey)]);
    const row = r.rows[0] as PeerRow | undefined;
    return row ? peerFromRow(row) : null;
  }

  async insertPeer(p: NewPeer): Promise<void> {
    await this.run(
      'peer_insert',
      'INSERT INTO dvpn_peers (gateway_id, wg_public_key, ipv4, ipv6, psk, registered_at, updated_at, registrations, granted_bytes, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $6, 1, $7, $8)',
      [this.g, buf(p.wgPublicKey), buf(p.ipv4), buf(p.ipv6), p.psk ? buf(p.psk) : null, p.nowSec, p.grantedBytes, p.expiresAt],
    );
  }

  async renewPeer(wgPublicKey: Uint8Array, p: { psk: Uint8Array | null; grantedBytes: bigint; expiresAt: number; nowSec: number }): Promise<void> {
    await this.run(
      'peer_renew',
      'UPDATE dvpn_peers SET psk = $3, updated_at = $4, registrations = registrations + 1, granted_bytes = $5, expires_at = $6 WHERE gateway_id = $1 AND wg_public_key = $2',
      [this.g, buf(wgPublicKey), p.psk ? buf(p.psk) : null, p.nowSec, p.grantedBytes, p.expiresAt],
    );
  }

  async restorePeer(prev: StoredPeer): Promise<void> {
    await this.run(
      'peer_restore',
      'UPDATE dvpn_peers SET psk = $3, updated_at = $4, registrations = $5, granted_bytes = $6, expires_at = $7 WHERE gateway_id = $1 AND wg_public_key = $2',
      [this.g, buf(prev.wgPublicKey), prev.psk ? buf(prev.psk) : null, prev.updatedAt, prev.registrations, prev.grantedBytes, prev.expiresAt],
    );
  }

  async deletePeer(wgPublicKey: Uint8Array): Promise<boolean> {
    return ((await this.run('peer_delete', 'DELETE FROM dvpn_peers WHERE gateway_id = $1 AND wg_public_key = $2', [this.g, buf(wgPublicKey)])).rowCount ?? 0) > 0;
  }

  async deletePeerIfUnchanged(wgPublicKey: Uint8Array, updatedAt: number): Promise<boolean> {
    // READ COMMITTED re-checks the WHERE clause on a row a concurrent renewal updated: the renewal wins
    const r = await this.run('peer_delete_unchanged', 'DELETE FROM dvpn_peers WHERE gateway_id = $1 AND wg_public_key = $2 AND updated_at = $3', [this.g, buf(wgPublicKey), updatedAt]);
    return (r.rowCount ?? 0) > 0;
  }

  async allocatedOffsets(pool: string): Promise<readonly number[]> {
    const r = await this.run('alloc_offsets', 'SELECT host_offset FROM address_allocations WHERE gateway_id = $1 AND pool = $2 ORDER BY host_offset', [this.g, pool]);
    return r.rows.map((x: { host_offset: bigint }) => Number(x.host_offset));
  }

  async tryInsertAllocation(a: { family: IpFamily; pool: string; offset: number; address: Uint8Array; owner: Uint8Array; nowSec: number }): Promise<boolean> {
    const r = await this.run(
      'alloc_insert',
      'INSERT INTO address_allocations (gateway_id, pool, host_offset, family, address, wg_public_key, allocated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING',
      [this.g, a.pool, a.offset, a.family, buf(a.address), buf(a.owner), a.nowSec],
    );
    return r.rowCount === 1;
  }

  async recordMixnetClient(clientId: Uint8Array, nowSec: number): Promise<void> {
    await this.run(
      'mixnet_upsert',
      `INSERT INTO mixnet_clients (gateway_id, client_id, registered_at, updated_at, registrations) VALUES ($1, $2, $3, $3, 1)
       ON CONFLICT (gateway_id, client_id) DO UPDATE SET updated_at = excluded.updated_at, registrations = mixnet_clients.registrations + 1`,
      [this.g, buf(clientId), nowSec],
    );
  }

  async spendSerial(s: SpentSerialRecord): Promise<boolean> {
    const r = await this.run(
      'serial_spend',
      'INSERT INTO spent_serials (issuer_key_id, serial, ticket_type, bandwidth_bytes, expiry, spent_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING',
      [buf(s.issuerKeyId), buf(s.serial), s.ticketType, s.bandwidthBytes, s.expiry, s.nowSec],
    );
    return r.rowCount === 1;
  }

  async unspendSerial(issuerKeyId: Uint8Array, serial: Uint8Array): Promise<void> {
    await this.run('serial_unspend', 'DELETE FROM spent_serials WHERE issuer_key_id = $1 AND serial = $2', [buf(issuerKeyId), buf(serial)]);
  }

  async addGrant(g: BandwidthGrantRecord): Promise<number> {
    const r = await this.run(
      'grant_insert',
      'INSERT INTO bandwidth_grants (gateway_id, mode, subject, ticket_type, credential, issuer_key_id, serial, bandwidth_bytes, expires_at, granted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id',
      [this.g, g.mode, buf(g.subject), g.ticketType, g.credential, g.issuerKeyId ? buf(g.issuerKeyId) : null, g.serial ? buf(g.serial) : null, g.bandwidthBytes, g.expiresAt, g.nowSec],
    );
    return Number((r.rows[0] as { id: bigint }).id);
  }

  async deleteGrant(id: number): Promise<void> {
    await this.run('grant_delete', 'DELETE FROM bandwidth_grants WHERE gateway_id = $1 AND id = $2', [this.g, id]);
  }

  /** The poll's usage, one statement per batch. */
  async recordUsage(updates: readonly PeerUsageUpdate[]): Promise<void> {
    for (let i = 0; i < updates.length; i += USAGE_BATCH) {
      const batch = updates.slice(i, i + USAGE_BATCH);
      await this.run(
        'usage_record',
        `UPDATE dvpn_peers p SET rx_bytes = p.rx_bytes + u.add_rx, tx_bytes = p.tx_bytes + u.add_tx, seen_rx = u.seen_rx, seen_tx = u.seen_tx, last_handshake = u.hs
         FROM unnest($2::bytea[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[]) AS u (k, add_rx, add_tx, seen_rx, seen_tx, hs)
         WHERE p.gateway_id = $1 AND p.wg_public_key = u.k`,
        [this.g, batch.map((u) => buf(u.wgPublicKey)), batch.map((u) => u.addRx), batch.map((u) => u.addTx), batch.map((u) => u.seenRx), batch.map((u) => u.seenTx), batch.map((u) => u.lastHandshake)],
      );
    }
  }
}

export class PgStore implements RegistrationStore {
  readonly backend = 'postgres';
  readonly location: string;
  private readonly pool: pg.Pool;
  private readonly gw: Buffer;
  private readonly observer: StoreObserver;
  private readonly availability: StoreAvailability;
  private readonly secret: string | null;
  private readonly logger: Logger | undefined;
  private readonly clientConfig: pg.ClientConfig;
  /** The connection holding the identity lock; null while it is being (re)acquired. */
  private lockClient: pg.Client | null = null;
  private lockTimer: NodeJS.Timeout | null = null;
  private lockContested = false;
  private closing = false;

  private constructor(o: PgStoreOptions, target: PgTarget) {
    if (o.gatewayId.length !== 32) throw new TypeError('gateway id must be the 32-byte identity key');
    this.gw = Buffer.from(o.gatewayId);
    this.location = redactUrl(o.url);
    this.secret = target.password;
    this.logger = o.logger;
    this.observer = o.observer ?? NOOP_OBSERVER;
    const env = o.env ?? process.env;
    const queryTimeoutMs = o.queryTimeoutMs ?? 5000;
    this.clientConfig = {
      host: target.host,
      port: target.port,
      database: target.database,
      user: target.user,
      // asked at every new connection: the URL's, PGPASSWORD, or the password file (postgres-target.ts);
      // undefined (none) is accepted by node-postgres at run time, its type says string only
      password: (async () => resolvePassword(target, env)) as () => Promise<string>,
      ssl: tlsOptions(o.sslmode, o.caFile ?? ''),
      application_name: target.applicationName,
      connectionTimeoutMillis: o.connectTimeoutMs ?? 3000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      types: TYPES,
    };
    this.pool = new pg.Pool({
      ...this.clientConfig,
      max: o.poolMax ?? 10,
      idleTimeoutMillis: 30_000,
      statement_timeout: queryTimeoutMs,
      query_timeout: queryTimeoutMs + 1000,
      // a transaction left open by a lost client is ended by the server
      idle_in_transaction_session_timeout: Math.max(10_000, queryTimeoutMs * 2),
    });
    // An idle connection that breaks (server restart, failover) is dropped by the pool; the next transaction
    // connects afresh. Without a listener the error would end the process.
    this.pool.on('error', (e) => this.logger?.debug({ code: (e as { code?: unknown }).code, reason: this.redact(e.message) }, 'an idle PostgreSQL connection closed'));
    this.availability = new StoreAvailability('postgres', {
      logger: o.logger,
      observer: this.observer,
      location: this.location,
      probeIntervalMs: o.probeIntervalMs,
      probe: async () => {
        await this.pool.query('SELECT 1');
      },
    });
  }

  /** Connects, migrates (one gateway at a time across the fleet) and returns the store; throws LPGW_ERR_STORE_* otherwise. */
  static async open(o: PgStoreOptions): Promise<PgStore> {
    const store = new PgStore(o, parsePostgresUrl(o.url));
    try {
      await store.migrate();
      await store.lockIdentity(o.identityLockWaitMs ?? IDENTITY_LOCK_WAIT_MS);
    } catch (e) {
      store.closing = true;
      await store.releaseIdentity();
      await store.pool.end().catch(() => undefined);
      store.availability.close();
      if (e instanceof GatewayError) throw e;
      throw new GatewayError(GatewayErrorCode.STORE_UNAVAILABLE, `cannot open the registration store at ${store.location}: ${store.redact((e as Error).message)}`);
    }
    return store;
  }

  /** The identity's advisory lock key: its first 8 bytes (a collision between two identities is 2^-64). */
  private get lockKey(): bigint {
    return this.gw.readBigInt64BE(0);
  }

  /** Takes the identity lock, waiting up to `waitMs` for another holder to go; throws LPGW_ERR_STORE_IDENTITY_IN_USE. */
  private async lockIdentity(waitMs: number): Promise<void> {
    const deadline = Date.now() + waitMs;
    let said = false;
    for (;;) {
      if (await this.tryLockIdentity()) return;
      if (Date.now() >= deadline) {
        gwFail(
          GatewayErrorCode.STORE_IDENTITY_IN_USE,
          `another gateway process holds identity ${this.gw.toString('hex').slice(0, 16)}… on ${this.location}: one identity on several hosts is not supported (DESIGN.md §10.10); a crashed holder's lock goes within ~30 s`,
        );
      }
      if (!said) this.logger?.warn({ store: this.location, waitSec: Math.round(waitMs / 1000) }, 'another process holds this gateway identity on the database; waiting for it to go');
      said = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** One attempt: connect the lock connection if needed, then pg_try_advisory_lock. */
  private async tryLockIdentity(): Promise<boolean> {
    if (!this.lockClient) {
      const c = new pg.Client(this.clientConfig);
      c.on('error', () => undefined); // 'end' below handles the loss
      await c.connect();
      // a dead holder must not keep the identity for the kernel's 2 hours of keepalive idleness
      await c.query('SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3');
      c.on('end', () => this.identityLockLost(c));
      this.lockClient = c;
    }
    const r = await this.lockClient.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [this.lockKey]);
    return r.rows[0]?.ok === true;
  }

  /** The lock's connection ended (database restart, failover): take the lock again in the background. */
  private identityLockLost(c: pg.Client): void {
    if (this.lockClient !== c || this.closing) return;
    this.lockClient = null;
    const retry = (): void => {
      this.lockTimer = setTimeout(() => {
        this.lockTimer = null;
        if (this.closing) return;
        this.tryLockIdentity().then(
          (ok) => {
            if (ok) {
              if (this.lockContested) this.logger?.info({ store: this.location }, 'the gateway identity lock is ours again');
              this.lockContested = false;
              return;
            }
            if (!this.lockContested) this.logger?.error({ store: this.location }, 'another gateway process took this gateway identity on the database while it was unreachable; one identity on several hosts corrupts usage accounting (DESIGN.md §10.10)');
            this.lockContested = true;
            retry();
          },
          () => {
            const lost = this.lockClient;
            this.lockClient = null;
            void lost?.end().catch(() => undefined);
            retry();
          },
        );
      }, this.availability.retryAfterMs);
      this.lockTimer.unref();
    };
    retry();
  }

  private async releaseIdentity(): Promise<void> {
    if (this.lockTimer) clearTimeout(this.lockTimer);
    this.lockTimer = null;
    const c = this.lockClient;
    this.lockClient = null;
    // ending the session releases its advisory locks
    await c?.end().catch(() => undefined);
  }

  private redact(text: string): string {
    return redactSecret(text, this.secret);
  }

  private async migrate(): Promise<void> {
    const c = await this.pool.connect();
    let failed: Error | undefined;
    const onError = (e: Error): void => {
      failed = e;
    };
    c.on('error', onError);
    try {
      await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      try {
        await c.query('CREATE TABLE IF NOT EXISTS lpgw_schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
        const current = Number((await c.query<{ v: number | null }>('SELECT MAX(version) AS v FROM lpgw_schema_migrations')).rows[0]?.v ?? 0);
        if (current > SCHEMA_VERSION) {
          gwFail(GatewayErrorCode.STORE_SCHEMA, `${this.location}: database schema version ${current} is newer than this build supports (${SCHEMA_VERSION}); upgrade lp-gateway`);
        }
        for (const m of PG_MIGRATIONS) {
          if (m.version <= current) continue;
          await c.query('BEGIN');
          try {
            await c.query(m.sql);
            await c.query('INSERT INTO lpgw_schema_migrations (version, description) VALUES ($1, $2)', [m.version, m.description]);
            await c.query('COMMIT');
          } catch (e) {
            await c.query('ROLLBACK').catch(() => undefined);
            throw e;
          }
          this.logger?.info({ store: this.location, from: current, to: m.version }, 'registration store schema migrated');
        }
      } finally {
        await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      }
    } catch (e) {
      failed = e as Error;
      throw e;
    } finally {
      c.off('error', onError);
      c.release(failed);
    }
  }

  async schemaVersion(): Promise<number> {
    return this.statement('schemaVersion', async (q) => Number((await q.query<{ v: number | null }>('SELECT MAX(version) AS v FROM lpgw_schema_migrations')).rows[0]?.v ?? 0));
  }

  /** Timing, outcome and the translation of connection failures into the retryable error. */
  private async timed<T>(op: string, job: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    const seconds = (): number => (performance.now() - t0) / 1000;
    try {
      const r = await job();
      this.availability.succeeded();
      this.observer.transaction(op, seconds(), 'ok');
      return r;
    } catch (e) {
      if (e instanceof GatewayError) {
        // a refusal from the transaction's own logic: the store answered
        if (e.code === GatewayErrorCode.STORE_UNAVAILABLE) this.observer.transaction(op, seconds(), 'unavailable');
        else {
          this.availability.succeeded();
          this.observer.transaction(op, seconds(), 'ok');
        }
        throw e;
      }
      const kind = classify(e);
      const code = (e as { code?: unknown }).code;
      if (kind === 'unavailable' || kind === 'busy') {
        this.observer.transaction(op, seconds(), 'unavailable');
        if (kind === 'unavailable') this.availability.failed(typeof code === 'string' ? code : 'CONNECTION', this.redact((e as Error).message));
        throw storeUnavailable(this.availability.retryAfterMs, kind === 'busy' ? 'the registration store is busy' : 'the registration store is unavailable');
      }
      this.observer.transaction(op, seconds(), 'error');
      throw new GatewayError(GatewayErrorCode.INTERNAL, `registration store error${typeof code === 'string' ? ` ${code}` : ''} in ${op}: ${this.redact((e as Error).message)}`);
    }
  }

  transaction<T>(op: string, fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    assertOutsideTransaction('transaction');
    return this.timed(op, async () => {
      for (let attempt = 1; ; attempt++) {
        this.availability.assertAvailable();
        const c = await this.pool.connect();
        let broken: Error | undefined;
        // a connection that dies while lent out emits 'error' on the client (the pool listens only to idle ones)
        const onError = (e: Error): void => {
          broken = e;
        };
        c.on('error', onError);
        try {
          await c.query('BEGIN');
          const r = await insideTransaction.run(op, () => fn(new PgTx(c, this.gw)));
          await c.query('COMMIT');
          return r;
        } catch (e) {
          try {
            await c.query('ROLLBACK');
          } catch {
            broken = e as Error; // the connection is gone: the pool must not lend it again
          }
          if (classify(e) === 'race' && attempt < MAX_ATTEMPTS) {
            this.observer.retried(op, String((e as { code?: unknown }).code));
            await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
            continue;
          }
          throw e;
        } finally {
          c.off('error', onError);
          c.release(broken);
        }
      }
    });
  }

  private statement<T>(method: string, fn: (q: Queryable) => Promise<T>): Promise<T> {
    assertOutsideTransaction(method);
    return this.timed(method, () => {
      this.availability.assertAvailable();
      return fn(this.pool);
    });
  }

  private tx(q: Queryable): PgTx {
    return new PgTx(q, this.gw);
  }

  getPeer(wgPublicKey: Uint8Array): Promise<StoredPeer | null> {
    return this.statement('getPeer', (q) => this.tx(q).getPeer(wgPublicKey));
  }

  listPeers(): Promise<StoredPeer[]> {
    return this.statement('listPeers', async (q) => {
      const r = await q.query<PeerRow>({ name: 'peer_list', text: `SELECT ${PEER_COLUMNS} FROM dvpn_peers WHERE gateway_id = $1 ORDER BY registered_at, wg_public_key`, values: [this.gw] });
      return r.rows.map(peerFromRow);
    });
  }

  peerUsage(): Promise<PeerUsageRow[]> {
    return this.statement('peerUsage', async (q) => {
      const r = await q.query<{ wg_public_key: Buffer; granted_bytes: bigint; expires_at: bigint; rx_bytes: bigint; tx_bytes: bigint; seen_rx: bigint; seen_tx: bigint; last_handshake: bigint; updated_at: bigint; has_psk: boolean }>({
        name: 'peer_usage',
        text: 'SELECT wg_public_key, granted_bytes, expires_at, rx_bytes, tx_bytes, seen_rx, seen_tx, last_handshake, updated_at, psk IS NOT NULL AS has_psk FROM dvpn_peers WHERE gateway_id = $1',
        values: [this.gw],
      });
      return r.rows.map((x) => ({
        wgPublicKey: x.wg_public_key,
        grantedBytes: x.granted_bytes,
        expiresAt: Number(x.expires_at),
        rxBytes: x.rx_bytes,
        txBytes: x.tx_bytes,
        seenRx: x.seen_rx,
        seenTx: x.seen_tx,
        lastHandshake: Number(x.last_handshake),
        updatedAt: Number(x.updated_at),
        hasPsk: x.has_psk,
      }));
    });
  }

  peerCount(): Promise<number> {
    return this.statement('peerCount', async (q) => Number((await q.query<{ n: bigint }>('SELECT COUNT(*) AS n FROM dvpn_peers WHERE gateway_id = $1', [this.gw])).rows[0]?.n ?? 0));
  }

  async recordUsage(updates: readonly PeerUsageUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    await this.transaction('record_usage', (tx) => (tx as PgTx).recordUsage(updates));
  }

  getMixnetClient(clientId: Uint8Array): Promise<StoredMixnetClient | null> {
    return this.statement('getMixnetClient', async (q) => {
      const r = await q.query<{ client_id: Buffer; registered_at: bigint; updated_at: bigint; registrations: bigint }>(
        'SELECT client_id, registered_at, updated_at, registrations FROM mixnet_clients WHERE gateway_id = $1 AND client_id = $2',
        [this.gw, buf(clientId)],
      );
      const x = r.rows[0];
      return x ? { clientId: bytes(x.client_id), registeredAt: Number(x.registered_at), updatedAt: Number(x.updated_at), registrations: Number(x.registrations) } : null;
    });
  }

  spendSerial(s: SpentSerialRecord): Promise<boolean> {
    return this.statement('spendSerial', (q) => this.tx(q).spendSerial(s));
  }

  isSerialSpent(issuerKeyId: Uint8Array, serial: Uint8Array): Promise<boolean> {
    return this.statement('isSerialSpent', async (q) => (await q.query('SELECT 1 FROM spent_serials WHERE issuer_key_id = $1 AND serial = $2', [buf(issuerKeyId), buf(serial)])).rows.length > 0);
  }

  pruneSpentSerials(expiredBeforeSec: number): Promise<number> {
    // fleet-wide (every gateway prunes the one ledger; a second pass finds nothing)
    return this.statement('pruneSpentSerials', async (q) => (await q.query('DELETE FROM spent_serials WHERE expiry < $1', [Math.floor(expiredBeforeSec)])).rowCount ?? 0);
  }

  totalBandwidth(mode: RegistrationModeName, subject: Uint8Array): Promise<bigint> {
    return this.statement('totalBandwidth', async (q) => {
      const r = await q.query<{ s: bigint | string }>('SELECT COALESCE(SUM(bandwidth_bytes), 0)::int8 AS s FROM bandwidth_grants WHERE gateway_id = $1 AND mode = $2 AND subject = $3', [this.gw, mode, buf(subject)]);
      return BigInt(r.rows[0]?.s ?? 0);
    });
  }

  /** This gateway's rows; spentSerials counts the fleet's ledger. */
  counts(): Promise<StoreCounts> {
    return this.statement('counts', async (q) => {
      const r = await q.query<Record<keyof StoreCounts, bigint>>(
        `SELECT (SELECT COUNT(*) FROM dvpn_peers WHERE gateway_id = $1) AS "dvpnPeers", (SELECT COUNT(*) FROM mixnet_clients WHERE gateway_id = $1) AS "mixnetClients",
                (SELECT COUNT(*) FROM address_allocations WHERE gateway_id = $1) AS allocations, (SELECT COUNT(*) FROM spent_serials) AS "spentSerials",
                (SELECT COUNT(*) FROM bandwidth_grants WHERE gateway_id = $1) AS "bandwidthGrants"`,
        [this.gw],
      );
      const x = r.rows[0];
      return {
        dvpnPeers: Number(x?.dvpnPeers ?? 0),
        mixnetClients: Number(x?.mixnetClients ?? 0),
        allocations: Number(x?.allocations ?? 0),
        spentSerials: Number(x?.spentSerials ?? 0),
        bandwidthGrants: Number(x?.bandwidthGrants ?? 0),
      };
    });
  }

  health(): StoreHealth {
    return { ...this.availability.health(), pool: { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount, max: this.pool.options.max ?? 0 } };
  }

  async close(): Promise<void> {
    this.closing = true;
    this.availability.close();
    await this.releaseIdentity();
    await this.pool.end();
  }
}
