/**
 * The embedded registration store: one SQLite file, `<dataDir>/gateway.sqlite` (better-sqlite3), for one
 * gateway. The default: nothing to install or run besides the gateway.
 *
 * Durability: WAL journal with `synchronous=FULL`, so the WAL is fsync'd at every commit and a committed
 * registration or spent serial survives `kill -9` and power loss (with `NORMAL` a power loss could roll
 * back the last commits, i.e. un-spend serials). The schema is versioned with `PRAGMA user_version` and
 * migrated forward at open; the migrations below are the released history (never edited) and lead to the
 * schema of schema.ts.
 *
 * Transactions: better-sqlite3 is synchronous and the connection is one, so the asynchronous transactions of
 * the store interface are serialized through a queue: BEGIN IMMEDIATE, `fn` (whose statements run at once),
 * COMMIT, then the next. Store-level statements queue the same way, so nothing interleaves with an open
 * transaction.
 *
 * Secrets: the WireGuard preshared key of a dVPN peer is stored in cleartext **only when a WireGuard
 * interface is configured** (the caller passes `psk: null` otherwise): the gateway must re-apply every peer
 * with its PSK to the `wg` device after a restart, and the PSK is derived from an LP session that no longer
 * exists then. The database file (and its -wal/-shm files, which SQLite creates with the database's mode) is
 * therefore mode 0600 in a 0700 data directory, the same protection as the gateway's private keys.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../../../log.js';
import { GatewayErrorCode, gwFail } from '../../errors.js';
import type { IpFamily } from '../allocator.js';
import { NOOP_OBSERVER, StoreAvailability, assertOutsideTransaction, insideTransaction, storeUnavailable } from './availability.js';
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

export const STORE_FILE_NAME = 'gateway.sqlite';

/** Forward migrations; entry i moves the schema from version i to i + 1. Never edit a released entry. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE dvpn_peers (
    wg_public_key BLOB PRIMARY KEY NOT NULL CHECK (length(wg_public_key) = 32),
    ipv4 BLOB NOT NULL CHECK (length(ipv4) = 4),
    ipv6 BLOB NOT NULL CHECK (length(ipv6) = 16),
    -- WireGuard PSK, kept only when a WireGuard interface is configured (see the file comment)
    psk BLOB CHECK (psk IS NULL OR length(psk) = 32),
    registered_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    registrations INTEGER NOT NULL DEFAULT 1
  ) WITHOUT ROWID;

  CREATE TABLE address_allocations (
    pool TEXT NOT NULL,
    host_offset INTEGER NOT NULL,
    family INTEGER NOT NULL CHECK (family IN (4, 6)),
    address BLOB NOT NULL,
    wg_public_key BLOB NOT NULL REFERENCES dvpn_peers (wg_public_key) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    allocated_at INTEGER NOT NULL,
    PRIMARY KEY (pool, host_offset),
    UNIQUE (family, address)
  ) WITHOUT ROWID;
  CREATE INDEX address_allocations_owner ON address_allocations (wg_public_key);

  CREATE TABLE mixnet_clients (
    client_id BLOB PRIMARY KEY NOT NULL CHECK (length(client_id) = 32),
    registered_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    registrations INTEGER NOT NULL DEFAULT 1
  ) WITHOUT ROWID;

  CREATE TABLE spent_serials (
    issuer_key_id BLOB NOT NULL CHECK (length(issuer_key_id) = 8),
    serial BLOB NOT NULL CHECK (length(serial) = 16),
    ticket_type INTEGER NOT NULL,
    bandwidth_bytes INTEGER NOT NULL,
    expiry INTEGER NOT NULL,
    spent_at INTEGER NOT NULL,
    PRIMARY KEY (issuer_key_id, serial)
  ) WITHOUT ROWID;
  CREATE INDEX spent_serials_expiry ON spent_serials (expiry);

  CREATE TABLE bandwidth_grants (
    id INTEGER PRIMARY KEY,
    mode TEXT NOT NULL CHECK (mode IN ('dvpn', 'mixnet')),
    -- WireGuard public key (dvpn) or client_id (mixnet)
    subject BLOB NOT NULL,
    ticket_type INTEGER NOT NULL,
    credential TEXT NOT NULL CHECK (credential IN ('mock', 'ticket')),
    issuer_key_id BLOB,
    serial BLOB,
    bandwidth_bytes INTEGER NOT NULL CHECK (bandwidth_bytes >= 0),
    granted_at INTEGER NOT NULL
  );
  CREATE INDEX bandwidth_grants_subject ON bandwidth_grants (mode, subject);
  `,
  // v2: O(log n) lowest-free allocation. Free offsets of a pool = released_offsets ∪ [next_offset, last];
  // every released offset lies below next_offset, so MIN(released) (if any) is the lowest free one.
  `
  CREATE TABLE pool_state (
    pool TEXT PRIMARY KEY NOT NULL,
    -- high-water mark: every offset from the first client offset up to here has been handed out once
    next_offset INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE released_offsets (
    pool TEXT NOT NULL,
    host_offset INTEGER NOT NULL,
    PRIMARY KEY (pool, host_offset)
  ) WITHOUT ROWID;

  CREATE TRIGGER address_allocations_release AFTER DELETE ON address_allocations
  BEGIN
    INSERT OR IGNORE INTO released_offsets (pool, host_offset) VALUES (old.pool, old.host_offset);
  END;

  -- backfill from v1 allocations (the first client offset is 2)
  INSERT INTO pool_state (pool, next_offset) SELECT pool, MAX(host_offset) + 1 FROM address_allocations GROUP BY pool;
  WITH RECURSIVE seq (pool, o) AS (
    SELECT pool, 2 FROM pool_state WHERE next_offset > 2
    UNION ALL
    SELECT seq.pool, seq.o + 1 FROM seq JOIN pool_state p ON p.pool = seq.pool WHERE seq.o + 1 < p.next_offset
  )
  INSERT INTO released_offsets (pool, host_offset)
  SELECT pool, o FROM seq WHERE NOT EXISTS (SELECT 1 FROM address_allocations a WHERE a.pool = seq.pool AND a.host_offset = seq.o);
  `,
  // v3: peer lifecycle. Each peer carries its live grant (bytes, expiry) and its persisted usage, plus the
  // device counters last seen (so a restart or a re-created interface never counts traffic twice).
  // Allocation is random now: the lowest-free bookkeeping of v2 goes.
  `
  ALTER TABLE dvpn_peers ADD COLUMN granted_bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE dvpn_peers ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE dvpn_peers ADD COLUMN rx_bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE dvpn_peers ADD COLUMN tx_bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE dvpn_peers ADD COLUMN seen_rx INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE dvpn_peers ADD COLUMN seen_tx INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE dvpn_peers ADD COLUMN last_handshake INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE bandwidth_grants ADD COLUMN expires_at INTEGER;
  -- existing peers: the sum of their grants; expiry = their tickets' latest expiry, else 30 days after
  -- their last registration (mock grants had no expiry before v3)
  UPDATE dvpn_peers SET
    granted_bytes = (SELECT COALESCE(SUM(g.bandwidth_bytes), 0) FROM bandwidth_grants g WHERE g.mode = 'dvpn' AND g.subject = dvpn_peers.wg_public_key),
    expires_at = COALESCE(
      (SELECT MAX(s.expiry) FROM bandwidth_grants g JOIN spent_serials s ON s.issuer_key_id = g.issuer_key_id AND s.serial = g.serial
        WHERE g.mode = 'dvpn' AND g.subject = dvpn_peers.wg_public_key),
      updated_at + 2592000);
  CREATE INDEX dvpn_peers_expiry ON dvpn_peers (expires_at);
  DROP TRIGGER address_allocations_release;
  DROP TABLE released_offsets;
  DROP TABLE pool_state;
  `,
];

export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

export interface SqliteStoreOptions {
  /** File name inside the data directory; default `gateway.sqlite`. */
  fileName?: string;
  logger?: Logger;
  observer?: StoreObserver;
}

