/**
 * Client transports: each sends one LP packet and resolves with the single reply packet.
 *   TcpPerPacketTransport — a new connection per packet (upstream behaviour);
 *   TcpStreamTransport    — one reused connection, requests strictly one at a time;
 *   UdpTransport          — one datagram each way, re-sent on timeout (the gateway answers re-sends
 *                           idempotently);
 *   ForwardTransport (telescoping.ts) — through an entry's session to an exit.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { FrameDecoder, encodeFrame, peekBusy } from '../core/index.js';
import { parseHostPort } from '../net/address.js';
import { exchangeOnce } from '../net/tcp-exchange.js';
import { ClientError } from './errors.js';

export interface Transport {
  /** Send one packet, resolve with the one reply; rejects with ClientError on timeout or close. */
  request(packet: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  close(): void;
  readonly kind: 'tcp' | 'tcp-stream' | 'udp' | 'forward';
}

/** Options shared by the socket transports. */
export interface SocketTransportOptions {
  /** Local source address to bind (e.g. a second loopback address in tests); the OS picks one when absent. */
  localAddress?: string;
}

/** The project's HOST:PORT parser, with the client's error code. */
export function splitHostPort(address: string): { host: string; port: number } {
  try {
    return parseHostPort(address);
  } catch (e) {
    throw new ClientError('LPC_ERR_BAD_ADDRESS', (e as Error).message);
  }
}

export class TcpPerPacketTransport implements Transport {
  readonly kind = 'tcp' as const;
  constructor(
    private readonly address: string,
    private readonly connectTimeoutMs = 10_000,
    private readonly opts: SocketTransportOptions = {},
  ) {}

  async request(packet: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const { host, port } = splitHostPort(this.address);
    try {
      return await exchangeOnce({ host, port, connectTimeoutMs: this.connectTimeoutMs, ioTimeoutMs: timeoutMs, ...(this.opts.localAddress !== undefined ? { localAddress: this.opts.localAddress } : {}) }, packet);
    } catch (e) {
      throw ClientError.from(e);
    }
  }

  close(): void {}
}

