/**
 * Child process for the wireguard-go tests: runs WgTunnels inside a network namespace (optionally as an
 * unprivileged user) and answers JSON-line requests on stdin with JSON lines on stdout. Keys arrive on
 * stdin, never in argv or the environment. Coded failures are answered as {error: {code, message, detail}};
 * anything else is a crash report the test fails on.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import {
  WgError,
  WgTunnel,
  UdpSocketTransport,
  buildInitiation,
  formatIp,
  mac1Key,
  parseIp,
  writeMacs,
  type DatagramTransport,
  type WgTunnelOptions,
} from '../../../../src/client/wireguard/index.js';

type Json = Record<string, unknown>;
const unb64 = (s: unknown): Uint8Array => new Uint8Array(Buffer.from(String(s), 'base64'));
const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');
const ipOrNull = (s: unknown): Uint8Array | null => (typeof s === 'string' && s ? parseIp(s) : null);

/** A transport that records what passes (bounded) and lets the test inject datagrams "from the network". */
class CapturingTransport implements DatagramTransport {
  readonly sent: Uint8Array[] = [];
  readonly received: Uint8Array[] = [];
  private readonly listeners: ((b: Uint8Array) => void)[] = [];
  constructor(private readonly inner: DatagramTransport) {
    inner.onMessage((b) => {
      if (this.received.length < 256) this.received.push(new Uint8Array(b));
      for (const l of this.listeners) l(b);
    });
  }
  send(b: Uint8Array): void {
    if (this.sent.length < 256) this.sent.push(new Uint8Array(b));
    this.inner.send(b);
  }
  onMessage(cb: (b: Uint8Array) => void): void {
    this.listeners.push(cb);
  }
  inject(b: Uint8Array): void {
    for (const l of this.listeners) l(b);
  }
  close(): void {
    this.inner.close();
  }
}

const tunnels = new Map<string, { t: WgTunnel; cap: CapturingTransport }>();

function tunnel(id: unknown): { t: WgTunnel; cap: CapturingTransport } {
  const e = tunnels.get(String(id));
  if (!e) throw new Error(`no tunnel ${String(id)}`);
  return e;
}

async function udpBurst(host: string, port: number, datagrams: Uint8Array[], waitMs: number): Promise<Uint8Array[]> {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const replies: Uint8Array[] = [];
  s.on('message', (m) => replies.length < 100_000 && replies.push(new Uint8Array(m)));
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.bind(0, r));
  for (const d of datagrams) s.send(d, port, host);
  await new Promise((r) => setTimeout(r, waitMs));
  s.close();
  return replies;
}

