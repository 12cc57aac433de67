/**
 * The gateway's WireGuard data plane, put together from the configuration: the device (managed or the
 * operator's, checked), the applier registration uses, and the peer controller. Without
 * `wireguard.interface` there is no device: the registry is kept and only grant expiry is enforced.
 */
import type { KeyPair } from '../../core/crypto/primitives.js';
import type { Logger } from '../../log.js';
import type { GatewayConfig } from '../config.js';
import type { GatewayMetrics } from '../metrics.js';
import { formatIp, type AddressPool } from '../registration/allocator.js';
import type { RegistrationStore } from '../registration/store/types.js';
import type { WgDevice } from './device.js';
import type { GatewayRecord } from '../descriptor.js';
import { type ForwardingPolicy, exitEndpoints, installForwardingPolicy, openDevice, setUpManagedInterface, verifyUnmanagedInterface } from './interface.js';
import { DevicePeerApplier, NullPeerApplier, type PeerApplier } from './peer-applier.js';
import { PeerController, type PeerControllerMetrics, type StartReport } from './peer-controller.js';
import { privateDirIn } from './wg-tool-device.js';

export interface WireguardPlaneOptions {
  config: GatewayConfig;
  /** The interface key pair (data/wireguard.key). */
  keys: KeyPair;
  store: RegistrationStore;
  pools: { ipv4: AddressPool; ipv6: AddressPool };
  metrics: GatewayMetrics;
  logger: Logger;
}

/** A peer as the operator view lists it: addresses, handshake, transfer, grant — never a key. */
export interface PeerView {
  ipv4: string;
  ipv6: string;
  registered_at: number;
  latest_handshake: number;
  rx_bytes: string;
  tx_bytes: string;
  granted_bytes: string;
  remaining_bytes: string;
  expires_at: number;
}

export interface WireguardView {
  interface: { name: string; control: string; managed: boolean; listen_port: number; tunnel_ipv4: string; tunnel_ipv6: string } | null;
  /** When the peer controller last read the device (unix seconds; usage is as of then). */
  polled_at: number;
  peers: PeerView[];
}

export class WireguardPlane {
  private constructor(
    private readonly o: WireguardPlaneOptions,
    readonly applier: PeerApplier,
    readonly device: WgDevice | null,
    readonly controller: PeerController,
  ) {}

  /** Opens (managed: creates or adopts and configures; else checks) the interface. */
  static async open(o: WireguardPlaneOptions): Promise<WireguardPlane> {
    const wg = o.config.wireguard;
    const log = o.logger;
    let device: WgDevice | null = null;
    if (wg.interface !== '') {
      const deviceOptions = { control: wg.control as 'auto' | 'uapi' | 'wg', uapiDir: wg.uapiDir, privateDir: privateDirIn(o.config.dataDir) };
      if (wg.manage) {
        // An entry-only gateway starts with no exit to forward to; allowExits() adds its directory's.
        const policy: ForwardingPolicy = o.config.mode === 'entry' ? { role: 'entry', exits: [] } : { role: 'exit' };
        device = (
          await setUpManagedInterface({
            name: wg.interface,
            privateKey: o.keys.secretKey,
            listenPort: wg.listenPort,
            pools: o.pools,
            uplink: wg.uplink,
            policy,
            wireguardGo: wg.wireguardGo,
            device: deviceOptions,
            logger: log,
          })
        ).device;
      } else {
        device = openDevice(wg.interface, deviceOptions);
        await verifyUnmanagedInterface(device, { publicKey: o.keys.publicKey, listenPort: wg.listenPort }, log);
      }
    } else {
      log.info('no WireGuard interface configured: keeping the registry only (grant expiry is still enforced)');
    }
    const applier = device ? new DevicePeerApplier(device, wg.persistentKeepaliveSec) : new NullPeerApplier();
    const m = o.metrics;
    const metrics: PeerControllerMetrics = {
      peers: (n) => m.wgPeers.set(n),
      transfer: (rx, tx) => {
        if (rx > 0n) m.wgTransfer.inc({ direction: 'rx' }, Number(rx));
        if (tx > 0n) m.wgTransfer.inc({ direction: 'tx' }, Number(tx));
      },
      removed: (reason, n) => m.wgRemovals.inc({ reason }, n),
      poll: (ok, seconds) => {
        m.wgPolls.inc({ result: ok ? 'ok' : 'error' });
        if (ok) m.wgPollDuration.observe(seconds);
      },
      reapplied: (n) => m.wgReapplied.inc(n),
    };
    const controller = new PeerController({ store: o.store, applier, pools: o.pools, pollSec: wg.pollSec, idleTimeoutSec: device ? wg.idleTimeoutSec : 0, metrics, logger: log });
    return new WireguardPlane(o, applier, device, controller);
  }

  /** Re-applies the registry to the device and starts the peer controller. */
  start(): Promise<StartReport> {
    return this.controller.start();
  }

  async stop(): Promise<void> {
    this.controller.stop();
    await this.controller.idle();
  }

  /**
   * An entry-only gateway with a managed interface and an uplink forwards its clients' tunnel traffic only to
   * its directory's exits' WireGuard endpoints (two hops); called with the directory whenever it changes.
   */
  async allowExits(gateways: readonly GatewayRecord[]): Promise<void> {
    const wg = this.o.config.wireguard;
    if (!wg.manage || wg.uplink === '' || this.o.config.mode !== 'entry') return;
    const exits = gateways.filter((g) => g.roles.includes('exit') && g.wireguard !== null);
    const { exits: endpoints, skipped } = exitEndpoints(exits.map((g) => g.wireguard?.endpoint ?? ''));
    if (skipped.length > 0) this.o.logger.warn({ endpoints: skipped }, "exits' WireGuard endpoints given as host names cannot be allowed through the entry (use IP addresses)");
    await installForwardingPolicy({
      name: wg.interface,
      uplink: wg.uplink,
      pools: this.o.pools,
      policy: { role: 'entry', exits: endpoints },
      device: { control: wg.control as 'auto' | 'uapi' | 'wg', uapiDir: wg.uapiDir, privateDir: privateDirIn(this.o.config.dataDir) },
      logger: this.o.logger,
    });
  }

  /** Counted when a deregistration removes a peer. */
  onDeregistered(): void {
    this.o.metrics.wgRemovals.inc({ reason: 'deregistered' });
  }

  async view(): Promise<WireguardView> {
    const wg = this.o.config.wireguard;
    const peers = (await this.o.store.listPeers()).map((p): PeerView => {
      p.psk?.fill(0);
      const used = p.rxBytes + p.txBytes;
      return {
        ipv4: formatIp(p.ipv4),
        ipv6: formatIp(p.ipv6),
        registered_at: p.registeredAt,
        latest_handshake: p.lastHandshake,
        rx_bytes: p.rxBytes.toString(),
        tx_bytes: p.txBytes.toString(),
        granted_bytes: p.grantedBytes.toString(),
        remaining_bytes: (p.grantedBytes > used ? p.grantedBytes - used : 0n).toString(),
        expires_at: p.expiresAt,
      };
    });
    return {
      interface: this.device
        ? { name: this.device.interfaceName, control: this.device.control, managed: wg.manage, listen_port: wg.listenPort, tunnel_ipv4: formatIp(this.o.pools.ipv4.gatewayAddress), tunnel_ipv6: formatIp(this.o.pools.ipv6.gatewayAddress) }
        : null,
      polled_at: this.controller.lastPollSec,
      peers,
    };
  }
}
