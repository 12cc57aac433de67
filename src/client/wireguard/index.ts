/**
 * A userspace WireGuard client over a plain UDP socket (no root, no TUN): a sans-I/O core (peer.ts and the
 * files it is made of) and a thin node:dgram edge (tunnel.ts), plus the minimal IP/ICMP/UDP packets a probe
 * needs to prove a registered peer works.
 */
export * from './errors.js';
export * from './constants.js';
export { hash as wgHash, hmac as wgHmac, mac as wgMac, kdf1 as wgKdf1, kdf2 as wgKdf2, kdf3 as wgKdf3, CONSTRUCTION as WG_CONSTRUCTION, IDENTIFIER as WG_IDENTIFIER } from './kdf.js';
export { defaultWgCrypto, sodiumWgCrypto, withRandom as wgCryptoWithRandom, type WgCrypto } from './crypto.js';
export * from './keys.js';
export { tai64n, monotonicTai64n, compareTai64n } from './tai64n.js';
export * from './messages.js';
export { CookieState, mac1Key, cookieKey, writeMacs, checkMac1 } from './cookie.js';
export { InitiatorHandshake, makeStaticKeys, type StaticKeys, type SessionKeys } from './handshake.js';
export { ReplayWindow, REPLAY_WINDOW_SIZE } from './replay-window.js';
export { Keypair, paddingFor } from './keypair.js';
export { PeerTimers, type TimerName } from './timers.js';
export * from './peer.js';
export * from './checksum.js';
export * from './ip.js';
export * from './icmp.js';
export * from './udp.js';
export * from './datagram.js';
export * from './tunnel.js';