const ops: Record<string, (m: Json) => Promise<Json>> = {
  async connect(m) {
    const inner = m.outer
      ? (() => {
          const o = m.outer as Json;
          return tunnel(o.tid).t.udpTransport({ src: parseIp(String(o.src)), srcPort: Number(o.srcPort), dst: parseIp(String(o.dst)), dstPort: Number(o.dstPort) });
        })()
      : await UdpSocketTransport.open({ host: String(m.host), port: Number(m.port) });
    const cap = new CapturingTransport(inner);
    const opts: WgTunnelOptions = {
      privateKey: unb64(m.privateKey),
      peerPublicKey: unb64(m.peerPublicKey),
      presharedKey: m.presharedKey ? unb64(m.presharedKey) : null,
      endpoint: { host: String(m.host), port: Number(m.port) },
      localIpv4: ipOrNull(m.localIpv4),
      localIpv6: ipOrNull(m.localIpv6),
      datagrams: cap,
      timeoutMs: Number(m.timeoutMs ?? 10_000),
      ...(m.persistentKeepaliveSec ? { persistentKeepaliveSec: Number(m.persistentKeepaliveSec) } : {}),
    };
    const t = await WgTunnel.connect(opts);
    tunnels.set(String(m.tid), { t, cap });
    return { stats: t.stats };
  },
  async ping(m) {
    const r = await tunnel(m.tid).t.ping(parseIp(String(m.dst)), {
      count: Number(m.count ?? 3),
      timeoutMs: Number(m.timeoutMs ?? 2000),
      ...(m.intervalMs !== undefined ? { intervalMs: Number(m.intervalMs) } : {}),
      ...(m.size !== undefined ? { size: Number(m.size) } : {}),
    });
    return { ...r };
  },
  async stats(m) {
    return { stats: tunnel(m.tid).t.stats };
  },
  async captured(m) {
    const { cap } = tunnel(m.tid);
    return { sent: cap.sent.map(b64), received: cap.received.map(b64) };
  },
  async inject(m) {
    const { cap, t } = tunnel(m.tid);
    for (const d of m.datagrams as string[]) cap.inject(unb64(d));
    return { stats: t.stats };
  },
  async sendRaw(m) {
    const { cap } = tunnel(m.tid);
    for (const d of m.datagrams as string[]) cap.send(unb64(d));
    await new Promise((r) => setTimeout(r, Number(m.waitMs ?? 0)));
    return { stats: tunnel(m.tid).t.stats };
  },
  /** Datagrams from a fresh socket (an attacker elsewhere); returns whatever comes back within waitMs. */
  async probeRaw(m) {
    const replies = await udpBurst(String(m.host), Number(m.port), (m.datagrams as string[]).map(unb64), Number(m.waitMs ?? 500));
    return { replies: replies.map(b64) };
  },
  /** `count` junk initiations with a valid mac1 (what puts wireguard-go "under load"). */
  async flood(m) {
    const key1 = mac1Key(unb64(m.peerPublicKey));
    const msgs: Uint8Array[] = [];
    for (let i = 0; i < Number(m.count); i++) {
      const msg = buildInitiation({ sender: i + 1, ephemeral: new Uint8Array(32).fill((i % 250) + 1), encryptedStatic: new Uint8Array(48), encryptedTimestamp: new Uint8Array(28) });
      writeMacs(msg, key1, null);
      msgs.push(msg);
    }
    const replies = await udpBurst(String(m.host), Number(m.port), msgs, Number(m.waitMs ?? 50));
    return { sent: msgs.length, cookieReplies: replies.filter((r) => r[0] === 3).length };
  },
  /** Starts the flood and, `afterMs` into it, a connect; answers with both outcomes. */
  async floodThenConnect(m) {
    const flood = ops.flood?.({ ...m, waitMs: Number(m.floodWaitMs ?? 300) });
    await new Promise((r) => setTimeout(r, Number(m.afterMs ?? 5)));
    let connect: Json;
    try {
      connect = (await ops.connect?.(m)) ?? {};
    } catch (e) {
      connect = { error: errorJson(e) };
    }
    return { flood: await flood, connect };
  },
  /**
   * Traffic started on the gateway's side: a plain socket on the gateway's tunnel address (local in this
   * namespace) sends to the client's tunnel address; the kernel routes it into wireguard-go, which encrypts
   * it to the client; the client echoes it back through the tunnel.
   */
  async udpFromGateway(m) {
    const { t } = tunnel(m.tid);
    const gw = String(m.gw);
    const port = Number(m.port);
    const flow = t.udpTransport({ src: parseIp(String(m.client)), srcPort: port, dst: parseIp(gw), dstPort: port + 1 });
    flow.onMessage((b) => flow.send(b));
    const s = dgram.createSocket(gw.includes(':') ? 'udp6' : 'udp4');
    let wake: (() => void) | null = null;
    let echoed = 0;
    s.on('message', () => {
      echoed++;
      wake?.();
    });
    await new Promise<void>((r) => s.bind(port + 1, gw, r));
    let sent = 0;
    for (let i = 0; i < Number(m.count ?? 3); i++) {
      const before = echoed;
      s.send(Buffer.from(`from the gateway side #${i}`), port, String(m.client));
      sent++;
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 1000);
        wake = () => {
          if (echoed > before) {
            clearTimeout(timer);
            r();
          }
        };
      });
    }
    s.close();
    flow.close();
    return { sent, echoed };
  },
  // --- benchmark operations (bench/wireguard-client.bench.ts) -------------------------------------------
  /** Sequential-per-worker full connects (socket, handshake, key confirmation, close) over a set of peer keys. */
  async benchHandshakes(m) {
    const keys = (m.privateKeys as string[]).map(unb64);
    const count = Number(m.count);
    const concurrency = Number(m.concurrency ?? 1);
    const lat: number[] = [];
    const lastUse = new Map<number, number>();
    let next = 0;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        // wireguard-go drops a second initiation from one peer within 20 ms ("handshake flood")
        const since = performance.now() - (lastUse.get(i % keys.length) ?? -Infinity);
        if (since < 25) await new Promise((r) => setTimeout(r, 25 - since));
        lastUse.set(i % keys.length, performance.now());
        const t = performance.now();
        const tunnel = await WgTunnel.connect({
          privateKey: keys[i % keys.length] as Uint8Array,
          peerPublicKey: unb64(m.peerPublicKey),
          presharedKey: unb64(m.presharedKey),
          endpoint: { host: String(m.host), port: Number(m.port) },
          localIpv4: null,
          localIpv6: null,
          timeoutMs: 5000,
        });
        lat.push(performance.now() - t);
        tunnel.close();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { count, elapsedMs: performance.now() - t0, ...summary(lat) };
  },
  async benchPing(m) {
    const t0 = performance.now();
    const r = await tunnel(m.tid).t.ping(parseIp(String(m.dst)), { count: Number(m.count), timeoutMs: 1000, size: Number(m.size ?? 56) });
    return { elapsedMs: performance.now() - t0, sent: r.sent, received: r.received, ...summary(r.rttMs) };
  },
  /** A UDP echo server on this namespace's address (lives until the driver exits). */
  async udpEchoServer(m) {
    const addr = String(m.addr);
    const s = dgram.createSocket(addr.includes(':') ? 'udp6' : 'udp4');
    s.on('message', (b, rinfo) => s.send(b, rinfo.port, rinfo.address));
    await new Promise<void>((r) => s.bind(Number(m.port), addr, r));
    servers.push(s);
    return {};
  },
  /** Sequential UDP round trips from a plain socket (through the kernel, e.g. a wireguard-go interface). */
  async udpEchoClient(m) {
    const host = String(m.host);
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((r) => s.bind(0, r));
    const flow: DatagramTransport = { send: (b) => s.send(b, Number(m.port), host), onMessage: (cb) => s.on('message', (b) => cb(new Uint8Array(b))), close: () => s.close() };
    return echoRounds(flow, Number(m.count), Number(m.size ?? 56));
  },
  /** The same round trips through a WgTunnel's udpTransport. */
  async tunnelUdpEcho(m) {
    const flow = tunnel(m.tid).t.udpTransport({ src: parseIp(String(m.src)), srcPort: Number(m.srcPort), dst: parseIp(String(m.dst)), dstPort: Number(m.dstPort) });
    return echoRounds(flow, Number(m.count), Number(m.size ?? 56));
  },
  async uid() {
    return { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 };
  },
  async close(m) {
    tunnel(m.tid).t.close();
    if (!m.keep) tunnels.delete(String(m.tid));
    return {};
  },
  async format(m) {
    return { ip: formatIp(parseIp(String(m.ip))) };
  },
};

