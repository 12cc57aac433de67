/**
 * LP over TCP: `u32 BE length ‖ packet` frames, several per connection served strictly in order with at
 * most one reply each (one-packet-per-connection clients work unchanged). Bounded (DESIGN.md §10.4):
 *  - connections: a global cap, and a cap per source IP (exempt: entries that forward many clients);
 *  - time: a read deadline for a started frame, an idle timeout between frames, a write deadline for replies
 *    the peer does not read;
 *  - memory: a frame's buffer grows with the bytes that arrived (FrameDecoder), and a connection is not read
 *    while its received-but-unserved requests or its unread replies exceed `maxPendingBytes` (back-pressure:
 *    the kernel's TCP window then stops the peer).
 */
import net from 'node:net';
import { FrameDecoder, LpError, encodeFrame } from '../../core/index.js';
import type { Logger } from '../../log.js';
import type { GatewayMetrics, TransportCounts } from '../metrics.js';
import type { PacketSource, ShardResult } from '../shard.js';

export interface TcpListenerOptions {
  host: string;
  port: number;
  maxConnections: number;
  /** Open connections per source IP; sources for which `exempt` is true have only the global cap. */
  maxConnectionsPerSource: number;
  /** Queued request bytes, and unread reply bytes, per connection before reading pauses. */
  maxPendingBytes: number;
  readTimeoutMs: number;
  idleTimeoutMs: number;
  exempt?: (address: string) => boolean;
}

/** A result, or a promise of one (the dispatcher's contract: never throws, a bug rejects). */
export type PacketHandler = (packet: Uint8Array, src: PacketSource) => ShardResult | Promise<ShardResult>;

