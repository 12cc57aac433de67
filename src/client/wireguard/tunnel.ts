/**
 * The I/O edge: a WgPeer driven by a datagram transport (a node:dgram socket by default) and one timer.
 * It turns the core's output into sends, timer deadlines and callbacks, answers and matches pings, and
 * demultiplexes UDP for tunnels nested inside this one. Every datagram the core rejects is dropped and
 * counted by code (stats.droppedByCode); nothing from the network can throw out of here. No root, no TUN.
 */
import { performance } from 'node:perf_hooks';
import { randomInt } from 'node:crypto';
import type { WgLimits } from './constants.js';
import type { WgCrypto } from './crypto.js';
import { UdpSocketTransport, type DatagramTransport, type Endpoint } from './datagram.js';
import { WgError, WgErrorCode } from './errors.js';
import { buildEcho, parseEcho } from './icmp.js';
import { parseIpPacket, sameAddress } from './ip.js';
import { WgPeer, type WgEvent, type WgOutput } from './peer.js';
import { buildUdpPacket, parseUdp } from './udp.js';

/** Default give-up for connect(): a probe wants an answer well before REKEY_ATTEMPT_TIME (90 s). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;

export interface WgTunnelOptions {
  /** The client's X25519 private key (32 bytes). */
  privateKey: Uint8Array;
  /** The gateway's WireGuard public key. */
  peerPublicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  /** The gateway's WireGuard UDP endpoint (ignored when `datagrams` is given). */
  endpoint: Endpoint;
  /** The client's tunnel addresses (4 / 16 bytes): sources of pings and UDP, destinations answered. */
  localIpv4: Uint8Array | null;
  localIpv6: Uint8Array | null;
  /** Where datagrams go (default: a node:dgram socket connected to `endpoint`). The tunnel owns it: close() closes it. */
  datagrams?: DatagramTransport;
  /** Handshake give-up for connect(), ms (default 15 000). */
  timeoutMs?: number;
  persistentKeepaliveSec?: number;
  /** Answer ICMP/ICMPv6 echo requests addressed to localIpv4/localIpv6 (default true). */
  answerPings?: boolean;
  mtu?: number;
  /** Observe the core's events (handshakes, cookies, keepalives). */
  onEvent?: (e: WgEvent) => void;
  /** Test hooks: randomness, timestamps, protocol limits, clock. */
  crypto?: WgCrypto;
  timestamp?: () => Uint8Array;
  limits?: Partial<WgLimits>;
  clock?: () => number;
}

export interface PingOptions {
  /** Echo requests to send (default 1). */
  count?: number;
  /** How long to wait for each reply (sequential mode) or for the last ones after the final send (default 2000 ms). */
  timeoutMs?: number;
  /** Fixed spacing between requests; absent: send each after the previous reply (or its timeout). */
  intervalMs?: number;
  /** Echo data bytes (default 56, like ping). */
  size?: number;
}

export interface PingResult {
  sent: number;
  received: number;
  /** Round-trip times of the replies, in sequence order. */
  rttMs: number[];
}

export interface WgTunnelStats {
  /** Last completed handshake: first initiation of the series → accepted response (ms). */
  handshakeMs: number;
  /** Last completed handshake: the initiation that succeeded → its response (ms). */
  handshakeRttMs: number;
  handshakes: number;
  initiationsSent: number;
  cookieReplies: number;
  txDatagrams: number;
  rxDatagrams: number;
  txBytes: number;
  rxBytes: number;
  keepalivesSent: number;
  keepalivesReceived: number;
  /** Datagrams and tunnelled packets dropped, in total and by LPWG_ERR_* code. */
  dropped: number;
  droppedByCode: Record<string, number>;
  socketErrors: number;
}

export interface UdpFlow {
  /** This tunnel's address (4 or 16 bytes) and port the datagrams come from. */
  src: Uint8Array;
  srcPort: number;
  /** Where they go (reachable through the gateway). */
  dst: Uint8Array;
  dstPort: number;
}

