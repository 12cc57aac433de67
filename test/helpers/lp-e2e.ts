/**
 * Helpers for the gateway acceptance tests (test/gateway/node-e2e.test.ts, abuse.test.ts, lifecycle.test.ts):
 * registration requests, raw LP packets, a UDP probe bound to a chosen loopback source, raw TCP sockets,
 * `/v1/stats` and `/metrics` readers, and an exit stand-in (a signed descriptor over HTTP plus an in-process
 * LP responder over TCP whose replies can be delayed or withheld).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import {
  type AppMessage,
  type ClientKeys,
  type GatewayKeys,
  type GatewayPin,
  MessageType,
  type RegisterRequest,
  type RegisterResponse,
  TicketType,
  type BandwidthTicket,
  FrameDecoder,
  clientKeysFromSeed,
  defaultSuite,
  encodeClientHello,
  encodeFrame,
  gatewayKeysFromSeeds,
  makeSalt,
  serializeClear,
  toHex,
} from '../../src/core/index.js';
import { buildDescriptor, type GatewayDescriptor } from '../../src/gateway/descriptor.js';
import { MemoryGateway } from './memory-gateway.js';

const toClose = new Set<{ close(): void }>();

/** Registers a transport (or anything closable) to be closed by `closeTracked()`, also when a test fails midway. */
export function tracked<T extends { close(): void }>(t: T): T {
  toClose.add(t);
  return t;
}

/** Closes everything `tracked()` (idempotent closes); call in `after`, before stopping the gateways. */
export function closeTracked(): void {
  for (const t of toClose) {
    try {
      t.close();
    } catch {
      /* already closed */
    }
  }
  toClose.clear();
}

export const suite = defaultSuite;
export const prims = defaultSuite.prims;
export const nowSec = (): number => Math.floor(Date.now() / 1000);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function randomClientKeys(): ClientKeys {
  return clientKeysFromSeed(suite, prims.randomBytes(32));
}

/** A random, valid WireGuard public key stand-in (32 non-zero bytes). */
export function randomWgKey(): Uint8Array {
  const k = prims.randomBytes(32);
  k[0] = (k[0] as number) | 1;
  return k;
}

export function mockDvpnRequest(wgPublicKey: Uint8Array = randomWgKey()): RegisterRequest {
  return { mode: { kind: 'dvpn', wgPublicKey }, credential: { kind: 'mock', blob: new Uint8Array([1, 2, 3]) }, ticketType: TicketType.V1WireguardEntry, timestamp: BigInt(nowSec()) };
}

export function ticketDvpnRequest(ticket: BandwidthTicket, wgPublicKey: Uint8Array): RegisterRequest {
  return { mode: { kind: 'dvpn', wgPublicKey }, credential: { kind: 'ticket', ticket }, ticketType: ticket.ticketType, timestamp: BigInt(nowSec()) };
}

/** Asserts a successful dVPN registration and returns its addresses as hex. */
export function assertRegistered(res: RegisterResponse): { ipv4: string; ipv6: string } {
  assert.equal(res.success, true, `registration failed: ${JSON.stringify(res.error)}`);
  assert.equal(res.error, null);
  const gd = res.gatewayData;
  assert.ok(gd, 'a dVPN registration returns GatewayData');
  assert.equal(gd.privateIpv4.length, 4);
  assert.equal(gd.privateIpv6.length, 16);
  assert.ok(res.allocatedBandwidth > 0n);
  return { ipv4: toHex(gd.privateIpv4), ipv6: toHex(gd.privateIpv6) };
}

// ---------------------------------------------------------------------------------------------------------
// Raw packets

/** A random non-zero receiver index. */
export function randomIndex(): number {
  for (;;) {
    const b = prims.randomBytes(4); // may be a view into a larger pool: mind the offset
    const v = new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
    if (v !== 0) return v;
  }
}

