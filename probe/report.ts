/**
 * The `gateway-probe run` report: PRODUCT.md §3's shape (`entry`, `exit`, `outcome.lp`,
 * `outcome.telescoping`, `outcome.rekey`, `timings_ms`), extended — never renamed — with
 * `outcome.telescoping_rekey`, per-registration details, the transport, mode, credential and a verdict.
 * Every `error` is `{ code, message }` with the code of the ClientError / LpError / GatewayError that
 * ended the check (or one of the probe's own `LPC_ERR_*` codes below), or null.
 */
import { ClientError } from '../src/client/index.js';
import type { GatewayDescriptor } from '../src/gateway/descriptor.js';
import type { AsExitOutcome, WgOutcome } from './tunnel.js';

export type { AsExitOutcome, WgOutcome } from './tunnel.js';

/** Codes the probe itself produces (the client library's ClientError codes are the rest). */
export const ProbeErrorCode = {
  /** The check was not attempted because a check it depends on failed. */
  SKIPPED: 'LPC_ERR_SKIPPED',
  /** `--ticket FILE` holds no ticket of the type this registration needs. */
  NO_MATCHING_TICKET: 'LPC_ERR_NO_MATCHING_TICKET',
  /** `--transport udp` but the gateway's descriptor announces no LP UDP address. */
  TRANSPORT_UNAVAILABLE: 'LPC_ERR_TRANSPORT_UNAVAILABLE',
  /** The WireGuard handshake completed but no echo to one of the gateway's tunnel addresses came back. */
  TUNNEL_NO_ECHO: 'LPC_ERR_TUNNEL_NO_ECHO',
  /** No echo from the hosts beyond the exit came back through its tunnel (or two hops are impossible). */
  TUNNEL_NO_ROUTE: 'LPC_ERR_TUNNEL_NO_ROUTE',
  /** The gateway announces no WireGuard endpoint, so there is no tunnel to check. */
  NO_WIREGUARD: 'LPC_ERR_NO_WIREGUARD',
  /** `--wg-config FILE` could not be written. */
  WG_CONFIG: 'LPC_ERR_WG_CONFIG',
  /** `--state FILE` could not be read or written. */
  STATE_FILE: 'LPC_ERR_STATE_FILE',
  /** Removing the probe's registration at the end of the run failed. */
  DEREGISTER_FAILED: 'LPC_ERR_DEREGISTER_FAILED',
  /** The whole run hit `--timeout`. */
  RUN_TIMEOUT: 'LPC_ERR_RUN_TIMEOUT',
  /** A registration answered `success: false` without a coded error. */
  REGISTRATION_REFUSED: 'LPC_ERR_REGISTRATION_REFUSED',
} as const;

export type TransportName = 'tcp' | 'tcp-stream' | 'udp';
export type ProbeMode = 'dvpn' | 'mixnet';
export type CredentialKind = 'mock' | 'ticket';

export interface ErrorInfo {
  code: string;
  message: string;
}

export interface GatewayInfo {
  /** Ed25519 identity, hex; null when the descriptor could not be fetched or verified. */
  identity: string | null;
  lp_tcp: string | null;
  lp_udp: string | null;
  /** The HTTP API base URL the descriptor was fetched from. */
  http: string;
  software_version: string | null;
  roles: string[] | null;
  /** BLAKE3 of the ML-KEM-768 key, as pinned from the signed descriptor. */
  kem_key_hash: string | null;
  /** What vouched for the gateway: its pinned identity, a signed directory, or trust on first use; null when none did. */
  trusted_by: 'pinned' | 'directory' | 'trust-on-first-use' | null;
}

/** What a successful registration returned (dVPN: addresses; mixnet: only the bandwidth). */
export interface RegistrationInfo {
  ticket_type: string;
  private_ipv4: string | null;
  private_ipv6: string | null;
  wireguard_endpoint: string | null;
  allocated_bandwidth_bytes: string;
  /**
   * dVPN: whether the probe removed this registration when it ended (true), tried and failed (false), or
   * kept it (null: `--keep-registration`, `--wg-config`, or mixnet, which has nothing to remove).
   */
  deregistered: boolean | null;
}