interface PingJob {
  dst: Uint8Array;
  data: Uint8Array;
  sentAt: Map<number, number>;
  rtt: Map<number, number>;
  wake: (() => void) | null;
}

interface UdpSub {
  flow: UdpFlow;
  listeners: ((b: Uint8Array) => void)[];
}

type Waiter = { resolve: () => void; reject: (e: WgError) => void };

export class WgTunnel {
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | null = null;
  private timerAt: number | null = null;
  private closed = false;
  private readonly ipListeners: ((p: Uint8Array) => void)[] = [];
  private readonly udpSubs = new Set<UdpSub>();
  private readonly pings = new Map<number, PingJob>();
  private nextPingId = randomInt(0, 0x10000);
  private handshakeWaiters: Waiter[] = [];
  private readonly s = {
    handshakeMs: 0,
    handshakeRttMs: 0,
    txDatagrams: 0,
    rxDatagrams: 0,
    txBytes: 0,
    rxBytes: 0,
    dropped: 0,
    droppedByCode: {} as Record<string, number>,
    socketErrors: 0,
  };

  private constructor(
    private readonly peer: WgPeer,
    private readonly transport: DatagramTransport,
    private readonly o: WgTunnelOptions,
  ) {
    this.clock = o.clock ?? (() => performance.now());
    transport.onMessage((b) => this.onDatagram(b));
  }