/** A valid ClientHello (fresh timestamp, random or given non-zero index). */
export function clientHelloPacket(opts: { receiverIndex?: number; keys?: ClientKeys; nowSec?: number } = {}): Uint8Array {
  const keys = opts.keys ?? randomClientKeys();
  let index = opts.receiverIndex ?? 0;
  while (index === 0) index = randomIndex();
  const content = encodeClientHello({ receiverIndex: index, clientX25519: keys.x25519.publicKey, clientEd25519: keys.ed25519.publicKey, salt: makeSalt(opts.nowSec ?? nowSec(), prims.randomBytes(24)) });
  return serializeClear({ receiverIndex: 0, counter: 0, type: MessageType.ClientHello, content });
}

/** A well-formed packet to a receiver index nobody owns. */
export function unknownIndexPacket(receiverIndex: number): Uint8Array {
  return serializeClear({ receiverIndex, counter: 5, type: MessageType.EncryptedData, content: prims.randomBytes(48) });
}

export function packetType(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(16, true);
}

export function packetIndex(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
}

// ---------------------------------------------------------------------------------------------------------
// UDP probe

export function splitAddr(a: string): { host: string; port: number } {
  const i = a.lastIndexOf(':');
  return { host: a.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(a.slice(i + 1)) };
}

/** A UDP socket bound to `localAddress` that records every datagram it receives. */
export class UdpProbe {
  readonly replies: Buffer[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];

  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (m) => {
      this.replies.push(m);
      this.waiters = this.waiters.filter((w) => {
        if (this.replies.length < w.n) return true;
        w.resolve();
        return false;
      });
    });
  }

  static open(localAddress = '127.0.0.1', recvBufferSize?: number): Promise<UdpProbe> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket({ type: 'udp4', ...(recvBufferSize ? { recvBufferSize } : {}) });
      s.once('error', reject);
      s.bind({ address: localAddress, port: 0 }, () => {
        s.off('error', reject);
        resolve(new UdpProbe(s));
      });
    });
  }

  get address(): string {
    const a = this.socket.address();
    return `${a.address}:${a.port}`;
  }

  send(packet: Uint8Array, to: string): Promise<void> {
    const { host, port } = splitAddr(to);
    return new Promise((resolve, reject) => this.socket.send(packet, port, host, (e) => (e ? reject(e) : resolve())));
  }

  /** Resolves true once `n` datagrams in total have arrived, false at the timeout. */
  waitForCount(n: number, timeoutMs: number): Promise<boolean> {
    if (this.replies.length >= n) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = { n, resolve: () => (clearTimeout(t), resolve(true)) };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Send one packet and return the next datagram, or null if none arrives within `timeoutMs`. */
  async exchange(packet: Uint8Array, to: string, timeoutMs = 2000): Promise<Buffer | null> {
    const before = this.replies.length;
    await this.send(packet, to);
    return (await this.waitForCount(before + 1, timeoutMs)) ? (this.replies[before] as Buffer) : null;
  }

  close(): void {
    this.socket.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Raw TCP

export function tcpConnect(address: string, localAddress?: string): Promise<net.Socket> {
  const { host, port } = splitAddr(address);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, noDelay: true, ...(localAddress ? { localAddress } : {}) });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

/** Milliseconds until the peer closes `s`, or null if it is still open after `timeoutMs`. */
export function closedWithin(s: net.Socket, timeoutMs: number): Promise<number | null> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    if (s.destroyed || s.readableEnded) {
      resolve(0);
      return;
    }
    const timer = setTimeout(() => {
      s.off('close', onClose);
      resolve(null);
    }, timeoutMs);
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(performance.now() - t0);
    };
    s.once('close', onClose);
    s.resume();
  });
}

/** Bytes received on `s` within `ms` (the socket is left open). */
export async function bytesWithin(s: net.Socket, ms: number): Promise<number> {
  let n = 0;
  const on = (b: Buffer): void => {
    n += b.length;
  };
  s.on('data', on);
  await sleep(ms);
  s.off('data', on);
  return n;
}

