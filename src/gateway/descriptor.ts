/**
 * The signed gateway descriptor, served at `GET /v1/gateway` and consumed by other gateways' directories
 * and by clients (which pin `identity_key` and `kem.key_hash`). Schema version 1, JSON, snake_case:
 *
 *   { "schema_version": 2,
 *     "identity_key": "<64 hex: Ed25519 public key>",
 *     "lp": { "tcp": "host:port", "udp": "host:port" | null },
 *     "kem": { "algorithm": "ML-KEM-768", "kkt_code": 1, "key_hash_algorithm": "BLAKE3-256", "key_hash": "<64 hex>" },
 *     "roles": ["entry", "exit"],
 *     "wireguard": { "public_key": "<base64, 32 bytes>", "endpoint": "host:port",
 *                    "tunnel_ipv4": "<the gateway's own tunnel IPv4>", "tunnel_ipv6": "<… IPv6, RFC 5952>" }
 *                  | null (no WireGuard interface configured: no tunnels offered),
 *     "software_version": "0.1.0",
 *     "issued_at": <unix seconds>,
 *     "expires_at": <unix seconds, after issued_at>,
 *     "signature": "<128 hex: Ed25519>" }
 *
 * signature = Ed25519(identity, "lp-gateway descriptor v2\n" ‖ canonical JSON of every other field), where
 * canonical JSON sorts object keys recursively (UTF-16 code unit order), has no whitespace, and holds only
 * integers and ASCII strings, so it coincides with RFC 8785 (JCS) for every valid descriptor.
 * Addresses are normalised (normalizeLpAddress) before signing. verifyDescriptor is strict: exactly these
 * fields, these constants, lower-case hex.
 */
import { fromHex, toHex, type CryptoSuite, type GatewayKeys, type GatewayPin } from '../core/index.js';
import { version as softwareVersion } from '../version.js';
import type { GatewayConfig, GatewayMode } from './config.js';
import { formatHostPort, parseHostPort } from './config-load.js';
import { GatewayError, GatewayErrorCode } from './errors.js';
import { AddressPool, formatIp, parseIp } from './registration/allocator.js';

export const DESCRIPTOR_SCHEMA_VERSION = 2;
/** Domain separation prefix of the signed bytes (v2 added `expires_at`). */
export const DESCRIPTOR_SIGNING_CONTEXT = 'lp-gateway descriptor v2\n';
/** A descriptor is valid for a day by default; the gateway re-signs it well before (DESIGN.md §7.6). */
export const DEFAULT_DESCRIPTOR_VALIDITY_SEC = 86_400;
/** Clock difference tolerated between a descriptor's signer and its verifier. */
export const DESCRIPTOR_CLOCK_SKEW_SEC = 300;

export type GatewayRole = 'entry' | 'exit';

export interface GatewayDescriptor {
  schema_version: 2;
  identity_key: string;
  lp: { tcp: string; udp: string | null };
  kem: { algorithm: 'ML-KEM-768'; kkt_code: 1; key_hash_algorithm: 'BLAKE3-256'; key_hash: string };
  roles: GatewayRole[];
  wireguard: { public_key: string; endpoint: string; tunnel_ipv4: string; tunnel_ipv6: string } | null;
  software_version: string;
  issued_at: number;
  expires_at: number;
  signature: string;
}

export type UnsignedDescriptor = Omit<GatewayDescriptor, 'signature'>;

export interface DescriptorParams {
  /** Announced LP TCP address, HOST:PORT. */
  lpTcp: string;
  /** Announced LP UDP address, or null when UDP is off. */
  lpUdp: string | null;
  mode: GatewayMode;
  /** The gateway's WireGuard key, endpoint and own tunnel addresses (what a client pings through its tunnel). */
  wireguard: { publicKey: Uint8Array; endpoint: string; tunnelIpv4: string; tunnelIpv6: string } | null;
  /** Defaults to the package version. */
  softwareVersion?: string;
  /** Unix seconds; defaults to now. */
  issuedAt?: number;
  /** Seconds from issuedAt to expires_at; default DEFAULT_DESCRIPTOR_VALIDITY_SEC. */
  validitySec?: number;
}

