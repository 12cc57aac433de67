/**
 * LP over UDP: one packet per datagram, no length prefix, the reply goes to the source (PRODUCT.md §1.10).
 * Anti-amplification: a reply to a packet that no session key authenticated (or to a copy of a session's last
 * request from an address other than the one its last new request came from) is never larger than the packet
 * itself (clients pad such requests, e.g. KKTRequest); otherwise it is dropped and counted. Datagrams being
 * served are bounded in bytes: beyond the bound new ones are dropped (counted) until some are answered.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { literalLookup } from '../../net/literal-lookup.js';
import type { Logger } from '../../log.js';
import type { GatewayMetrics, TransportCounts } from '../metrics.js';
import type { ShardResult } from '../shard.js';
import type { PacketHandler } from './tcp.js';

export interface UdpListenerOptions {
  host: string;
  port: number;
}

/** Bytes of datagrams being served at once (a worker shard's queue, forwards and registrations awaiting I/O). */
const MAX_IN_FLIGHT_BYTES = 16 << 20;

export class UdpListener {
  private readonly socket: dgram.Socket;
  /** Packet and byte counts (plain numbers on this per-packet path; the metrics collect them when scraped). */
  private readonly counts: TransportCounts;
  private inFlight = 0;
  private inFlightBytes = 0;
  /** No new datagrams are taken once closing; replies to in-flight ones still go out until the socket closes. */
  private closing = false;
  private closed = false;

  constructor(
    private readonly opts: UdpListenerOptions,
    private readonly onPacket: PacketHandler,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    this.counts = metrics.transportCounters('udp');
    this.socket = dgram.createSocket({ type: net.isIPv6(opts.host.replace(/^\[|\]$/g, '')) ? 'udp6' : 'udp4', reuseAddr: false, lookup: literalLookup });
    this.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    this.socket.on('error', (e) => this.logger.error({ err: e }, 'UDP socket error'));
  }

  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind({ address: this.opts.host.replace(/^\[|\]$/g, ''), port: this.opts.port }, () => {
        this.socket.off('error', reject);
        const a = this.socket.address();
        resolve({ address: a.address, family: a.family, port: a.port });
      });
    });
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closing) return;
    const c = this.counts;
    c.packetsIn++;
    c.bytesIn += msg.length;
    if (this.inFlightBytes + msg.length > MAX_IN_FLIGHT_BYTES) {
      this.metrics.dropped.inc({ reason: 'overload' });
      return;
    }
    this.inFlight++;
    this.inFlightBytes += msg.length;
    const r = this.onPacket(msg, { transport: 'udp', address: rinfo.address, port: rinfo.port });
    // A synchronous result (an in-thread shard's Ping or handshake step) is answered in this turn, no promise.
    if (r instanceof Promise)
      r.then(
        (res) => this.answer(msg, rinfo, res),
        (e: unknown) => {
          this.inFlight--;
          this.inFlightBytes -= msg.length;
          this.logger.error({ err: e }, 'UDP packet handler failed');
        },
      );
    else this.answer(msg, rinfo, r);
  }

  private answer(msg: Buffer, rinfo: dgram.RemoteInfo, { reply, authenticated }: ShardResult): void {
    this.inFlight--;
    this.inFlightBytes -= msg.length;
    if (!reply || this.closed) return;
    if (!authenticated && reply.length > msg.length) {
      this.metrics.dropped.inc({ reason: 'amplification' });
      return;
    }
    this.socket.send(reply, rinfo.port, rinfo.address);
    const c = this.counts;
    c.packetsOut++;
    c.bytesOut += reply.length;
  }

  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.closed = true;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