const servers: dgram.Socket[] = [];

function summary(xs: number[]): { p50: number; p90: number; p99: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99) };
}

/** `count` sequential request/echo round trips over a datagram flow (1 s timeout each). */
async function echoRounds(flow: DatagramTransport, count: number, size: number): Promise<Json> {
  let wake: (() => void) | null = null;
  let got = 0;
  flow.onMessage(() => {
    got++;
    wake?.();
  });
  const payload = new Uint8Array(size).fill(0x5a);
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const before = got;
    const t = performance.now();
    flow.send(payload);
    await new Promise<void>((r) => {
      const timer = setTimeout(r, 1000);
      wake = () => {
        if (got > before) {
          clearTimeout(timer);
          r();
        }
      };
    });
    if (got > before) lat.push(performance.now() - t);
  }
  const elapsedMs = performance.now() - t0;
  flow.close();
  return { count, received: lat.length, elapsedMs, ...summary(lat) };
}

function errorJson(e: unknown): Json {
  if (e instanceof WgError) return { code: e.code, message: e.message, detail: e.detail };
  throw e;
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line) as Json;
  const op = ops[String(m.op)];
  const reply = (r: Json): void => void process.stdout.write(`${JSON.stringify({ id: m.id, ...r })}\n`);
  if (!op) return reply({ crash: `unknown op ${String(m.op)}` });
  op(m).then(
    (r) => reply({ ok: true, ...r }),
    (e: unknown) => {
      if (e instanceof WgError) reply({ ok: false, error: errorJson(e) });
      else reply({ crash: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    },
  );
});
process.stdin.on('end', () => {
  for (const { t } of tunnels.values()) t.close();
  for (const srv of servers) srv.close();
  process.exit(0);
});
