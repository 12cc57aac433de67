/**
 * Credentials and registration requests for the probe.
 *
 * - mock: a fixed, recognisable blob (gateways running the `mock` verifier accept any well-formed one);
 * - ticket file (`--ticket FILE`, one base64 ticket per line, see src/gateway/registration/tickets.ts):
 *   `run` uses the first ticket of the type each registration needs (the file is never rewritten, so a
 *   second run with a single-use ticket shows `LPGW_ERR_TICKET_SPENT`); `load` hands out each ticket once,
 *   in file order.
 */
import { ClientError } from '../src/client/index.js';
import { type BandwidthTicket, type Credential, type RegisterRequest, TicketType, defaultSuite } from '../src/core/index.js';
import { readTicketFile, ticketTypeName } from '../src/gateway/registration/tickets.js';
import { type CredentialKind, type ProbeMode, ProbeErrorCode } from './report.js';

export const MOCK_CREDENTIAL_BLOB: Uint8Array = new TextEncoder().encode('gateway-probe mock credential v1');

export type GatewayRole = 'entry' | 'exit';

/** wireguard-entry / wireguard-exit for dVPN, mixnet-entry / mixnet-exit for mixnet. */
export function ticketTypeFor(mode: ProbeMode, role: GatewayRole): TicketType {
  if (mode === 'dvpn') return role === 'entry' ? TicketType.V1WireguardEntry : TicketType.V1WireguardExit;
  return role === 'entry' ? TicketType.V1MixnetEntry : TicketType.V1MixnetExit;
}

export interface CredentialSource {
  readonly kind: CredentialKind;
  /** A credential for one registration of `type`; throws ClientError LPC_ERR_NO_MATCHING_TICKET. */
  take(type: TicketType): Credential;
}

export class MockCredentials implements CredentialSource {
  readonly kind = 'mock' as const;
  take(): Credential {
    return { kind: 'mock', blob: MOCK_CREDENTIAL_BLOB };
  }
}

export class TicketCredentials implements CredentialSource {
  readonly kind = 'ticket' as const;
  private readonly used = new Set<BandwidthTicket>();

  /**
   * @param consume false: every registration of a type gets the first ticket of that type (`run`);
   *                true: each ticket is handed out once, in file order (`load`).
   */
  constructor(
    private readonly tickets: readonly BandwidthTicket[],
    private readonly consume: boolean,
    private readonly source = 'ticket file',
  ) {}

  /** Reads FILE (GatewayError LPGW_ERR_TICKET_FILE for a bad line; fs errors as thrown by node). */
  static fromFile(path: string, consume: boolean): TicketCredentials {
    return new TicketCredentials(readTicketFile(path), consume, path);
  }

  get size(): number {
    return this.tickets.length;
  }

  /** How many tickets of `type` the file holds. */
  count(type: TicketType): number {
    return this.tickets.filter((t) => t.ticketType === type).length;
  }

  take(type: TicketType): Credential {
    const t = this.tickets.find((x) => x.ticketType === type && !(this.consume && this.used.has(x)));
    if (!t) {
      const what = this.consume && this.count(type) > 0 ? `all ${this.count(type)} ${ticketTypeName(type)} ticket(s) are used up` : `no ${ticketTypeName(type)} ticket`;
      throw new ClientError(ProbeErrorCode.NO_MATCHING_TICKET, `${this.source}: ${what}`);
    }
    if (this.consume) this.used.add(t);
    return { kind: 'ticket', ticket: t };
  }
}

/**
 * A registration with a fresh WireGuard public key (dVPN; whose private key is dropped, so only tests that
 * never use the tunnel take this path — the probe registers dVPN through registerDvpn) or client id (mixnet),
 * so probes never collide.
 */
export function registerRequest(mode: ProbeMode, credential: Credential, ticketType: TicketType, nowSec = Math.floor(Date.now() / 1000)): RegisterRequest {
  const prims = defaultSuite.prims;
  return {
    mode: mode === 'dvpn' ? { kind: 'dvpn', wgPublicKey: prims.x25519FromSecret(prims.randomBytes(32)).publicKey } : { kind: 'mixnet', clientId: prims.randomBytes(32) },
    credential,
    ticketType,
    timestamp: BigInt(nowSec),
  };
}
