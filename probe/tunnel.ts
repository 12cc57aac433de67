/**
 * The probe's WireGuard checks (issue "gateway-probe checks the tunnel itself"): after a dVPN registration,
 * a real WireGuard handshake with the gateway's interface and echoes to the gateway's own tunnel addresses
 * over IPv4 and IPv6 — in TypeScript over a plain UDP socket (src/client/wireguard), so the probe needs no
 * root, TUN or kernel module. Two hops: the exit's tunnel runs inside the entry's (its UDP datagrams travel
 * as IP/UDP packets in the outer tunnel, the entry forwards them to the exit), then echoes to hosts beyond the
 * exit show whether it routes.
 *
 * Names follow the reference probe (nym-gateway-probe) where it has them: `can_handshake_v4/v6` = the
 * handshake completed and the tunnel carried that IP version (at least one echo to the gateway's address of
 * that version came back); `ping_ips_performance_v4/v6` = the ratio of echoes answered.
 */
import { randomInt } from 'node:crypto';
import { type DatagramTransport, type WgTunnel, type WireguardRegistration, WgTunnel as Tunnel } from '../src/client/index.js';
import { parseIp } from '../src/net/ip.js';
import { parseHostPort } from '../src/net/address.js';
import { type ErrorInfo, ProbeErrorCode, errorInfo } from './report.js';

export interface WgOutcome {
  /** The dVPN registration this tunnel uses succeeded. */
  can_register: boolean;
  can_handshake_v4: boolean;
  can_handshake_v6: boolean;
  /** Echoes answered ÷ sent, 0–1. */
  ping_ips_performance_v4: number;
  ping_ips_performance_v6: number;
  /** Round-trip times of the answered echoes (both versions). */
  latency_ms: { p50: number; max: number } | null;
  /** The WireGuard handshake (first initiation → accepted response), ms. */
  handshake_ms: number | null;
  error: ErrorInfo | null;
}

export interface AsExitOutcome {
  /** An echo to `targets.ipv4` through the exit's tunnel came back. */
  can_route_ip_v4: boolean;
  can_route_ip_v6: boolean;
  /** The hosts pinged beyond the exit. */
  targets: { ipv4: string; ipv6: string };
  error: ErrorInfo | null;
}

export function emptyWgOutcome(): WgOutcome {
  return { can_register: false, can_handshake_v4: false, can_handshake_v6: false, ping_ips_performance_v4: 0, ping_ips_performance_v6: 0, latency_ms: null, handshake_ms: null, error: null };
}

/** What the probe knows of a gateway's tunnel side, from its signed descriptor. */
export interface TunnelTarget {
  /** `wireguard.endpoint` of the descriptor, HOST:PORT. */
  endpoint: string;
  tunnelIpv4: string;
  tunnelIpv6: string;
}

