/**
 * The registration store's interface, shared by both backends (SQLite embedded, PostgreSQL for a fleet).
 *
 * Everything is asynchronous. Work that must be atomic runs in `transaction(op, fn)`: `fn` receives a `StoreTx`
 * and every read and write inside it goes through that object; the transaction commits when `fn`'s promise
 * resolves (and only then does `transaction` resolve: an answered registration is committed) and rolls back
 * when it rejects. `fn` may run more than once on PostgreSQL (a lost race on a unique key or a serialization
 * failure is retried), so it must have no effects outside the transaction. Store-level methods are single
 * statements in their own transactions; calling one inside `fn` is a programming error and throws.
 *
 * Scope: spent ticket serials are global (one ledger for every gateway sharing the store); peers, address
 * allocations, mixnet clients and grants belong to the gateway identity the store was opened for.
 */
import type { AllocationTable } from '../allocator.js';

export type StoreBackend = 'sqlite' | 'postgres';
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
  /** The peer's grant: bytes it may transfer (received + sent) in all, and when it ends (unix seconds). */
  grantedBytes: bigint;
  expiresAt: number;
  /** Bytes counted so far from the device (received from / sent to the peer), persisted across restarts. */
  rxBytes: bigint;
  txBytes: bigint;
  /** Device counters at the last poll (a smaller reading later means the counters restarted from zero). */
  seenRx: bigint;
  seenTx: bigint;
  /** Last WireGuard handshake seen on the device (unix seconds), 0 = none yet. */
  lastHandshake: number;
}

/** What the peer controller needs of every peer at each poll (no secrets, no copies of the addresses). */
export type PeerUsageRow = Pick<StoredPeer, 'wgPublicKey' | 'grantedBytes' | 'expiresAt' | 'rxBytes' | 'txBytes' | 'seenRx' | 'seenTx' | 'lastHandshake' | 'updatedAt'> & {
  hasPsk: boolean;
};

/** One peer's reading from a poll of the device, to be persisted. */
export interface PeerUsageUpdate {
  wgPublicKey: Uint8Array;
  addRx: bigint;
  addTx: bigint;
  seenRx: bigint;
  seenTx: bigint;
  lastHandshake: number;
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
  /** Unix seconds at which the grant ends (ticket expiry, or the mock verifier's validity). */
  expiresAt: number;
  nowSec: number;
}

export interface StoreCounts {
  dvpnPeers: number;
  mixnetClients: number;
  allocations: number;
  spentSerials: number;
  bandwidthGrants: number;
}

export interface NewPeer {
  wgPublicKey: Uint8Array;
  ipv4: Uint8Array;
  ipv6: Uint8Array;
  psk: Uint8Array | null;
  grantedBytes: bigint;
  expiresAt: number;
  nowSec: number;
}

/** Where spent serials are recorded. `spendSerial` resolves false for a replay (already spent anywhere in the fleet). */
export interface SerialLedger {
  spendSerial(s: SpentSerialRecord): Promise<boolean>;
}

/** The operations available inside one transaction. */
export interface StoreTx extends AllocationTable, SerialLedger {
  /** `forUpdate`: lock the row until commit (PostgreSQL; SQLite's write transaction locks everything anyway). */
  getPeer(wgPublicKey: Uint8Array, opts?: { forUpdate?: boolean }): Promise<StoredPeer | null>;
  /** A new peer with its first grant; its addresses must have been allocated in the same transaction. */
  insertPeer(p: NewPeer): Promise<void>;
  /** A re-registration of a known peer: new PSK (new LP session) and grant, same addresses, usage kept. */
  renewPeer(wgPublicKey: Uint8Array, p: { psk: Uint8Array | null; grantedBytes: bigint; expiresAt: number; nowSec: number }): Promise<void>;
  /** Puts back a peer's registration fields as they were before a renewal (compensation after a failed apply). */
  restorePeer(prev: StoredPeer): Promise<void>;
  /** Deletes a peer and (cascade) its address allocations, whose addresses become free again. */
  deletePeer(wgPublicKey: Uint8Array): Promise<boolean>;
  /** Deletes a peer only if it was not registered again since `updatedAt` was read. */
  deletePeerIfUnchanged(wgPublicKey: Uint8Array, updatedAt: number): Promise<boolean>;
  recordMixnetClient(clientId: Uint8Array, nowSec: number): Promise<void>;
  /** Compensation only: a registration whose WireGuard apply failed gives its ticket back. */
  unspendSerial(issuerKeyId: Uint8Array, serial: Uint8Array): Promise<void>;
  addGrant(g: BandwidthGrantRecord): Promise<number>;
  deleteGrant(id: number): Promise<void>;
}

export type StoreState = 'available' | 'unavailable';

/** What /health and the start log report about the store. */
export interface StoreHealth {
  backend: StoreBackend;
  state: StoreState;
  /** Unix milliseconds of the last state change (the open, for a store that never failed). */
  since: number;
  /** The last failure's error code (never a message: it could name hosts or users), null once recovered. */
  lastError: string | null;
  /** PostgreSQL: connections of the pool. */
  pool?: { total: number; idle: number; waiting: number; max: number };
}

/** Metrics hooks (src/gateway/metrics.ts implements them with prom-client). */
export interface StoreObserver {
  /** One transaction (or store-level statement) finished: its wall time including waiting for a connection. */
  transaction(op: string, seconds: number, outcome: 'ok' | 'unavailable' | 'error'): void;
  /** A transaction lost a race (unique key, serialization, deadlock) and runs again. */
  retried(op: string, reason: string): void;
  /** The store became available (true) or unavailable (false). */
  state(available: boolean): void;
}

export interface RegistrationStore extends SerialLedger {
  readonly backend: StoreBackend;
  /** The file, or the database URL with its password redacted. */
  readonly location: string;
  /** Runs `fn` in one transaction; see the file comment. */
  transaction<T>(op: string, fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  getPeer(wgPublicKey: Uint8Array): Promise<StoredPeer | null>;
  listPeers(): Promise<StoredPeer[]>;
  /** Every peer's grant and usage, for one poll of the peer controller. */
  peerUsage(): Promise<PeerUsageRow[]>;
  peerCount(): Promise<number>;
  /** Persists one poll's readings (usage added, device counters seen, last handshake) in one transaction. */
  recordUsage(updates: readonly PeerUsageUpdate[]): Promise<void>;
  getMixnetClient(clientId: Uint8Array): Promise<StoredMixnetClient | null>;
  isSerialSpent(issuerKeyId: Uint8Array, serial: Uint8Array): Promise<boolean>;
  /**
   * Forgets serials of tickets that expired before `expiredBeforeSec` (they are refused as expired anyway).
   * Keep a margin of at least the registration timestamp tolerance behind the current time.
   */
  pruneSpentSerials(expiredBeforeSec: number): Promise<number>;
  /** Sum of all bandwidth ever granted to a WireGuard key (dvpn) or client_id (mixnet): the credential history. */
  totalBandwidth(mode: RegistrationModeName, subject: Uint8Array): Promise<bigint>;
  counts(): Promise<StoreCounts>;
  schemaVersion(): Promise<number>;
  health(): StoreHealth;
  close(): Promise<void>;
}
