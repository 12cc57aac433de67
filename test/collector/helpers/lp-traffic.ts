/**
 * Known LP traffic for the collector tests: an echo-like LP server (UDP datagrams and TCP frames
 * `u32 BE length ‖ packet`, packet = `receiver_index u32 LE ‖ counter u64 LE ‖ …`) whose replies have sizes
 * that are a fixed function of the request, and a client that runs a plan and reports the sockets it used.
 * From plan + report the tests derive exact expected counters per flow and per receiver_index.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import type { FlowWindow, IndexWindow, WindowSnapshot } from '../../../src/collector/schema.js';

export interface UdpSocketPlan {
  family: 4 | 6;
  /** payload sizes (≥ 12) and the receiver_index written at offset 0 */
  datagrams: { index: number; size: number }[];
}

export interface TcpConnPlan {
  family: 4 | 6;
  /** LP packet sizes (≥ 12); each is sent as one frame `u32 BE len ‖ packet` */
  frames: { index: number; size: number }[];
}

export interface TrafficPlan {
  udp: UdpSocketPlan[];
  tcp: TcpConnPlan[];
}

export const udpReplyLen = (l: number): number => Math.max(12, Math.floor(l / 2));
export const tcpReplyLen = (l: number): number => Math.max(12, Math.floor(l / 3));

export function lpPacket(index: number, counter: number, size: number): Buffer {
  const b = Buffer.alloc(size, 0x5a);
  b.writeUInt32LE(index >>> 0, 0);
  b.writeBigUInt64LE(BigInt(counter), 4);
  return b;
}

export function tcpFrame(packet: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(packet.length, 0);
  return Buffer.concat([len, packet]);
}

export interface LpServer {
  tcpPort: number;
  udpPort: number;
  close(): Promise<void>;
}

/** Dual-stack LP server on `host` (default '::'): replies to every datagram / frame with a shorter one. */
export async function startLpServer(host = '::', tcpPort = 0, udpPort = 0): Promise<LpServer> {
  const udp = net.isIPv4(host) ? dgram.createSocket('udp4') : dgram.createSocket({ type: 'udp6', ipv6Only: false });
  udp.on('message', (msg, rinfo) => {
    const reply = lpPacket(msg.length >= 4 ? msg.readUInt32LE(0) : 0, 1, udpReplyLen(msg.length));
    udp.send(reply, rinfo.port, rinfo.address);
  });
  udp.bind(udpPort, host);
  await once(udp, 'listening');
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4) {
        const len = buf.readUInt32BE(0);
        if (buf.length < 4 + len) break;
        const pkt = buf.subarray(4, 4 + len);
        s.write(tcpFrame(lpPacket(pkt.readUInt32LE(0), 2, tcpReplyLen(len))));
        buf = buf.subarray(4 + len);
      }
    });
    s.on('end', () => s.end());
  });
  tcp.listen(tcpPort, host);
  await once(tcp, 'listening');
  const tp = (tcp.address() as net.AddressInfo).port;
  const up = udp.address().port;
  return {
    tcpPort: tp,
    udpPort: up,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
      await new Promise<void>((r) => udp.close(() => r()));
    },
  };
}

export interface SocketReport {
  proto: 'tcp' | 'udp';
  family: 4 | 6;
  /** client address and port (the flow's remote side) */
  clientAddr: string;
  clientPort: number;
  /** server address and port (the flow's local side) */
  serverAddr: string;
  serverPort: number;
  /** index into plan.udp / plan.tcp */
  plan: number;
}

export interface ClientTargets {
  v4: string;
  v6: string;
  tcpPort: number;
  udpPort: number;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms)))]).finally(() => clearTimeout(t));
}