/** A plain TCP listener that counts the connections it accepts (and closes them). */
export async function countingListener(host = '127.0.0.1'): Promise<{ address: string; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server = net.createServer((s) => {
    count++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen({ host, port: 0 }, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { address: `${host}:${port}`, connections: () => count, close: () => new Promise((r) => server.close(() => r())) };
}

// ---------------------------------------------------------------------------------------------------------
// HTTP API readers

export interface GatewayStats {
  mode: string;
  identity_key: string;
  lp: { tcp: string; udp: string | null };
  tables: { handshakes: number; sessions: number; demoted: number };
  connections: { tcp_open: number };
  forwards: { in_flight: number; connections_opened: number } | null;
  directory: { peers: number } | null;
  registrations: { success: { dvpn: number; mixnet: number }; failure: { dvpn: number; mixnet: number }; failuresByCode: Record<string, number> };
  /** Present only with http.stats_client_addresses = true. */
  recent_sources?: { address: string; transport: 'tcp' | 'udp'; packets: number; lastSeen: string }[];
}

export async function getStats(httpBase: string): Promise<GatewayStats> {
  const res = await fetch(`${httpBase}/v1/stats`);
  assert.equal(res.status, 200);
  return (await res.json()) as GatewayStats;
}

/** A metric sample from a `scrape()` map; absent series count as 0 (prom-client omits unlabelled-yet series). */
export function metric(m: Map<string, number>, key: string): number {
  return m.get(key) ?? 0;
}

// ---------------------------------------------------------------------------------------------------------
// Exit stand-in

export interface ExitStandIn {
  http: string;
  /** `<http>#<identity>`: pinned, for an entry's --peer. */
  pinned: string;
  lpTcp: string;
  keys: GatewayKeys;
  pin: GatewayPin;
  descriptor: GatewayDescriptor;
  /** LP frames received so far. */
  framesReceived(): number;
  /** Resolves when the next frame arrives. */
  nextFrame(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A fake exit: serves a descriptor signed with fresh keys at `<http>/v1/gateway` and answers LP over TCP
 * with the core's responder (MemoryGateway), each reply delayed by `delayMs` (`Infinity`: never answers).
 */
export async function startExitStandIn(opts: { delayMs: number }): Promise<ExitStandIn> {
  const keys = gatewayKeysFromSeeds(suite, { ed25519Seed: prims.randomBytes(32), kemSeed: prims.randomBytes(64) });
  const gw = new MemoryGateway(suite, keys);
  gw.onDeliver = (s, msg: AppMessage) => (msg.kind === 'ping' ? s.reply({ kind: 'pong', payload: msg.payload }) : null);
  let frames = 0;
  let frameWaiters: (() => void)[] = [];
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const lp = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    const dec = new FrameDecoder();
    s.on('data', (chunk: Buffer) => {
      for (const f of dec.push(chunk)) {
        frames++;
        for (const w of frameWaiters) w();
        frameWaiters = [];
        if (opts.delayMs === Infinity) continue;
        let reply: Uint8Array | null = null;
        try {
          reply = gw.handle(new Uint8Array(f));
        } catch {
          reply = null;
        }
        const t = setTimeout(() => {
          timers.delete(t);
          if (reply && !s.destroyed) s.write(encodeFrame(reply));
        }, opts.delayMs);
        timers.add(t);
      }
    });
  });
  await new Promise<void>((resolve) => lp.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const lpTcp = `127.0.0.1:${(lp.address() as net.AddressInfo).port}`;
  const descriptor = buildDescriptor({ lpTcp, lpUdp: null, mode: 'exit', wireguard: null }, suite, keys);
  const api = http.createServer((req, res) => {
    if (req.url === '/v1/gateway') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(descriptor));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => api.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const httpBase = `http://127.0.0.1:${(api.address() as net.AddressInfo).port}`;
  return {
    http: httpBase,
    pinned: `${httpBase}#${descriptor.identity_key}`,
    lpTcp,
    keys,
    pin: { ed25519Public: keys.ed25519.publicKey, kemKeyHash: keys.kemKeyHash },
    descriptor,
    framesReceived: () => frames,
    nextFrame: () => new Promise((r) => frameWaiters.push(r)),
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      api.closeAllConnections();
      await Promise.all([new Promise<void>((r) => lp.close(() => r())), new Promise<void>((r) => api.close(() => r()))]);
    },
  };
}
