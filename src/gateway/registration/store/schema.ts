/**
 * The registration schema, defined once and rendered for each backend.
 *
 * Logical column types: `bytes` (BLOB / BYTEA, optionally of a fixed length, checked), `int` (INTEGER /
 * BIGINT: 64-bit everywhere), `text` (optionally one of a set), `id` (an auto-assigned 64-bit key).
 *
 * Scope: a `gateway` table holds one gateway identity's rows. In SQLite the whole file belongs to one
 * gateway, so the tables are rendered as they are; in PostgreSQL, which a fleet shares, a `gateway_id` column
 * (the gateway's Ed25519 identity key) comes first and leads every key, unique constraint, index and foreign
 * key — each gateway has its own peers, pools and grants. A `fleet` table (spent serials) has no gateway
 * column in either: one ledger for every gateway on the database.
 *
 * Versions are shared by both backends. This is the schema at version 3: SQLite databases reach it through
 * their released migrations (sqlite.ts, kept verbatim), PostgreSQL through one baseline migration rendered
 * from this definition (postgres.ts). test/gateway/store-schema.test.ts checks that both backends' actual
 * tables, columns and indexes equal this definition. A later version adds its change to both migration lists
 * and to this definition (the PostgreSQL baseline then renders a frozen copy of version 3).
 */

export type ColumnType = { kind: 'bytes'; length?: number } | { kind: 'int' } | { kind: 'text'; oneOf?: readonly string[] } | { kind: 'id' };

export interface ColumnDef {
  name: string;
  type: ColumnType;
  notNull: boolean;
  default?: number;
  /** An extra CHECK, in SQL both dialects understand, e.g. `bandwidth_bytes >= 0`. */
  check?: string;
}

export interface TableDef {
  name: string;
  scope: 'gateway' | 'fleet';
  columns: readonly ColumnDef[];
  primaryKey: readonly string[];
  unique?: readonly (readonly string[])[];
  indexes?: readonly { name: string; columns: readonly string[] }[];
  foreignKey?: { columns: readonly string[]; references: string; onDelete: 'CASCADE'; deferred: boolean };
  /** SQLite: a WITHOUT ROWID table (a clustered primary key). */
  withoutRowid?: boolean;
}

export const SCHEMA_VERSION = 3;

const bytes = (name: string, length?: number, notNull = true): ColumnDef => ({ name, type: length === undefined ? { kind: 'bytes' } : { kind: 'bytes', length }, notNull });
const int = (name: string, o: { notNull?: boolean; default?: number; check?: string } = {}): ColumnDef => ({ name, type: { kind: 'int' }, notNull: o.notNull ?? true, ...(o.default !== undefined ? { default: o.default } : {}), ...(o.check ? { check: o.check } : {}) });
const text = (name: string, oneOf?: readonly string[]): ColumnDef => ({ name, type: oneOf ? { kind: 'text', oneOf } : { kind: 'text' }, notNull: true });

export const TABLES: readonly TableDef[] = [
  {
    name: 'dvpn_peers',
    scope: 'gateway',
    withoutRowid: true,
    columns: [
      bytes('wg_public_key', 32),
      bytes('ipv4', 4),
      bytes('ipv6', 16),
      // WireGuard PSK, kept only when a WireGuard interface is configured
      bytes('psk', 32, false),
      int('registered_at'),
      int('updated_at'),
      int('registrations', { default: 1 }),
      int('granted_bytes', { default: 0 }),
      int('expires_at', { default: 0 }),
      int('rx_bytes', { default: 0 }),
      int('tx_bytes', { default: 0 }),
      int('seen_rx', { default: 0 }),
      int('seen_tx', { default: 0 }),
      int('last_handshake', { default: 0 }),
    ],
    primaryKey: ['wg_public_key'],
    indexes: [{ name: 'dvpn_peers_expiry', columns: ['expires_at'] }],
  },
  {
    name: 'address_allocations',
    scope: 'gateway',
    withoutRowid: true,
    columns: [text('pool'), int('host_offset'), { name: 'family', type: { kind: 'int' }, notNull: true, check: 'family IN (4, 6)' }, bytes('address'), bytes('wg_public_key'), int('allocated_at')],
    primaryKey: ['pool', 'host_offset'],
    unique: [['family', 'address']],
    indexes: [{ name: 'address_allocations_owner', columns: ['wg_public_key'] }],
    foreignKey: { columns: ['wg_public_key'], references: 'dvpn_peers', onDelete: 'CASCADE', deferred: true },
  },
  {
    name: 'mixnet_clients',
    scope: 'gateway',
    withoutRowid: true,
    columns: [bytes('client_id', 32), int('registered_at'), int('updated_at'), int('registrations', { default: 1 })],
    primaryKey: ['client_id'],
  },
  {
    name: 'spent_serials',
    scope: 'fleet',
    withoutRowid: true,
    columns: [bytes('issuer_key_id', 8), bytes('serial', 16), int('ticket_type'), int('bandwidth_bytes'), int('expiry'), int('spent_at')],
    primaryKey: ['issuer_key_id', 'serial'],
    indexes: [{ name: 'spent_serials_expiry', columns: ['expiry'] }],
  },
  {
    name: 'bandwidth_grants',
    scope: 'gateway',
    columns: [
      { name: 'id', type: { kind: 'id' }, notNull: true },
      text('mode', ['dvpn', 'mixnet']),
      // WireGuard public key (dvpn) or client_id (mixnet)
      bytes('subject'),
      int('ticket_type'),
      text('credential', ['mock', 'ticket']),
      bytes('issuer_key_id', undefined, false),
      bytes('serial', undefined, false),
      int('bandwidth_bytes', { check: 'bandwidth_bytes >= 0' }),
      int('granted_at'),
      int('expires_at', { notNull: false }),
    ],
    primaryKey: ['id'],
    indexes: [{ name: 'bandwidth_grants_subject', columns: ['mode', 'subject'] }],
  },
];

