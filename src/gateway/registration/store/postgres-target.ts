/**
 * Where the PostgreSQL store connects and how it authenticates, from `registration.postgres_url` and the TLS
 * settings — with the password kept out of every log line and error message.
 *
 * URL: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgresql://`), IPv6 hosts in brackets; a
 * UNIX socket directory as `?host=/var/run/postgresql` with an empty host part; `?application_name=` is the
 * only other parameter (TLS is configured with `registration.postgres_sslmode`, not in the URL, so one place
 * decides it). The password, like libpq's: the URL's, else `PGPASSWORD`, else the password file (`PGPASSFILE`,
 * else `~/.pgpass`; ignored unless only its owner can read it), looked up at every new connection so a
 * rotated file takes effect without a restart. A URL without a password is therefore the way to keep the
 * secret out of the configuration.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { GatewayErrorCode, gwFail } from '../../errors.js';

export type PgSslMode = 'disable' | 'require' | 'verify-full';
export const PG_SSL_MODES: readonly PgSslMode[] = ['disable', 'require', 'verify-full'];

export interface PgTarget {
  /** Host name or address, or the socket directory (starts with '/'). */
  host: string;
  port: number;
  database: string;
  user: string;
  /** From the URL; null → PGPASSWORD or the password file. */
  password: string | null;
  applicationName: string;
}

const REDACTED = '***';

/** The URL with its password replaced by *** (for logs); '' stays ''. Unparseable text is hidden whole. */
export function redactUrl(url: string): string {
  if (url === '') return '';
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = REDACTED;
    return u.toString();
  } catch {
    return '<unparseable postgres_url>';
  }
}

/** Replaces every occurrence of `secret` (raw and URL-encoded) in `text`. */
export function redactSecret(text: string, secret: string | null): string {
  if (!secret) return text;
  let out = text;
  for (const s of new Set([secret, encodeURIComponent(secret)])) if (s.length > 0) out = out.split(s).join(REDACTED);
  return out;
}

/** Parses the URL; throws LPGW_ERR_CONFIG naming what is wrong but never quoting the URL (it may hold the password). */
export function parsePostgresUrl(url: string): PgTarget {
  const bad = (why: string): never => gwFail(GatewayErrorCode.CONFIG, `registration.postgres_url: ${why} (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return bad('not a URL');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') bad(`the scheme must be postgres:// or postgresql://, not ${u.protocol}//`);
  let host = u.hostname.replace(/^\[|\]$/g, '');
  let applicationName = 'lp-gateway';
  for (const [k, v] of u.searchParams) {
    if (k === 'host') host = v;
    else if (k === 'application_name') applicationName = v;
    else if (k === 'sslmode' || k.startsWith('ssl')) bad(`set TLS with registration.postgres_sslmode (and postgres_ca_file), not the URL parameter '${k}'`);
    else bad(`unsupported URL parameter '${k}' (only host and application_name)`);
  }
  if (host === '') bad('no host');
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (database === '' || database.includes('/')) bad('no database name (…/DATABASE)');
  const user = decodeURIComponent(u.username);
  if (user === '') bad('no user (USER@HOST)');
  const port = u.port === '' ? 5432 : Number(u.port);
  return { host, port, database, user, password: u.password === '' ? null : decodeURIComponent(u.password), applicationName };
}

/** One `hostname:port:database:username:password` line of a password file, `*` matching anything. */
function passfileMatch(line: string, t: PgTarget): string | null {
  if (line.startsWith('#') || line.trim() === '') return null;
  const fields: string[] = [];
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '\\' && i + 1 < line.length) cur += line[++i];
    else if (c === ':' && fields.length < 4) {
      fields.push(cur);
      cur = '';
    } else cur += c;
  }
  fields.push(cur);
  if (fields.length !== 5) return null;
  const [h, p, d, u, pw] = fields as [string, string, string, string, string];
  const host = t.host.startsWith('/') ? 'localhost' : t.host;
  const ok = (pattern: string, value: string): boolean => pattern === '*' || pattern === value;
  return ok(h, host) && ok(p, String(t.port)) && ok(d, t.database) && ok(u, t.user) ? pw : null;
}

/** The password for a new connection (see the file comment); undefined when there is none. */
export function resolvePassword(t: PgTarget, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (t.password !== null) return t.password;
  if (env.PGPASSWORD !== undefined && env.PGPASSWORD !== '') return env.PGPASSWORD;
  const file = env.PGPASSFILE && env.PGPASSFILE !== '' ? env.PGPASSFILE : join(homedir(), '.pgpass');
  let text: string;
  try {
    // like libpq: a file others can read is not trusted with the password
    if ((statSync(file).mode & 0o077) !== 0) return undefined;
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const pw = passfileMatch(line.replace(/\r$/, ''), t);
    if (pw !== null) return pw;
  }
  return undefined;
}

/** node-postgres `ssl` option for the mode: false, TLS without verification, or TLS verifying CA and host name. */
export function tlsOptions(mode: PgSslMode, caFile: string): false | ConnectionOptions {
  if (mode === 'disable') return false;
  if (mode === 'require') return { rejectUnauthorized: false };
  let ca: string | undefined;
  if (caFile !== '') {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (e) {
      gwFail(GatewayErrorCode.CONFIG, `registration.postgres_ca_file: cannot read ${caFile}: ${(e as Error).message}`);
    }
  }
  // node-postgres sets the server name (SNI and the certificate check) from the host itself
  return { rejectUnauthorized: true, ...(ca !== undefined ? { ca } : {}) };
}