const malformed = (msg: string): never => {
  throw new GatewayError(GatewayErrorCode.DESCRIPTOR_MALFORMED, `gateway descriptor: ${msg}`);
};

// ---------------------------------------------------------------------------------------------------------
// Canonical form

/** Canonical JSON: keys sorted recursively, no whitespace; only null, booleans, safe integers, strings, arrays, objects. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new TypeError(`canonicalJson: only safe integers are allowed, got ${v}`);
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  throw new TypeError(`canonicalJson: unsupported value of type ${typeof v}`);
}

/** The bytes the descriptor signature covers. */
export function descriptorSigningBytes(d: UnsignedDescriptor): Uint8Array {
  const { signature: _ignored, ...rest } = d as GatewayDescriptor;
  return new TextEncoder().encode(DESCRIPTOR_SIGNING_CONTEXT + canonicalJson(rest));
}

// ---------------------------------------------------------------------------------------------------------
// Addresses

/**
 * Canonical text of an LP address, for comparing a forward target with a descriptor: IPv6 in brackets in
 * RFC 5952 form (lower-case, compressed), host names lower-case without a trailing dot, port without
 * leading zeros. Throws LPGW_ERR_BAD_ADDRESS when `s` is not HOST:PORT.
 */
export function normalizeLpAddress(s: string): string {
  const { host, port } = parseHostPort(s);
  if (host.includes(':')) {
    const ip = parseIp(host);
    if (!ip) throw new GatewayError(GatewayErrorCode.BAD_ADDRESS, `'${s}': bad IPv6 address`);
    return `[${formatIp(ip.bytes)}]:${port}`;
  }
  return `${host.toLowerCase().replace(/\.$/, '')}:${port}`;
}

const isWildcard = (h: string): boolean => h === '0.0.0.0' || h === '::' || h === '';

function announceHostFor(configured: string, bindHost: string): string {
  const h = configured.startsWith('[') && configured.endsWith(']') ? configured.slice(1, -1) : configured;
  if (h !== '') return h;
  return isWildcard(bindHost) ? '127.0.0.1' : bindHost;
}

/**
 * The addresses a gateway publishes: lp.announce_host (else the bind host, 127.0.0.1 for a wildcard bind)
 * with the configured port, or the actually bound port when given (port 0 in the config).
 */
export function announcedAddresses(config: GatewayConfig, bound: { tcpPort?: number; udpPort?: number } = {}): { lpTcp: string; lpUdp: string | null; wireguardEndpoint: string } {
  const tcp = parseHostPort(config.lp.tcp);
  const tcpHost = announceHostFor(config.lp.announceHost, tcp.host);
  const lpTcp = normalizeLpAddress(formatHostPort(tcpHost, bound.tcpPort ?? tcp.port));
  let lpUdp: string | null = null;
  if (config.lp.udp !== '') {
    const udp = parseHostPort(config.lp.udp);
    lpUdp = normalizeLpAddress(formatHostPort(announceHostFor(config.lp.announceHost, udp.host), bound.udpPort ?? udp.port));
  }
  const wireguardEndpoint = config.wireguard.endpoint !== '' ? config.wireguard.endpoint : formatHostPort(tcpHost, config.wireguard.listenPort);
  return { lpTcp, lpUdp, wireguardEndpoint: normalizeLpAddress(wireguardEndpoint) };
}

export function rolesForMode(mode: GatewayMode): GatewayRole[] {
  return mode === 'both' ? ['entry', 'exit'] : [mode];
}