/** `::ffff:a.b.c.d` (a v4 client on a dual-stack socket) counts as `a.b.c.d`. */
function sourceIp(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export class TcpListener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Open connections per source IP (entries removed at zero). */
  private readonly perSource = new Map<string, number>();
  /** In-flight request count per connection, for graceful shutdown. */
  private inFlight = 0;
  private closing = false;
  /** Packet and byte counts (plain numbers on this per-packet path; the metrics collect them when scraped). */
  private readonly counts: TransportCounts;

  constructor(
    private readonly opts: TcpListenerOptions,
    private readonly onPacket: PacketHandler,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    this.counts = metrics.transportCounters('tcp');
    this.server = net.createServer({ noDelay: true, pauseOnConnect: false }, (s) => this.onConnection(s));
    this.server.maxConnections = opts.maxConnections;
    this.server.on('drop', () => this.metrics.connectionsRejected.inc({ reason: 'max_connections' }));
  }

  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  /** Counts the connection against its source; false (and nothing counted) when the source is at its cap. */
  private admit(ip: string): boolean {
    const n = this.perSource.get(ip) ?? 0;
    if (n >= this.opts.maxConnectionsPerSource && !(this.opts.exempt?.(ip) ?? false)) return false;
    this.perSource.set(ip, n + 1);
    return true;
  }

  private release(ip: string): void {
    const n = (this.perSource.get(ip) ?? 1) - 1;
    if (n > 0) this.perSource.set(ip, n);
    else this.perSource.delete(ip);
  }

  private onConnection(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const ip = sourceIp(socket.remoteAddress ?? '');
    if (!this.admit(ip)) {
      this.metrics.connectionsRejected.inc({ reason: 'max_connections_per_source' });
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    this.metrics.connections.inc();
    this.metrics.connectionsActive.inc();
    const src: PacketSource = { transport: 'tcp', address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const maxPending = this.opts.maxPendingBytes;
    const decoder = new FrameDecoder();
    const queue: Uint8Array[] = [];
    let queuedBytes = 0;
    let busy = false;
    let paused = false;
    let readTimer: NodeJS.Timeout | null = null;
    let idleTimer: NodeJS.Timeout | null = null;
    let writeTimer: NodeJS.Timeout | null = null;
    /** Resolves the pump's wait for the peer to read its replies ('drain' or close). */
    let drained: (() => void) | null = null;

    const clearTimers = (): void => {
      if (readTimer) clearTimeout(readTimer);
      if (idleTimer) clearTimeout(idleTimer);
      readTimer = idleTimer = null;
    };
    const kill = (reason: string): void => {
      this.metrics.connectionsRejected.inc({ reason });
      socket.destroy();
    };
    // Exactly one timer runs: read (a frame has started), idle (nothing pending), or none (request in flight);
    // the write deadline runs on its own while the pump waits for the peer to read.
    // The read timer is a deadline for the whole frame: more bytes of the same frame do not re-arm it, or a
    // peer trickling one byte per (readTimeoutMs - ε) would hold the connection open forever (slowloris).
    const armTimers = (): void => {
      if (busy || queue.length) {
        clearTimers();
        return;
      }
      if (decoder.midFrame) {
        if (idleTimer) clearTimeout(idleTimer);
        idleTimer = null;
        readTimer ??= setTimeout(() => kill('read_timeout'), this.opts.readTimeoutMs);
        return;
      }
      clearTimers();
      idleTimer = setTimeout(() => kill('idle_timeout'), this.opts.idleTimeoutMs);
    };
    // Back-pressure: read only while both the unserved requests and the unread replies are within the bound;
    // unread replies over it must be taken within the write deadline (readTimeoutMs).
    const updateFlow = (): void => {
      if (socket.destroyed) return;
      const writeBacklog = socket.writableLength > maxPending;
      if (writeBacklog) writeTimer ??= setTimeout(() => kill('write_timeout'), this.opts.readTimeoutMs);
      else if (writeTimer) {
        clearTimeout(writeTimer);
        writeTimer = null;
      }
      const overloaded = queuedBytes > maxPending || writeBacklog;
      if (overloaded && !paused) {
        paused = true;
        socket.pause();
        this.metrics.connectionsPaused.inc();
      } else if (!overloaded && paused) {
        paused = false;
        socket.resume();
      }
    };
    // maxPendingBytes is at least the socket's high-water mark (config rule), so a backlog over it always ends in 'drain'.
    const waitForReader = (): Promise<void> =>
      new Promise<void>((resolve) => {
        drained = resolve;
      });

    const pump = async (): Promise<void> => {
      busy = true;
      while (queue.length && !socket.destroyed) {
        // Unread replies over the bound: serve nothing more until the peer reads (or the write deadline ends it).
        if (socket.writableLength > maxPending) {
          await waitForReader();
          continue;
        }
        const frame = queue.shift() as Uint8Array;
        queuedBytes -= frame.length;
        this.inFlight++;
        try {
          const { reply } = await this.onPacket(frame, src);
          if (reply && !socket.destroyed) {
            const out = encodeFrame(reply);
            socket.write(out);
            this.counts.packetsOut++;
            this.counts.bytesOut += out.length;
          }
        } catch (e) {
          this.logger.error({ err: e }, 'TCP packet handler failed');
        } finally {
          this.inFlight--;
        }
        updateFlow();
      }
      busy = false;
      if (this.closing) socket.end();
      else armTimers();
    };

    socket.on('data', (chunk: Buffer) => {
      this.counts.bytesIn += chunk.length;
      let frames: Uint8Array[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        if (e instanceof LpError) this.metrics.error(e.code);
        kill('bad_frame');
        return;
      }
      for (const f of frames) {
        this.counts.packetsIn++;
        queue.push(f);
        queuedBytes += f.length;
      }
      updateFlow();
      if (!busy && queue.length) {
        clearTimers();
        void pump();
      } else if (!busy) armTimers();
    });
    const wake = (): void => {
      const d = drained;
      drained = null;
      d?.();
    };
    socket.on('drain', () => {
      updateFlow();
      wake();
    });
    socket.on('error', () => undefined); // resets by peers are normal; 'close' does the accounting
    socket.on('close', () => {
      clearTimers();
      if (writeTimer) clearTimeout(writeTimer);
      writeTimer = null;
      wake();
      queue.length = 0;
      this.sockets.delete(socket);
      this.release(ip);
      this.metrics.connectionsActive.dec();
    });
    armTimers();
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Stop accepting, let in-flight requests finish (up to `graceMs`), then close every connection. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const deadline = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}
