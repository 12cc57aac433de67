/** Option parsing shared by `gateway-probe run` and `gateway-probe load`. */
import { isIP } from 'node:net';
import { isGatewayError } from '../../gateway/errors.js';
import { type CredentialSource, MockCredentials, TicketCredentials } from '../../../probe/credentials.js';
import type { ProbeMode, TransportName } from '../../../probe/report.js';
import { httpBase } from '../../../probe/steps.js';
import { TRANSPORT_NAMES, isTransportName } from '../../../probe/transport.js';
import type { TrustOptions } from '../../../probe/trust.js';
import { UsageError } from '../command.js';

/** parseArgs option specs common to both commands. */
export const COMMON_OPTIONS = {
  entry: { type: 'string' },
  exit: { type: 'string' },
  'entry-identity': { type: 'string' },
  'exit-identity': { type: 'string' },
  directory: { type: 'string' },
  'directory-key': { type: 'string', multiple: true },
  'trust-on-first-use': { type: 'boolean', default: false },
  state: { type: 'string' },
  transport: { type: 'string', default: 'tcp' },
  mode: { type: 'string', default: 'dvpn' },
  'mock-ecash': { type: 'boolean', default: false },
  ticket: { type: 'string' },
  'source-address': { type: 'string' },
  compact: { type: 'boolean', default: false },
} as const;

export interface CommonValues {
  entry?: string | undefined;
  exit?: string | undefined;
  'entry-identity'?: string | undefined;
  'exit-identity'?: string | undefined;
  directory?: string | undefined;
  'directory-key'?: string[] | undefined;
  'trust-on-first-use': boolean;
  state?: string | undefined;
  transport: string;
  mode: string;
  'mock-ecash': boolean;
  ticket?: string | undefined;
  'source-address'?: string | undefined;
}

export interface CommonOptions {
  entry: string;
  exit: string | null;
  transport: TransportName;
  mode: ProbeMode;
  credentials: CredentialSource;
  /** Where the credential comes from, for the summary. */
  credentialNote: string;
  sourceAddress: string | null;
  trust: TrustOptions;
}

/** The trust-anchor options (help text shared by run and load). */
export const TRUST_HELP = `Trust (one is required: a self-signed descriptor alone is never trusted):
  --entry-identity KEY  the entry's identity key (64 hex, as 'lp-gateway init'
                        prints it): its descriptor must be signed by it
  --exit-identity KEY   the same for --exit
  --directory SRC       a signed directory document (URL or file, from
                        'lp-gateway directory sign') listing the gateways; their
                        descriptors must match their records
  --directory-key KEY   the directory key that must have signed it; repeatable
  --trust-on-first-use  accept whatever self-signed descriptor the URLs serve
                        (anyone on the path could pose as the gateway: localnets
                        and tests only)
  --state FILE          remember the newest descriptor per gateway and the
                        highest directory version, and refuse older ones later`;

function identityOption(flag: string, v: string | undefined): string | null {
  if (v === undefined) return null;
  if (!/^[0-9a-fA-F]{64}$/.test(v)) throw new UsageError(`${flag} must be an identity key as 64 hex characters, not '${v}'`);
  return v.toLowerCase();
}

function gatewayUrl(flag: string, v: string): string {
  let u: URL;
  try {
    u = new URL(httpBase(v));
  } catch {
    throw new UsageError(`${flag} '${v}' is not a URL such as http://127.0.0.1:8080`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${flag} must be an http:// or https:// URL, not '${v}'`);
  return v;
}

/** Validates the shared options; `consumeTickets` hands out each ticket once (load) instead of the first (run). */
export function commonOptions(v: CommonValues, consumeTickets: boolean): CommonOptions {
  if (!v.entry) throw new UsageError('--entry URL is required');
  const entry = gatewayUrl('--entry', v.entry);
  const exit = v.exit === undefined ? null : gatewayUrl('--exit', v.exit);
  if (!isTransportName(v.transport)) throw new UsageError(`--transport must be one of ${TRANSPORT_NAMES.join(', ')}, not '${v.transport}'`);
  if (v.mode !== 'dvpn' && v.mode !== 'mixnet') throw new UsageError(`--mode must be dvpn or mixnet, not '${v.mode}'`);
  const sourceAddress = v['source-address'] ?? null;
  if (sourceAddress !== null && isIP(sourceAddress) === 0) throw new UsageError(`--source-address must be an IP address, not '${sourceAddress}'`);
  if (v['mock-ecash'] && v.ticket !== undefined) throw new UsageError('--mock-ecash and --ticket exclude each other');
  let credentials: CredentialSource;
  let credentialNote: string;
  if (v.ticket !== undefined) {
    let tickets: TicketCredentials;
    try {
      tickets = TicketCredentials.fromFile(v.ticket, consumeTickets);
    } catch (e) {
      if (isGatewayError(e)) throw new UsageError(`--ticket: ${e.message} [${e.code}]`);
      throw new UsageError(`--ticket: cannot read ${v.ticket}: ${(e as Error).message}`);
    }
    if (tickets.size === 0) throw new UsageError(`--ticket: ${v.ticket} holds no tickets`);
    credentials = tickets;
    credentialNote = `tickets from ${v.ticket} (${tickets.size} in the file)`;
  } else {
    credentials = new MockCredentials();
    credentialNote = v['mock-ecash'] ? 'mock (--mock-ecash)' : 'mock (neither --mock-ecash nor --ticket given; only gateways running the mock verifier accept it)';
  }
  const directoryKeys = (v['directory-key'] ?? []).map((k) => identityOption('--directory-key', k) as string);
  if (v.directory !== undefined && directoryKeys.length === 0) throw new UsageError('--directory needs --directory-key KEY (the key that signed the document)');
  if (v.directory === undefined && directoryKeys.length > 0) throw new UsageError('--directory-key needs --directory SRC');
  const trust: TrustOptions = {
    entryIdentity: identityOption('--entry-identity', v['entry-identity']),
    exitIdentity: identityOption('--exit-identity', v['exit-identity']),
    directory: v.directory ?? null,
    directoryKeys,
    trustOnFirstUse: v['trust-on-first-use'],
    stateFile: v.state ?? null,
  };
  if (trust.exitIdentity !== null && exit === null) throw new UsageError('--exit-identity needs --exit');
  return { entry, exit, transport: v.transport, mode: v.mode, credentials, credentialNote, sourceAddress, trust };
}

/** A decimal number greater than 0 and at most `max`. */
export function positiveOption(flag: string, v: string, max: number, what = 'a number'): number {
  const n = /^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : NaN;
  if (!(n > 0 && n <= max)) throw new UsageError(`${flag} must be ${what} greater than 0 and at most ${max}, not '${v}'`);
  return n;
}

/** A positive number of seconds → ms. */
export function secondsOption(flag: string, v: string, max: number): number {
  return Math.max(1, Math.round(positiveOption(flag, v, max, 'a number of seconds') * 1000));
}

/** An integer in [min, max]. */
export function intOption(flag: string, v: string, min: number, max: number): number {
  const n = /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!(Number.isSafeInteger(n) && n >= min && n <= max)) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, not '${v}'`);
  return n;
}

export function printJson(value: unknown, compact: boolean): void {
  process.stdout.write(`${compact ? JSON.stringify(value) : JSON.stringify(value, null, 2)}\n`);
}
