/**
 * What registration and the peer controller use to reach the WireGuard device: one queue, so the device
 * sees operations in the order the registry committed them (a removal decided before a registration is
 * applied before it). `NullPeerApplier` stands in when no interface is configured: the registry is kept,
 * nothing is applied, and the store does not keep PSKs.
 */
import type { WgDevice, WgInterfaceState, WgPeerSpec } from './device.js';

export type { WgPeerSpec } from './device.js';

export interface PeerApplier {
  /** `device` when peers reach a WireGuard interface, `none` when only the registry is kept. */
  readonly kind: 'device' | 'none';
  /** Whether the store must keep each peer's PSK so the peer can be re-applied after a restart. */
  readonly needsPsk: boolean;
  /** Adds or updates one peer (throws GatewayError LPGW_ERR_WG_APPLY). */
  apply(peer: WgPeerSpec): Promise<void>;
  /** Adds or updates many peers in batches. */
  applyMany(peers: readonly WgPeerSpec[]): Promise<void>;
  /** Removes peers from the device. */
  remove(publicKeys: readonly Uint8Array[]): Promise<void>;
  /** The device's state (peers' counters and handshakes), or null without a device. */
  read(): Promise<WgInterfaceState | null>;
}

export class NullPeerApplier implements PeerApplier {
  readonly kind = 'none';
  readonly needsPsk = false;
  async apply(): Promise<void> {}
  async applyMany(): Promise<void> {}
  async remove(): Promise<void> {}
  async read(): Promise<null> {
    return null;
  }
}

export class DevicePeerApplier implements PeerApplier {
  readonly kind = 'device';
  readonly needsPsk = true;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly device: WgDevice,
    /** `persistent-keepalive` for every peer; 0 = off (WireGuard's default). */
    private readonly keepaliveSec = 0,
  ) {}

  apply(peer: WgPeerSpec): Promise<void> {
    return this.enqueue(() => this.device.upsertPeers([peer], { keepaliveSec: this.keepaliveSec }));
  }

  applyMany(peers: readonly WgPeerSpec[]): Promise<void> {
    if (peers.length === 0) return Promise.resolve();
    return this.enqueue(() => this.device.upsertPeers(peers, { keepaliveSec: this.keepaliveSec }));
  }

  remove(publicKeys: readonly Uint8Array[]): Promise<void> {
    if (publicKeys.length === 0) return Promise.resolve();
    return this.enqueue(() => this.device.removePeers(publicKeys));
  }

  read(): Promise<WgInterfaceState> {
    return this.enqueue(() => this.device.read());
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }
}
