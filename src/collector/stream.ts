/**
 * WebSocket stream of collector windows (ws, noServer mode): the HTTP server's `upgrade` event hands us the
 * requests for our path; every window is sent to every client as one JSON text message (the snapshot
 * object, kind "lp_collector_window"), preceded at connect by one "lp_collector_hello" message with the
 * collector's status. A client that does not keep up (more than `maxBufferedBytes` unsent) misses windows
 * instead of growing our memory; the drops are counted.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';
import type { CollectorSource } from './collector.js';
import { disabledStatus } from './collector.js';
import { endAndDestroy } from '../net/http-server.js';
import { SCHEMA_VERSION, type WindowSnapshot } from './schema.js';

export const STREAM_PATH = '/v1/collector/stream';
export const HELLO_KIND = 'lp_collector_hello';

export interface StreamOptions {
  maxBufferedBytes?: number;
  maxClients?: number;
}

export class WindowStream {
  private readonly wss: WebSocketServer;
  private readonly source: CollectorSource | null;
  private readonly unsubscribe: (() => void) | null;
  private readonly maxBuffered: number;
  private readonly maxClients: number;
  private droppedValue = 0;
  private sentValue = 0;

  constructor(source: CollectorSource | null, opts: StreamOptions = {}) {
    this.source = source;
    this.maxBuffered = opts.maxBufferedBytes ?? 8 << 20;
    this.maxClients = opts.maxClients ?? 64;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
    this.unsubscribe = source ? source.onWindow((w) => this.broadcast(w)) : null;
  }

  get clients(): number {
    return this.wss.clients.size;
  }

  get stats(): { sent: number; dropped: number } {
    return { sent: this.sentValue, dropped: this.droppedValue };
  }

  /** True when the request was for the stream path and has been taken over. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (req.url ?? '').split('?')[0];
    if (path !== STREAM_PATH) return false;
    if (this.wss.clients.size >= this.maxClients) {
      endAndDestroy(socket, 'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => ws.terminate());
      ws.on('message', () => undefined); // the stream is one-way; input is ignored
      const hello = { kind: HELLO_KIND, schema_version: SCHEMA_VERSION, status: this.source ? this.source.status() : disabledStatus() };
      ws.send(JSON.stringify(hello));
    });
    return true;
  }

  broadcast(w: WindowSnapshot): void {
    if (this.wss.clients.size === 0) return;
    const text = JSON.stringify(w);
    for (const ws of this.wss.clients) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      if (ws.bufferedAmount > this.maxBuffered) {
        this.droppedValue++;
        continue;
      }
      ws.send(text);
      this.sentValue++;
    }
  }

  /**
   * Closes every client (close frame 1001, terminated after `graceMs` if the peer does not answer) and
   * resolves once their sockets are gone: an HTTP server's close() waits for upgraded sockets too.
   */
  async close(graceMs = 1000): Promise<void> {
    this.unsubscribe?.();
    const pending = [...this.wss.clients].map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.close(1001, 'server shutting down');
          setTimeout(() => ws.terminate(), graceMs).unref();
        }),
    );
    await Promise.all(pending);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