  /** Opens the transport and completes a handshake (retransmitted per REKEY_TIMEOUT, cookies honoured). */
  static async connect(o: WgTunnelOptions): Promise<WgTunnel> {
    if (o.localIpv4 !== null && o.localIpv4.length !== 4) throw new WgError(WgErrorCode.BAD_ARGUMENT, 'localIpv4 must be 4 bytes');
    if (o.localIpv6 !== null && o.localIpv6.length !== 16) throw new WgError(WgErrorCode.BAD_ARGUMENT, 'localIpv6 must be 16 bytes');
    const peer = new WgPeer({
      privateKey: o.privateKey,
      peerPublicKey: o.peerPublicKey,
      presharedKey: o.presharedKey,
      ...(o.persistentKeepaliveSec !== undefined ? { persistentKeepaliveSec: o.persistentKeepaliveSec } : {}),
      ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
      ...(o.crypto ? { crypto: o.crypto } : {}),
      ...(o.timestamp ? { timestamp: o.timestamp } : {}),
      ...(o.limits ? { limits: o.limits } : {}),
    });
    let transport: DatagramTransport;
    let tunnel: WgTunnel | null = null;
    try {
      transport =
        o.datagrams ??
        (await UdpSocketTransport.open(o.endpoint, {
          onError: () => {
            if (tunnel) tunnel.s.socketErrors++;
          },
        }));
    } catch (e) {
      peer.close();
      throw e;
    }
    tunnel = new WgTunnel(peer, transport, o);
    try {
      await tunnel.handshake(o.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    } catch (e) {
      tunnel.close();
      throw e;
    }
    return tunnel;
  }

  /** Sends an initiation now and resolves when a handshake completes (rejects with a coded error). */
  private handshake(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = this.peer.handshakeFailure(this.clock());
        this.peer.cancelHandshake();
        settle(() => reject(err));
      }, timeoutMs);
      const settle = (f: () => void): void => {
        clearTimeout(timer);
        this.handshakeWaiters = this.handshakeWaiters.filter((w) => w !== waiter);
        f();
      };
      const waiter: Waiter = { resolve: () => settle(resolve), reject: (e) => settle(() => reject(e)) };
      this.handshakeWaiters.push(waiter);
      try {
        this.apply(this.peer.initiate(this.clock()));
      } catch (e) {
        settle(() => reject(e instanceof Error ? e : new Error(String(e))));
      }
    });
  }

  get publicKey(): Uint8Array {
    return this.peer.publicKey;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get stats(): WgTunnelStats {
    const c = this.peer.counters;
    return {
      handshakeMs: this.s.handshakeMs,
      handshakeRttMs: this.s.handshakeRttMs,
      handshakes: c.handshakesCompleted,
      initiationsSent: c.initiationsSent,
      cookieReplies: c.cookieReplies,
      txDatagrams: this.s.txDatagrams,
      rxDatagrams: this.s.rxDatagrams,
      txBytes: this.s.txBytes,
      rxBytes: this.s.rxBytes,
      keepalivesSent: c.keepalivesSent,
      keepalivesReceived: c.keepalivesReceived,
      dropped: this.s.dropped,
      droppedByCode: { ...this.s.droppedByCode },
      socketErrors: this.s.socketErrors,
    };
  }

  /** Sends a raw IPv4/IPv6 packet through the tunnel. */
  sendIp(packet: Uint8Array): void {
    if (this.closed) throw new WgError(WgErrorCode.CLOSED, 'tunnel is closed');
    this.apply(this.peer.send(packet, this.clock()));
  }

  /** Every IP packet that comes out of the tunnel (after pings and nested UDP flows had their look). */
  onIp(cb: (packet: Uint8Array) => void): void {
    this.ipListeners.push(cb);
  }

  /** Pings `dst` (4 or 16 bytes) through the tunnel from localIpv4/localIpv6. */
  async ping(dst: Uint8Array, o: PingOptions = {}): Promise<PingResult> {
    if (this.closed) throw new WgError(WgErrorCode.CLOSED, 'tunnel is closed');
    const src = dst.length === 4 ? this.o.localIpv4 : dst.length === 16 ? this.o.localIpv6 : null;
    if (!src) throw new WgError(WgErrorCode.BAD_ARGUMENT, dst.length === 4 || dst.length === 16 ? `no local IPv${dst.length === 4 ? 4 : 6} address to ping from` : 'dst must be 4 or 16 bytes');
    const count = o.count ?? 1;
    const timeoutMs = o.timeoutMs ?? 2000;
    const size = o.size ?? 56;
    if (!Number.isInteger(count) || count < 1 || count > 65535) throw new WgError(WgErrorCode.BAD_ARGUMENT, 'count must be 1..65535');
    if (!Number.isInteger(size) || size < 0 || size > 65000) throw new WgError(WgErrorCode.BAD_ARGUMENT, 'size must be 0..65000');
    const id = this.nextPingId;
    this.nextPingId = (this.nextPingId + 1) & 0xffff;
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (i + 0x10) & 0xff;
    const job: PingJob = { dst, data, sentAt: new Map(), rtt: new Map(), wake: null };
    this.pings.set(id, job);
    let sent = 0;
    try {
      for (let seq = 1; seq <= count && !this.closed; seq++) {
        job.sentAt.set(seq, this.clock());
        this.sendIp(buildEcho('request', src, dst, id, seq, data));
        sent++;
        if (o.intervalMs === undefined) {
          await this.waitFor(job, () => job.rtt.has(seq), timeoutMs);
        } else if (seq < count) {
          await sleep(o.intervalMs);
        }
      }
      if (o.intervalMs !== undefined) await this.waitFor(job, () => job.rtt.size >= sent, timeoutMs);
    } finally {
      this.pings.delete(id);
    }
    const rttMs = [...job.rtt.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
    return { sent, received: rttMs.length, rttMs };
  }

  /**
   * UDP datagrams carried as IP/UDP packets inside this tunnel, between `src:srcPort` (this tunnel's
   * address) and `dst:dstPort`: give it to a second WgTunnel as `datagrams` to run a tunnel inside this one.
   */
  udpTransport(flow: UdpFlow): DatagramTransport {
    if (flow.src.length !== flow.dst.length || (flow.src.length !== 4 && flow.src.length !== 16)) {
      throw new WgError(WgErrorCode.BAD_ARGUMENT, 'src and dst must both be IPv4 or both IPv6');
    }
    const sub: UdpSub = { flow, listeners: [] };
    this.udpSubs.add(sub);
    return {
      send: (b) => {
        if (!this.closed && this.udpSubs.has(sub)) this.sendIp(buildUdpPacket(flow.src, flow.srcPort, flow.dst, flow.dstPort, b));
      },
      onMessage: (cb) => {
        sub.listeners.push(cb);
      },
      close: () => {
        this.udpSubs.delete(sub);
        sub.listeners.length = 0;
      },
    };
  }

  /** Stops timers, closes the transport and wipes every key. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.transport.close();
    this.peer.close();
    for (const w of [...this.handshakeWaiters]) w.reject(new WgError(WgErrorCode.CLOSED, 'tunnel closed'));
    for (const j of this.pings.values()) j.wake?.();
    this.udpSubs.clear();
  }

  // --- internals -------------------------------------------------------------------------------------

  private waitFor(job: PingJob, done: () => boolean, timeoutMs: number): Promise<void> {
    if (done() || this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(finish, timeoutMs);
      function finish(): void {
        clearTimeout(t);
        job.wake = null;
        resolve();
      }
      job.wake = () => {
        if (done() || this.closed) finish();
      };
    });
  }

  private drop(e: WgError): void {
    this.s.dropped++;
    this.s.droppedByCode[e.code] = (this.s.droppedByCode[e.code] ?? 0) + 1;
  }

  private onDatagram(b: Uint8Array): void {
    if (this.closed) return;
    this.s.rxDatagrams++;
    this.s.rxBytes += b.length;
    this.apply(this.peer.receive(b, this.clock()));
  }

  private apply(out: WgOutput): void {
    if (out.rejected) this.drop(out.rejected);
    for (const d of out.network) {
      this.s.txDatagrams++;
      this.s.txBytes += d.length;
      this.transport.send(d);
    }
    for (const e of out.events) this.onEvent(e);
    for (const p of out.tunnel) this.deliver(p);
    this.schedule();
  }

  private onEvent(e: WgEvent): void {
    if (e.type === 'handshake-complete') {
      this.s.handshakeMs = e.durationMs;
      this.s.handshakeRttMs = e.rttMs;
      for (const w of [...this.handshakeWaiters]) w.resolve();
    } else if (e.type === 'handshake-failed') {
      for (const w of [...this.handshakeWaiters]) w.reject(e.error);
    }
    this.o.onEvent?.(e);
  }

  private schedule(): void {
    if (this.closed) return;
    const at = this.peer.nextDeadline();
    if (at === this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (at === null) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.timerAt = null;
        if (!this.closed) this.apply(this.peer.tick(this.clock()));
      },
      Math.max(0, Math.ceil(at - this.clock())),
    );
    this.timer.unref();
  }

  private deliver(packet: Uint8Array): void {
    try {
      const ip = parseIpPacket(packet);
      const local = ip.version === 4 ? this.o.localIpv4 : this.o.localIpv6;
      const echo = parseEcho(ip);
      if (echo?.kind === 'reply') {
        const job = this.pings.get(echo.id);
        const sentAt = job?.sentAt.get(echo.seq);
        if (job && sentAt !== undefined && !job.rtt.has(echo.seq) && sameAddress(ip.src, job.dst) && sameEcho(echo.data, job.data)) {
          job.rtt.set(echo.seq, this.clock() - sentAt);
          job.wake?.();
        }
      } else if (echo?.kind === 'request' && local && sameAddress(ip.dst, local) && this.o.answerPings !== false) {
        this.apply(this.peer.send(buildEcho('reply', local, ip.src, echo.id, echo.seq, echo.data), this.clock()));
      } else {
        const udp = parseUdp(ip);
        if (udp) {
          for (const sub of this.udpSubs) {
            const f = sub.flow;
            if (udp.dstPort === f.srcPort && udp.srcPort === f.dstPort && sameAddress(ip.dst, f.src) && sameAddress(ip.src, f.dst)) {
              for (const l of [...sub.listeners]) l(udp.payload);
            }
          }
        }
      }
    } catch (e) {
      if (!(e instanceof WgError)) throw e;
      this.drop(e);
    }
    for (const l of [...this.ipListeners]) l(packet);
  }
}

function sameEcho(a: Uint8Array, b: Uint8Array): boolean {
  return sameAddress(a, b);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