/** The gateway's own tunnel addresses (wireguard.tunnel_ipv4/6, else the first host of each pool), as text. */
export function tunnelAddresses(config: GatewayConfig): { tunnelIpv4: string; tunnelIpv6: string } {
  const v4 = AddressPool.parse(config.registration.ipv4Pool, 4, config.wireguard.tunnelIpv4);
  const v6 = AddressPool.parse(config.registration.ipv6Pool, 6, config.wireguard.tunnelIpv6);
  return { tunnelIpv4: formatIp(v4.gatewayAddress), tunnelIpv6: formatIp(v6.gatewayAddress) };
}

/** Descriptor parameters for this gateway's configuration (see announcedAddresses). */
export function descriptorParamsFromConfig(config: GatewayConfig, wireguardPublicKey: Uint8Array, bound: { tcpPort?: number; udpPort?: number } = {}): DescriptorParams {
  const a = announcedAddresses(config, bound);
  const wireguard = config.wireguard.interface !== '' ? { publicKey: wireguardPublicKey, endpoint: a.wireguardEndpoint, ...tunnelAddresses(config) } : null;
  return { lpTcp: a.lpTcp, lpUdp: a.lpUdp, mode: config.mode, wireguard };
}

// ---------------------------------------------------------------------------------------------------------
// Build and verify

export function buildDescriptor(params: DescriptorParams, suite: CryptoSuite, keys: GatewayKeys): GatewayDescriptor {
  if (suite.kem.name !== 'ML-KEM-768' || suite.kem.kktCode !== 1) {
    throw new GatewayError(GatewayErrorCode.INTERNAL, `descriptor v2 supports ML-KEM-768 only, not ${suite.kem.name}`);
  }
  if (params.wireguard && params.wireguard.publicKey.length !== 32) throw new GatewayError(GatewayErrorCode.INTERNAL, 'WireGuard public key must be 32 bytes');
  const issuedAt = params.issuedAt ?? Math.floor(Date.now() / 1000);
  const unsigned: UnsignedDescriptor = {
    schema_version: 2,
    identity_key: toHex(keys.ed25519.publicKey),
    lp: { tcp: normalizeLpAddress(params.lpTcp), udp: params.lpUdp === null ? null : normalizeLpAddress(params.lpUdp) },
    kem: { algorithm: 'ML-KEM-768', kkt_code: 1, key_hash_algorithm: 'BLAKE3-256', key_hash: toHex(keys.kemKeyHash) },
    roles: rolesForMode(params.mode),
    wireguard: params.wireguard
      ? {
          public_key: Buffer.from(params.wireguard.publicKey).toString('base64'),
          endpoint: normalizeLpAddress(params.wireguard.endpoint),
          tunnel_ipv4: canonicalIp(params.wireguard.tunnelIpv4, 4),
          tunnel_ipv6: canonicalIp(params.wireguard.tunnelIpv6, 6),
        }
      : null,
    software_version: params.softwareVersion ?? softwareVersion,
    issued_at: issuedAt,
    expires_at: issuedAt + (params.validitySec ?? DEFAULT_DESCRIPTOR_VALIDITY_SEC),
  };
  checkShape({ ...unsigned, signature: '0'.repeat(128) }); // never publish what verifyDescriptor would refuse
  const signature = suite.prims.ed25519Sign(keys.ed25519.secretKey, descriptorSigningBytes(unsigned));
  return { ...unsigned, signature: toHex(signature) };
}

/** Canonical text of an IP address (RFC 5952 for IPv6); throws LPGW_ERR_BAD_ADDRESS for anything else. */
function canonicalIp(text: string, family: 4 | 6): string {
  const ip = parseIp(text);
  if (!ip || ip.family !== family) throw new GatewayError(GatewayErrorCode.BAD_ADDRESS, `'${text}' is not an IPv${family} address`);
  return formatIp(ip.bytes);
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const B64_32 = /^[A-Za-z0-9+/]{43}=$/;
const PRINTABLE = /^[\x20-\x7e]{1,64}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function exactKeys(where: string, o: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of keys) if (!Object.prototype.hasOwnProperty.call(o, k)) malformed(`${where}missing field '${k}'`);
  for (const k of Object.keys(o)) if (!keys.includes(k)) malformed(`${where}unknown field '${k}'`);
}

