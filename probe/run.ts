/**
 * `gateway-probe run`: one pass of checks against an entry gateway and optionally a telescoped exit.
 *
 *   1. descriptors: fetch `/v1/gateway` of entry (and exit) in parallel, verify the signatures, pin the
 *      identity and the KEM key hash (the handshake's KKT step fails closed on a different key);
 *   2. lp.can_connect: descriptor verified and the LP transport reached (TCP: a connection opens;
 *      UDP: at least one reply datagram during the handshake);
 *   3. lp.can_handshake: ClientHello … Ack with the entry;
 *   4. lp.can_register: registration with the entry (`*-entry` ticket type; `*-exit` when probing a
 *      gateway alone that has only the exit role);
 *   5. with --exit: a nested session through the entry to the exit (telescoping.can_handshake) and a
 *      registration with the exit (`*-exit`, telescoping.can_register);
 *   6. with --rekey: rekey of the direct session, then of the nested one (which now travels inside the
 *      rekeyed entry session), each confirmed by a ping in the new session.
 *
 * A check whose prerequisite failed is reported false with LPC_ERR_SKIPPED. Nothing here throws for a
 * failed check: the report holds the outcome.
 */
import { chmodSync, closeSync, openSync, writeSync } from 'node:fs';
import { ForwardTransport, LpConnection, DEFAULT_TIMEOUTS, type WgTunnel, wgQuickConfig } from '../src/client/index.js';
import { type AsExitOutcome, type TunnelTarget, type WgOutcome, checkRoute, checkTunnel, emptyWgOutcome, nestedDatagrams } from './tunnel.js';
import { version } from '../src/version.js';
import { type CredentialSource, type GatewayRole, ticketTypeFor } from './credentials.js';
import { Deadline } from './deadline.js';
import {
  type ErrorInfo,
  type LpOutcome,
  type ProbeMode,
  type ProbeReport,
  type RekeyOutcome,
  type TelescopingOutcome,
  type Timings,
  type TransportName,
  ProbeErrorCode,
  errorInfo,
  gatewayInfo,
  reportPassed,
  skipped,
} from './report.js';
import { type FetchedGateway, type Registered, deregister, httpBase, register, rekeyAndPing } from './steps.js';
import { type Anchor, ProbeTrust, type TrustOptions } from './trust.js';
import { ObservedTransport, lpAddressFor, makeTransport, tcpConnectCheck } from './transport.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_PINGS = 5;
export const DEFAULT_WG_HANDSHAKE_TIMEOUT_MS = 10_000;
const PING_TIMEOUT_MS = 2000;
/** Public resolvers, as the reference probe pings: reachable from any exit that routes to the internet. */
export const DEFAULT_EXIT_PING_TARGETS = { ipv4: '1.1.1.1', ipv6: '2606:4700:4700::1111' } as const;

export interface RunOptions {
  entry: string;
  exit: string | null;
  transport: TransportName;
  mode: ProbeMode;
  credentials: CredentialSource;
  rekey: boolean;
  /** Bound on the whole run (`--timeout`), or null: each step then has its own default. */
  timeoutMs: number | null;
  /** Local address for the LP sockets (`--source-address`), or null. */
  sourceAddress: string | null;
  /** Who vouches for the gateways (`--entry-identity`, `--directory`, `--trust-on-first-use`, `--state`). */
  trust: TrustOptions;
  /** Keep the registrations instead of removing them at the end (`--keep-registration`). */
  keepRegistration?: boolean;
  /** Write the direct dVPN registration's wg-quick configuration here, mode 0600, and keep it (`--wg-config`). */
  wgConfigPath?: string | null;
  /** Check the WireGuard tunnel(s): true / false, or null = in dvpn mode when the gateway announces a WireGuard endpoint. */
  tunnel?: boolean | null;
  /** Echoes per address (`--pings`, default 5). */
  pings?: number;
  /** WireGuard handshake give-up, ms (default 10 000). */
  wgHandshakeTimeoutMs?: number;
  /** Hosts pinged beyond the exit (`--exit-ping-v4/-v6`). */
  exitPingTargets?: { ipv4: string; ipv6: string };
  /** Per-step defaults (the client library's): connect 10 s, handshake 15 s, request 30 s. */
  connectTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  requestTimeoutMs?: number;
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t = performance.now();
  const value = await f();
  return { value, ms: round(performance.now() - t) };
}

async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: ErrorInfo }> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    return { ok: false, error: errorInfo(e) };
  }
}

