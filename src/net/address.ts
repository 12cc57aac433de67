/**
 * HOST:PORT addresses, one parser for the whole project (configuration, descriptors, forwarder, client
 * transports): an IPv4 address, a bracketed IPv6 address (no zone id) or a host name, and a port 0–65535.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { GatewayError, GatewayErrorCode } from '../gateway/errors.js';

const HOSTNAME_RE = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/** A DNS host name (RFC 1123 labels; the last label not all digits, so `1.2.3` or `256.0.0.1` are refused). */
export function isHostname(s: string): boolean {
  if (!HOSTNAME_RE.test(s)) return false;
  const labels = s.replace(/\.$/, '').split('.');
  return !/^\d+$/.test(labels[labels.length - 1] ?? '');
}

function addressError(s: string, problem: string): never {
  throw new GatewayError(GatewayErrorCode.BAD_ADDRESS, `expected HOST:PORT (IPv4, [IPv6] or host name; port 0-65535), got '${s}': ${problem}`);
}

/**
 * Parses `HOST:PORT`: an IPv4 address, a bracketed IPv6 address (`[::1]:41264`, no zone id) or a host
 * name, and a decimal port 0–65535. The returned IPv6 host has no brackets (what `net.listen` wants).
 * Throws GatewayError LPGW_ERR_BAD_ADDRESS.
 */
export function parseHostPort(s: string): { host: string; port: number } {
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) addressError(s, "missing ']'");
    if (s[end + 1] !== ':') addressError(s, "expected ':PORT' after ']'");
    host = s.slice(1, end);
    portText = s.slice(end + 2);
    if (host.includes('%')) addressError(s, 'IPv6 zone ids are not supported');
    if (!isIPv6(host)) addressError(s, `'${host}' is not an IPv6 address`);
  } else {
    const i = s.lastIndexOf(':');
    if (i < 0) addressError(s, 'missing :PORT');
    host = s.slice(0, i);
    portText = s.slice(i + 1);
    if (host.includes(':')) addressError(s, 'IPv6 addresses must be in brackets, e.g. [::1]:41264');
    if (host === '') addressError(s, 'missing host');
    if (!isIPv4(host) && !isHostname(host)) addressError(s, `'${host}' is neither an IPv4 address nor a host name`);
  }
  if (!/^\d+$/.test(portText)) addressError(s, portText === '' ? 'missing port' : `port '${portText}' is not a number`);
  const port = Number(portText);
  if (port > 65535) addressError(s, `port ${portText} is out of range`);
  return { host, port };
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
