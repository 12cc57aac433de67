/**
 * Bandwidth tickets (PRODUCT.md §2): issuer keys and minting, for the operator CLI and tests.
 *
 * - Issuer key file: the 32-byte Ed25519 seed as 64 lowercase hex characters and a newline, mode 0600,
 *   never overwritten. The issuer key id is the first 8 bytes of BLAKE3(issuer Ed25519 public key).
 * - Ticket file: text, one ticket per line, each the standard base64 (with `=` padding) of the 112-byte
 *   bincode `encodeTicket` layout (src/core/codec/app.ts); blank lines and lines starting with `#` are
 *   comments. Tickets are bearer tokens, so the file is written 0600. Text keeps several tickets (e.g. a
 *   wireguard-entry and a wireguard-exit one for a telescoped probe) in one file that survives copy/paste.
 */
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { type BandwidthTicket, TicketType, decodeTicket, encodeTicket, ticketSigningBytes } from '../../core/codec/app.js';
import { fromHex, toHex } from '../../core/bytes.js';
import { isLpError } from '../../core/errors.js';
import type { Primitives } from '../../core/crypto/primitives.js';
import { sodiumPrimitives } from '../../core/crypto/sodium-backend.js';
import { GatewayErrorCode, gwFail } from '../errors.js';

export const ISSUER_KEY_ID_LEN = 8;
export const TICKET_SERIAL_LEN = 16;
/** Largest bandwidth a ticket may carry: the response field `allocated_bandwidth` is an i64. */
export const MAX_TICKET_BANDWIDTH = (1n << 63n) - 1n;

export { TICKET_TYPE_NAMES, ticketTypeFromName, ticketTypeName } from './ticket-types.js';

/** First 8 bytes of BLAKE3(issuer Ed25519 public key). */
export function issuerKeyId(publicKey: Uint8Array, prims: Primitives = sodiumPrimitives): Uint8Array {
  return prims.blake3(publicKey).slice(0, ISSUER_KEY_ID_LEN);
}

export interface IssuerKey {
  seed: Uint8Array;
  publicKey: Uint8Array;
  /** libsodium 64-byte form (seed ‖ pk). */
  secretKey: Uint8Array;
  keyId: Uint8Array;
}

export function issuerKeyFromSeed(seed: Uint8Array, prims: Primitives = sodiumPrimitives): IssuerKey {
  const kp = prims.ed25519FromSeed(seed);
  return { seed: new Uint8Array(seed), publicKey: kp.publicKey, secretKey: kp.secretKey, keyId: issuerKeyId(kp.publicKey, prims) };
}

export function generateIssuerKey(prims: Primitives = sodiumPrimitives): IssuerKey {
  return issuerKeyFromSeed(prims.randomBytes(32), prims);
}

