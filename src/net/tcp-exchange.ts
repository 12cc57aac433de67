/**
 * One framed request and its framed reply over a TCP connection, with a connect timeout and an I/O
 * timeout; used by the entry's forwarder (and by clients doing one packet per connection).
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

export function exchangeOnce(opts: ExchangeOptions, packet: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.host, port: opts.port, noDelay: true, ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}) });
    const decoder = new FrameDecoder();
    let settled = false;
    let timer = setTimeout(() => finish(new ExchangeError('LPGW_ERR_CONNECT_TIMEOUT', `connect to ${opts.host}:${opts.port} timed out after ${opts.connectTimeoutMs} ms`)), opts.connectTimeoutMs);
    const finish = (err: Error | null, reply?: Uint8Array): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(reply as Uint8Array);
    };
    socket.once('connect', () => {
      opts.onConnect?.();
      clearTimeout(timer);
      timer = setTimeout(() => finish(new ExchangeError('LPGW_ERR_IO_TIMEOUT', `no reply from ${opts.host}:${opts.port} within ${opts.ioTimeoutMs} ms`)), opts.ioTimeoutMs);
      socket.write(encodeFrame(packet));
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        const frames = decoder.push(chunk);
        if (frames.length) finish(null, new Uint8Array(frames[0] as Uint8Array));
      } catch (e) {
        finish(new ExchangeError('LPGW_ERR_BAD_REPLY_FRAME', (e as Error).message));
      }
    });
    socket.on('error', (e) => finish(new ExchangeError('LPGW_ERR_CONNECT_FAILED', `${opts.host}:${opts.port}: ${e.message}`)));
    socket.on('close', () => finish(new ExchangeError('LPGW_ERR_CLOSED_WITHOUT_REPLY', `${opts.host}:${opts.port} closed the connection without a reply`)));
  });
}
