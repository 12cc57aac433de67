/**
 * WireGuard driven through the `wg` tool (wireguard-tools): the way to reach the kernel module (wg speaks
 * its generic netlink family), and it works for userspace implementations too (wg finds their UAPI socket).
 *
 * Keys never appear on a command line or in an environment: the private key and the peers' preshared keys
 * go through a private file (private-file.ts) that is wiped and removed as soon as `wg` returns. Peers are
 * applied with `wg addconf <iface> <file>` (one `[Peer]` section each, at most PEER_BATCH per call; a
 * section replaces that peer's allowed IPs and keeps its counters) and removed with `wg set … peer K remove`.
 * The read is `wg show <iface> dump`, whose secret columns are skipped without being decoded, and whose
 * output buffer is zeroed.
 */
import { join } from 'node:path';
import { GatewayError, GatewayErrorCode } from '../errors.js';
import { describeFailure, runCommand } from './command.js';
import { IFACE_NAME_RE, PEER_BATCH, assertPeerSpec, chunks, peerAllowedIps, type WgDevice, type WgInterfaceState, type WgPeerSpec } from './device.js';
import { withPrivateFile } from './private-file.js';

const b64 = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');

const B64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');

/** Standard base64 of a secret, written into bytes (no string of it is ever made, so it can be zeroed). */
function base64Bytes(v: Uint8Array): Buffer {
  const out = Buffer.alloc(Math.ceil(v.length / 3) * 4);
  let o = 0;
  for (let i = 0; i < v.length; i += 3) {
    const n = ((v[i] as number) << 16) | ((v[i + 1] ?? 0) << 8) | (v[i + 2] ?? 0);
    out[o++] = B64[(n >> 18) & 63] as number;
    out[o++] = B64[(n >> 12) & 63] as number;
    out[o++] = i + 1 < v.length ? (B64[(n >> 6) & 63] as number) : 0x3d;
    out[o++] = i + 2 < v.length ? (B64[n & 63] as number) : 0x3d;
  }
  return out;
}

/** Appends `key = base64(value)\n` as bytes. */
function b64Line(parts: Buffer[], key: string, value: Uint8Array): void {
  parts.push(Buffer.from(`${key} = `), base64Bytes(value), Buffer.from('\n'));
}

export interface WgToolDeviceOptions {
  /** The `wg` executable; default `wg` on PATH. */
  wgPath?: string;
  /** Directory for the private files (0700, created if needed). */
  privateDir: string;
  timeoutMs?: number;
}

export class WgToolDevice implements WgDevice {
  readonly control = 'wg';
  private readonly wg: string;
  private readonly privateDir: string;
  private readonly timeoutMs: number;

