/**
 * Applying registered dVPN peers to a WireGuard interface (PRODUCT.md §2), behind `PeerApplier`:
 *
 * - `WgCliPeerApplier` drives the `wg` CLI (wireguard-tools): one registration is
 *   `wg set <iface> peer <base64 pk> preshared-key /dev/stdin allowed-ips <v4>/32,<v6>/128`, and the
 *   re-application of every stored peer at start is `wg addconf <iface> /dev/stdin` with `[Peer]` sections,
 *   in batches. The preshared key only ever travels through the child's stdin pipe: never on a command line
 *   (visible in /proc/<pid>/cmdline and `ps`), never in a file. Calls are serialized so the device sees
 *   peers in the order the registry committed them.
 * - `NullPeerApplier` is used when no interface is configured: the registry is kept, nothing is applied,
 *   and the store does not keep PSKs (`needsPsk` false).
 */
import { spawn } from 'node:child_process';
import { GatewayErrorCode, GatewayError } from '../errors.js';
import { formatIp } from './allocator.js';

export interface WgPeerSpec {
  /** WireGuard X25519 public key, 32 bytes. */
  publicKey: Uint8Array;
  /** WireGuard preshared key (32 bytes); null applies the peer without one. */
  psk: Uint8Array | null;
  ipv4: Uint8Array;
  ipv6: Uint8Array;
}

export interface PeerApplier {
  /** `wg` when peers reach a WireGuard device, `none` when only the registry is kept. */
  readonly kind: 'wg' | 'none';
  /** Whether the store must keep each peer's PSK so the peer can be re-applied after a restart. */
  readonly needsPsk: boolean;
  /** Adds or updates one peer (throws GatewayError LPGW_ERR_WG_APPLY). */
  apply(peer: WgPeerSpec): Promise<void>;
  /** Adds or updates many peers (start-up re-application). */
  applyAll(peers: readonly WgPeerSpec[]): Promise<void>;
  /** Removes a peer from the device (compensation after a failed registration). */
  remove(publicKey: Uint8Array): Promise<void>;
}

export class NullPeerApplier implements PeerApplier {
  readonly kind = 'none';
  readonly needsPsk = false;
  async apply(): Promise<void> {}
  async applyAll(): Promise<void> {}
  async remove(): Promise<void> {}
}

export interface WgCliPeerApplierOptions {
  /** WireGuard interface name, e.g. `wg0`. */
  interface: string;
  /** The `wg` executable; default `wg` looked up on PATH. */
  wgPath?: string;
  /** Per-invocation timeout; default 10 000 ms. */
  timeoutMs?: number;
  /** Peers per `wg addconf` call when re-applying at start; default 500. */
  batchSize?: number;
  /** `persistent-keepalive` in seconds for every peer; unset = WireGuard's default (off). */
  persistentKeepaliveSec?: number;
}

const b64 = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
const allowedIps = (p: WgPeerSpec): string => `${formatIp(p.ipv4)}/32,${formatIp(p.ipv6)}/128`;
const MAX_STDERR = 4096;

export class WgCliPeerApplier implements PeerApplier {
  readonly kind = 'wg';
  readonly needsPsk = true;
  readonly iface: string;
  private readonly wgPath: string;
  private readonly timeoutMs: number;
  private readonly batchSize: number;
  private readonly keepalive: number | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(opts: WgCliPeerApplierOptions) {
    // Linux IFNAMSIZ (15 chars); no leading '-', so the name can never be read as an option
    if (!/^[A-Za-z0-9_.=+][A-Za-z0-9_.=+-]{0,14}$/.test(opts.interface)) {
      throw new GatewayError(GatewayErrorCode.WG_APPLY, `invalid WireGuard interface name '${opts.interface}'`);
    }
    this.iface = opts.interface;
    this.wgPath = opts.wgPath ?? 'wg';
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.batchSize = Math.max(1, opts.batchSize ?? 500);
    this.keepalive = opts.persistentKeepaliveSec;
  }

  apply(peer: WgPeerSpec): Promise<void> {
    checkPeer(peer);
    const args = ['set', this.iface, 'peer', b64(peer.publicKey)];
    if (peer.psk) args.push('preshared-key', '/dev/stdin');
    if (this.keepalive !== undefined) args.push('persistent-keepalive', String(this.keepalive));
    args.push('allowed-ips', allowedIps(peer));
    return this.enqueue(() => this.run(args, peer.psk ? `${b64(peer.psk)}\n` : ''));
  }

  async applyAll(peers: readonly WgPeerSpec[]): Promise<void> {
    peers.forEach(checkPeer);
    for (let i = 0; i < peers.length; i += this.batchSize) {
      const conf = peers
        .slice(i, i + this.batchSize)
        .map((p) => {
          const lines = ['[Peer]', `PublicKey = ${b64(p.publicKey)}`];
          if (p.psk) lines.push(`PresharedKey = ${b64(p.psk)}`);
          if (this.keepalive !== undefined) lines.push(`PersistentKeepalive = ${this.keepalive}`);
          lines.push(`AllowedIPs = ${allowedIps(p)}`, '');
          return lines.join('\n');
        })
        .join('\n');
      await this.enqueue(() => this.run(['addconf', this.iface, '/dev/stdin'], conf));
    }
  }

  remove(publicKey: Uint8Array): Promise<void> {
    return this.enqueue(() => this.run(['set', this.iface, 'peer', b64(publicKey), 'remove'], ''));
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private run(args: string[], stdin: string): Promise<void> {
    const what = `${this.wgPath} ${args[0] ?? ''} ${this.iface}`;
    return new Promise<void>((resolve, reject) => {
      // own timer: spawn's `timeout` option leaks its timer when the executable cannot be started
      const child = spawn(this.wgPath, args, { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      let settled = false;
      const settle = (err: GatewayError | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        settle(new GatewayError(GatewayErrorCode.WG_APPLY, `${what} timed out after ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d: string) => {
        if (stderr.length < MAX_STDERR) stderr += d;
      });
      child.stdin.on('error', () => undefined); // EPIPE when wg exits without reading stdin
      child.on('error', (e) => settle(new GatewayError(GatewayErrorCode.WG_APPLY, `cannot run ${what}: ${e.message}`)));
      child.on('close', (code, signal) => {
        if (code === 0) settle(null);
        else settle(new GatewayError(GatewayErrorCode.WG_APPLY, `${what} failed (${signal ? `signal ${signal}` : `exit ${code}`}): ${stderr.trim().slice(0, 500) || 'no output'}`));
      });
      child.stdin.end(stdin);
    });
  }
}

function checkPeer(p: WgPeerSpec): void {
  if (p.publicKey.length !== 32 || (p.psk && p.psk.length !== 32) || p.ipv4.length !== 4 || p.ipv6.length !== 16) {
    throw new GatewayError(GatewayErrorCode.WG_APPLY, 'invalid WireGuard peer (key, PSK or address length)');
  }
}