export async function runProbe(o: RunOptions): Promise<ProbeReport> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const deadline = Deadline.after(o.timeoutMs);
  const connectMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const handshakeMs = o.handshakeTimeoutMs ?? DEFAULT_TIMEOUTS.handshakeMs;
  const requestMs = o.requestTimeoutMs ?? DEFAULT_TIMEOUTS.requestMs;
  const entryUrl = httpBase(o.entry);
  const exitUrl = o.exit === null ? null : httpBase(o.exit);

  const timings: Timings = { descriptor: null, connect: null, handshake: null, register: null, telescoped_handshake: null, telescoped_register: null, rekey: null, telescoped_rekey: null, tunnel: null, telescoped_tunnel: null, total: 0 };
  const lp: LpOutcome = { can_connect: false, can_handshake: false, can_register: false, error: null, registration: null };
  const telescoping: TelescopingOutcome | null = exitUrl === null ? null : { can_handshake: false, can_register: false, error: null, registration: null };
  const rekey: RekeyOutcome | null = o.rekey ? { can_rekey: false, old_index: null, new_index: null, error: null } : null;
  const telescopingRekey: RekeyOutcome | null = o.rekey && exitUrl !== null ? { can_rekey: false, old_index: null, new_index: null, error: null } : null;

  let entry: FetchedGateway | null = null;
  let exit: FetchedGateway | null = null;
  const open: { close(): void }[] = [];
  const closeAll = (): void => {
    for (const c of open.splice(0).reverse()) c.close();
  };
  const anchors: { entry: Anchor | null; exit: Anchor | null } = { entry: null, exit: null };
  let wg: WgOutcome | null = null;
  let wgExit: WgOutcome | null = null;
  let asExit: AsExitOutcome | null = null;

  const finish = (): ProbeReport => {
    closeAll();
    // Every check not reached (because an earlier one failed) says so.
    if (telescoping && !telescoping.can_handshake && telescoping.error === null) telescoping.error = skipped('the entry session could not be established');
    if (rekey && !rekey.can_rekey && rekey.error === null) rekey.error = skipped('no session with the entry');
    if (telescopingRekey && !telescopingRekey.can_rekey && telescopingRekey.error === null) telescopingRekey.error = skipped('no telescoped session with the exit');
    timings.total = round(performance.now() - started);
    const report: ProbeReport = {
      entry: gatewayInfo(entryUrl, entry?.descriptor ?? null, anchors.entry),
      exit: exitUrl === null ? null : gatewayInfo(exitUrl, exit?.descriptor ?? null, anchors.exit),
      outcome: { lp, telescoping, rekey, telescoping_rekey: telescopingRekey, wg, wg_exit: wgExit, as_exit: asExit },
      timings_ms: timings,
      transport: o.transport,
      mode: o.mode,
      credential: o.credentials.kind,
      source_address: o.sourceAddress,
      passed: false,
      version,
      started_at: startedAt,
    };
    report.passed = reportPassed(report);
    return report;
  };

  // 1. trust anchors and descriptors (both at once); nothing is sent to a gateway nothing vouches for
  const d0 = performance.now();
  let trust: ProbeTrust;
  try {
    trust = await deadline.race(ProbeTrust.load(o.trust, deadline.clamp(connectMs)));
  } catch (e) {
    lp.error = errorInfo(e);
    if (telescoping) telescoping.error = skipped('no trust anchor could be loaded');
    return finish();
  }
  const fetchOne = async (role: 'entry' | 'exit', url: string): Promise<FetchedGateway> => {
    const g = await deadline.race(trust.resolve(role, url, deadline.clamp(connectMs)));
    anchors[role] = g.anchor;
    return g;
  };
  const [entryRes, exitRes] = await Promise.all([settle(fetchOne('entry', entryUrl)), exitUrl === null ? Promise.resolve(null) : settle(fetchOne('exit', exitUrl))]);
  timings.descriptor = round(performance.now() - d0);
  try {
    trust.save();
  } catch (e) {
    lp.error = { code: ProbeErrorCode.STATE_FILE, message: `cannot write the state file: ${(e as Error).message}` };
    return finish();
  }
  if (exitRes && telescoping) {
    if (exitRes.ok) exit = exitRes.value;
    else telescoping.error = exitRes.error;
  }
  if (!entryRes.ok) {
    lp.error = entryRes.error;
    return finish();
  }
  entry = entryRes.value;

  // 2. transport reachability
  let address: string;
  try {
    address = lpAddressFor(entry.descriptor, o.transport);
    if (o.transport !== 'udp') {
      timings.connect = round(await deadline.race(tcpConnectCheck(address, deadline.clamp(connectMs), o.sourceAddress)));
      lp.can_connect = true;
    }
  } catch (e) {
    lp.error = errorInfo(e);
    return finish();
  }

  // 3. handshake with the entry
  const transport = new ObservedTransport(makeTransport(o.transport, address, Math.max(1, Math.floor(Math.min(connectMs, deadline.remainingMs()))), o.sourceAddress));
  let conn: LpConnection;
  try {
    const r = await timed(() =>
      deadline.race(LpConnection.connect({ transport, gateway: entry.pin, timeouts: { handshakeMs: deadline.clamp(handshakeMs), requestMs: deadline.clamp(requestMs) } }), () => transport.close()),
    );
    conn = r.value;
    open.push(conn);
    timings.handshake = r.ms;
    lp.can_handshake = true;
    lp.can_connect = true;
  } catch (e) {
    transport.close();
    if (o.transport === 'udp') lp.can_connect = transport.replies > 0;
    lp.error = errorInfo(e);
    return finish();
  }

  // 4. registration with the entry
  const directRole: GatewayRole = exitUrl !== null || entry.descriptor.roles.includes('entry') ? 'entry' : 'exit';
  let direct: Registered | null = null;
  try {
    const r = await timed(() => deadline.race(register(conn, o.mode, o.credentials, ticketTypeFor(o.mode, directRole), deadline.clamp(requestMs)), closeAll));
    timings.register = r.ms;
    direct = r.value;
    lp.registration = r.value.info;
    lp.can_register = true;
  } catch (e) {
    lp.error = errorInfo(e);
  }
  if (direct?.wireguard && o.wgConfigPath) {
    try {
      writeWgConfig(o.wgConfigPath, direct, entry.descriptor);
    } catch (e) {
      lp.can_register = false;
      lp.error = { code: ProbeErrorCode.WG_CONFIG, message: `cannot write ${o.wgConfigPath}: ${(e as Error).message}` };
    }
  }

  // 5. telescoping: nested session through the entry, registration with the exit
  let nested: LpConnection | null = null;
  let telescopedReg: Registered | null = null;
  if (telescoping && exit) {
    const target = exit;
    try {
      const fwd = new ForwardTransport(conn, target.pin.ed25519Public, target.descriptor.lp.tcp);
      const r = await timed(() =>
        deadline.race(LpConnection.connect({ transport: fwd, gateway: target.pin, timeouts: { handshakeMs: deadline.clamp(handshakeMs), requestMs: deadline.clamp(requestMs) } }), closeAll),
      );
      nested = r.value;
      open.push(nested);
      timings.telescoped_handshake = r.ms;
      telescoping.can_handshake = true;
    } catch (e) {
      telescoping.error = errorInfo(e);
    }
    if (nested) {
      const n = nested;
      try {
        const r = await timed(() => deadline.race(register(n, o.mode, o.credentials, ticketTypeFor(o.mode, 'exit'), deadline.clamp(requestMs)), closeAll));
        timings.telescoped_register = r.ms;
        telescopedReg = r.value;
        telescoping.registration = r.value.info;
        telescoping.can_register = true;
      } catch (e) {
        telescoping.error = errorInfo(e);
      }
    }
  }

  // 6. rekey: the direct session first, then the nested one (inside the new entry session)
  if (rekey) {
    try {
      const r = await timed(() => deadline.race(rekeyAndPing(conn), closeAll));
      timings.rekey = r.ms;
      Object.assign(rekey, { can_rekey: true, old_index: r.value.oldIndex, new_index: r.value.newIndex });
    } catch (e) {
      rekey.error = errorInfo(e);
    }
    if (telescopingRekey && nested) {
      const n = nested;
      if (!rekey.can_rekey) telescopingRekey.error = skipped('the entry session failed to rekey');
      else {
        try {
          const r = await timed(() => deadline.race(rekeyAndPing(n), closeAll));
          timings.telescoped_rekey = r.ms;
          Object.assign(telescopingRekey, { can_rekey: true, old_index: r.value.oldIndex, new_index: r.value.newIndex });
        } catch (e) {
          telescopingRekey.error = errorInfo(e);
        }
      }
    }
  }

  // 7. tunnels: the entry's, then the exit's inside it and the route beyond the exit
  const wantTunnel = o.mode === 'dvpn' && (o.tunnel ?? entry.descriptor.wireguard !== null);
  if (wantTunnel) {
    const pings = o.pings ?? DEFAULT_PINGS;
    const checkOpts = { pings, handshakeTimeoutMs: o.wgHandshakeTimeoutMs ?? DEFAULT_WG_HANDSHAKE_TIMEOUT_MS, pingTimeoutMs: PING_TIMEOUT_MS };
    const targetOf = (d: FetchedGateway['descriptor']): TunnelTarget | null => (d.wireguard ? { endpoint: d.wireguard.endpoint, tunnelIpv4: d.wireguard.tunnel_ipv4, tunnelIpv6: d.wireguard.tunnel_ipv6 } : null);
    const entryTarget = targetOf(entry.descriptor);
    wg = emptyWgOutcome();
    if (exitUrl !== null) wgExit = emptyWgOutcome();
    const t0 = performance.now();
    let outer: WgTunnel | null = null;
    if (!direct?.wireguard) wg.error = skipped('the dVPN registration with the entry failed');
    else if (!entryTarget) wg.error = { code: ProbeErrorCode.NO_WIREGUARD, message: 'the entry announces no WireGuard endpoint' };
    else {
      const r = await deadline.race(checkTunnel(direct.wireguard, entryTarget, checkOpts), closeAll).catch((e: unknown) => ({ outcome: { ...emptyWgOutcome(), can_register: true, error: errorInfo(e) }, tunnel: null }));
      wg = r.outcome;
      outer = r.tunnel;
      if (outer) open.push(outer);
      timings.tunnel = round(performance.now() - t0);
    }
    if (wgExit && exit) {
      const exitTarget = targetOf(exit.descriptor);
      const t1 = performance.now();
      if (!telescopedReg?.wireguard) wgExit.error = skipped('the dVPN registration with the exit failed');
      else if (!exitTarget) wgExit.error = { code: ProbeErrorCode.NO_WIREGUARD, message: 'the exit announces no WireGuard endpoint' };
      else if (!outer || !direct?.wireguard) wgExit.error = skipped("no tunnel with the entry to carry the exit's");
      else {
        let inner: WgTunnel | null = null;
        try {
          const datagrams = nestedDatagrams(outer, direct.wireguard, exitTarget.endpoint);
          const r = await deadline.race(checkTunnel(telescopedReg.wireguard, exitTarget, { ...checkOpts, datagrams }), closeAll);
          wgExit = r.outcome;
          inner = r.tunnel;
        } catch (e) {
          wgExit = { ...emptyWgOutcome(), can_register: true, error: errorInfo(e) };
        }
        if (inner) {
          open.push(inner);
          asExit = await deadline.race(checkRoute(inner, o.exitPingTargets ?? DEFAULT_EXIT_PING_TARGETS, checkOpts), closeAll).catch((e: unknown) => ({ can_route_ip_v4: false, can_route_ip_v6: false, targets: o.exitPingTargets ?? DEFAULT_EXIT_PING_TARGETS, error: errorInfo(e) }));
        }
      }
      asExit ??= { can_route_ip_v4: false, can_route_ip_v6: false, targets: o.exitPingTargets ?? DEFAULT_EXIT_PING_TARGETS, error: skipped("no tunnel with the exit") };
      timings.telescoped_tunnel = round(performance.now() - t1);
    }
  }

  // 8. cleanup: the probe's registrations go (the nested one first, while the entry session carries it)
  if (!o.keepRegistration) {
    const cleanups: [LpConnection | null, Registered | null, ErrorSink][] = [
      [nested, telescopedReg, telescoping ?? lp],
      [conn, o.wgConfigPath ? null : direct, lp],
    ];
    for (const [c, reg, sink] of cleanups) {
      if (!c || !reg?.wireguard) continue;
      try {
        await deadline.race(deregister(c, reg, deadline.clamp(requestMs)), closeAll);
      } catch (e) {
        const err = errorInfo(e);
        sink.error ??= { code: ProbeErrorCode.DEREGISTER_FAILED, message: `the probe's registration could not be removed: ${err.code}: ${err.message}` };
      }
    }
  }
  return finish();
}

type ErrorSink = { error: ErrorInfo | null };

/** The wg-quick file for a registration: routes only the gateway's own tunnel addresses (from the signed descriptor). */
function writeWgConfig(path: string, reg: Registered, d: FetchedGateway['descriptor']): void {
  if (!reg.wireguard || !d.wireguard) throw new Error('the gateway announces no WireGuard endpoint');
  const text = wgQuickConfig(reg.wireguard, { allowedIps: [`${d.wireguard.tunnel_ipv4}/32`, `${d.wireguard.tunnel_ipv6}/128`], endpoint: d.wireguard.endpoint });
  const fd = openSync(path, 'w', 0o600);
  try {
    chmodSync(path, 0o600); // an existing file keeps its mode on open
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