/** better-sqlite3 binds Buffers (not plain Uint8Arrays) as BLOBs: zero-copy view. */
function blob(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Read with safeIntegers: every INTEGER column arrives as a bigint. */
interface PeerRow {
  wg_public_key: Buffer;
  ipv4: Buffer;
  ipv6: Buffer;
  psk: Buffer | null;
  registered_at: bigint;
  updated_at: bigint;
  registrations: bigint;
  granted_bytes: bigint;
  expires_at: bigint;
  rx_bytes: bigint;
  tx_bytes: bigint;
  seen_rx: bigint;
  seen_tx: bigint;
  last_handshake: bigint;
}

/** Plain Uint8Array copies, so callers never see Buffer (whose slice() is a view and whose equality differs). */
export function bytes(b: Buffer): Uint8Array {
  return new Uint8Array(b);
}

/** The row shape both backends read (PostgreSQL returns the same column names). */
export function peerFromRow(r: PeerRow): StoredPeer {
  const psk = r.psk ? bytes(r.psk) : null;
  r.psk?.fill(0);
  return {
    wgPublicKey: bytes(r.wg_public_key),
    ipv4: bytes(r.ipv4),
    ipv6: bytes(r.ipv6),
    psk,
    registeredAt: Number(r.registered_at),
    updatedAt: Number(r.updated_at),
    registrations: Number(r.registrations),
    grantedBytes: r.granted_bytes,
    expiresAt: Number(r.expires_at),
    rxBytes: r.rx_bytes,
    txBytes: r.tx_bytes,
    seenRx: r.seen_rx,
    seenTx: r.seen_tx,
    lastHandshake: Number(r.last_handshake),
  };
}
export type { PeerRow };

/** Creates the file 0600 before SQLite does (SQLite would use 0644 under the usual umask). */
function ensurePrivateFile(path: string): void {
  if (!existsSync(path)) {
    closeSync(openSync(path, 'a', 0o600));
  }
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(p) && (statSync(p).mode & 0o077) !== 0) chmodSync(p, 0o600);
  }
}

