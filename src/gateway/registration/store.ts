/**
 * Persistent registration state in one SQLite file, `<dataDir>/gateway.sqlite` (better-sqlite3,
 * synchronous): dVPN peers, mixnet clients, address allocations, spent ticket serials and bandwidth grants.
 * Sessions are deliberately not stored (PRODUCT.md §2).
 *
 * Durability: WAL journal with `synchronous=FULL`, so the WAL is fsync'd at every commit and a committed
 * registration or spent serial survives `kill -9` and power loss (with `NORMAL` a power loss could roll
 * back the last commits, i.e. un-spend serials). Every write runs in a transaction; `transaction()` lets the
 * registration service verify a credential (spending its serial), allocate addresses and persist the peer
 * atomically. The schema is versioned with `PRAGMA user_version` and migrated forward at open.
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
import type { Logger } from '../../log.js';
import { GatewayErrorCode, gwFail } from '../errors.js';
import type { AllocationTable, IpFamily } from './allocator.js';

export const STORE_FILE_NAME = 'gateway.sqlite';

/** Forward migrations; entry i moves the schema from version i to i + 1. Never edit a released entry. */
const MIGRATIONS: readonly string[] = [
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
];

export const STORE_SCHEMA_VERSION = MIGRATIONS.length;

export type RegistrationModeName = 'dvpn' | 'mixnet';

export interface StoredPeer {
  wgPublicKey: Uint8Array;
  ipv4: Uint8Array;
  ipv6: Uint8Array;
  /** null when the peer was registered while no WireGuard interface was configured. */
  psk: Uint8Array | null;
  registeredAt: number;
  updatedAt: number;
  registrations: number;
}

export interface StoredMixnetClient {
  clientId: Uint8Array;
  registeredAt: number;
  updatedAt: number;
  registrations: number;
}

export interface SpentSerialRecord {
  issuerKeyId: Uint8Array;
  serial: Uint8Array;
  ticketType: number;
  bandwidthBytes: bigint;
  /** Unix seconds (from the ticket); rows may be pruned once this lies well in the past. */
  expiry: bigint;
  nowSec: number;
}

export interface BandwidthGrantRecord {
  mode: RegistrationModeName;
  subject: Uint8Array;
  ticketType: number;
  credential: 'mock' | 'ticket';
  issuerKeyId: Uint8Array | null;
  serial: Uint8Array | null;
  bandwidthBytes: bigint;
  nowSec: number;
}

export interface StoreCounts {
  dvpnPeers: number;
  mixnetClients: number;
  allocations: number;
  spentSerials: number;
  bandwidthGrants: number;
}

export interface StoreOpenOptions {
  /** File name inside the data directory; default `gateway.sqlite`. */
  fileName?: string;
  logger?: Logger;
}

/** better-sqlite3 binds Buffers (not plain Uint8Arrays) as BLOBs: zero-copy view. */
function blob(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

interface PeerRow {
  wg_public_key: Buffer;
  ipv4: Buffer;
  ipv6: Buffer;
  psk: Buffer | null;
  registered_at: number;
  updated_at: number;
  registrations: number;
}

/** Plain Uint8Array copies, so callers never see Buffer (whose slice() is a view and whose equality differs). */
function bytes(b: Buffer): Uint8Array {
  return new Uint8Array(b);
}

function peerFromRow(r: PeerRow): StoredPeer {
  return { wgPublicKey: bytes(r.wg_public_key), ipv4: bytes(r.ipv4), ipv6: bytes(r.ipv6), psk: r.psk ? bytes(r.psk) : null, registeredAt: r.registered_at, updatedAt: r.updated_at, registrations: r.registrations };
}

/** Creates the file 0600 before SQLite does (SQLite would use 0644 under the usual umask). */
function ensurePrivateFile(path: string): void {
  if (!existsSync(path)) {
    closeSync(openSync(path, 'a', 0o600));
  }
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(p) && (statSync(p).mode & 0o077) !== 0) chmodSync(p, 0o600);
  }
}

export class RegistrationStore implements AllocationTable {
  private readonly db: Database.Database;
  private readonly st;

  private constructor(
    readonly path: string,
    private readonly logger?: Logger,
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
  }

