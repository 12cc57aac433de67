/**
 * Hygiene for the HTTP servers (the gateway API, `lp-gateway collect --http`): no socket outlives shutdown,
 * and no upgrade request is left hanging.
 *
 * Node hands an `Upgrade:` request to the server's 'upgrade' listeners and forgets the socket: a request
 * nobody takes over is never answered nor closed, and it keeps server.close() (and so a graceful shutdown)
 * waiting forever. Handlers that take one over say so with `claimUpgrade`; the listener that
 * `rejectUnclaimedUpgrades` adds last answers every other one 404 and closes it.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

const claimed = new WeakSet<Duplex>();

/** An 'upgrade' listener took this socket over (or answered it itself). */
export function claimUpgrade(socket: Duplex): void {
  claimed.add(socket);
}

/** Adds the last 'upgrade' listener: an upgrade no earlier listener claimed gets 404 and is closed. */
export function rejectUnclaimedUpgrades(server: Server): void {
  server.on('upgrade', (_req, socket: Duplex) => {
    if (claimed.has(socket)) return;
    endAndDestroy(socket, 'HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
}

/** Writes a final response and destroys the socket once it is flushed (HTTP sockets allow half-open). */
export function endAndDestroy(socket: Duplex, response: string): void {
  socket.on('error', () => undefined);
  socket.end(response, () => socket.destroy());
}

/**
 * Tracks every socket the server accepts (upgraded ones included, which server.close() and
 * closeAllConnections() do not cover) so that shutdown can end them.
 */
export function trackSockets(server: Server): { readonly size: number; destroyAll(): void } {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  return {
    get size() {
      return sockets.size;
    },
    destroyAll() {
      for (const s of sockets) s.destroy();
    },
  };
}
