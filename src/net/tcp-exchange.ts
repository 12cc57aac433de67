/**
 * Framed request/reply exchanges over TCP with connect and I/O timeouts: `TcpConnectionPool` reuses
 * connections to one target (the entry's forwarder: every packet of a telescoped session goes to the same
 * exit, and a connection per packet costs a TCP handshake plus an accept on both gateways each time), and
 * `exchangeOnce` is the same exchange on a connection of its own (clients doing one packet per connection).
 *
 * A pooled connection is lent to exactly one exchange and comes back only after that exchange got its reply;
 * any error, timeout or byte outside an exchange destroys it, and so does a reply followed by more bytes, so a
 * late or extra reply can never be taken for the next request's. Idle connections are closed after `idleMs`
 * (well under the exit's idle timeout) and at most `maxIdle` are kept. A request that fails on a reused
 * connection before any reply byte (the peer closed it while idle) is sent once more on a fresh connection;
 * LP handshakes and sessions answer a retransmitted packet idempotently.
 */
import net from 'node:net';
import { FrameDecoder, encodeFrame } from '../core/index.js';

export class ExchangeError extends Error {
  constructor(
    readonly code: 'LPGW_ERR_CONNECT_TIMEOUT' | 'LPGW_ERR_CONNECT_FAILED' | 'LPGW_ERR_IO_TIMEOUT' | 'LPGW_ERR_CLOSED_WITHOUT_REPLY' | 'LPGW_ERR_BAD_REPLY_FRAME',
    message: string,
  ) {
    super(message);
    this.name = 'ExchangeError';
  }
}

export interface ExchangeOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  ioTimeoutMs: number;
  /** Local source address to bind (e.g. 127.0.0.2 in tests); the OS picks one when absent. */
  localAddress?: string;
  /** Called once the TCP connection is up (metrics, tests). */
  onConnect?: () => void;
}

export interface PoolOptions extends ExchangeOptions {
  /** Idle connections kept at most. */
  maxIdle: number;
  /** An idle connection is closed after this long. */
  idleMs: number;
}

interface Conn {
  socket: net.Socket;
  decoder: FrameDecoder;
  /** The exchange currently using it (null while idle). */
  waiter: ((err: Error | null, reply?: Uint8Array) => void) | null;
  idleTimer: NodeJS.Timeout | null;
  /** True after the first completed exchange: a failure before any reply may be a close while idle. */
  reused: boolean;
  gotBytes: boolean;
  /** Bytes beyond the reply arrived: never reused. */
  spoilt: boolean;
}

export class TcpConnectionPool {
  private readonly idle: Conn[] = [];
  private closed = false;

  constructor(private readonly o: PoolOptions) {}

  /** Number of idle connections (metrics, tests). */
  get idleCount(): number {
    return this.idle.length;
  }

  async exchange(packet: Uint8Array): Promise<Uint8Array> {
    const conn = this.takeIdle();
    if (conn) {
      try {
        return await this.send(conn, packet);
      } catch (e) {
        if (!(conn.reused && !conn.gotBytes && e instanceof ExchangeError && e.code !== 'LPGW_ERR_IO_TIMEOUT')) throw e;
        // The exit closed the idle connection as we used it: once more, on a fresh one.
      }
    }
    return this.send(await this.connect(), packet);
  }

  /** Closes every idle connection; exchanges in progress finish on theirs, which are then closed too. */
  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) this.destroy(c);
  }

  private takeIdle(): Conn | null {
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      if (c.idleTimer) clearTimeout(c.idleTimer);
      c.idleTimer = null;
      if (!c.socket.destroyed && c.socket.writable) return c;
      this.destroy(c);
    }
    return null;
  }

  private connect(): Promise<Conn> {
    const { host, port } = this.o;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true, ...(this.o.localAddress !== undefined ? { localAddress: this.o.localAddress } : {}) });
      const conn: Conn = { socket, decoder: new FrameDecoder(), waiter: null, idleTimer: null, reused: false, gotBytes: false, spoilt: false };
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ExchangeError('LPGW_ERR_CONNECT_TIMEOUT', `connect to ${host}:${port} timed out after ${this.o.connectTimeoutMs} ms`));
      }, this.o.connectTimeoutMs);
      const onError = (e: Error): void => {
        clearTimeout(timer);
        reject(new ExchangeError('LPGW_ERR_CONNECT_FAILED', `${host}:${port}: ${e.message}`));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        this.o.onConnect?.();
        this.wire(conn);
        resolve(conn);
      });
    });
  }

  /** Permanent listeners: bytes go to the current exchange; anything outside one ends the connection. */
  private wire(c: Conn): void {
    const fail = (err: ExchangeError): void => {
      const w = c.waiter;
      c.waiter = null;
      this.destroy(c);
      w?.(err);
    };
    c.socket.on('data', (chunk: Buffer) => {
      if (!c.waiter) return fail(new ExchangeError('LPGW_ERR_BAD_REPLY_FRAME', 'bytes on an idle connection'));
      c.gotBytes = true;
      let frames: Uint8Array[];
      try {
        frames = c.decoder.push(chunk);
      } catch (e) {
        return fail(new ExchangeError('LPGW_ERR_BAD_REPLY_FRAME', (e as Error).message));
      }
      if (frames.length === 0) return;
      const w = c.waiter;
      c.waiter = null;
      // More than the one reply: the first answers this request, the connection is not lent out again.
      if (frames.length > 1 || c.decoder.pending > 0) c.spoilt = true;
      w(null, new Uint8Array(frames[0] as Uint8Array));
    });
    c.socket.on('error', (e) => fail(new ExchangeError('LPGW_ERR_CONNECT_FAILED', `${this.o.host}:${this.o.port}: ${e.message}`)));
    c.socket.on('close', () => fail(new ExchangeError('LPGW_ERR_CLOSED_WITHOUT_REPLY', `${this.o.host}:${this.o.port} closed the connection without a reply`)));
  }

  private send(c: Conn, packet: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      c.gotBytes = false;
      const timer = setTimeout(() => {
        c.waiter = null;
        this.destroy(c);
        reject(new ExchangeError('LPGW_ERR_IO_TIMEOUT', `no reply from ${this.o.host}:${this.o.port} within ${this.o.ioTimeoutMs} ms`));
      }, this.o.ioTimeoutMs);
      c.waiter = (err, reply) => {
        clearTimeout(timer);
        if (err) return reject(err);
        this.release(c);
        resolve(reply as Uint8Array);
      };
      c.socket.write(encodeFrame(packet));
    });
  }

  private release(c: Conn): void {
    c.reused = true;
    if (c.spoilt || this.closed || this.idle.length >= this.o.maxIdle) return this.destroy(c);
    c.idleTimer = setTimeout(() => {
      const i = this.idle.indexOf(c);
      if (i >= 0) this.idle.splice(i, 1);
      this.destroy(c);
    }, this.o.idleMs);
    c.idleTimer.unref();
    this.idle.push(c);
  }

  private destroy(c: Conn): void {
    if (c.idleTimer) clearTimeout(c.idleTimer);
    c.idleTimer = null;
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    c.socket.destroy();
  }
}

/** One framed request and its framed reply on a connection of its own (closed afterwards). */
export function exchangeOnce(opts: ExchangeOptions, packet: Uint8Array): Promise<Uint8Array> {
  return new TcpConnectionPool({ ...opts, maxIdle: 0, idleMs: 0 }).exchange(packet);
}