  /** Opens (creating if needed) `<dataDir>/gateway.sqlite`; the directory is created 0700 if missing. */
  static open(dataDir: string, opts: StoreOpenOptions = {}): RegistrationStore {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    return new RegistrationStore(join(dataDir, opts.fileName ?? STORE_FILE_NAME), opts.logger);
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
      getPeer: db.prepare<[Buffer], PeerRow>('SELECT * FROM dvpn_peers WHERE wg_public_key = ?'),
      listPeers: db.prepare<[], PeerRow>('SELECT * FROM dvpn_peers ORDER BY registered_at, wg_public_key'),
      insertPeer: db.prepare<[Buffer, Buffer, Buffer, Buffer | null, number, number]>(
        'INSERT INTO dvpn_peers (wg_public_key, ipv4, ipv6, psk, registered_at, updated_at, registrations) VALUES (?, ?, ?, ?, ?, ?, 1)',
      ),
      renewPeer: db.prepare<[Buffer | null, number, Buffer]>('UPDATE dvpn_peers SET psk = ?, updated_at = ?, registrations = registrations + 1 WHERE wg_public_key = ?'),
      restorePeer: db.prepare<[Buffer | null, number, number, Buffer]>('UPDATE dvpn_peers SET psk = ?, updated_at = ?, registrations = ? WHERE wg_public_key = ?'),
      deletePeer: db.prepare<[Buffer]>('DELETE FROM dvpn_peers WHERE wg_public_key = ?'),
      minReleased: db.prepare<[string, number, number], number | null>('SELECT MIN(host_offset) FROM released_offsets WHERE pool = ? AND host_offset BETWEEN ? AND ?').pluck(),
      unrelease: db.prepare<[string, number]>('DELETE FROM released_offsets WHERE pool = ? AND host_offset = ?'),
      nextOffset: db.prepare<[string], number>('SELECT next_offset FROM pool_state WHERE pool = ?').pluck(),
      setNextOffset: db.prepare<[string, number]>('INSERT INTO pool_state (pool, next_offset) VALUES (?, ?) ON CONFLICT (pool) DO UPDATE SET next_offset = excluded.next_offset'),
      addressTaken: db.prepare<[number, Buffer], number>('SELECT 1 FROM address_allocations WHERE family = ? AND address = ?').pluck(),
      insertAllocation: db.prepare<[string, number, number, Buffer, Buffer, number]>(
        'INSERT INTO address_allocations (pool, host_offset, family, address, wg_public_key, allocated_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      getMixnet: db.prepare<[Buffer], { client_id: Buffer; registered_at: number; updated_at: number; registrations: number }>('SELECT * FROM mixnet_clients WHERE client_id = ?'),
      upsertMixnet: db.prepare<[Buffer, number, number]>(
        `INSERT INTO mixnet_clients (client_id, registered_at, updated_at, registrations) VALUES (?, ?, ?, 1)
         ON CONFLICT (client_id) DO UPDATE SET updated_at = excluded.updated_at, registrations = registrations + 1`,
      ),
      spendSerial: db.prepare<[Buffer, Buffer, number, bigint, bigint, number]>(
        'INSERT OR IGNORE INTO spent_serials (issuer_key_id, serial, ticket_type, bandwidth_bytes, expiry, spent_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      serialSpent: db.prepare<[Buffer, Buffer], number>('SELECT 1 FROM spent_serials WHERE issuer_key_id = ? AND serial = ?').pluck(),
      unspendSerial: db.prepare<[Buffer, Buffer]>('DELETE FROM spent_serials WHERE issuer_key_id = ? AND serial = ?'),
      pruneSerials: db.prepare<[bigint]>('DELETE FROM spent_serials WHERE expiry < ?'),
      addGrant: db.prepare<[string, Buffer, number, string, Buffer | null, Buffer | null, bigint, number]>(
        'INSERT INTO bandwidth_grants (mode, subject, ticket_type, credential, issuer_key_id, serial, bandwidth_bytes, granted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
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

  get schemaVersion(): number {
    return Number(this.db.pragma('user_version', { simple: true }));
  }

  /** The journal mode and synchronous level in force (`wal`, 2 = FULL). */
  durability(): { journalMode: string; synchronous: number } {
    return { journalMode: String(this.db.pragma('journal_mode', { simple: true })), synchronous: Number(this.db.pragma('synchronous', { simple: true })) };
  }

  /**
   * Runs `fn` in one write transaction (BEGIN IMMEDIATE; a savepoint when nested): it commits when `fn`
   * returns and rolls back when it throws, rethrowing the error.
   */
  transaction<T>(fn: () => T): T {
    if (this.db.inTransaction) return this.db.transaction(fn)();
    return this.db.transaction(fn).immediate();
  }

  // ---- dVPN peers --------------------------------------------------------------------------------

  getPeer(wgPublicKey: Uint8Array): StoredPeer | null {
    const r = this.st.getPeer.get(blob(wgPublicKey));
    return r ? peerFromRow(r) : null;
  }

  listPeers(): StoredPeer[] {
    return this.st.listPeers.all().map(peerFromRow);
  }

  /** A new peer; its addresses must have been allocated in the same transaction. */
  insertPeer(p: { wgPublicKey: Uint8Array; ipv4: Uint8Array; ipv6: Uint8Array; psk: Uint8Array | null; nowSec: number }): void {
    this.st.insertPeer.run(blob(p.wgPublicKey), blob(p.ipv4), blob(p.ipv6), p.psk ? blob(p.psk) : null, p.nowSec, p.nowSec);
  }

  /** A re-registration of a known peer: new PSK (new LP session), same addresses. */
  renewPeer(wgPublicKey: Uint8Array, psk: Uint8Array | null, nowSec: number): void {
    this.st.renewPeer.run(psk ? blob(psk) : null, nowSec, blob(wgPublicKey));
  }

  /** Puts back a peer's mutable fields as they were before a renewal (compensation after a failed apply). */
  restorePeer(prev: StoredPeer): void {
    this.st.restorePeer.run(prev.psk ? blob(prev.psk) : null, prev.updatedAt, prev.registrations, blob(prev.wgPublicKey));
  }

  /** Deletes a peer and (cascade) its address allocations, whose offsets become free again. */
  deletePeer(wgPublicKey: Uint8Array): boolean {
    return this.st.deletePeer.run(blob(wgPublicKey)).changes > 0;
  }

  // ---- address allocations (AllocationTable) -----------------------------------------------------

  claimLowestFree(pool: string, first: number, last: number): number | null {
    const released = this.st.minReleased.get(pool, first, last);
    if (released !== null && released !== undefined) {
      this.st.unrelease.run(pool, released);
      return released;
    }
    const next = Math.max(first, this.st.nextOffset.get(pool) ?? first);
    if (next > last) return null;
    this.st.setNextOffset.run(pool, next + 1);
    return next;
  }

  addressTaken(family: IpFamily, address: Uint8Array): boolean {
    return this.st.addressTaken.get(family, blob(address)) !== undefined;
  }

  insertAllocation(a: { family: IpFamily; pool: string; offset: number; address: Uint8Array; owner: Uint8Array; nowSec: number }): void {
    this.st.insertAllocation.run(a.pool, a.offset, a.family, blob(a.address), blob(a.owner), a.nowSec);
  }

  // ---- mixnet clients ----------------------------------------------------------------------------

  recordMixnetClient(clientId: Uint8Array, nowSec: number): void {
    this.st.upsertMixnet.run(blob(clientId), nowSec, nowSec);
  }

  getMixnetClient(clientId: Uint8Array): StoredMixnetClient | null {
    const r = this.st.getMixnet.get(blob(clientId));
    return r ? { clientId: bytes(r.client_id), registeredAt: r.registered_at, updatedAt: r.updated_at, registrations: r.registrations } : null;
  }

  // ---- spent ticket serials ----------------------------------------------------------------------

  /** Records a serial as spent; false when (issuer key id, serial) was already spent. */
  spendSerial(s: SpentSerialRecord): boolean {
    return this.st.spendSerial.run(blob(s.issuerKeyId), blob(s.serial), s.ticketType, s.bandwidthBytes, s.expiry, s.nowSec).changes === 1;
  }

  isSerialSpent(issuerKeyId: Uint8Array, serial: Uint8Array): boolean {
    return this.st.serialSpent.get(blob(issuerKeyId), blob(serial)) !== undefined;
  }

  /** Compensation only: a registration whose WireGuard apply failed gives its ticket back. */
  unspendSerial(issuerKeyId: Uint8Array, serial: Uint8Array): void {
    this.st.unspendSerial.run(blob(issuerKeyId), blob(serial));
  }

  /**
   * Forgets serials of tickets that expired before `expiredBeforeSec` (they are refused as expired anyway).
   * Keep a margin of at least the registration timestamp tolerance behind the current time.
   */
  pruneSpentSerials(expiredBeforeSec: number): number {
    return this.transaction(() => this.st.pruneSerials.run(BigInt(Math.floor(expiredBeforeSec))).changes);
  }

  // ---- bandwidth grants --------------------------------------------------------------------------

  addGrant(g: BandwidthGrantRecord): number {
    const r = this.st.addGrant.run(
      g.mode,
      blob(g.subject),
      g.ticketType,
      g.credential,
      g.issuerKeyId ? blob(g.issuerKeyId) : null,
      g.serial ? blob(g.serial) : null,
      g.bandwidthBytes,
      g.nowSec,
    );
    return Number(r.lastInsertRowid);
  }

  deleteGrant(id: number): void {
    this.st.deleteGrant.run(id);
  }

  /** Sum of all bandwidth granted to a WireGuard key (dvpn) or client_id (mixnet). */
  totalBandwidth(mode: RegistrationModeName, subject: Uint8Array): bigint {
    return this.st.totalBandwidth.get(mode, blob(subject)) ?? 0n;
  }

  counts(): StoreCounts {
    const c = this.st.counts.get();
    return c ?? { dvpnPeers: 0, mixnetClients: 0, allocations: 0, spentSerials: 0, bandwidthGrants: 0 };
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