export type Dialect = 'sqlite' | 'postgres';

/** The column (and scope key) list of a table as a dialect stores it. */
export function columnsOf(t: TableDef, dialect: Dialect): ColumnDef[] {
  return dialect === 'postgres' && t.scope === 'gateway' ? [GATEWAY_ID, ...t.columns] : [...t.columns];
}

/** The gateway identity (Ed25519 public key) that owns a row, PostgreSQL only. */
export const GATEWAY_ID: ColumnDef = { name: 'gateway_id', type: { kind: 'bytes', length: 32 }, notNull: true };

function scoped(t: TableDef, dialect: Dialect, cols: readonly string[]): string[] {
  // the surrogate id stays the whole key; everything else leads with the gateway
  return dialect === 'postgres' && t.scope === 'gateway' && !(cols.length === 1 && cols[0] === 'id') ? ['gateway_id', ...cols] : [...cols];
}

function columnSql(c: ColumnDef, dialect: Dialect): string {
  const len = dialect === 'sqlite' ? 'length' : 'octet_length';
  const parts: string[] = [c.name];
  switch (c.type.kind) {
    case 'bytes':
      parts.push(dialect === 'sqlite' ? 'BLOB' : 'BYTEA');
      break;
    case 'int':
      parts.push(dialect === 'sqlite' ? 'INTEGER' : 'BIGINT');
      break;
    case 'text':
      parts.push('TEXT');
      break;
    case 'id':
      return dialect === 'sqlite' ? `${c.name} INTEGER PRIMARY KEY` : `${c.name} BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY`;
  }
  if (c.notNull) parts.push('NOT NULL');
  if (c.default !== undefined) parts.push(`DEFAULT ${c.default}`);
  const checks: string[] = [];
  if (c.type.kind === 'bytes' && c.type.length !== undefined) checks.push(c.notNull ? `${len}(${c.name}) = ${c.type.length}` : `${c.name} IS NULL OR ${len}(${c.name}) = ${c.type.length}`);
  if (c.type.kind === 'text' && c.type.oneOf) checks.push(`${c.name} IN (${c.type.oneOf.map((v) => `'${v}'`).join(', ')})`);
  if (c.check) checks.push(c.check);
  for (const ch of checks) parts.push(`CHECK (${ch})`);
  return parts.join(' ');
}

/** CREATE TABLE and CREATE INDEX statements for the whole schema, in dependency order. */
export function renderSchema(dialect: Dialect): string {
  const out: string[] = [];
  for (const t of TABLES) {
    const cols = columnsOf(t, dialect);
    const lines = cols.map((c) => `  ${columnSql(c, dialect)}`);
    const hasId = cols.some((c) => c.type.kind === 'id');
    if (!hasId) lines.push(`  PRIMARY KEY (${scoped(t, dialect, t.primaryKey).join(', ')})`);
    for (const u of t.unique ?? []) lines.push(`  UNIQUE (${scoped(t, dialect, u).join(', ')})`);
    if (t.foreignKey) {
      const fk = t.foreignKey;
      const target = TABLES.find((x) => x.name === fk.references);
      const targetKey = target ? scoped(target, dialect, target.primaryKey) : [];
      lines.push(`  FOREIGN KEY (${scoped(t, dialect, fk.columns).join(', ')}) REFERENCES ${fk.references} (${targetKey.join(', ')}) ON DELETE ${fk.onDelete}${fk.deferred ? ' DEFERRABLE INITIALLY DEFERRED' : ''}`);
    }
    out.push(`CREATE TABLE ${t.name} (\n${lines.join(',\n')}\n)${dialect === 'sqlite' && t.withoutRowid ? ' WITHOUT ROWID' : ''};`);
    for (const ix of t.indexes ?? []) out.push(`CREATE INDEX ${ix.name} ON ${t.name} (${scoped(t, dialect, ix.columns).join(', ')});`);
  }
  return out.join('\n');
}