export interface LpOutcome {
  can_connect: boolean;
  can_handshake: boolean;
  can_register: boolean;
  error: ErrorInfo | null;
  registration: RegistrationInfo | null;
}

export interface TelescopingOutcome {
  can_handshake: boolean;
  can_register: boolean;
  error: ErrorInfo | null;
  registration: RegistrationInfo | null;
}

export interface RekeyOutcome {
  can_rekey: boolean;
  old_index: number | null;
  new_index: number | null;
  error: ErrorInfo | null;
}

export interface Timings {
  /** Fetching and verifying the descriptor(s) (entry and exit in parallel). */
  descriptor: number | null;
  /** TCP connect to the entry's LP address; null for UDP (connectionless) or when not reached. */
  connect: number | null;
  handshake: number | null;
  register: number | null;
  telescoped_handshake: number | null;
  telescoped_register: number | null;
  /** Direct rekey (KK1 → Ack) plus one ping in the new session. */
  rekey: number | null;
  telescoped_rekey: number | null;
  /** WireGuard handshake + echoes with the entry (one hop). */
  tunnel: number | null;
  /** The exit's tunnel inside the entry's: handshake + echoes, and the echoes beyond the exit. */
  telescoped_tunnel: number | null;
  total: number;
}

export interface ProbeReport {
  entry: GatewayInfo;
  exit: GatewayInfo | null;
  outcome: {
    lp: LpOutcome;
    telescoping: TelescopingOutcome | null;
    rekey: RekeyOutcome | null;
    telescoping_rekey: RekeyOutcome | null;
    /** The WireGuard tunnel with the entry (dVPN, when the gateway announces a WireGuard endpoint); null when not checked. */
    wg: WgOutcome | null;
    /** With --exit: the exit's tunnel inside the entry's. */
    wg_exit: WgOutcome | null;
    /** With --exit: echoes to hosts beyond the exit through its tunnel. */
    as_exit: AsExitOutcome | null;
  };
  timings_ms: Timings;
  transport: TransportName;
  mode: ProbeMode;
  credential: CredentialKind;
  /** Local address the LP sockets were bound to (`--source-address`), or null. */
  source_address: string | null;
  /** True when every requested check passed (the exit status is 0 exactly then). */
  passed: boolean;
  /** gateway-probe software version. */
  version: string;
  started_at: string;
}

/** `{ code, message }` of any thrown value, keeping the code of coded errors. */
export function errorInfo(e: unknown): ErrorInfo {
  const c = ClientError.from(e);
  return { code: c.code, message: c.message };
}

export function skipped(what: string): ErrorInfo {
  return { code: ProbeErrorCode.SKIPPED, message: `not attempted: ${what}` };
}

export function gatewayInfo(http: string, d: GatewayDescriptor | null, trustedBy: GatewayInfo['trusted_by'] = null): GatewayInfo {
  return {
    trusted_by: trustedBy,
    identity: d?.identity_key ?? null,
    lp_tcp: d?.lp.tcp ?? null,
    lp_udp: d?.lp.udp ?? null,
    http,
    software_version: d?.software_version ?? null,
    roles: d ? [...d.roles] : null,
    kem_key_hash: d?.kem.key_hash ?? null,
  };
}

/** True when every check the report holds (i.e. every requested check) passed. */
export function reportPassed(r: Pick<ProbeReport, 'outcome'>): boolean {
  const { lp, telescoping, rekey, telescoping_rekey, wg, wg_exit, as_exit } = r.outcome;
  if (!(lp.can_connect && lp.can_handshake && lp.can_register)) return false;
  if (lp.registration?.deregistered === false || telescoping?.registration?.deregistered === false) return false;
  if (telescoping && !(telescoping.can_handshake && telescoping.can_register)) return false;
  if (rekey && !rekey.can_rekey) return false;
  if (telescoping_rekey && !telescoping_rekey.can_rekey) return false;
  for (const w of [wg, wg_exit]) if (w && !(w.can_register && w.can_handshake_v4 && w.can_handshake_v6 && w.ping_ips_performance_v4 > 0 && w.ping_ips_performance_v6 > 0)) return false;
  if (as_exit && !(as_exit.can_route_ip_v4 && as_exit.can_route_ip_v6)) return false;
  return true;
}
