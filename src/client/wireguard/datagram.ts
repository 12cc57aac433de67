/**
 * What the tunnel sends its WireGuard datagrams over. The default is a connected node:dgram socket: the
 * kernel then delivers only datagrams from the gateway's endpoint, so spoofed junk from elsewhere never
 * reaches the core. Another tunnel's udpTransport() implements the same interface (two hops).
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { WgError, WgErrorCode } from './errors.js';

export interface DatagramTransport {
  send(b: Uint8Array): void;
  onMessage(cb: (b: Uint8Array) => void): void;
  close(): void;
}

export interface Endpoint {
  host: string;
  port: number;
}

export interface UdpSocketOptions {
  /** Local address to bind (default: any address of the endpoint's family). */
  bindAddress?: string;
  /** Local port (default: an ephemeral one). */
  bindPort?: number;
  /** Called for socket errors (e.g. ECONNREFUSED after an ICMP port unreachable); they never throw. */
  onError?: (e: WgError) => void;
}

export class UdpSocketTransport implements DatagramTransport {
  private readonly listeners: ((b: Uint8Array) => void)[] = [];
  private closed = false;
  /** Socket errors seen (sends into an unreachable port surface as ECONNREFUSED on a connected socket). */
  errors = 0;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly onError: ((e: WgError) => void) | undefined,
  ) {
    socket.on('message', (msg: Buffer) => {
      const b = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
      for (const l of this.listeners) l(b);
    });
    socket.on('error', (e: Error) => {
      this.errors++;
      this.onError?.(new WgError(WgErrorCode.SOCKET, `UDP socket: ${e.message}`, { errno: (e as NodeJS.ErrnoException).code ?? null }));
    });
  }

  /** A UDP socket bound locally and connected to `endpoint` (hostnames are resolved once). */
  static async open(endpoint: Endpoint, o: UdpSocketOptions = {}): Promise<UdpSocketTransport> {
    if (!Number.isInteger(endpoint.port) || endpoint.port < 1 || endpoint.port > 65535) throw new WgError(WgErrorCode.BAD_ARGUMENT, `bad endpoint port ${endpoint.port}`);
    let host = endpoint.host.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host) === 0) {
      try {
        host = (await lookup(host)).address;
      } catch (e) {
        throw new WgError(WgErrorCode.SOCKET, `cannot resolve ${endpoint.host}: ${(e as Error).message}`);
      }
    }
    const socket = dgram.createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4' });
    const t = new UdpSocketTransport(socket, o.onError);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port: o.bindPort ?? 0, ...(o.bindAddress ? { address: o.bindAddress } : {}) }, () => {
          socket.connect(endpoint.port, host, () => {
            socket.off('error', reject);
            resolve();
          });
        });
      });
    } catch (e) {
      t.close();
      throw new WgError(WgErrorCode.SOCKET, `cannot open a UDP socket to ${host}:${endpoint.port}: ${(e as Error).message}`);
    }
    return t;
  }

  get localAddress(): { address: string; port: number } {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  send(b: Uint8Array): void {
    if (this.closed) return;
    this.socket.send(b, (err) => {
      if (err) {
        this.errors++;
        this.onError?.(new WgError(WgErrorCode.SOCKET, `UDP send: ${err.message}`));
      }
    });
  }

  onMessage(cb: (b: Uint8Array) => void): void {
    this.listeners.push(cb);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.listeners.length = 0;
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