  constructor(
    readonly interfaceName: string,
    opts: WgToolDeviceOptions,
  ) {
    if (!IFACE_NAME_RE.test(interfaceName)) throw new GatewayError(GatewayErrorCode.WG_CONTROL, `invalid WireGuard interface name '${interfaceName}'`);
    this.wg = opts.wgPath ?? 'wg';
    this.privateDir = opts.privateDir;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async read(): Promise<WgInterfaceState> {
    const out = await this.run(['show', this.interfaceName, 'dump'], GatewayErrorCode.WG_CONTROL);
    try {
      return parseDump(out);
    } finally {
      out.fill(0);
    }
  }

  async configure(o: { privateKey: Uint8Array; listenPort: number }): Promise<void> {
    const key = base64Bytes(o.privateKey);
    const content = Buffer.concat([key, Buffer.from('\n')]);
    key.fill(0);
    await withPrivateFile(this.privateDir, content, (path) => this.run(['set', this.interfaceName, 'private-key', path, 'listen-port', String(o.listenPort)], GatewayErrorCode.WG_CONTROL));
  }

  async upsertPeers(peers: readonly WgPeerSpec[], o: { keepaliveSec: number }): Promise<void> {
    for (const batch of chunks(peers, PEER_BATCH)) {
      const parts: Buffer[] = [];
      for (const p of batch) {
        assertPeerSpec(p);
        parts.push(Buffer.from(`[Peer]\nPublicKey = ${b64(p.publicKey)}\n`));
        if (p.psk) b64Line(parts, 'PresharedKey', p.psk);
        parts.push(Buffer.from(`AllowedIPs = ${peerAllowedIps(p).join(', ')}\nPersistentKeepalive = ${o.keepaliveSec === 0 ? 'off' : o.keepaliveSec}\n\n`));
      }
      const content = Buffer.concat(parts);
      for (const b of parts) b.fill(0);
      await withPrivateFile(this.privateDir, content, (path) => this.run(['addconf', this.interfaceName, path], GatewayErrorCode.WG_APPLY));
    }
  }

  async removePeers(publicKeys: readonly Uint8Array[]): Promise<void> {
    for (const batch of chunks(publicKeys, PEER_BATCH)) {
      await this.run(['set', this.interfaceName, ...batch.flatMap((k) => ['peer', b64(k), 'remove'])], GatewayErrorCode.WG_APPLY);
    }
  }

  private async run(args: string[], code: string): Promise<Buffer> {
    let r;
    try {
      r = await runCommand(this.wg, args, { timeoutMs: this.timeoutMs });
    } catch (e) {
      throw new GatewayError(code, (e as Error).message);
    }
    if (r.code !== 0) {
      r.stdout.fill(0);
      throw new GatewayError(code, describeFailure(this.wg, args, r));
    }
    return r.stdout;
  }
}

/** Where private files go inside a data directory. */
export function privateDirIn(dataDir: string): string {
  return join(dataDir, 'run');
}

/**
 * `wg show <iface> dump`: a first line `private-key public-key listen-port fwmark`, then one line per peer
 * `public-key preshared-key endpoint allowed-ips latest-handshake transfer-rx transfer-tx persistent-keepalive`,
 * tab-separated, keys in base64, `(none)` for an absent value. Columns holding secrets are never decoded.
 */
export function parseDump(out: Buffer): WgInterfaceState {
  const state: WgInterfaceState = { publicKey: null, listenPort: 0, peers: [] };
  let start = 0;
  let first = true;
  while (start < out.length) {
    let end = out.indexOf(0x0a, start);
    if (end < 0) end = out.length;
    const fields: [number, number][] = [];
    let f = start;
    for (let i = start; i <= end; i++) {
      if (i === end || out[i] === 0x09) {
        fields.push([f, i]);
        f = i + 1;
      }
    }
    const col = (i: number): string => {
      const r = fields[i];
      return r ? out.subarray(r[0], r[1]).toString('latin1') : '';
    };
    const key = (i: number): Uint8Array | null => {
      const s = col(i);
      const k = s === '(none)' ? null : Buffer.from(s, 'base64');
      return k && k.length === 32 ? new Uint8Array(k) : null;
    };
    if (end > start) {
      if (first) {
        // field 0 is the private key: skipped
        state.publicKey = key(1);
        state.listenPort = Number(col(2)) || 0;
        first = false;
      } else {
        const publicKey = key(0);
        if (!publicKey) throw new GatewayError(GatewayErrorCode.WG_CONTROL, 'wg show dump: malformed peer line');
        // field 1 is the preshared key: skipped
        const endpoint = col(2);
        const allowed = col(3);
        state.peers.push({
          publicKey,
          endpoint: endpoint === '(none)' ? null : endpoint,
          allowedIps: allowed === '(none)' || allowed === '' ? [] : allowed.split(','),
          lastHandshakeSec: Number(col(4)) || 0,
          rxBytes: BigInt(/^\d+$/.test(col(5)) ? col(5) : '0'),
          txBytes: BigInt(/^\d+$/.test(col(6)) ? col(6) : '0'),
        });
      }
    }
    start = end + 1;
  }
  return state;
}
