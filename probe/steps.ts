/** Steps shared by `run` and `load`: descriptor fetch, registration, rekey. */
import { ClientError, type LpConnection, type WireguardRegistration, deregisterDvpn, endpointText, registerDvpn } from '../src/client/index.js';
import type { GatewayPin, TicketType } from '../src/core/index.js';
import type { GatewayDescriptor } from '../src/gateway/descriptor.js';
import { ticketTypeName } from '../src/gateway/registration/tickets.js';
import { formatIp } from '../src/net/ip.js';
import { type CredentialSource, registerRequest } from './credentials.js';
import { ProbeErrorCode, type ProbeMode, type RegistrationInfo } from './report.js';

export interface FetchedGateway {
  descriptor: GatewayDescriptor;
  pin: GatewayPin;
}

/** HTTP API base of a `--entry`/`--exit` value (`host:port` gets `http://`; a trailing /v1/gateway is dropped). */
export function httpBase(url: string): string {
  const u = url.includes('://') ? url : `http://${url}`;
  return u.replace(/\/v1\/gateway\/?$/, '').replace(/\/$/, '');
}

/** A registration: what the report shows, and (dVPN) what the probe needs for the tunnel and to deregister. */
export interface Registered {
  info: RegistrationInfo;
  wireguard: WireguardRegistration | null;
}

/**
 * One registration over an established session: dVPN with a fresh WireGuard key pair, mixnet with a fresh
 * client id. A refusal (`success: false`) becomes a ClientError with the gateway's code (e.g.
 * LPGW_ERR_TICKET_SPENT).
 */
export async function register(conn: LpConnection, mode: ProbeMode, credentials: CredentialSource, ticketType: TicketType, timeoutMs: number): Promise<Registered> {
  const credential = credentials.take(ticketType);
  if (mode === 'dvpn') {
    const wg = await registerDvpn(conn, { credential, ticketType, timeoutMs });
    const info: RegistrationInfo = {
      ticket_type: ticketTypeName(ticketType),
      private_ipv4: formatIp(wg.ipv4),
      private_ipv6: formatIp(wg.ipv6),
      wireguard_endpoint: endpointText(wg.endpoint),
      allocated_bandwidth_bytes: wg.allocatedBandwidth.toString(),
      deregistered: null,
    };
    return { info, wireguard: wg };
  }
  const reply = await conn.request({ kind: 'register', request: registerRequest(mode, credential, ticketType) }, timeoutMs);
  if (reply.kind !== 'registerResponse') throw new ClientError('LPC_ERR_UNEXPECTED_REPLY', `expected a registration response, got ${reply.kind}`);
  const r = reply.response;
  if (!r.success) {
    if (r.error) throw new ClientError(r.error.code, r.error.message, r.error.retryAfterMs);
    throw new ClientError(ProbeErrorCode.REGISTRATION_REFUSED, 'the gateway refused the registration without an error code');
  }
  return {
    info: { ticket_type: ticketTypeName(ticketType), private_ipv4: null, private_ipv6: null, wireguard_endpoint: null, allocated_bandwidth_bytes: r.allocatedBandwidth.toString(), deregistered: null },
    wireguard: null,
  };
}

/** Removes a dVPN registration the probe made (nothing to do for mixnet); records the outcome in its info. */
export async function deregister(conn: LpConnection, reg: Registered, timeoutMs: number): Promise<void> {
  if (!reg.wireguard) return;
  try {
    await deregisterDvpn(conn, reg.wireguard, { timeoutMs });
    reg.info.deregistered = true;
  } catch (e) {
    reg.info.deregistered = false;
    throw e;
  }
}

/** Rekey (KK1 → KK2 → Ready → Ack) and one ping in the new session. */
export async function rekeyAndPing(conn: LpConnection): Promise<{ oldIndex: number; newIndex: number }> {
  const r = await conn.rekey();
  await conn.ping();
  return r;
}
