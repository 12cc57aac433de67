/**
 * The registration store: the interface (store/types.ts) and its two backends, SQLite (store/sqlite.ts, the
 * embedded default) and PostgreSQL (store/postgres.ts, for a fleet); store/index.ts opens the configured one.
 */
export * from './store/index.js';