/** SQLITE_BUSY / SQLITE_LOCKED: another process held the database longer than the busy timeout; retryable. */
function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

type Statements = ReturnType<SqliteStore['prepareStatements']>;

/** The statements of one transaction; they run synchronously, the promises only fit the interface. */
class SqliteTx implements StoreTx {
  constructor(private readonly st: Statements) {}

  async getPeer(wgPublicKey: Uint8Array): Promise<StoredPeer | null> {
    const r = this.st.getPeer.get(blob(wgPublicKey));
    return r ? peerFromRow(r) : null;
  }

  async insertPeer(p: NewPeer): Promise<void> {
    this.st.insertPeer.run(blob(p.wgPublicKey), blob(p.ipv4), blob(p.ipv6), p.psk ? blob(p.psk) : null, p.nowSec, p.nowSec, p.grantedBytes, p.expiresAt);
  }

  async renewPeer(wgPublicKey: Uint8Array, p: { psk: Uint8Array | null; grantedBytes: bigint; expiresAt: number; nowSec: number }): Promise<void> {
    this.st.renewPeer.run(p.psk ? blob(p.psk) : null, p.nowSec, p.grantedBytes, p.expiresAt, blob(wgPublicKey));
  }

  async restorePeer(prev: StoredPeer): Promise<void> {
    this.st.restorePeer.run(prev.psk ? blob(prev.psk) : null, prev.updatedAt, prev.registrations, prev.grantedBytes, prev.expiresAt, blob(prev.wgPublicKey));
  }

  async deletePeer(wgPublicKey: Uint8Array): Promise<boolean> {
    return this.st.deletePeer.run(blob(wgPublicKey)).changes > 0;
  }

  async deletePeerIfUnchanged(wgPublicKey: Uint8Array, updatedAt: number): Promise<boolean> {
    return this.st.deletePeerIfUnchanged.run(blob(wgPublicKey), updatedAt).changes > 0;
  }

  async allocatedOffsets(pool: string): Promise<readonly number[]> {
    return this.st.poolOffsets.all(pool);
  }

  async tryInsertAllocation(a: { family: IpFamily; pool: string; offset: number; address: Uint8Array; owner: Uint8Array; nowSec: number }): Promise<boolean> {
    return this.st.insertAllocation.run(a.pool, a.offset, a.family, blob(a.address), blob(a.owner), a.nowSec).changes === 1;
  }

  async recordMixnetClient(clientId: Uint8Array, nowSec: number): Promise<void> {
    this.st.upsertMixnet.run(blob(clientId), nowSec, nowSec);
  }

  async spendSerial(s: SpentSerialRecord): Promise<boolean> {
    return this.st.spendSerial.run(blob(s.issuerKeyId), blob(s.serial), s.ticketType, s.bandwidthBytes, s.expiry, s.nowSec).changes === 1;
  }

  async unspendSerial(issuerKeyId: Uint8Array, serial: Uint8Array): Promise<void> {
    this.st.unspendSerial.run(blob(issuerKeyId), blob(serial));
  }