/** Writes the seed file (0600); refuses to overwrite an existing file. */
export function writeIssuerKeyFile(path: string, key: IssuerKey): void {
  try {
    writeFileSync(path, `${toHex(key.seed)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') gwFail(GatewayErrorCode.ISSUER_KEY, `${path} already exists; refusing to overwrite an issuer key`);
    throw e;
  }
}

/** Reads a seed file written by `writeIssuerKeyFile`; refuses files readable by group or others. */
export function readIssuerKeyFile(path: string, prims: Primitives = sodiumPrimitives): IssuerKey {
  let text: string;
  try {
    if ((statSync(path).mode & 0o077) !== 0) gwFail(GatewayErrorCode.ISSUER_KEY, `${path} is accessible by group or others; run 'chmod 600 ${path}'`);
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') gwFail(GatewayErrorCode.ISSUER_KEY, `issuer key file ${path} does not exist`);
    throw e;
  }
  if (!/^[0-9a-fA-F]{64}$/.test(text)) gwFail(GatewayErrorCode.ISSUER_KEY, `${path} is not an issuer key file (expected a 64-hex-character Ed25519 seed)`);
  return issuerKeyFromSeed(fromHex(text), prims);
}

/** An issuer public key from configuration: 64 hex characters. */
export function parseIssuerPublicKey(hex: string): Uint8Array {
  const t = hex.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(t)) gwFail(GatewayErrorCode.ISSUER_KEY, `invalid ticket issuer public key '${hex}': expected 64 hex characters`);
  return fromHex(t);
}

export interface MintOptions {
  ticketType: TicketType;
  bandwidthBytes: bigint;
  /** Unix seconds after which the ticket is refused. */
  expiry: bigint;
  /** 16 bytes; random by default. */
  serial?: Uint8Array;
}

export function mintTicket(key: IssuerKey, opts: MintOptions, prims: Primitives = sodiumPrimitives): BandwidthTicket {
  if (opts.bandwidthBytes <= 0n || opts.bandwidthBytes > MAX_TICKET_BANDWIDTH) throw new RangeError(`ticket bandwidth must be between 1 and ${MAX_TICKET_BANDWIDTH} bytes`);
  if (opts.expiry < 0n || opts.expiry > MAX_TICKET_BANDWIDTH) throw new RangeError('ticket expiry out of range');
  const serial = opts.serial ?? prims.randomBytes(TICKET_SERIAL_LEN);
  if (serial.length !== TICKET_SERIAL_LEN) throw new RangeError(`ticket serial must be ${TICKET_SERIAL_LEN} bytes`);
  const unsigned = { issuerKeyId: key.keyId, serial, ticketType: opts.ticketType, bandwidthBytes: opts.bandwidthBytes, expiry: opts.expiry };
  return { ...unsigned, signature: prims.ed25519Sign(key.secretKey, ticketSigningBytes(unsigned)) };
}

export function formatTicketLine(t: BandwidthTicket): string {
  return Buffer.from(encodeTicket(t)).toString('base64');
}

export function parseTicketLine(line: string): BandwidthTicket {
  const t = line.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t)) gwFail(GatewayErrorCode.TICKET_FILE, 'a ticket line must be standard base64');
  try {
    return decodeTicket(new Uint8Array(Buffer.from(t, 'base64')));
  } catch (e) {
    if (isLpError(e)) gwFail(GatewayErrorCode.TICKET_FILE, `not a bandwidth ticket: ${e.message}`);
    throw e;
  }
}

/** Writes tickets, one base64 line each, after an optional `#` comment; `append` adds to an existing file. */
export function writeTicketFile(path: string, tickets: readonly BandwidthTicket[], opts: { append?: boolean; comment?: string } = {}): void {
  const head = opts.comment ? `# ${opts.comment.replace(/\n/g, ' ')}\n` : '';
  const body = head + tickets.map((t) => `${formatTicketLine(t)}\n`).join('');
  if (opts.append && existsSync(path)) {
    appendFileSync(path, body, { mode: 0o600 });
    return;
  }
  try {
    writeFileSync(path, body, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') gwFail(GatewayErrorCode.TICKET_FILE, `${path} already exists; pass --append to add tickets to it`);
    throw e;
  }
}

/** Every ticket in a ticket file, in file order. */
export function readTicketFile(path: string): BandwidthTicket[] {
  const out: BandwidthTicket[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      try {
        out.push(parseTicketLine(line));
      } catch (e) {
        gwFail(GatewayErrorCode.TICKET_FILE, `${path}:${i + 1}: ${(e as Error).message}`);
      }
    });
  return out;
}

const SIZE_UNITS: Readonly<Record<string, bigint>> = {
  b: 1n,
  kb: 1000n,
  mb: 1000n ** 2n,
  gb: 1000n ** 3n,
  tb: 1000n ** 4n,
  kib: 1024n,
  mib: 1024n ** 2n,
  gib: 1024n ** 3n,
  tib: 1024n ** 4n,
};

/** `1073741824`, `1GiB`, `500MiB`, `2GB`, `10 kB` → bytes; null if unparsable or outside 1..2^63-1. */
export function parseBandwidth(text: string): bigint | null {
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (!m?.[1]) return null;
  const unit = SIZE_UNITS[(m[2] ?? '').toLowerCase() || 'b'];
  if (unit === undefined) return null;
  const v = BigInt(m[1]) * unit;
  return v >= 1n && v <= MAX_TICKET_BANDWIDTH ? v : null;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** `30d`, `12h`, `90m`, `3600s`, `2w`, `3600` (seconds) → seconds; null if unparsable or not positive. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+)\s*([smhdw]?)$/.exec(text.trim());
  if (!m?.[1]) return null;
  const v = Number(m[1]) * (DURATION_UNITS[m[2] || 's'] ?? 1);
  return Number.isSafeInteger(v) && v > 0 ? v : null;
}

/** Human form of a byte count for messages: `1 GiB`, `1500 B`. */
export function formatBytes(n: bigint): string {
  for (const [name, f] of [
    ['TiB', 1024n ** 4n],
    ['GiB', 1024n ** 3n],
    ['MiB', 1024n ** 2n],
    ['KiB', 1024n],
  ] as const) {
    if (n >= f && n % f === 0n) return `${n / f} ${name}`;
  }
  return `${n} B`;
}
