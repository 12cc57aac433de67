/**
 * The gateway's HTTP API (fastify): health, Prometheus metrics, the signed descriptor and live stats.
 * Bound to loopback by default; operators expose it deliberately. Bounded (DESIGN.md §10.4): a connection
 * cap, request and idle timeouts, upgrade requests nobody serves answered 404 and closed, and every socket
 * (upgraded ones too) ended at shutdown.
 */
import { readFile } from 'node:fs/promises';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../../log.js';
import { rejectUnclaimedUpgrades, trackSockets } from '../../net/http-server.js';
import type { GatewayMetrics } from '../metrics.js';
import type { StoreHealth } from '../registration/store/types.js';

export interface ApiSources {
  metrics: GatewayMetrics;
  /** The signed descriptor, as served at /v1/gateway. */
  descriptor(): unknown;
  stats(): Record<string, unknown>;
  /** The registration store's state, reported by /health. */
  store?: () => StoreHealth;
  /** The operator view of WireGuard peers (GET /v1/wireguard/peers): addresses, handshakes, transfer, grants; never keys. */
  wireguard?: () => unknown;
  /** A signed directory document file served as is at GET /v1/directory (http.directory_file); '' = none. */
  directoryFile?: string;
  /** Extra routes (the collector's), registered before listen. */
  extraRoutes?: (app: FastifyInstance) => void | Promise<void>;
  /** Concurrent connections (http.max_connections); more are refused at accept. */
  maxConnections?: number;
}

/** A whole request (headers and body) must arrive within this; a connection idle for this long is closed. */
const REQUEST_TIMEOUT_MS = 10_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

export interface Api {
  readonly app: FastifyInstance;
  /** Stops the server: requests in progress get up to `graceMs`, then every remaining socket is destroyed. */
  close(graceMs: number): Promise<void>;
}

export async function buildApi(src: ApiSources, logger: Logger): Promise<Api> {
  const app: FastifyInstance = Fastify({
    loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Scrapes and probes would flood the log; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    connectionTimeout: REQUEST_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // close() ends idle keep-alive connections at once (fastify's default) and lets requests in progress finish;
    // `Api.close` destroys whatever is left when the grace period ends.
    forceCloseConnections: 'idle',
  });
  if (src.maxConnections !== undefined) app.server.maxConnections = src.maxConnections;
  const sockets = trackSockets(app.server);
  const started = Date.now();

  // 200 either way: with the store unavailable the gateway still serves handshakes and sessions (only
  // registrations are refused), so a balancer must not take it out; `status` says "degraded".
  app.get('/health', async () => {
    const store = src.store?.();
    return {
      status: store && store.state !== 'available' ? 'degraded' : 'ok',
      uptime_sec: Math.floor((Date.now() - started) / 1000),
      ...(store
        ? {
            store: {
              backend: store.backend,
              state: store.state,
              since: new Date(store.since).toISOString(),
              last_error: store.lastError,
              ...(store.pool ? { pool: store.pool } : {}),
            },
          }
        : {}),
    };
  });

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', src.metrics.registry.contentType);
    return src.metrics.registry.metrics();
  });

  app.get('/v1/gateway', async () => src.descriptor());

  // JSON has no BigInt: counters that may exceed 2^53 are sent as decimal strings.
  app.get('/v1/stats', async (_req, reply) => {
    reply.header('content-type', 'application/json; charset=utf-8');
    return JSON.stringify({ uptime_sec: Math.floor((Date.now() - started) / 1000), ...src.stats() }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  });

  const wireguard = src.wireguard;
  if (wireguard) app.get('/v1/wireguard/peers', async () => wireguard());

  // Served as the operator signed it (re-read per request, so a new version is served once written).
  const directoryFile = src.directoryFile ?? '';
  if (directoryFile !== '') {
    app.get('/v1/directory', async (_req, reply) => {
      try {
        const text = await readFile(directoryFile, 'utf8');
        reply.header('content-type', 'application/json; charset=utf-8');
        return text;
      } catch (e) {
        logger.error({ err: e, file: directoryFile }, 'http.directory_file cannot be read');
        return reply.code(503).send({ code: 'LPGW_ERR_DIRECTORY_UNAVAILABLE', message: 'the directory document cannot be read' });
      }
    });
  }

  if (src.extraRoutes) await src.extraRoutes(app);
  // Last 'upgrade' listener: anything the routes above did not take over is answered 404 and closed.
  rejectUnclaimedUpgrades(app.server);

  let closing: Promise<void> | null = null;
  return {
    app,
    async close(graceMs: number): Promise<void> {
      closing ??= app.close();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closing, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      sockets.destroyAll();
      await closing;
    },
  };
}