/** Runs the plan (ping-pong per datagram, all frames then all replies per connection) and reports sockets. */
export async function runLpClient(plan: TrafficPlan, t: ClientTargets): Promise<SocketReport[]> {
  const out: SocketReport[] = [];
  for (const [i, u] of plan.udp.entries()) {
    const target = u.family === 4 ? t.v4 : t.v6;
    const s = dgram.createSocket(u.family === 4 ? 'udp4' : 'udp6');
    s.bind(0, u.family === 4 ? '0.0.0.0' : '::');
    await once(s, 'listening');
    s.connect(t.udpPort, target);
    await once(s, 'connect');
    for (const [n, d] of u.datagrams.entries()) {
      const reply = once(s, 'message');
      s.send(lpPacket(d.index, n, d.size));
      await withTimeout(reply, 3000, `udp reply ${i}/${n}`);
    }
    const local = s.address();
    out.push({ proto: 'udp', family: u.family, clientAddr: local.address === '0.0.0.0' || local.address === '::' ? '' : local.address, clientPort: local.port, serverAddr: target, serverPort: t.udpPort, plan: i });
    s.close();
  }
  await Promise.all(
    plan.tcp.map(async (c, i) => {
      const target = c.family === 4 ? t.v4 : t.v6;
      const s = net.connect({ host: target, port: t.tcpPort, noDelay: true });
      await withTimeout(once(s, 'connect'), 3000, `tcp connect ${i}`);
      const want = c.frames.reduce((a, f) => a + 4 + tcpReplyLen(f.size), 0);
      let got = 0;
      const allReplies = new Promise<void>((resolve) => {
        s.on('data', (d: Buffer) => {
          got += d.length;
          if (got >= want) resolve();
        });
      });
      for (const [n, f] of c.frames.entries()) s.write(tcpFrame(lpPacket(f.index, n, f.size)));
      await withTimeout(allReplies, 5000, `tcp replies ${i}`);
      out.push({ proto: 'tcp', family: c.family, clientAddr: s.localAddress ?? '', clientPort: s.localPort ?? 0, serverAddr: target, serverPort: t.tcpPort, plan: i });
      const closed = once(s, 'close');
      s.end();
      await withTimeout(closed, 3000, `tcp close ${i}`);
    }),
  );
  return out;
}

// ---- expectations ----

export interface Exp {
  packets: number | null; // null = not exactly predictable (TCP segmentation, ACKs)
  l3_bytes: number | null;
  payload_bytes: number;
}

export interface FlowExpectation {
  key: string;
  proto: 'tcp' | 'udp';
  family: 4 | 6;
  receiver_index: number;
  request: Exp;
  response: Exp;
  /** data packets (for TCP L3 bounds) */
  dataPackets: { request: number; response: number };
}

export function flowKey(proto: string, local: string, localPort: number, remote: string, remotePort: number): string {
  return `${proto}|${local}|${localPort}|${remote}|${remotePort}`;
}

