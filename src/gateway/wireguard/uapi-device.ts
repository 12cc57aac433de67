/**
 * A userspace WireGuard implementation (wireguard-go, boringtun, …) driven through its UAPI control socket,
 * `<dir>/<interface>.sock` (WireGuard's cross-platform configuration protocol: `get=1` / `set=1`, key=value
 * lines, a blank line ends a request, the reply ends with `errno=N` and a blank line).
 *
 * Why UAPI and not `wg`: no child process per registration (a peer is applied in one socket round trip),
 * and keys travel only over a socket that only root (the socket is 0700 in a root-owned directory) can open:
 * never on a command line, in an environment or in a file. Secret values are written and read as bytes
 * (hex) and the buffers that carried them are zeroed; the reply's private and preshared keys are skipped
 * without being decoded, except the private key, from which the public key is derived and then wiped.
 */
import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { constants as osConstants } from 'node:os';
import sodium from 'sodium-native';
import { GatewayError, GatewayErrorCode } from '../errors.js';
import { IFACE_NAME_RE, PEER_BATCH, assertPeerSpec, chunks, peerAllowedIps, type WgDevice, type WgInterfaceState, type WgPeerSpec, type WgPeerState } from './device.js';

export const DEFAULT_UAPI_DIR = '/var/run/wireguard';
const MAX_REPLY = 256 * 1024 * 1024;

const HEX = Buffer.from('0123456789abcdef');

/** Reply keys the parser looks for, as bytes. */
const K = {
  privateKey: Buffer.from('private_key'),
  listenPort: Buffer.from('listen_port'),
  publicKey: Buffer.from('public_key'),
  rxBytes: Buffer.from('rx_bytes'),
  txBytes: Buffer.from('tx_bytes'),
  lastHandshakeSec: Buffer.from('last_handshake_time_sec'),
  allowedIp: Buffer.from('allowed_ip'),
  endpoint: Buffer.from('endpoint'),
};

const KEYS = Object.values(K);

/** Which of the keys the parser knows buf[start..eq) is, or null. */
function keyIs(buf: Buffer, start: number, eq: number): Buffer | null {
  const len = eq - start;
  for (const k of KEYS) if (k.length === len && buf.compare(k, 0, len, start, eq) === 0) return k;
  return null;
}

/** An unsigned decimal in buf[start..end) (0 for anything else). */
function decimal(buf: Buffer, start: number, end: number): bigint {
  if (end - start > 15) return /^\d+$/.test(buf.toString('latin1', start, end)) ? BigInt(buf.toString('latin1', start, end)) : 0n;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = (buf[i] as number) - 0x30;
    if (d < 0 || d > 9) return 0n;
    n = n * 10 + d;
  }
  return BigInt(n);
}

/** ` EADDRINUSE` for -98 (UAPI replies carry negated Linux errno values), '' when unknown. */
function errnoName(errno: number): string {
  const name = Object.entries(osConstants.errno).find(([, v]) => v === Math.abs(errno))?.[0];
  return name ? ` ${name}` : '';
}

/** Appends `key=<hex of value>\n` to `parts` without making a string of the value. */
function hexLine(parts: Buffer[], key: string, value: Uint8Array): void {
  const b = Buffer.alloc(key.length + 2 + value.length * 2);
  b.write(`${key}=`, 0, 'latin1');
  let o = key.length + 1;
  for (const v of value) {
    b[o++] = HEX[v >> 4] as number;
    b[o++] = HEX[v & 15] as number;
  }
  b[o] = 0x0a;
  parts.push(b);
}

function hexNibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Decodes 32 bytes of hex from buf[start..end) into a new Buffer, or null if it is not exactly that. */
function hex32(buf: Buffer, start: number, end: number): Buffer | null {
  if (end - start !== 64) return null;
  const out = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) {
    const hi = hexNibble(buf[start + 2 * i] as number);
    const lo = hexNibble(buf[start + 2 * i + 1] as number);
    if (hi < 0 || lo < 0) {
      out.fill(0);
      return null;
    }
    out[i] = (hi << 4) | lo;
  }
  return out;
}



export class UapiDevice implements WgDevice {
  readonly control = 'uapi';
  readonly socketPath: string;
  private readonly timeoutMs: number;

