/**
 * Opens the registration store the configuration names: `registration.store = "sqlite"` (embedded, the
 * default: `<data_dir>/gateway.sqlite`) or `"postgres"` (`registration.postgres_url`, shared by a fleet).
 */
import type { Logger } from '../../../log.js';
import type { GatewayConfig } from '../../config.js';
import { PgStore } from './postgres.js';
import type { PgSslMode } from './postgres-target.js';
import { SqliteStore } from './sqlite.js';
import type { RegistrationStore, StoreObserver } from './types.js';

export * from './types.js';
export { SqliteStore, STORE_FILE_NAME, MIGRATIONS, SQLITE_SCHEMA_VERSION } from './sqlite.js';
export { PgStore, PG_MIGRATIONS } from './postgres.js';
export { SCHEMA_VERSION } from './schema.js';
export { redactUrl } from './postgres-target.js';

export interface OpenStoreOptions {
  /** The gateway identity (Ed25519 public key) whose peers, allocations and grants the store holds. */
  gatewayId: Uint8Array;
  logger?: Logger;
  observer?: StoreObserver;
}

export async function openRegistrationStore(config: GatewayConfig, o: OpenStoreOptions): Promise<RegistrationStore> {
  const r = config.registration;
  if (r.store === 'postgres') {
    return PgStore.open({
      url: r.postgresUrl,
      sslmode: r.postgresSslmode as PgSslMode,
      caFile: r.postgresCaFile,
      poolMax: r.postgresPoolMax,
      connectTimeoutMs: r.postgresConnectTimeoutMs,
      queryTimeoutMs: r.postgresQueryTimeoutMs,
      gatewayId: o.gatewayId,
      ...(o.logger ? { logger: o.logger } : {}),
      ...(o.observer ? { observer: o.observer } : {}),
    });
  }
  return SqliteStore.open(config.dataDir, { ...(o.logger ? { logger: o.logger } : {}), ...(o.observer ? { observer: o.observer } : {}) });
}