/** The fields that say what a gateway is: in its own descriptor, and in a directory document's list. */
export const RECORD_FIELDS = ['identity_key', 'lp', 'kem', 'roles', 'wireguard'] as const;

/** A gateway record (directory documents list these): its descriptor without version, times and signature. */
export type GatewayRecord = Pick<GatewayDescriptor, (typeof RECORD_FIELDS)[number]>;

/** The record of a descriptor. */
export function recordOf(d: GatewayDescriptor): GatewayRecord {
  return structuredClone({ identity_key: d.identity_key, lp: d.lp, kem: d.kem, roles: d.roles, wireguard: d.wireguard });
}

/** Checks the record fields of `d` (a descriptor or a directory record); `fail` throws the caller's coded error. */
export function checkRecordFields(d: Record<string, unknown>, fail: (msg: string) => never = malformed): void {
  const address = (where: string, v: unknown): void => {
    if (typeof v !== 'string') return fail(`${where} must be a HOST:PORT string`);
    let norm: string;
    try {
      norm = normalizeLpAddress(v);
    } catch (e) {
      return fail(`${where}: ${(e as Error).message}`);
    }
    if (norm !== v) fail(`${where} '${v}' is not in normalised form ('${norm}')`);
  };
  const exact = (where: string, o: Record<string, unknown>, keys: readonly string[]): void => {
    for (const k of keys) if (!Object.prototype.hasOwnProperty.call(o, k)) fail(`${where}missing field '${k}'`);
    for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${where}unknown field '${k}'`);
  };
  if (typeof d.identity_key !== 'string' || !HEX64.test(d.identity_key)) fail('identity_key must be 64 lower-case hex characters');
  const lp = d.lp;
  if (!isObject(lp)) return fail('lp must be an object');
  exact('lp: ', lp, ['tcp', 'udp']);
  address('lp.tcp', lp.tcp);
  if (lp.udp !== null) address('lp.udp', lp.udp);
  const kem = d.kem;
  if (!isObject(kem)) return fail('kem must be an object');
  exact('kem: ', kem, ['algorithm', 'kkt_code', 'key_hash_algorithm', 'key_hash']);
  if (kem.algorithm !== 'ML-KEM-768' || kem.kkt_code !== 1) fail(`unsupported KEM ${JSON.stringify(kem.algorithm)} / kkt_code ${JSON.stringify(kem.kkt_code)} (expected ML-KEM-768 / 1)`);
  if (kem.key_hash_algorithm !== 'BLAKE3-256') fail(`unsupported key_hash_algorithm ${JSON.stringify(kem.key_hash_algorithm)}`);
  if (typeof kem.key_hash !== 'string' || !HEX64.test(kem.key_hash)) fail('kem.key_hash must be 64 lower-case hex characters');
  const roles = d.roles;
  if (!Array.isArray(roles) || roles.length === 0 || roles.length > 2) return fail('roles must be a non-empty array of "entry" / "exit"');
  if (!roles.every((r) => r === 'entry' || r === 'exit') || new Set(roles).size !== roles.length) fail('roles must hold distinct "entry" / "exit" values');
  const wg = d.wireguard;
  if (wg !== null) {
    if (!isObject(wg)) return fail('wireguard must be an object or null');
    exact('wireguard: ', wg, ['public_key', 'endpoint', 'tunnel_ipv4', 'tunnel_ipv6']);
    if (typeof wg.public_key !== 'string' || !B64_32.test(wg.public_key) || Buffer.from(wg.public_key, 'base64').length !== 32) fail('wireguard.public_key must be a base64 32-byte key');
    address('wireguard.endpoint', wg.endpoint);
    for (const [k, family] of [['tunnel_ipv4', 4], ['tunnel_ipv6', 6]] as const) {
      const v = wg[k];
      const ok = typeof v === 'string' && parseIp(v)?.family === family;
      if (!ok) fail(`wireguard.${k} must be an IPv${family} address`);
      if (canonicalIp(v as string, family) !== v) fail(`wireguard.${k} '${String(v)}' is not in canonical form`);
    }
  }
}

/** Strict v2 shape check; throws LPGW_ERR_DESCRIPTOR_MALFORMED. */
function checkShape(d: unknown): GatewayDescriptor {
  if (!isObject(d)) return malformed('expected a JSON object');
  exactKeys('', d, ['schema_version', ...RECORD_FIELDS, 'software_version', 'issued_at', 'expires_at', 'signature']);
  if (d.schema_version !== DESCRIPTOR_SCHEMA_VERSION) malformed(`unsupported schema_version ${JSON.stringify(d.schema_version)} (expected ${DESCRIPTOR_SCHEMA_VERSION})`);
  checkRecordFields(d);
  if (typeof d.software_version !== 'string' || !PRINTABLE.test(d.software_version)) malformed('software_version must be 1-64 printable ASCII characters');
  if (typeof d.issued_at !== 'number' || !Number.isSafeInteger(d.issued_at) || d.issued_at < 0) malformed('issued_at must be a non-negative integer (unix seconds)');
  if (typeof d.expires_at !== 'number' || !Number.isSafeInteger(d.expires_at) || d.expires_at <= (d.issued_at as number)) malformed('expires_at must be an integer after issued_at (unix seconds)');
  if (typeof d.signature !== 'string' || !HEX128.test(d.signature)) malformed('signature must be 128 lower-case hex characters');
  return d as unknown as GatewayDescriptor;
}

/**
 * Checks shape (LPGW_ERR_DESCRIPTOR_MALFORMED), signature (LPGW_ERR_DESCRIPTOR_SIGNATURE) and validity at
 * `nowSec` (LPGW_ERR_DESCRIPTOR_EXPIRED; issued more than DESCRIPTOR_CLOCK_SKEW_SEC in the future:
 * LPGW_ERR_DESCRIPTOR_NOT_YET_VALID); returns a deep copy of the verified descriptor. A valid signature only
 * says the descriptor is what its own key announces: who that key is comes from a trust anchor (§7.6).
 */
export function verifyDescriptor(json: unknown, suite: CryptoSuite, nowSec: number = Math.floor(Date.now() / 1000)): GatewayDescriptor {
  const d = checkShape(json);
  const copy = structuredClone(d);
  const ok = suite.prims.ed25519Verify(fromHex(copy.identity_key), descriptorSigningBytes(copy), fromHex(copy.signature));
  if (!ok) throw new GatewayError(GatewayErrorCode.DESCRIPTOR_SIGNATURE, `gateway descriptor of ${copy.identity_key.slice(0, 16)}…: signature does not verify`);
  checkValidity(`gateway descriptor of ${copy.identity_key.slice(0, 16)}…`, copy.issued_at, copy.expires_at, nowSec, GatewayErrorCode.DESCRIPTOR_EXPIRED, GatewayErrorCode.DESCRIPTOR_NOT_YET_VALID);
  return copy;
}

/** Validity window check shared by descriptors and directory documents. */
export function checkValidity(what: string, issuedAt: number, expiresAt: number, nowSec: number, expiredCode: string, futureCode: string): void {
  if (nowSec >= expiresAt) throw new GatewayError(expiredCode, `${what} expired at ${new Date(expiresAt * 1000).toISOString()}`);
  if (issuedAt > nowSec + DESCRIPTOR_CLOCK_SKEW_SEC) throw new GatewayError(futureCode, `${what} is issued at ${new Date(issuedAt * 1000).toISOString()}, more than ${DESCRIPTOR_CLOCK_SKEW_SEC} s in the future (check the clocks)`);
}

/** What a client pins from a verified descriptor. */
export function descriptorPin(d: GatewayDescriptor): GatewayPin {
  return { ed25519Public: fromHex(d.identity_key), kemKeyHash: fromHex(d.kem.key_hash) };
}