  constructor(
    readonly interfaceName: string,
    opts: { socketDir?: string; timeoutMs?: number } = {},
  ) {
    if (!IFACE_NAME_RE.test(interfaceName)) throw new GatewayError(GatewayErrorCode.WG_CONTROL, `invalid WireGuard interface name '${interfaceName}'`);
    this.socketPath = join(opts.socketDir ?? DEFAULT_UAPI_DIR, `${interfaceName}.sock`);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Whether a userspace implementation serves this interface (its control socket exists). */
  static present(interfaceName: string, socketDir = DEFAULT_UAPI_DIR): boolean {
    return existsSync(join(socketDir, `${interfaceName}.sock`));
  }

  async read(): Promise<WgInterfaceState> {
    const reply = await this.exchange([Buffer.from('get=1\n\n')], GatewayErrorCode.WG_CONTROL, 'the read');
    try {
      return this.parseGet(reply);
    } finally {
      reply.fill(0);
    }
  }

  async configure(o: { privateKey: Uint8Array; listenPort: number }): Promise<void> {
    const parts = [Buffer.from('set=1\n')];
    hexLine(parts, 'private_key', o.privateKey);
    parts.push(Buffer.from(`listen_port=${o.listenPort}\n\n`));
    await this.exchange(parts, GatewayErrorCode.WG_CONTROL, `the private key and listen port ${o.listenPort}`);
  }

  async upsertPeers(peers: readonly WgPeerSpec[], o: { keepaliveSec: number }): Promise<void> {
    for (const batch of chunks(peers, PEER_BATCH)) {
      const parts = [Buffer.from('set=1\n')];
      for (const p of batch) {
        assertPeerSpec(p);
        hexLine(parts, 'public_key', p.publicKey);
        if (p.psk) hexLine(parts, 'preshared_key', p.psk);
        parts.push(Buffer.from(`replace_allowed_ips=true\n${peerAllowedIps(p).map((a) => `allowed_ip=${a}\n`).join('')}persistent_keepalive_interval=${o.keepaliveSec}\n`));
      }
      parts.push(Buffer.from('\n'));
      await this.exchange(parts, GatewayErrorCode.WG_APPLY, `${batch.length} peer update(s)`);
    }
  }

  async removePeers(publicKeys: readonly Uint8Array[]): Promise<void> {
    for (const batch of chunks(publicKeys, PEER_BATCH)) {
      const parts = [Buffer.from('set=1\n')];
      for (const k of batch) {
        hexLine(parts, 'public_key', k);
        parts.push(Buffer.from('remove=true\n'));
      }
      parts.push(Buffer.from('\n'));
      await this.exchange(parts, GatewayErrorCode.WG_APPLY, `${batch.length} peer removal(s)`);
    }
  }

  /** Sends one request and returns the reply without its `errno=0` tail; the request buffers are zeroed. */
  private exchange(request: Buffer[], code: string, purpose: string): Promise<Buffer> {
    const what = `WireGuard UAPI ${this.socketPath}`;
    const body = Buffer.concat(request);
    for (const b of request) b.fill(0);
    return new Promise<Buffer>((resolve, reject) => {
      const chunksIn: Buffer[] = [];
      let size = 0;
      let settled = false;
      const sock = connect(this.socketPath);
      const finish = (err: Error | null, reply?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        body.fill(0);
        for (const c of chunksIn) c.fill(0);
        if (err) reject(err);
        else resolve(reply ?? Buffer.alloc(0));
      };
      const timer = setTimeout(() => finish(new GatewayError(code, `${what}: no reply within ${this.timeoutMs} ms`)), this.timeoutMs);
      sock.on('error', (e: NodeJS.ErrnoException) =>
        finish(new GatewayError(code, e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? `${what}: no userspace WireGuard serves ${this.interfaceName} (${e.code})` : `${what}: ${e.message}`)),
      );
      let last2 = 0; // the reply's last two bytes, to spot the blank line that ends it without re-scanning
      sock.on('data', (d: Buffer) => {
        chunksIn.push(d);
        size += d.length;
        if (size > MAX_REPLY) return finish(new GatewayError(code, `${what}: reply larger than ${MAX_REPLY} bytes`));
        for (const c of d.length > 2 ? d.subarray(d.length - 2) : d) last2 = ((last2 << 8) | c) & 0xffff;
        if (last2 !== 0x0a0a) return;
        // …\nerrno=N\n\n (a reply to set=1 is just errno=N\n\n)
        const all = Buffer.concat(chunksIn);
        const tail = all.lastIndexOf('errno=');
        const errno = tail >= 0 ? Number(all.subarray(tail + 6, all.length - 2).toString('latin1')) : NaN;
        if (errno !== 0) {
          all.fill(0);
          return finish(new GatewayError(code, `${what}: the implementation refused ${purpose} (errno=${Number.isNaN(errno) ? '?' : `${errno}${errnoName(errno)}`})`));
        }
        const reply = Buffer.from(all.subarray(0, tail));
        all.fill(0);
        finish(null, reply);
      });
      sock.on('close', () => finish(new GatewayError(code, `${what}: connection closed before the reply ended`)));
      sock.write(body);
    });
  }

  /**
   * Parses a `get=1` reply without making a string per line (a poll reads every peer: ~8 lines each): keys are
   * compared as bytes, numbers read digit by digit; only allowed IPs and endpoints become strings.
   */
  private parseGet(reply: Buffer): WgInterfaceState {
    const state: WgInterfaceState = { publicKey: null, listenPort: 0, peers: [] };
    let peer: WgPeerState | null = null;
    let start = 0;
    while (start < reply.length) {
      let end = reply.indexOf(0x0a, start);
      if (end < 0) end = reply.length;
      const eq = reply.indexOf(0x3d, start);
      if (eq > start && eq < end) {
        const is = keyIs(reply, start, eq);
        const v = eq + 1;
        if (is === K.publicKey) {
          const pk = hex32(reply, v, end);
          if (!pk) throw new GatewayError(GatewayErrorCode.WG_CONTROL, 'WireGuard UAPI: malformed public_key in reply');
          peer = { publicKey: pk, rxBytes: 0n, txBytes: 0n, lastHandshakeSec: 0, allowedIps: [], endpoint: null };
          state.peers.push(peer);
        } else if (peer) {
          if (is === K.rxBytes) peer.rxBytes = decimal(reply, v, end);
          else if (is === K.txBytes) peer.txBytes = decimal(reply, v, end);
          else if (is === K.lastHandshakeSec) peer.lastHandshakeSec = Number(decimal(reply, v, end));
          else if (is === K.allowedIp) peer.allowedIps.push(reply.toString('latin1', v, end));
          else if (is === K.endpoint) peer.endpoint = reply.toString('latin1', v, end);
          // preshared_key and the rest: skipped, never decoded
        } else if (is === K.privateKey) {
          const sk = hex32(reply, v, end);
          if (sk) {
            const pk = Buffer.alloc(32);
            sodium.crypto_scalarmult_base(pk, sk);
            sk.fill(0);
            state.publicKey = pk;
          }
        } else if (is === K.listenPort) state.listenPort = Number(decimal(reply, v, end));
      }
      start = end + 1;
    }
    return state;
  }
}
