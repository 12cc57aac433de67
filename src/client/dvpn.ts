/**
 * dVPN registration from the client's side: everything a client needs for its WireGuard tunnel in one
 * value — its own key pair (the private key never leaves the client), the gateway's public key and
 * endpoint, its tunnel addresses and the preshared key derived from the LP session that registered
 * (DESIGN.md §7.2) — and its wg-quick rendering. Deregistration proves the WireGuard private key
 * (DESIGN.md §7.4).
 */
import {
  type Credential,
  type CryptoSuite,
  type KeyPair,
  type SocketAddress,
  type TicketType,
  defaultSuite,
  wireguardDeregisterProof,
} from '../core/index.js';
import { formatIp } from '../net/ip.js';
import { ClientError } from './errors.js';
import type { LpConnection } from './lp-client.js';

export interface WireguardRegistration {
  /** The client's WireGuard key pair (X25519, the private key clamped like `wg genkey`). */
  keys: KeyPair;
  /** The gateway's WireGuard public key. */
  gatewayPublicKey: Uint8Array;
  /** The gateway's WireGuard endpoint as it answered (an IP address and port). */
  endpoint: SocketAddress;
  /** The client's tunnel addresses (4 and 16 bytes). */
  ipv4: Uint8Array;
  ipv6: Uint8Array;
  /** The WireGuard preshared key derived from the LP session that registered. */
  psk: Uint8Array;
  /** Bytes the peer may still transfer (received + sent) under its grant. */
  allocatedBandwidth: bigint;
}

export interface RegisterDvpnOptions {
  credential: Credential;
  ticketType: TicketType;
  /** The client's WireGuard private key; a fresh one by default. */
  privateKey?: Uint8Array;
  suite?: CryptoSuite;
  nowSec?: number;
  timeoutMs?: number;
}

/** A fresh WireGuard key pair (clamped private key, like `wg genkey`). */
export function wireguardKeyPair(suite: CryptoSuite = defaultSuite, privateKey?: Uint8Array): KeyPair {
  const sk = new Uint8Array(privateKey ?? suite.prims.randomBytes(32));
  sk[0] = (sk[0] ?? 0) & 248;
  sk[31] = ((sk[31] ?? 0) & 127) | 64;
  return suite.prims.x25519FromSecret(sk);
}

/**
 * Registers a WireGuard peer over `conn`. A refusal becomes a ClientError with the gateway's code. If the
 * key was registered before, the gateway keeps its addresses and the PSK returned here replaces the old one.
 */
export async function registerDvpn(conn: LpConnection, o: RegisterDvpnOptions): Promise<WireguardRegistration> {
  const suite = o.suite ?? defaultSuite;
  const keys = wireguardKeyPair(suite, o.privateKey);
  // The gateway derives the PSK from the session that delivers the request: this one.
  const psk = new Uint8Array(conn.session.wireguardPsk(keys.publicKey));
  const reply = await conn.request(
    { kind: 'register', request: { mode: { kind: 'dvpn', wgPublicKey: keys.publicKey }, credential: o.credential, ticketType: o.ticketType, timestamp: BigInt(o.nowSec ?? Math.floor(Date.now() / 1000)) } },
    o.timeoutMs,
  );
  if (reply.kind !== 'registerResponse') throw new ClientError('LPC_ERR_UNEXPECTED_REPLY', `expected a registration response, got ${reply.kind}`);
  const r = reply.response;
  if (!r.success) throw new ClientError(r.error?.code ?? 'LPC_ERR_REGISTRATION_REFUSED', r.error?.message ?? 'the gateway refused the registration without an error code', r.error?.retryAfterMs ?? null);
  if (!r.gatewayData) throw new ClientError('LPC_ERR_UNEXPECTED_REPLY', 'a successful dVPN registration carried no gateway data');
  const g = r.gatewayData;
  return { keys, gatewayPublicKey: g.publicKey, endpoint: g.endpoint, ipv4: g.privateIpv4, ipv6: g.privateIpv6, psk, allocatedBandwidth: r.allocatedBandwidth };
}

/** Removes the peer at the gateway (any LP session with that gateway will do; the proof is the key's). */
export async function deregisterDvpn(conn: LpConnection, reg: Pick<WireguardRegistration, 'keys' | 'gatewayPublicKey'>, o: { suite?: CryptoSuite; timeoutMs?: number } = {}): Promise<void> {
  const prims = (o.suite ?? defaultSuite).prims;
  const dh = prims.x25519(reg.keys.secretKey, reg.gatewayPublicKey);
  const proof = wireguardDeregisterProof(prims, dh, reg.keys.publicKey, reg.gatewayPublicKey);
  prims.zeroize(dh);
  const reply = await conn.request({ kind: 'deregister', request: { wgPublicKey: reg.keys.publicKey, proof } }, o.timeoutMs);
  if (reply.kind !== 'deregistered') throw new ClientError('LPC_ERR_UNEXPECTED_REPLY', `expected a deregistration confirmation, got ${reply.kind}`);
}

/** `host:port` of an answered endpoint (IPv6 in brackets). */
export function endpointText(a: SocketAddress): string {
  return a.family === 6 ? `[${formatIp(a.address)}]:${a.port}` : `${formatIp(a.address)}:${a.port}`;
}

export interface WgQuickOptions {
  /** What the tunnel routes: e.g. the gateway's tunnel addresses (`10.1.0.1/32`), or `0.0.0.0/0, ::/0` through an exit. */
  allowedIps: readonly string[];
  /** Endpoint to write instead of the answered one (e.g. the descriptor's `wireguard.endpoint`, a host name). */
  endpoint?: string;
  persistentKeepaliveSec?: number;
}

/**
 * A wg-quick configuration for the registration (`wg-quick up FILE`; without the Address line, `wg
 * setconf` accepts it too). It holds the private key and PSK: write it 0600.
 */
export function wgQuickConfig(reg: WireguardRegistration, o: WgQuickOptions): string {
  const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');
  const lines = [
    '[Interface]',
    `PrivateKey = ${b64(reg.keys.secretKey)}`,
    `Address = ${formatIp(reg.ipv4)}/32, ${formatIp(reg.ipv6)}/128`,
    '',
    '[Peer]',
    `PublicKey = ${b64(reg.gatewayPublicKey)}`,
    `PresharedKey = ${b64(reg.psk)}`,
    `Endpoint = ${o.endpoint ?? endpointText(reg.endpoint)}`,
    `AllowedIPs = ${o.allowedIps.join(', ')}`,
  ];
  if (o.persistentKeepaliveSec !== undefined && o.persistentKeepaliveSec > 0) lines.push(`PersistentKeepalive = ${o.persistentKeepaliveSec}`);
  return `${lines.join('\n')}\n`;
}
