/** Option parsing shared by `gateway-probe run` and `gateway-probe load`. */
import { isIP } from 'node:net';
import { isGatewayError } from '../../gateway/errors.js';
import { type CredentialSource, MockCredentials, TicketCredentials } from '../../../probe/credentials.js';
import type { ProbeMode, TransportName } from '../../../probe/report.js';
import { httpBase } from '../../../probe/steps.js';
import { TRANSPORT_NAMES, isTransportName } from '../../../probe/transport.js';
import type { TrustOptions } from '../../../probe/trust.js';
import { UsageError } from '../command.js';
import type { CommonValues } from './probe-options.js';

export { COMMON_OPTIONS, TRUST_HELP, intOption, positiveOption, printJson, secondsOption, type CommonValues } from './probe-options.js';

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