export class TcpStreamTransport implements Transport {
  readonly kind = 'tcp-stream' as const;
  private socket: net.Socket | null = null;
  private decoder = new FrameDecoder();
  private pending: { resolve: (b: Uint8Array) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private connecting: Promise<net.Socket> | null = null;

  constructor(
    private readonly address: string,
    private readonly connectTimeoutMs = 10_000,
    private readonly opts: SocketTransportOptions = {},
  ) {}

  private connect(): Promise<net.Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<net.Socket>((resolve, reject) => {
      const { host, port } = splitHostPort(this.address);
      const s = net.connect({ host, port, noDelay: true, ...(this.opts.localAddress !== undefined ? { localAddress: this.opts.localAddress } : {}) });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new ClientError('LPC_ERR_CONNECT_TIMEOUT', `connect to ${this.address} timed out after ${this.connectTimeoutMs} ms`));
      }, this.connectTimeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        this.socket = s;
        this.decoder = new FrameDecoder();
        resolve(s);
      });
      s.on('data', (chunk: Buffer) => this.onData(chunk));
      s.on('error', (e) => {
        clearTimeout(timer);
        reject(new ClientError('LPC_ERR_CONNECT_FAILED', `${this.address}: ${e.message}`));
        this.fail(new ClientError('LPC_ERR_CONNECTION_LOST', `${this.address}: ${e.message}`));
      });
      s.on('close', () => {
        this.socket = null;
        this.fail(new ClientError('LPC_ERR_CLOSED_WITHOUT_REPLY', `${this.address} closed the connection without a reply`));
      });
    }).finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private onData(chunk: Buffer): void {
    let frames: Uint8Array[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      this.fail(new ClientError('LPC_ERR_BAD_REPLY', (e as Error).message));
      this.socket?.destroy();
      return;
    }
    for (const f of frames) {
      const p = this.pending;
      if (!p) continue; // a reply nobody waits for (after a timeout): dropped
      this.pending = null;
      clearTimeout(p.timer);
      p.resolve(new Uint8Array(f));
    }
  }

  private fail(e: Error): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    clearTimeout(p.timer);
    p.reject(e);
  }

  async request(packet: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.pending) throw new ClientError('LPC_ERR_BUSY_TRANSPORT', 'a request is already in flight on this connection');
    const s = await this.connect();
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = null;
        // The reply may still arrive and would be mistaken for the next one: start over on a new connection.
        s.destroy();
        reject(new ClientError('LPC_ERR_TIMEOUT', `no reply from ${this.address} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = { resolve, reject, timer };
      s.write(encodeFrame(packet));
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }
}

export class UdpTransport implements Transport {
  readonly kind = 'udp' as const;
  private socket: dgram.Socket | null = null;
  /** Resolves once the socket is connected to the gateway (the kernel then drops datagrams from anyone else). */
  private opening: Promise<dgram.Socket> | null = null;
  private pending: { resolve: (b: Uint8Array) => void; reject: (e: Error) => void } | null = null;
  private busy = false;
  /**
   * The previous request's reply. A re-sent request can be answered twice (the gateway answers a retransmission
   * with the same bytes); the second copy must not be taken for the next request's reply. Only a Busy can
   * legitimately repeat byte for byte (a re-sent ClientHello refused again); every other reply carries a fresh
   * counter or fresh key material.
   */
  private lastReply: Buffer | null = null;

  constructor(
    private readonly address: string,
    /** Re-sends of an unanswered datagram within one request's timeout. */
    private readonly attempts = 4,
    private readonly opts: SocketTransportOptions = {},
  ) {}

  private open(): Promise<dgram.Socket> {
    if (this.opening) return this.opening;
    const { host, port } = splitHostPort(this.address);
    const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    this.socket = s;
    this.opening = new Promise<dgram.Socket>((resolve, reject) => {
      s.on('message', (msg) => {
        const p = this.pending;
        if (!p || (this.lastReply !== null && this.lastReply.equals(msg) && peekBusy(msg) === undefined)) return;
        this.pending = null;
        this.lastReply = msg;
        p.resolve(new Uint8Array(msg));
      });
      // A socket error (failed bind or connect, unreachable local address) fails the request at once, not at
      // its timeout; the next request opens a new socket.
      s.on('error', (e) => {
        const err = new ClientError('LPC_ERR_SOCKET', `UDP socket for ${this.address}: ${e.message}`);
        const p = this.pending;
        this.pending = null;
        if (this.socket === s) {
          this.socket = null;
          this.opening = null;
        }
        try {
          s.close();
        } catch {
          /* never bound: nothing to close */
        }
        reject(err);
        p?.reject(err);
      });
      const connect = (): void => s.connect(port, host, () => resolve(s));
      if (this.opts.localAddress !== undefined) s.bind({ address: this.opts.localAddress, port: 0 }, connect);
      else connect();
    });
    // The request that awaits it sees the error; nobody else needs to.
    this.opening.catch(() => undefined);
    return this.opening;
  }

  async request(packet: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.busy) throw new ClientError('LPC_ERR_BUSY_TRANSPORT', 'a request is already in flight on this socket');
    this.busy = true;
    try {
      const s = await this.open();
      return await new Promise<Uint8Array>((resolve, reject) => {
        let sent = 0;
        const interval = Math.max(50, Math.floor(timeoutMs / this.attempts));
        const send = (): void => {
          sent++;
          s.send(packet);
        };
        const resend = setInterval(() => {
          if (sent < this.attempts) send();
        }, interval);
        const timer = setTimeout(() => {
          clearInterval(resend);
          this.pending = null;
          reject(new ClientError('LPC_ERR_TIMEOUT', `no reply from ${this.address} within ${timeoutMs} ms (${sent} datagram(s) sent)`));
        }, timeoutMs);
        this.pending = {
          resolve: (b) => {
            clearInterval(resend);
            clearTimeout(timer);
            resolve(b);
          },
          reject: (e) => {
            clearInterval(resend);
            clearTimeout(timer);
            reject(e);
          },
        };
        send();
      });
    } finally {
      this.busy = false;
    }
  }

  close(): void {
    try {
      this.socket?.close();
    } catch {
      /* already closed after an error */
    }
    this.socket = null;
    this.opening = null;
  }
}