  async addGrant(g: BandwidthGrantRecord): Promise<number> {
    const r = this.st.addGrant.run(
      g.mode,
      blob(g.subject),
      g.ticketType,
      g.credential,
      g.issuerKeyId ? blob(g.issuerKeyId) : null,
      g.serial ? blob(g.serial) : null,
      g.bandwidthBytes,
      g.expiresAt,
      g.nowSec,
    );
    return Number(r.lastInsertRowid);
  }

  async deleteGrant(id: number): Promise<void> {
    this.st.deleteGrant.run(id);
  }
}

export class SqliteStore implements RegistrationStore {
  readonly backend = 'sqlite';
  private readonly db: Database.Database;
  private readonly st: Statements;
  private readonly tx: SqliteTx;
  private readonly observer: StoreObserver;
  private readonly availability: StoreAvailability;
  /** The queue every transaction and statement waits in (see the file comment). */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly logger?: Logger,
    observer?: StoreObserver,
  ) {
    ensurePrivateFile(path);
    this.db = new Database(path, { timeout: 5000 });
    try {
      const mode = String(this.db.pragma('journal_mode = WAL', { simple: true }));
      if (mode !== 'wal') this.logger?.warn({ path, mode }, 'SQLite WAL mode unavailable on this filesystem; using the rollback journal');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (e) {
      this.db.close();
      throw e;
    }
    this.st = this.prepareStatements();
    this.tx = new SqliteTx(this.st);
    this.observer = observer ?? NOOP_OBSERVER;
    this.availability = new StoreAvailability('sqlite', { logger, observer: this.observer, location: path });
  }

  /** Opens (creating if needed) `<dataDir>/gateway.sqlite`; the directory is created 0700 if missing. */
  static open(dataDir: string, opts: SqliteStoreOptions = {}): SqliteStore {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    return new SqliteStore(join(dataDir, opts.fileName ?? STORE_FILE_NAME), opts.logger, opts.observer);
  }

  get location(): string {
    return this.path;
  }

  private migrate(): void {
    const current = Number(this.db.pragma('user_version', { simple: true }));
    if (current > MIGRATIONS.length) {
      gwFail(GatewayErrorCode.STORE_SCHEMA, `${this.path}: database schema version ${current} is newer than this build supports (${MIGRATIONS.length}); upgrade lp-gateway`);
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      const sql = MIGRATIONS[v] ?? '';
      this.db
        .transaction(() => {
          this.db.exec(sql);
          this.db.pragma(`user_version = ${v + 1}`);
        })
        .immediate();
      this.logger?.info({ path: this.path, from: v, to: v + 1 }, 'registration store schema migrated');
    }
  }

  private prepareStatements() {
    const db = this.db;
    return {
      getPeer: db.prepare<[Buffer], PeerRow>('SELECT * FROM dvpn_peers WHERE wg_public_key = ?').safeIntegers(true),
      listPeers: db.prepare<[], PeerRow>('SELECT * FROM dvpn_peers ORDER BY registered_at, wg_public_key').safeIntegers(true),
      peerCount: db.prepare<[], number>('SELECT COUNT(*) FROM dvpn_peers').pluck(),
      // raw rows in this column order (the poll reads every peer: arrays cost less than objects)
      peerUsage: db
        .prepare<[], [Buffer, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint]>(
          'SELECT wg_public_key, granted_bytes, expires_at, rx_bytes, tx_bytes, seen_rx, seen_tx, last_handshake, updated_at, psk IS NOT NULL FROM dvpn_peers',
        )
        .raw(true)
        .safeIntegers(true),
      insertPeer: db.prepare<[Buffer, Buffer, Buffer, Buffer | null, number, number, bigint, number]>(
        'INSERT INTO dvpn_peers (wg_public_key, ipv4, ipv6, psk, registered_at, updated_at, registrations, granted_bytes, expires_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)',
      ),
      renewPeer: db.prepare<[Buffer | null, number, bigint, number, Buffer]>(
        'UPDATE dvpn_peers SET psk = ?, updated_at = ?, registrations = registrations + 1, granted_bytes = ?, expires_at = ? WHERE wg_public_key = ?',
      ),
      restorePeer: db.prepare<[Buffer | null, number, number, bigint, number, Buffer]>(
        'UPDATE dvpn_peers SET psk = ?, updated_at = ?, registrations = ?, granted_bytes = ?, expires_at = ? WHERE wg_public_key = ?',
      ),
      recordUsage: db.prepare<[bigint, bigint, bigint, bigint, number, Buffer]>(
        'UPDATE dvpn_peers SET rx_bytes = rx_bytes + ?, tx_bytes = tx_bytes + ?, seen_rx = ?, seen_tx = ?, last_handshake = ? WHERE wg_public_key = ?',
      ),
      deletePeer: db.prepare<[Buffer]>('DELETE FROM dvpn_peers WHERE wg_public_key = ?'),
      deletePeerIfUnchanged: db.prepare<[Buffer, number]>('DELETE FROM dvpn_peers WHERE wg_public_key = ? AND updated_at = ?'),
      poolOffsets: db.prepare<[string], number>('SELECT host_offset FROM address_allocations WHERE pool = ? ORDER BY host_offset').pluck(),
      // DO NOTHING on either unique key (pool + offset, family + address): a taken draw is refused, not an error
      insertAllocation: db.prepare<[string, number, number, Buffer, Buffer, number]>(
        'INSERT INTO address_allocations (pool, host_offset, family, address, wg_public_key, allocated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      getMixnet: db.prepare<[Buffer], { client_id: Buffer; registered_at: number; updated_at: number; registrations: number }>('SELECT * FROM mixnet_clients WHERE client_id = ?'),
      upsertMixnet: db.prepare<[Buffer, number, number]>(
        `INSERT INTO mixnet_clients (client_id, registered_at, updated_at, registrations) VALUES (?, ?, ?, 1)
         ON CONFLICT (client_id) DO UPDATE SET updated_at = excluded.updated_at, registrations = registrations + 1`,
      ),
      spendSerial: db.prepare<[Buffer, Buffer, number, bigint, bigint, number]>(
        'INSERT INTO spent_serials (issuer_key_id, serial, ticket_type, bandwidth_bytes, expiry, spent_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      serialSpent: db.prepare<[Buffer, Buffer], number>('SELECT 1 FROM spent_serials WHERE issuer_key_id = ? AND serial = ?').pluck(),
      unspendSerial: db.prepare<[Buffer, Buffer]>('DELETE FROM spent_serials WHERE issuer_key_id = ? AND serial = ?'),
      pruneSerials: db.prepare<[bigint]>('DELETE FROM spent_serials WHERE expiry < ?'),
      addGrant: db.prepare<[string, Buffer, number, string, Buffer | null, Buffer | null, bigint, number, number]>(
        'INSERT INTO bandwidth_grants (mode, subject, ticket_type, credential, issuer_key_id, serial, bandwidth_bytes, expires_at, granted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      deleteGrant: db.prepare<[number | bigint]>('DELETE FROM bandwidth_grants WHERE id = ?'),
      totalBandwidth: db.prepare<[string, Buffer], bigint>('SELECT COALESCE(SUM(bandwidth_bytes), 0) FROM bandwidth_grants WHERE mode = ? AND subject = ?').pluck().safeIntegers(true),
      counts: db.prepare<[], StoreCounts>(
        `SELECT (SELECT COUNT(*) FROM dvpn_peers) AS dvpnPeers, (SELECT COUNT(*) FROM mixnet_clients) AS mixnetClients,
                (SELECT COUNT(*) FROM address_allocations) AS allocations, (SELECT COUNT(*) FROM spent_serials) AS spentSerials,
                (SELECT COUNT(*) FROM bandwidth_grants) AS bandwidthGrants`,
      ),
    };
  }

  /** The journal mode and synchronous level in force (`wal`, 2 = FULL). */
  durability(): { journalMode: string; synchronous: number } {
    return { journalMode: String(this.db.pragma('journal_mode', { simple: true })), synchronous: Number(this.db.pragma('synchronous', { simple: true })) };
  }

  async schemaVersion(): Promise<number> {
    return Number(this.db.pragma('user_version', { simple: true }));
  }

  /** Runs `job` after every queued transaction and statement has finished. */
  private exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = this.tail.then(job, job);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** A store-level statement: its own implicit transaction, in the queue, timed and classified. */
  private statement<T>(method: string, fn: () => T): Promise<T> {
    assertOutsideTransaction(method);
    return this.timed(method, () => this.exclusive(async () => fn()));
  }

  private async timed<T>(op: string, job: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const r = await job();
      this.observer.transaction(op, (performance.now() - t0) / 1000, 'ok');
      return r;
    } catch (e) {
      if (isBusy(e)) {
        this.observer.transaction(op, (performance.now() - t0) / 1000, 'unavailable');
        this.logger?.warn({ op, code: (e as { code?: string }).code }, 'the SQLite database stayed locked by another process for longer than 5 s');
        throw storeUnavailable(this.availability.retryAfterMs, 'the registration database is locked by another process');
      }
      this.observer.transaction(op, (performance.now() - t0) / 1000, 'error');
      throw e;
    }
  }

  transaction<T>(op: string, fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    assertOutsideTransaction('transaction');
    return this.timed(op, () =>
      this.exclusive(async () => {
        this.db.exec('BEGIN IMMEDIATE');
        try {
          const r = await insideTransaction.run(op, () => fn(this.tx));
          this.db.exec('COMMIT');
          return r;
        } catch (e) {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
          throw e;
        }
      }),
    );
  }

  // ---- store-level reads and writes ---------------------------------------------------------------

  getPeer(wgPublicKey: Uint8Array): Promise<StoredPeer | null> {
    return this.statement('getPeer', () => {
      const r = this.st.getPeer.get(blob(wgPublicKey));
      return r ? peerFromRow(r) : null;
    });
  }

  listPeers(): Promise<StoredPeer[]> {
    return this.statement('listPeers', () => this.st.listPeers.all().map(peerFromRow));
  }

  peerUsage(): Promise<PeerUsageRow[]> {
    return this.statement('peerUsage', () =>
      this.st.peerUsage.all().map((r) => ({
        wgPublicKey: r[0],
        grantedBytes: r[1],
        expiresAt: Number(r[2]),
        rxBytes: r[3],
        txBytes: r[4],
        seenRx: r[5],
        seenTx: r[6],
        lastHandshake: Number(r[7]),
        updatedAt: Number(r[8]),
        hasPsk: r[9] === 1n,
      })),
    );
  }

  peerCount(): Promise<number> {
    return this.statement('peerCount', () => this.st.peerCount.get() ?? 0);
  }

  async recordUsage(updates: readonly PeerUsageUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    await this.transaction('record_usage', async () => {
      for (const u of updates) this.st.recordUsage.run(u.addRx, u.addTx, u.seenRx, u.seenTx, u.lastHandshake, blob(u.wgPublicKey));
    });
  }

  getMixnetClient(clientId: Uint8Array): Promise<StoredMixnetClient | null> {
    return this.statement('getMixnetClient', () => {
      const r = this.st.getMixnet.get(blob(clientId));
      return r ? { clientId: bytes(r.client_id), registeredAt: r.registered_at, updatedAt: r.updated_at, registrations: r.registrations } : null;
    });
  }

  spendSerial(s: SpentSerialRecord): Promise<boolean> {
    return this.statement('spendSerial', () => this.st.spendSerial.run(blob(s.issuerKeyId), blob(s.serial), s.ticketType, s.bandwidthBytes, s.expiry, s.nowSec).changes === 1);
  }

  isSerialSpent(issuerKeyId: Uint8Array, serial: Uint8Array): Promise<boolean> {
    return this.statement('isSerialSpent', () => this.st.serialSpent.get(blob(issuerKeyId), blob(serial)) !== undefined);
  }

  pruneSpentSerials(expiredBeforeSec: number): Promise<number> {
    return this.statement('pruneSpentSerials', () => this.st.pruneSerials.run(BigInt(Math.floor(expiredBeforeSec))).changes);
  }

  totalBandwidth(mode: RegistrationModeName, subject: Uint8Array): Promise<bigint> {
    return this.statement('totalBandwidth', () => this.st.totalBandwidth.get(mode, blob(subject)) ?? 0n);
  }

  counts(): Promise<StoreCounts> {
    return this.statement('counts', () => this.st.counts.get() ?? { dvpnPeers: 0, mixnetClients: 0, allocations: 0, spentSerials: 0, bandwidthGrants: 0 });
  }

  health(): StoreHealth {
    return this.availability.health();
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  /** Waits for queued work, then closes the database. */
  async close(): Promise<void> {
    await this.tail;
    this.availability.close();
    if (this.db.open) this.db.close();
  }
}
