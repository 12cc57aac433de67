/** Transports for the probe: which LP address a transport uses, a TCP reachability check, reply counting. */
import net from 'node:net';
import { ClientError, type SocketTransportOptions, TcpPerPacketTransport, TcpStreamTransport, type Transport, UdpTransport, splitHostPort } from '../src/client/index.js';
import type { GatewayDescriptor } from '../src/gateway/descriptor.js';
import { ProbeErrorCode, type TransportName } from './report.js';

export const TRANSPORT_NAMES: readonly TransportName[] = ['tcp', 'tcp-stream', 'udp'];

export function isTransportName(s: string): s is TransportName {
  return (TRANSPORT_NAMES as readonly string[]).includes(s);
}

/** The descriptor's LP address for `kind`; ClientError LPC_ERR_TRANSPORT_UNAVAILABLE when UDP is off. */
export function lpAddressFor(d: GatewayDescriptor, kind: TransportName): string {
  if (kind !== 'udp') return d.lp.tcp;
  if (d.lp.udp === null) throw new ClientError(ProbeErrorCode.TRANSPORT_UNAVAILABLE, `gateway ${d.identity_key.slice(0, 16)}… announces no LP UDP address`);
  return d.lp.udp;
}

export function socketOptions(localAddress: string | null): SocketTransportOptions {
  return localAddress === null ? {} : { localAddress };
}

export function makeTransport(kind: TransportName, address: string, connectTimeoutMs: number, localAddress: string | null): Transport {
  const opts = socketOptions(localAddress);
  switch (kind) {
    case 'tcp':
      return new TcpPerPacketTransport(address, connectTimeoutMs, opts);
    case 'tcp-stream':
      return new TcpStreamTransport(address, connectTimeoutMs, opts);
    case 'udp':
      return new UdpTransport(address, undefined, opts);
  }
}

/**
 * Opens and closes one TCP connection to `address`; resolves with the connect time in ms.
 * Rejects with ClientError LPC_ERR_CONNECT_FAILED / LPC_ERR_CONNECT_TIMEOUT.
 */
export function tcpConnectCheck(address: string, timeoutMs: number, localAddress: string | null): Promise<number> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const s = net.connect({ host, port, noDelay: true, ...socketOptions(localAddress) });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ClientError('LPC_ERR_CONNECT_TIMEOUT', `connect to ${address} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      s.destroy();
      resolve(ms);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      s.destroy();
      reject(new ClientError('LPC_ERR_CONNECT_FAILED', `${address}: ${e.message}`));
    });
  });
}

/** Counts the replies that came back through a transport (for UDP, "the transport reached the gateway"). */
export class ObservedTransport implements Transport {
  replies = 0;
  constructor(private readonly inner: Transport) {}

  get kind(): Transport['kind'] {
    return this.inner.kind;
  }

  async request(packet: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const reply = await this.inner.request(packet, timeoutMs);
    this.replies++;
    return reply;
  }

  close(): void {
    this.inner.close();
  }
}
