/**
 * One schema definition (src/gateway/registration/store/schema.ts), two backends: a SQLite database migrated
 * through its released history and a PostgreSQL database migrated from the rendered baseline both have exactly
 * the defined tables, columns (types, nullability, defaults), primary keys, unique keys, indexes and foreign
 * keys — PostgreSQL with `gateway_id` leading every per-gateway key.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PgStore, SCHEMA_VERSION, SqliteStore } from '../../src/gateway/registration/store.js';
import { TABLES, columnsOf, type ColumnDef, type TableDef } from '../../src/gateway/registration/store/schema.js';
import { postgresSkipReason, startCluster, type PgCluster } from '../helpers/pg-cluster.js';

const scoped = (t: TableDef, cols: readonly string[]): string[] => (t.scope === 'gateway' && !(cols.length === 1 && cols[0] === 'id') ? ['gateway_id', ...cols] : [...cols]);

describe('schema definition = SQLite after its migrations', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lpgw-schema-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('tables, columns, keys, indexes and foreign keys', async () => {
    const store = SqliteStore.open(dir);
    assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
    await store.close();
    const db = new Database(join(dir, 'gateway.sqlite'), { readonly: true });
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
      assert.deepEqual(tables, TABLES.map((t) => t.name).sort());
      const sqlType = (c: ColumnDef): string => ({ bytes: 'BLOB', int: 'INTEGER', text: 'TEXT', id: 'INTEGER' })[c.type.kind];
      for (const t of TABLES) {
        const info = db.prepare(`PRAGMA table_info(${t.name})`).all() as { name: string; type: string; notnull: number; dflt_value: string | null; pk: number }[];
        assert.deepEqual(
          info.map((c) => ({ name: c.name, type: c.type, notNull: c.notnull === 1 || c.type === 'INTEGER' && c.pk === 1 && c.name === 'id', default: c.dflt_value })),
          t.columns.map((c) => ({ name: c.name, type: sqlType(c), notNull: c.notNull, default: c.default === undefined ? null : String(c.default) })),
          t.name,
        );
        assert.deepEqual(info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name), [...t.primaryKey], `${t.name} primary key`);
        const indexes = db.prepare(`PRAGMA index_list(${t.name})`).all() as { name: string; unique: number; origin: string }[];
        const cols = (ix: string): string[] => (db.prepare(`PRAGMA index_info(${ix})`).all() as { name: string }[]).map((c) => c.name);
        assert.deepEqual(indexes.filter((i) => i.origin === 'c').map((i) => ({ name: i.name, columns: cols(i.name) })).sort((a, b) => a.name.localeCompare(b.name)), [...(t.indexes ?? [])].map((i) => ({ name: i.name, columns: [...i.columns] })).sort((a, b) => a.name.localeCompare(b.name)), `${t.name} indexes`);
        assert.deepEqual(indexes.filter((i) => i.origin === 'u').map((i) => cols(i.name)), (t.unique ?? []).map((u) => [...u]), `${t.name} unique keys`);
        const fks = db.prepare(`PRAGMA foreign_key_list(${t.name})`).all() as { table: string; from: string; to: string; on_delete: string }[];
        assert.deepEqual(fks.map((f) => ({ table: f.table, from: f.from, to: f.to, onDelete: f.on_delete })), t.foreignKey ? t.foreignKey.columns.map((c) => ({ table: t.foreignKey?.references, from: c, to: c, onDelete: 'CASCADE' })) : [], `${t.name} foreign keys`);
      }
    } finally {
      db.close();
    }
  });
});

describe('schema definition = PostgreSQL after its migrations', { skip: postgresSkipReason() }, () => {
  let cluster: PgCluster;
  before(async () => {
    cluster = await startCluster({ fsync: false });
  });
  after(() => cluster?.destroy());

  test('tables, columns, keys, indexes and foreign keys; gateway_id leads the per-gateway keys', async () => {
    const db = await cluster.createDatabase('schema');
    const store = await PgStore.open({ url: cluster.url(db), sslmode: 'disable', gatewayId: new Uint8Array(32) });
    assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
    await store.close();
    const q = <R extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> => cluster.query<R>(sql, params, db);
    const tables = (await q<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name")).map((r) => r.table_name);
    assert.deepEqual(tables, [...TABLES.map((t) => t.name), 'lpgw_schema_migrations'].sort());
    const pgType = (c: ColumnDef): string => ({ bytes: 'bytea', int: 'bigint', text: 'text', id: 'bigint' })[c.type.kind];
    for (const t of TABLES) {
      const cols = await q<{ column_name: string; data_type: string; is_nullable: string; column_default: string | null }>(
        'SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position',
        [t.name],
      );
      assert.deepEqual(
        cols.map((c) => ({ name: c.column_name, type: c.data_type, notNull: c.is_nullable === 'NO', default: c.column_default })),
        columnsOf(t, 'postgres').map((c) => ({ name: c.name, type: pgType(c), notNull: c.notNull, default: c.default === undefined ? null : String(c.default) })),
        t.name,
      );
      const keyCols = async (contype: string): Promise<string[][]> =>
        (
          await q<{ cols: string[] }>(
            `SELECT array_agg(a.attname ORDER BY k.ord)::text[] AS cols FROM pg_constraint c CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum WHERE c.conrelid = $1::regclass AND c.contype = $2 GROUP BY c.oid ORDER BY c.oid`,
            [t.name, contype],
          )
        ).map((r) => r.cols);
      assert.deepEqual(await keyCols('p'), [scoped(t, t.primaryKey)], `${t.name} primary key`);
      assert.deepEqual(await keyCols('u'), (t.unique ?? []).map((u) => scoped(t, u)), `${t.name} unique keys`);
      assert.deepEqual(await keyCols('f'), t.foreignKey ? [scoped(t, t.foreignKey.columns)] : [], `${t.name} foreign key`);
      const indexes = await q<{ indexname: string; indexdef: string }>("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key' ORDER BY indexname", [t.name]);
      assert.deepEqual(
        indexes.map((i) => ({ name: i.indexname, columns: /\(([^)]*)\)/.exec(i.indexdef)?.[1]?.split(', ') })),
        [...(t.indexes ?? [])].sort((a, b) => a.name.localeCompare(b.name)).map((i) => ({ name: i.name, columns: scoped(t, i.columns) })),
        `${t.name} indexes`,
      );
    }
  });
});
