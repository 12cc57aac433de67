/**
 * Client library: transports, an LP connection (handshake, requests, registration, rekey), telescoping, and a
 * userspace WireGuard client (./wireguard) for proving a registered peer works.
 */
export * from './errors.js';
export * from './transports.js';
export * from './lp-client.js';
export * from './telescoping.js';
export * from './descriptor-fetch.js';
export * from './dvpn.js';
export {
  WgTunnel,
  UdpSocketTransport,
  WgError,
  WgErrorCode,
  wgKeyPair,
  wgPublicKey,
  wgPresharedKey,
  wgKeyToBase64,
  wgKeyFromBase64,
  parseIp as parseWgIp,
  formatIp as formatWgIp,
  DEFAULT_CONNECT_TIMEOUT_MS as WG_DEFAULT_CONNECT_TIMEOUT_MS,
  type WgTunnelOptions,
  type WgTunnelStats,
  type DatagramTransport,
  type Endpoint as WgEndpoint,
  type PingOptions as WgPingOptions,
  type PingResult as WgPingResult,
  type UdpFlow as WgUdpFlow,
  type WgKeyPair,
  type WgErrorCodeValue,
  type WgEvent,
} from './wireguard/index.js';
