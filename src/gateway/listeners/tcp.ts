/**
 * LP over TCP: `u32 BE length ‖ packet` frames, several per connection served strictly in order with at
 * most one reply each (one-packet-per-connection clients work unchanged). Bounded: connection cap,
 * a read timeout for a started frame, an idle timeout between frames, and the 65,536-byte frame cap.
 */
import net from 'node:net';
import { FrameDecoder, LpError, encodeFrame } from '../../core/index.js';
import type { Logger } from '../../log.js';
import type { GatewayMetrics } from '../metrics.js';
import type { PacketSource, ShardResult } from '../shard.js';

export interface TcpListenerOptions {
  host: string;
  port: number;
  maxConnections: number;
  readTimeoutMs: number;
  idleTimeoutMs: number;
}

export type PacketHandler = (packet: Uint8Array, src: PacketSource) => Promise<ShardResult>;

export class TcpListener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** In-flight request count per connection, for graceful shutdown. */
  private inFlight = 0;
  private closing = false;
  // Labelled children resolved once: this is the per-packet path.
  private readonly packetsIn;
  private readonly bytesIn;
  private readonly packetsOut;
  private readonly bytesOut;

  constructor(
    private readonly opts: TcpListenerOptions,
    private readonly onPacket: PacketHandler,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    ({ packetsIn: this.packetsIn, bytesIn: this.bytesIn, packetsOut: this.packetsOut, bytesOut: this.bytesOut } = metrics.transportCounters('tcp'));
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

  private onConnection(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    this.metrics.connections.inc();
    this.metrics.connectionsActive.inc();
    const src: PacketSource = { transport: 'tcp', address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const decoder = new FrameDecoder();
    const queue: Uint8Array[] = [];
    let busy = false;
    let readTimer: NodeJS.Timeout | null = null;
    let idleTimer: NodeJS.Timeout | null = null;

    const clearTimers = (): void => {
      if (readTimer) clearTimeout(readTimer);
      if (idleTimer) clearTimeout(idleTimer);
      readTimer = idleTimer = null;
    };
    const kill = (reason: string): void => {
      this.metrics.connectionsRejected.inc({ reason });
      socket.destroy();
    };
    // Exactly one timer runs: read (a frame has started), idle (nothing pending), or none (request in flight).
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

    const pump = async (): Promise<void> => {
      busy = true;
      while (queue.length && !socket.destroyed) {
        const frame = queue.shift() as Uint8Array;
        this.inFlight++;
        try {
          const { reply } = await this.onPacket(frame, src);
          if (reply && !socket.destroyed) {
            const out = encodeFrame(reply);
            socket.write(out);
            this.packetsOut.inc();
            this.bytesOut.inc(out.length);
          }
        } catch (e) {
          this.logger.error({ err: e }, 'TCP packet handler failed');
        } finally {
          this.inFlight--;
        }
      }
      busy = false;
      if (this.closing) socket.end();
      else armTimers();
    };

    socket.on('data', (chunk: Buffer) => {
      this.bytesIn.inc(chunk.length);
      let frames: Uint8Array[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        if (e instanceof LpError) this.metrics.error(e.code);
        kill('bad_frame');
        return;
      }
      for (const f of frames) {
        this.packetsIn.inc();
        queue.push(f);
      }
      if (!busy && queue.length) {
        clearTimers();
        void pump();
      } else if (!busy) armTimers();
    });
    socket.on('error', () => undefined); // resets by peers are normal; 'close' does the accounting
    socket.on('close', () => {
      clearTimers();
      this.sockets.delete(socket);
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
