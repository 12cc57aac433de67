/**
 * HTTP surface of the collector, self-contained so the gateway's API (or `lp-gateway collect --http`) can
 * mount it on any fastify instance:
 *   GET /v1/collector/windows/latest  the last window snapshot (404 before the first, 503 when disabled)
 *   GET /v1/collector/status          state, attachment, counters (state "disabled" without a collector)
 *   WS  /v1/collector/stream          live windows (see stream.ts), on the server's `upgrade` event
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { disabledStatus, type CollectorSource } from './collector.js';
import { WindowStream, type StreamOptions } from './stream.js';
import { claimUpgrade } from '../net/http-server.js';

export const LATEST_PATH = '/v1/collector/windows/latest';
export const STATUS_PATH = '/v1/collector/status';

export function registerCollectorRoutes(app: FastifyInstance, collector: CollectorSource | null, opts: StreamOptions = {}): WindowStream {
  const stream = new WindowStream(collector, opts);

  app.get(LATEST_PATH, async (_req, reply) => {
    if (!collector) return reply.code(503).send({ code: 'LPGW_COLLECTOR_DISABLED', message: 'the eBPF collector is not running' });
    const w = collector.latest();
    if (!w) return reply.code(404).send({ code: 'LPGW_COLLECTOR_NO_WINDOW', message: 'no window has completed yet' });
    return reply.send(w);
  });

  app.get(STATUS_PATH, async (_req, reply) => reply.send(collector ? collector.status() : disabledStatus()));

  // Other upgrade listeners (other WS endpoints) may share the server: paths that are not ours are left to them,
  // and whatever nobody claims is answered 404 by the server's last listener (src/net/http-server.ts).
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (stream.handleUpgrade(req, socket, head)) claimUpgrade(socket);
  };
  app.server.on('upgrade', onUpgrade);
  // preClose, not onClose: the HTTP server's close waits for upgraded sockets, so they must go first.
  app.addHook('preClose', async () => {
    app.server.off('upgrade', onUpgrade);
    await stream.close();
  });
  return stream;
}