export interface TunnelCheckOptions {
  pings: number;
  handshakeTimeoutMs: number;
  /** Per echo. */
  pingTimeoutMs: number;
  /** Datagrams through another tunnel (two hops); default a UDP socket to the endpoint. */
  datagrams?: DatagramTransport;
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

function bytesOf(ip: string, family: 4 | 6): Uint8Array {
  const p = parseIp(ip);
  if (!p || p.family !== family) throw new Error(`not an IPv${family} address: ${ip}`);
  return p.bytes;
}

/**
 * Brings a tunnel up with `reg` and pings the target's tunnel addresses `pings` times each. Returns the
 * outcome and, when the handshake completed, the open tunnel (the caller closes it).
 */
export async function checkTunnel(reg: WireguardRegistration, target: TunnelTarget, o: TunnelCheckOptions): Promise<{ outcome: WgOutcome; tunnel: WgTunnel | null }> {
  const outcome = emptyWgOutcome();
  outcome.can_register = true;
  let tunnel: WgTunnel;
  try {
    const { host, port } = parseHostPort(target.endpoint);
    tunnel = await Tunnel.connect({
      privateKey: reg.keys.secretKey,
      peerPublicKey: reg.gatewayPublicKey,
      presharedKey: reg.psk,
      endpoint: { host: host.replace(/^\[|\]$/g, ''), port },
      localIpv4: reg.ipv4,
      localIpv6: reg.ipv6,
      timeoutMs: o.handshakeTimeoutMs,
      ...(o.datagrams ? { datagrams: o.datagrams } : {}),
    });
  } catch (e) {
    o.datagrams?.close();
    outcome.error = errorInfo(e);
    return { outcome, tunnel: null };
  }
  outcome.handshake_ms = round(tunnel.stats.handshakeMs);
  const rtts: number[] = [];
  for (const family of [4, 6] as const) {
    const r = await tunnel.ping(bytesOf(family === 4 ? target.tunnelIpv4 : target.tunnelIpv6, family), { count: o.pings, timeoutMs: o.pingTimeoutMs });
    rtts.push(...r.rttMs);
    const ratio = r.sent > 0 ? r.received / r.sent : 0;
    if (family === 4) {
      outcome.ping_ips_performance_v4 = ratio;
      outcome.can_handshake_v4 = r.received > 0;
    } else {
      outcome.ping_ips_performance_v6 = ratio;
      outcome.can_handshake_v6 = r.received > 0;
    }
  }
  if (rtts.length > 0) {
    const s = [...rtts].sort((a, b) => a - b);
    outcome.latency_ms = { p50: round(s[Math.ceil(s.length / 2) - 1] as number), max: round(s[s.length - 1] as number) };
  }
  if (!(outcome.can_handshake_v4 && outcome.can_handshake_v6)) {
    const missing = [outcome.can_handshake_v4 ? null : `IPv4 (${target.tunnelIpv4})`, outcome.can_handshake_v6 ? null : `IPv6 (${target.tunnelIpv6})`].filter(Boolean).join(' and ');
    outcome.error = { code: ProbeErrorCode.TUNNEL_NO_ECHO, message: `the WireGuard handshake completed but no echo to the gateway's ${missing} tunnel address came back` };
  }
  return { outcome, tunnel };
}

/**
 * The datagram path for a tunnel nested in `outer` (two hops): UDP from the client's outer tunnel address
 * (of the endpoint's family) to the inner gateway's WireGuard endpoint, which must be an IP address.
 */
export function nestedDatagrams(outer: WgTunnel, outerReg: WireguardRegistration, innerEndpoint: string): DatagramTransport {
  const { host, port } = parseHostPort(innerEndpoint);
  const ip = parseIp(host.replace(/^\[|\]$/g, ''));
  if (!ip) throw Object.assign(new Error(`the exit's WireGuard endpoint ${innerEndpoint} is not an IP address; two hops need one`), { code: ProbeErrorCode.TUNNEL_NO_ROUTE });
  return outer.udpTransport({ src: ip.family === 4 ? outerReg.ipv4 : outerReg.ipv6, srcPort: randomInt(40_000, 60_000), dst: ip.bytes, dstPort: port });
}

/** Echoes to hosts beyond the exit, through the exit's tunnel. */
export async function checkRoute(inner: WgTunnel, targets: { ipv4: string; ipv6: string }, o: { pings: number; pingTimeoutMs: number }): Promise<AsExitOutcome> {
  const out: AsExitOutcome = { can_route_ip_v4: false, can_route_ip_v6: false, targets, error: null };
  try {
    out.can_route_ip_v4 = (await inner.ping(bytesOf(targets.ipv4, 4), { count: o.pings, timeoutMs: o.pingTimeoutMs })).received > 0;
    out.can_route_ip_v6 = (await inner.ping(bytesOf(targets.ipv6, 6), { count: o.pings, timeoutMs: o.pingTimeoutMs })).received > 0;
  } catch (e) {
    out.error = errorInfo(e);
    return out;
  }
  if (!out.can_route_ip_v4 || !out.can_route_ip_v6) {
    const missing = [out.can_route_ip_v4 ? null : targets.ipv4, out.can_route_ip_v6 ? null : targets.ipv6].filter(Boolean).join(' and ');
    out.error = { code: ProbeErrorCode.TUNNEL_NO_ROUTE, message: `no echo from ${missing} came back through the exit` };
  }
  return out;
}
