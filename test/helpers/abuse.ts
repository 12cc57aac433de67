/**
 * Helpers for the hostile-traffic tests (test/gateway/abuse-bounds.test.ts): forged UDP sources through a raw
 * socket (root), a process's resident memory, transports that expose the exact datagrams and sockets a client
 * uses, and a UDP sink that counts what reaches a victim address.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { FrameDecoder, encodeFrame } from '../../src/core/index.js';
import type { Transport } from '../../src/client/index.js';
import { splitAddr } from './lp-e2e.js';

export const isRoot = process.getuid?.() === 0;
export const NEEDS_ROOT = isRoot ? false : 'needs root: forges source addresses with a raw socket';

const SPOOF = new URL('./spoof-udp.py', import.meta.url).pathname;
const children = new Set<ChildProcess>();

/**
 * Sends `count` datagrams (the `packets`, cycled) from the forged source `from` (IP:PORT, port 0 = random per
 * datagram) to `to`, paced at `ratePps`. `ready` resolves just before the first datagram goes out, `done` with
 * what went out.
 */
export function spoofUdp(o: { from: string; to: string; packets: Uint8Array[]; ratePps: number; count: number }): { ready: Promise<void>; done: Promise<{ sent: number; bytes: number }> } {
  const src = splitAddr(o.from);
  const dst = splitAddr(o.to);
  const p = spawn('python3', [SPOOF, src.host, String(src.port), dst.host, String(dst.port), String(o.ratePps), String(o.count)], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(p);
  let out = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.startsWith('ready\n')) onReady();
  });
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ sent: number; bytes: number }>((resolve, reject) => {
    p.on('error', reject);
    p.on('exit', (code) => {
      children.delete(p);
      onReady();
      const [sent, bytes] = out.replace(/^ready\n/, '').trim().split(' ').map(Number);
      if (code === 0 && sent !== undefined && bytes !== undefined) resolve({ sent, bytes });
      else reject(new Error(`spoof-udp.py exited ${code}: ${err}`));
    });
  });
  p.stdin.end(o.packets.map((x) => Buffer.from(x).toString('hex')).join('\n') + '\n');
  return { ready, done };
}

/** spoofUdp, awaited to the end. */
export function spoofUdpAll(o: Parameters<typeof spoofUdp>[0]): Promise<{ sent: number; bytes: number }> {
  return spoofUdp(o).done;
}

/** Kills every spoofing child still running (by PID; call in `after`). */
export function killSpoofers(): void {
  for (const p of children) p.kill('SIGKILL');
  children.clear();
}

/** Resident set size of a process, bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** A UDP socket bound to `address` (IP:PORT, port 0 = any) that counts the datagrams and bytes it receives. */
export async function udpSink(address: string): Promise<{ address: string; datagrams: () => number; bytes: () => number; close: () => void }> {
  const { host, port } = splitAddr(address);
  const s = dgram.createSocket('udp4');
  let datagrams = 0;
  let bytes = 0;
  s.on('message', (m) => {
    datagrams++;
    bytes += m.length;
  });
  await new Promise<void>((resolve) => s.bind({ address: host, port }, resolve));
  return { address: `${host}:${s.address().port}`, datagrams: () => datagrams, bytes: () => bytes, close: () => s.close() };
}

/**
 * A client transport over one UDP socket bound to `localAddress`, no re-sends; it keeps the last request
 * datagram and its reply, so a test can replay exactly what a client sent.
 */
export class RecordingUdpTransport implements Transport {
  readonly kind = 'udp' as const;
  lastSent: Uint8Array | null = null;
  lastReply: Uint8Array | null = null;
  private waiter: ((b: Uint8Array) => void) | null = null;

  private constructor(
    readonly socket: dgram.Socket,
    private readonly to: { host: string; port: number },
  ) {
    socket.on('message', (m) => {
      const w = this.waiter;
      this.waiter = null;
      w?.(new Uint8Array(m));
    });
  }

  static async open(gateway: string, localAddress: string): Promise<RecordingUdpTransport> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => s.bind({ address: localAddress, port: 0 }, resolve));
    return new RecordingUdpTransport(s, splitAddr(gateway));
  }

  get localAddress(): string {
    const a = this.socket.address();
    return `${a.address}:${a.port}`;
  }

  /** Sends bytes as they are (no waiting for a reply). */
  send(packet: Uint8Array): void {
    this.socket.send(packet, this.to.port, this.to.host);
  }

  request(packet: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    this.lastSent = new Uint8Array(packet);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (b) => {
        clearTimeout(t);
        this.lastReply = b;
        resolve(b);
      };
      this.send(packet);
    });
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      /* closed */
    }
  }
}

/** A client transport over one TCP connection whose socket the test may use directly afterwards. */
export class RawTcpTransport implements Transport {
  readonly kind = 'tcp-stream' as const;
  private readonly decoder = new FrameDecoder();
  private waiter: ((b: Uint8Array) => void) | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) {
        const w = this.waiter;
        this.waiter = null;
        w?.(f);
      }
    });
    socket.on('error', () => undefined);
  }

  static connect(gateway: string, localAddress?: string): Promise<RawTcpTransport> {
    const { host, port } = splitAddr(gateway);
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port, noDelay: true, ...(localAddress ? { localAddress } : {}) });
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new RawTcpTransport(s));
      });
    });
  }

  request(packet: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (b) => {
        clearTimeout(t);
        resolve(b);
      };
      this.socket.write(encodeFrame(packet));
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