function norm(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/** A UDP flow's receiver index: its newest, the one whose first datagram came last. */
function newestIndex(datagrams: readonly { index: number }[]): number {
  const seen = new Set<number>();
  let newest = 0;
  for (const d of datagrams) {
    if (seen.has(d.index)) continue;
    seen.add(d.index);
    newest = d.index;
  }
  return newest;
}

export function expectedFlows(plan: TrafficPlan, report: readonly SocketReport[]): FlowExpectation[] {
  return report.map((r) => {
    const ip = r.family === 4 ? 20 : 40;
    if (r.proto === 'udp') {
      const p = plan.udp[r.plan] as UdpSocketPlan;
      const req = p.datagrams.reduce((a, d) => a + d.size, 0);
      const resp = p.datagrams.reduce((a, d) => a + udpReplyLen(d.size), 0);
      const n = p.datagrams.length;
      return {
        key: flowKey('udp', norm(r.serverAddr), r.serverPort, norm(r.clientAddr), r.clientPort),
        proto: 'udp',
        family: r.family,
        receiver_index: newestIndex(p.datagrams),
        request: { packets: n, l3_bytes: req + n * (8 + ip), payload_bytes: req },
        response: { packets: n, l3_bytes: resp + n * (8 + ip), payload_bytes: resp },
        dataPackets: { request: n, response: n },
      };
    }
    const p = plan.tcp[r.plan] as TcpConnPlan;
    return {
      key: flowKey('tcp', norm(r.serverAddr), r.serverPort, norm(r.clientAddr), r.clientPort),
      proto: 'tcp',
      family: r.family,
      receiver_index: p.frames[0]?.index ?? 0,
      request: { packets: null, l3_bytes: null, payload_bytes: p.frames.reduce((a, f) => a + 4 + f.size, 0) },
      response: { packets: null, l3_bytes: null, payload_bytes: p.frames.reduce((a, f) => a + 4 + tcpReplyLen(f.size), 0) },
      dataPackets: { request: 1, response: 1 },
    };
  });
}

export interface IndexExpectation {
  key: string; // `${proto}|${index}`
  request: Exp;
  response: Exp;
}

/** Per receiver_index: UDP exactly per datagram; TCP payload bytes of whole connections (index of the first frame). */
export function expectedIndexes(plan: TrafficPlan, report: readonly SocketReport[]): Map<string, IndexExpectation> {
  const m = new Map<string, IndexExpectation>();
  const get = (proto: string, index: number, exact: boolean): IndexExpectation => {
    const key = `${proto}|${index}`;
    let e = m.get(key);
    if (!e) {
      e = { key, request: { packets: exact ? 0 : null, l3_bytes: exact ? 0 : null, payload_bytes: 0 }, response: { packets: exact ? 0 : null, l3_bytes: exact ? 0 : null, payload_bytes: 0 } };
      m.set(key, e);
    }
    return e;
  };
  for (const r of report) {
    const ip = r.family === 4 ? 20 : 40;
    if (r.proto === 'udp') {
      for (const d of (plan.udp[r.plan] as UdpSocketPlan).datagrams) {
        const e = get('udp', d.index, true);
        const rl = udpReplyLen(d.size);
        e.request.packets = (e.request.packets ?? 0) + 1;
        e.request.l3_bytes = (e.request.l3_bytes ?? 0) + d.size + 8 + ip;
        e.request.payload_bytes += d.size;
        e.response.packets = (e.response.packets ?? 0) + 1;
        e.response.l3_bytes = (e.response.l3_bytes ?? 0) + rl + 8 + ip;
        e.response.payload_bytes += rl;
      }
    } else {
      const p = plan.tcp[r.plan] as TcpConnPlan;
      const e = get('tcp', p.frames[0]?.index ?? 0, false);
      e.request.payload_bytes += p.frames.reduce((a, f) => a + 4 + f.size, 0);
      e.response.payload_bytes += p.frames.reduce((a, f) => a + 4 + tcpReplyLen(f.size), 0);
    }
  }
  return m;
}

// ---- observed (summed over windows) ----

export interface Observed {
  flows: Map<string, { request: Exp; response: Exp; receiver_index: number | null; family: 4 | 6 }>;
  indexes: Map<string, { request: Exp; response: Exp }>;
}

function addC(a: Exp, b: { packets: number; l3_bytes: number; payload_bytes: number }): void {
  a.packets = (a.packets ?? 0) + b.packets;
  a.l3_bytes = (a.l3_bytes ?? 0) + b.l3_bytes;
  a.payload_bytes += b.payload_bytes;
}

const zero = (): Exp => ({ packets: 0, l3_bytes: 0, payload_bytes: 0 });

export function sumWindows(windows: readonly WindowSnapshot[]): Observed {
  const flows: Observed['flows'] = new Map();
  const indexes: Observed['indexes'] = new Map();
  for (const w of windows) {
    for (const f of w.flows as FlowWindow[]) {
      const k = flowKey(f.proto, f.local, f.local_port, f.remote, f.remote_port);
      let o = flows.get(k);
      if (!o) {
        o = { request: zero(), response: zero(), receiver_index: null, family: f.family };
        flows.set(k, o);
      }
      addC(o.request, f.request);
      addC(o.response, f.response);
      if (f.receiver_index !== null) o.receiver_index = f.receiver_index;
    }
    for (const i of w.indexes as IndexWindow[]) {
      const k = `${i.proto}|${i.receiver_index}`;
      let o = indexes.get(k);
      if (!o) {
        o = { request: zero(), response: zero() };
        indexes.set(k, o);
      }
      addC(o.request, i.request);
      addC(o.response, i.response);
    }
  }
  return { flows, indexes };
}

/** Returns a list of mismatches (empty = all good). TCP packets/L3 are checked against header bounds. */
export function compare(plan: TrafficPlan, report: readonly SocketReport[], obs: Observed): string[] {
  const errs: string[] = [];
  for (const e of expectedFlows(plan, report)) {
    const o = obs.flows.get(e.key);
    if (!o) {
      errs.push(`flow ${e.key} missing (have ${[...obs.flows.keys()].join(', ')})`);
      continue;
    }
    if (o.receiver_index !== e.receiver_index) errs.push(`flow ${e.key} receiver_index ${o.receiver_index} != ${e.receiver_index}`);
    for (const dir of ['request', 'response'] as const) {
      const want = e[dir];
      const got = o[dir];
      if (got.payload_bytes !== want.payload_bytes) errs.push(`flow ${e.key} ${dir} payload_bytes ${got.payload_bytes} != ${want.payload_bytes}`);
      if (want.packets !== null && got.packets !== want.packets) errs.push(`flow ${e.key} ${dir} packets ${got.packets} != ${want.packets}`);
      if (want.l3_bytes !== null && got.l3_bytes !== want.l3_bytes) errs.push(`flow ${e.key} ${dir} l3_bytes ${got.l3_bytes} != ${want.l3_bytes}`);
      if (e.proto === 'tcp') {
        // L3 = payload + per-packet IP+TCP headers: IPv4 20+[20..60], IPv6 40+[20..60]
        const ip = e.family === 4 ? 20 : 40;
        const pk = got.packets ?? 0;
        const hdr = (got.l3_bytes ?? 0) - got.payload_bytes;
        if (pk < e.dataPackets[dir] || hdr < pk * (ip + 20) || hdr > pk * (ip + 60)) errs.push(`flow ${e.key} ${dir}: ${pk} packets with ${hdr} header bytes is implausible`);
      }
    }
  }
  for (const [k, e] of expectedIndexes(plan, report)) {
    const o = obs.indexes.get(k);
    if (!o) {
      errs.push(`index ${k} missing (have ${[...obs.indexes.keys()].join(', ')})`);
      continue;
    }
    for (const dir of ['request', 'response'] as const) {
      const want = e[dir];
      const got = o[dir];
      if (got.payload_bytes !== want.payload_bytes) errs.push(`index ${k} ${dir} payload_bytes ${got.payload_bytes} != ${want.payload_bytes}`);
      if (want.packets !== null && got.packets !== want.packets) errs.push(`index ${k} ${dir} packets ${got.packets} != ${want.packets}`);
      if (want.l3_bytes !== null && got.l3_bytes !== want.l3_bytes) errs.push(`index ${k} ${dir} l3_bytes ${got.l3_bytes} != ${want.l3_bytes}`);
    }
  }
  const expectedIdx = expectedIndexes(plan, report);
  for (const k of obs.indexes.keys()) if (!expectedIdx.has(k)) errs.push(`unexpected index ${k}`);
  const expectedKeys = new Set(expectedFlows(plan, report).map((e) => e.key));
  for (const k of obs.flows.keys()) if (!expectedKeys.has(k)) errs.push(`unexpected flow ${k}`);
  return errs;
}

/** The standard plan: v4 + v6, several sockets/connections, indexes shared across sockets and protocols. */
export function standardPlan(): TrafficPlan {
  const sizes = [12, 13, 100, 257, 1200];
  const udp: UdpSocketPlan[] = [];
  for (const family of [4, 6] as const) {
    for (let s = 0; s < 2; s++) {
      udp.push({ family, datagrams: sizes.map((size, n) => ({ index: 1000 + ((n + s) % 3), size: size + s })) });
    }
  }
  const tcp: TcpConnPlan[] = [];
  for (const family of [4, 6] as const) {
    for (let c = 0; c < 3; c++) {
      tcp.push({ family, frames: [{ index: 2000 + c, size: 100 + c }, { index: 2000 + c, size: 3000 * (c + 1) }, { index: 2000 + c, size: 20_000 }] });
    }
  }
  return { udp, tcp };
}
