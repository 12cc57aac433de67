/**
 * A WireGuard interface as the gateway drives it, whatever implements it: the kernel module (through `wg`,
 * wg-tool-device.ts) or a userspace implementation such as wireguard-go or boringtun (through its UAPI
 * control socket, uapi-device.ts). Both give the same view: the interface's key and port, every peer's
 * transfer counters and last handshake in one read, and batched peer updates.
 */
import { GatewayError, GatewayErrorCode } from '../errors.js';
import { formatIp } from '../registration/allocator.js';

/** A peer as the gateway configures it. */
export interface WgPeerSpec {
  /** WireGuard X25519 public key, 32 bytes. */
  publicKey: Uint8Array;
  /** WireGuard preshared key (32 bytes); null configures the peer without one. */
  psk: Uint8Array | null;
  /** The client's tunnel addresses (4 and 16 bytes); allowed IPs are these as /32 and /128. */
  ipv4: Uint8Array;
  ipv6: Uint8Array;
}

/** A peer as the device reports it (secrets are never read into this). */
export interface WgPeerState {
  publicKey: Uint8Array;
  /** Bytes received from the peer and sent to it since the peer was added to the device. */
  rxBytes: bigint;
  txBytes: bigint;
  /** Unix seconds of the last completed handshake, 0 for none. */
  lastHandshakeSec: number;
  /** Allowed IPs as `address/prefix` text. */
  allowedIps: string[];
  /** Remote endpoint `host:port`, or null before the peer's first packet. */
  endpoint: string | null;
}

export interface WgInterfaceState {
  /** Public key of the interface's private key, or null when none is set. */
  publicKey: Uint8Array | null;
  listenPort: number;
  peers: WgPeerState[];
}

export type WgControl = 'uapi' | 'wg';

export interface WgDevice {
  readonly interfaceName: string;
  /** How the device is driven: the UAPI socket (userspace implementations) or the `wg` tool (kernel). */
  readonly control: WgControl;
  /** Reads the interface and all its peers in one call (throws LPGW_ERR_WG_CONTROL). */
  read(): Promise<WgInterfaceState>;
  /** Sets the interface's private key and listen port (throws LPGW_ERR_WG_CONTROL). */
  configure(o: { privateKey: Uint8Array; listenPort: number }): Promise<void>;
  /**
   * Adds or updates peers in as few calls as practical: PSK, allowed IPs (replaced) and keepalive. An
   * existing peer keeps its transfer counters. Throws LPGW_ERR_WG_APPLY.
   */
  upsertPeers(peers: readonly WgPeerSpec[], o: { keepaliveSec: number }): Promise<void>;
  /** Removes peers (unknown keys are ignored). Throws LPGW_ERR_WG_APPLY. */
  removePeers(publicKeys: readonly Uint8Array[]): Promise<void>;
}

/** Peers per device call when many are applied or removed at once (start-up re-application, removals). */
export const PEER_BATCH = 1000;

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export function assertPeerSpec(p: WgPeerSpec): void {
  if (p.publicKey.length !== 32 || (p.psk && p.psk.length !== 32) || p.ipv4.length !== 4 || p.ipv6.length !== 16) {
    throw new GatewayError(GatewayErrorCode.WG_APPLY, 'invalid WireGuard peer (key, PSK or address length)');
  }
}

/** The allowed IPs of a peer: its two tunnel addresses as host routes. */
export function peerAllowedIps(p: WgPeerSpec): string[] {
  return [`${formatIp(p.ipv4)}/32`, `${formatIp(p.ipv6)}/128`];
}

/** Linux IFNAMSIZ (15 characters) and no leading '-', so a name can never be read as an option. */
export const IFACE_NAME_RE = /^[A-Za-z0-9_.=+][A-Za-z0-9_.=+-]{0,14}$/;
