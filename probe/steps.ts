/** Steps shared by `run` and `load`: descriptor fetch, registration, rekey. */
import { ClientError, type LpConnection, fetchDescriptor } from '../src/client/index.js';
import type { GatewayPin, RegisterResponse, SocketAddress, TicketType } from '../src/core/index.js';
import type { GatewayDescriptor } from '../src/gateway/descriptor.js';
import { formatIp } from '../src/gateway/registration/allocator.js';
import { ticketTypeName } from '../src/gateway/registration/tickets.js';
import { type CredentialSource, registerRequest } from './credentials.js';
import { ProbeErrorCode, type ProbeMode, type RegistrationInfo } from './report.js';

export interface FetchedGateway {
  descriptor: GatewayDescriptor;
  pin: GatewayPin;
}

/** Fetches `/v1/gateway`, checks its signature and returns the pin (identity + KEM key hash). */
export function fetchGateway(url: string, timeoutMs: number): Promise<FetchedGateway> {
  return fetchDescriptor(url, timeoutMs);
}

/** HTTP API base of a `--entry`/`--exit` value (`host:port` gets `http://`; a trailing /v1/gateway is dropped). */
export function httpBase(url: string): string {
  const u = url.includes('://') ? url : `http://${url}`;
  return u.replace(/\/v1\/gateway\/?$/, '').replace(/\/$/, '');
}

function formatEndpoint(a: SocketAddress): string {
  const host = formatIp(a.address);
  return a.family === 6 ? `[${host}]:${a.port}` : `${host}:${a.port}`;
}

export function registrationInfo(r: RegisterResponse, ticketType: TicketType): RegistrationInfo {
  const g = r.gatewayData;
  return {
    ticket_type: ticketTypeName(ticketType),
    private_ipv4: g ? formatIp(g.privateIpv4) : null,
    private_ipv6: g ? formatIp(g.privateIpv6) : null,
    wireguard_endpoint: g ? formatEndpoint(g.endpoint) : null,
    allocated_bandwidth_bytes: r.allocatedBandwidth.toString(),
  };
}

/**
 * One registration over an established session. A refusal (`success: false`) becomes a ClientError with
 * the gateway's code (e.g. LPGW_ERR_TICKET_SPENT); a dVPN success must carry GatewayData.
 */
export async function register(conn: LpConnection, mode: ProbeMode, credentials: CredentialSource, ticketType: TicketType, timeoutMs: number): Promise<RegistrationInfo> {
  const request = registerRequest(mode, credentials.take(ticketType), ticketType);
  const reply = await conn.request({ kind: 'register', request }, timeoutMs);
  if (reply.kind !== 'registerResponse') throw new ClientError('LPC_ERR_UNEXPECTED_REPLY', `expected a registration response, got ${reply.kind}`);
  const r = reply.response;
  if (!r.success) {
    if (r.error) throw new ClientError(r.error.code, r.error.message, r.error.retryAfterMs);
    throw new ClientError(ProbeErrorCode.REGISTRATION_REFUSED, 'the gateway refused the registration without an error code');
  }
  if (mode === 'dvpn' && !r.gatewayData) throw new ClientError('LPC_ERR_UNEXPECTED_REPLY', 'a successful dVPN registration carried no gateway data');
  return registrationInfo(r, ticketType);
}

/** Rekey (KK1 → KK2 → Ready → Ack) and one ping in the new session. */
export async function rekeyAndPing(conn: LpConnection): Promise<{ oldIndex: number; newIndex: number }> {
  const r = await conn.rekey();
  await conn.ping();
  return r;
}
