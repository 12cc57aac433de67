/**
 * Configuration loading and validation (PRODUCT.md §3): embedded defaults (config.ts), then one TOML file,
 * then `LPGW_*` environment variables, then `lp-gateway run` flags; later sources win.
 *
 * The key set is generated from DEFAULT_CONFIG, never hand-listed: every key `section.someKey` is
 * `[section] some_key = …` in TOML and `LPGW_SECTION_SOME_KEY` in the environment (top-level keys:
 * `data_dir` / `LPGW_DATA_DIR`). Unknown keys in either are errors, as are wrong types and bad values; every
 * message names the key (TOML spelling) and the source of the bad value, e.g.
 * `lp.tcp: expected HOST:PORT … (from LPGW_LP_TCP)`. All problems are reported at once, one per line.
 *
 * Paths (data_dir, topology, out_dir) are returned as written; relative ones resolve against the process's
 * working directory where they are used.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isIPv4, isIPv6 } from 'node:net';
import { parseArgs } from 'node:util';
import { parse as parseToml, TomlError } from 'smol-toml';
import { DEFAULT_CONFIG, type GatewayConfig, type GatewayMode } from './config.js';
import { GatewayError, GatewayErrorCode } from './errors.js';
import { AddressPool } from './registration/allocator.js';
import { PG_SSL_MODES, parsePostgresUrl } from './registration/store/postgres-target.js';
import { IFACE_NAME_RE } from './wireguard/device.js';
import { isHostname, parseHostPort } from '../net/address.js';

/** Every key optional, recursively (arrays are replaced whole, except directory.peers from flags: see loadConfig). */
export type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K];
};

// ---------------------------------------------------------------------------------------------------------
// HOST:PORT

// HOST:PORT parsing is shared with the client and the forwarder (src/net/address.ts).
export { formatHostPort, isHostname, parseHostPort } from '../net/address.js';

// ---------------------------------------------------------------------------------------------------------
// The key table, generated from DEFAULT_CONFIG

type Value = string | number | boolean | string[];
type Kind = 'string' | 'number' | 'boolean' | 'string[]';

export interface ConfigKey {
  /** Path in GatewayConfig, e.g. ['lp', 'timestampToleranceSec'] or ['dataDir']. */
  readonly path: readonly string[];
  /** Dotted camelCase path, e.g. `lp.timestampToleranceSec`. */
  readonly id: string;
  /** TOML spelling, e.g. `lp.timestamp_tolerance_sec`; used in error messages. */
  readonly name: string;
  /** Environment variable, e.g. `LPGW_LP_TIMESTAMP_TOLERANCE_SEC`. */
  readonly env: string;
  readonly kind: Kind;
}

/** `timestampToleranceSec` → `timestamp_tolerance_sec`, `ipv4Pool` → `ipv4_pool`. */
export function snakeCase(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function kindOf(v: unknown): Kind {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'boolean';
  if (Array.isArray(v)) return 'string[]';
  throw new Error(`config.ts: unsupported default type ${typeof v}`);
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function buildKeys(): ConfigKey[] {
  const keys: ConfigKey[] = [];
  const add = (path: string[], v: unknown): void => {
    keys.push({ path, id: path.join('.'), name: path.map(snakeCase).join('.'), env: `LPGW_${path.map(snakeCase).join('_').toUpperCase()}`, kind: kindOf(v) });
  };
  for (const [k, v] of Object.entries(DEFAULT_CONFIG)) {
    if (isTable(v)) for (const [k2, v2] of Object.entries(v)) add([k, k2], v2);
    else add([k], v);
  }
  const envs = new Set<string>();
  for (const k of keys) {
    if (envs.has(k.env)) throw new Error(`config.ts: two keys map to ${k.env}`);
    envs.add(k.env);
  }
  return keys;
}

/** Every configuration key, in schema order. */
export const CONFIG_KEYS: readonly ConfigKey[] = buildKeys();
const BY_ID = new Map(CONFIG_KEYS.map((k) => [k.id, k]));
const BY_NAME = new Map(CONFIG_KEYS.map((k) => [k.name, k]));
const BY_ENV = new Map(CONFIG_KEYS.map((k) => [k.env, k]));
const SECTIONS = new Set(CONFIG_KEYS.filter((k) => k.path.length === 2).map((k) => k.path[0] ?? ''));

/** `LPGW_*` variables that are not configuration keys (accepted, not treated as unknown). */
export const NON_CONFIG_ENV: ReadonlySet<string> = new Set(['LPGW_CONFIG']);

// ---------------------------------------------------------------------------------------------------------
// Value rules (type checks come from the defaults; numbers default to positive integers)

class Problem extends Error {}
const problem = (msg: string): never => {
  throw new Problem(msg);
};

const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v) ?? String(v));

type Rule = (v: Value) => Value;

const positiveInt: Rule = (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : problem(`expected a positive integer, got ${show(v)}`));
const nonNegativeInt: Rule = (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : problem(`expected a non-negative integer, got ${show(v)}`));
const positiveNumber: Rule = (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : problem(`expected a positive number, got ${show(v)}`));
const intRange =
  (lo: number, hi: number): Rule =>
  (v) =>
    typeof v === 'number' && Number.isSafeInteger(v) && v >= lo && v <= hi ? v : problem(`expected an integer from ${lo} to ${hi}, got ${show(v)}`);
const oneOf =
  (values: readonly string[]): Rule =>
  (v) =>
    typeof v === 'string' && values.includes(v) ? v : problem(`expected one of ${values.join(', ')}; got ${show(v)}`);
const nonEmpty: Rule = (v) => (typeof v === 'string' && v.trim() !== '' ? v : problem('must not be empty'));

function hostPortOf(v: Value): Value {
  if (typeof v !== 'string') return problem(`expected HOST:PORT, got ${show(v)}`);
  try {
    parseHostPort(v);
  } catch (e) {
    problem((e as Error).message);
  }
  return v;
}
const hostPortOrEmpty: Rule = (v) => (v === '' ? v : hostPortOf(v));
const hostPortOrOff: Rule = (v) => (v === '' || v === 'off' ? '' : hostPortOf(v));
const hostOrEmpty: Rule = (v) => {
  if (typeof v !== 'string' || v === '') return v;
  const bare = v.startsWith('[') && v.endsWith(']') ? v.slice(1, -1) : v;
  return isIPv4(bare) || (isIPv6(bare) && !bare.includes('%')) || isHostname(bare) ? v : problem(`expected an IP address or host name (no port), got ${show(v)}`);
};
const IFACE_RE = /^[A-Za-z0-9_.:@-]{1,15}$/;
const iface: Rule = (v) => (typeof v === 'string' && IFACE_RE.test(v) && v !== '.' && v !== '..' ? v : problem(`expected a network interface name (1-15 characters), got ${show(v)}`));
// handed to `ip`, `wg`, `nft` and `wireguard-go` as an argument: no leading '-' (it would read as an option)
const ifaceArgOrEmpty: Rule = (v) =>
  v === '' || (typeof v === 'string' && IFACE_NAME_RE.test(v)) ? v : problem(`expected an interface name of 1-15 letters, digits or _.=+- not starting with '-', got ${show(v)}`);
const eachOf =
  (rule: (s: string) => string | null): Rule =>
  (v) => {
    const list = v as string[];
    list.forEach((s, i) => {
      const bad = rule(s);
      if (bad !== null) problem(`item ${i + 1} ${show(s)}: ${bad}`);
    });
    return list;
  };
const hex64 = eachOf((s) => (/^[0-9a-fA-F]{64}$/.test(s) ? null : 'expected an Ed25519 public key as 64 hex characters'));
const httpUrls = eachOf((s) => {
  try {
    const u = new URL(s);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'expected an http:// or https:// URL';
    if (u.hash !== '' && !/^#[0-9a-fA-F]{64}$/.test(u.hash)) return "the part after # must be the gateway's identity key (64 hex characters)";
    return null;
  } catch {
    return 'not a URL (expected e.g. http://10.0.0.2:8080#<identity> or http://10.0.0.2:8080/v1/gateway)';
  }
});
const nonEmptyItems = eachOf((s) => (s.trim() === '' ? 'must not be empty' : null));
const pool =
  (family: 4 | 6): Rule =>
  (v) => {
    try {
      AddressPool.parse(v as string, family);
    } catch (e) {
      problem((e as Error).message);
    }
    return v;
  };

const RULES: Readonly<Record<string, Rule>> = {
  mode: oneOf(['entry', 'exit', 'both']),
  dataDir: nonEmpty,
  'lp.tcp': hostPortOf,
  'lp.udp': hostPortOrOff,
  'lp.announceHost': hostOrEmpty,
  'lp.helloRatePerSec': positiveNumber,
  'lp.helloRateExempt': eachOf((s) => (isIPv4(s) || (isIPv6(s) && !s.includes('%')) ? null : 'expected an IP address')),
  'lp.kemBackend': oneOf(['libsodium', 'noble']),
  // At least a socket's write high-water mark (16 KiB): a reply backlog over the bound then always ends in 'drain'.
  'lp.maxPendingBytesPerConnection': intRange(16_384, 16_777_216),
  'tables.shards': intRange(0, 1024),
  'tables.maxSessions': nonNegativeInt,
  'tables.maxHandshakes': nonNegativeInt,
  'http.listen': hostPortOf,
  'directory.peers': httpUrls,
  'directory.documents': nonEmptyItems,
  'directory.keys': hex64,
  'http.descriptorValiditySec': intRange(300, 31_536_000),
  'directory.refreshSec': nonNegativeInt,
  'registration.credentialVerifier': oneOf(['mock', 'ticket']),
  'registration.ticketIssuers': hex64,
  'registration.ipv4Pool': pool(4),
  'registration.ipv6Pool': pool(6),
  'registration.mockValiditySec': positiveInt,
  'registration.store': oneOf(['sqlite', 'postgres']),
  // never quotes the value: the URL may hold the password
  'registration.postgresUrl': (v) => {
    if (v === '') return v;
    try {
      parsePostgresUrl(v as string);
    } catch (e) {
      problem((e as Error).message.replace(/^registration\.postgres_url: /, ''));
    }
    return v;
  },
  'registration.postgresSslmode': oneOf(PG_SSL_MODES),
  'registration.postgresPoolMax': intRange(1, 1000),
  'wireguard.interface': ifaceArgOrEmpty,
  'wireguard.endpoint': hostPortOrEmpty,
  'wireguard.listenPort': intRange(1, 65535),
  'wireguard.tunnelIpv4': (v) => (v === '' || isIPv4(v as string) ? v : problem(`expected an IPv4 address, got ${show(v)}`)),
  'wireguard.tunnelIpv6': (v) => (v === '' || (isIPv6(v as string) && !(v as string).includes('%')) ? v : problem(`expected an IPv6 address, got ${show(v)}`)),
  'wireguard.uplink': ifaceArgOrEmpty,
  'wireguard.control': oneOf(['auto', 'uapi', 'wg']),
  'wireguard.uapiDir': nonEmpty,
  'wireguard.wireguardGo': nonEmpty,
  'wireguard.idleTimeoutSec': nonNegativeInt,
  'wireguard.persistentKeepaliveSec': intRange(0, 65535),
  'collector.iface': iface,
  'log.level': oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  shutdownGraceSec: nonNegativeInt,
};

/** Rule and flag ids that do not name a key (a schema change left one behind); empty when consistent. */
export function staleRuleIds(): string[] {
  return [...Object.keys(RULES), ...Object.keys(FLAG_FOR_KEY)].filter((id) => !BY_ID.has(id));
}

function kindCheck(key: ConfigKey, v: unknown): Value {
  switch (key.kind) {
    case 'string':
      return typeof v === 'string' ? v : problem(`expected a string, got ${show(v)}`);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? v : problem(`expected a number, got ${show(v)}`);
    case 'boolean':
      return typeof v === 'boolean' ? v : problem(`expected true or false, got ${show(v)}`);
    case 'string[]':
      return Array.isArray(v) && v.every((s) => typeof s === 'string') ? [...(v as string[])] : problem(`expected an array of strings, got ${show(v)}`);
  }
}

/** Environment strings → typed values. */
function fromEnv(key: ConfigKey, s: string): Value {
  switch (key.kind) {
    case 'string':
      return s;
    case 'number':
      return /^-?\d+(\.\d+)?$/.test(s.trim()) ? Number(s.trim()) : problem(`expected a number, got ${show(s)}`);
    case 'boolean': {
      const t = s.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(t)) return true;
      if (['false', '0', 'no', 'off'].includes(t)) return false;
      return problem(`expected true or false, got ${show(s)}`);
    }
    case 'string[]':
      return s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== '');
  }
}

function checkValue(key: ConfigKey, raw: unknown): Value {
  const v = kindCheck(key, raw);
  const rule = RULES[key.id] ?? (key.kind === 'number' ? positiveInt : undefined);
  return rule ? rule(v) : v;
}

// ---------------------------------------------------------------------------------------------------------
// Suggestions for misspelt keys

function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0] ?? 0;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j] ?? 0;
      d[j] = Math.min((d[j] ?? 0) + 1, (d[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length] ?? 0;
}

function suggest(given: string, candidates: Iterable<string>): string {
  let best = '';
  let bestD = Infinity;
  for (const c of candidates) {
    const dd = distance(given.toLowerCase(), c.toLowerCase());
    if (dd < bestD) {
      best = c;
      bestD = dd;
    }
  }
  return bestD <= Math.max(1, Math.floor(given.length / 3)) ? `; did you mean '${best}'?` : '';
}

// ---------------------------------------------------------------------------------------------------------
// Flags of `lp-gateway run` (and `lp-gateway descriptor`)

/** Config key id → the flag that sets it (for error messages). */
const FLAG_FOR_KEY: Readonly<Record<string, string>> = {
  dataDir: '--data-dir',
  'http.listen': '--http',
  'lp.tcp': '--lp-tcp',
  'lp.udp': '--lp-udp',
  mode: '--mode',
  'registration.credentialVerifier': '--mock-ecash',
  'directory.peers': '--peer',
  'directory.trustOnFirstUse': '--trust-on-first-use',
  'directory.topology': '--topology',
  'lp.announceHost': '--announce-host',
  'wireguard.interface': '--wg-interface',
  'wireguard.manage': '--wg-manage',
  'collector.enabled': '--collector',
  'collector.iface': '--collector-iface',
  'log.level': '--log-level',
};

/** Option lines for `--help` of the commands that take the run flags (in a module of its own: the CLI's help loads nothing else). */
export { RUN_FLAGS_HELP } from './run-flags-help.js';

/**
 * Parses the `lp-gateway run` flags (strict: an unknown flag, a missing value or a positional argument
 * throws node's ERR_PARSE_ARGS_* error, which the CLI dispatcher prints as a usage error). Values are not
 * checked here: loadConfig validates them and names the flag as the source of a bad one.
 */
export function parseRunFlags(argv: string[]): { configFile?: string; overrides: DeepPartial<GatewayConfig> } {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: 'string' },
      'data-dir': { type: 'string' },
      http: { type: 'string' },
      'lp-tcp': { type: 'string' },
      'lp-udp': { type: 'string' },
      mode: { type: 'string' },
      'mock-ecash': { type: 'boolean' },
      peer: { type: 'string', multiple: true },
      'trust-on-first-use': { type: 'boolean' },
      topology: { type: 'string' },
      'announce-host': { type: 'string' },
      'wg-interface': { type: 'string' },
      'wg-manage': { type: 'boolean' },
      collector: { type: 'boolean' },
      'collector-iface': { type: 'string' },
      'log-level': { type: 'string' },
    },
  });
  const o: DeepPartial<GatewayConfig> = {};
  if (v['data-dir'] !== undefined) o.dataDir = v['data-dir'];
  if (v.http !== undefined) o.http = { listen: v.http };
  const lp: NonNullable<DeepPartial<GatewayConfig>['lp']> = {};
  if (v['lp-tcp'] !== undefined) lp.tcp = v['lp-tcp'];
  if (v['lp-udp'] !== undefined) lp.udp = v['lp-udp'] === 'off' ? '' : v['lp-udp'];
  if (v['announce-host'] !== undefined) lp.announceHost = v['announce-host'];
  if (Object.keys(lp).length > 0) o.lp = lp;
  // Values are validated by loadConfig (naming the flag as the source), so a bad --mode or --log-level is a
  // LPGW_ERR_CONFIG there like any other bad value; the casts below are checked at that point.
  if (v.mode !== undefined) o.mode = v.mode as GatewayMode;
  if (v['mock-ecash'] === true) o.registration = { credentialVerifier: 'mock' };
  const directory: NonNullable<DeepPartial<GatewayConfig>['directory']> = {};
  if (v.peer !== undefined && v.peer.length > 0) directory.peers = [...v.peer];
  if (v.topology !== undefined) directory.topology = v.topology;
  if (v['trust-on-first-use'] === true) directory.trustOnFirstUse = true;
  if (Object.keys(directory).length > 0) o.directory = directory;
  const wireguard: NonNullable<DeepPartial<GatewayConfig>['wireguard']> = {};
  if (v['wg-interface'] !== undefined) wireguard.interface = v['wg-interface'];
  if (v['wg-manage'] === true) wireguard.manage = true;
  if (Object.keys(wireguard).length > 0) o.wireguard = wireguard;
  const collector: NonNullable<DeepPartial<GatewayConfig>['collector']> = {};
  if (v.collector === true) collector.enabled = true;
  if (v['collector-iface'] !== undefined) collector.iface = v['collector-iface'];
  if (Object.keys(collector).length > 0) o.collector = collector;
  if (v['log-level'] !== undefined) o.log = { level: v['log-level'] as GatewayConfig['log']['level'] };
  return v.config !== undefined ? { configFile: v.config, overrides: o } : { overrides: o };
}

// ---------------------------------------------------------------------------------------------------------
// loadConfig

export interface LoadConfigOptions {
  /** TOML file (from --config); wins over LPGW_CONFIG and ./config/gateway.toml. */
  configFile?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Highest-precedence values (flags). `directory.peers` here is appended to the configured peers. */
  overrides?: DeepPartial<GatewayConfig>;
  /** Base for a relative config file path and for ./config/gateway.toml; defaults to process.cwd(). */
  cwd?: string;
}

/** Which TOML file loadConfig reads, and why (for a startup log line); null when none. */
export function resolveConfigFile(opts: LoadConfigOptions = {}): { path: string; source: string; explicit: boolean } | null {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  if (opts.configFile !== undefined && opts.configFile !== '') return { path: resolve(cwd, opts.configFile), source: '--config', explicit: true };
  const fromEnv = env.LPGW_CONFIG;
  if (fromEnv !== undefined && fromEnv !== '') return { path: resolve(cwd, fromEnv), source: 'LPGW_CONFIG', explicit: true };
  const dflt = resolve(cwd, 'config', 'gateway.toml');
  return existsSync(dflt) ? { path: dflt, source: 'default location', explicit: false } : null;
}

type Layer = Map<ConfigKey, { value: Value; source: string }>;

function readToml(file: { path: string; source: string }, errors: string[]): Layer {
  const layer: Layer = new Map();
  let text: string;
  try {
    text = readFileSync(file.path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    errors.push(`config file ${file.path}: ${code === 'ENOENT' ? 'does not exist' : (e as Error).message} (from ${file.source})`);
    return layer;
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text);
  } catch (e) {
    const where = e instanceof TomlError ? ` at line ${e.line}, column ${e.column}` : '';
    errors.push(`config file ${file.path}: TOML syntax error${where}: ${(e as Error).message.split('\n')[0] ?? ''}`);
    return layer;
  }
  const src = file.path;
  const take = (name: string, raw: unknown): void => {
    const key = BY_NAME.get(name);
    if (!key) {
      const known = [...BY_NAME.keys()];
      const snake = name.split('.').map(snakeCase).join('.');
      const last = name.slice(name.lastIndexOf('.') + 1);
      const hint = BY_NAME.has(snake)
        ? `; did you mean '${snake}'?`
        : name.includes('.') && BY_NAME.has(last) && !last.includes('.')
          ? `; '${last}' is a top-level key and must come before the first [section]`
          : suggest(name, known);
      errors.push(`${name}: unknown key${hint} (from ${src})`);
      return;
    }
    try {
      layer.set(key, { value: checkValue(key, raw), source: src });
    } catch (e) {
      if (!(e instanceof Problem)) throw e;
      errors.push(`${name}: ${e.message} (from ${src})`);
    }
  };
  for (const [k, v] of Object.entries(doc)) {
    if (SECTIONS.has(k)) {
      if (!isTable(v)) {
        errors.push(`${k}: expected a table [${k}], got ${show(v)} (from ${src})`);
        continue;
      }
      for (const [k2, v2] of Object.entries(v)) take(`${k}.${k2}`, v2);
    } else if (isTable(v) && !BY_NAME.has(k)) {
      errors.push(`[${k}]: unknown section${suggest(k, SECTIONS)} (from ${src})`);
    } else {
      take(k, v);
    }
  }
  return layer;
}

function readEnv(env: NodeJS.ProcessEnv, errors: string[]): Layer {
  const layer: Layer = new Map();
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('LPGW_') || raw === undefined || NON_CONFIG_ENV.has(name)) continue;
    const key = BY_ENV.get(name);
    if (!key) {
      errors.push(`${name}: unknown LPGW_ environment variable${suggest(name, [...BY_ENV.keys(), ...NON_CONFIG_ENV])} (from environment)`);
      continue;
    }
    try {
      layer.set(key, { value: checkValue(key, fromEnv(key, raw)), source: name });
    } catch (e) {
      if (!(e instanceof Problem)) throw e;
      errors.push(`${key.name}: ${e.message} (from ${name})`);
    }
  }
  return layer;
}

function readOverrides(overrides: DeepPartial<GatewayConfig>, errors: string[]): Layer {
  const layer: Layer = new Map();
  const sourceOf = (key: ConfigKey): string => FLAG_FOR_KEY[key.id] ?? 'overrides';
  const take = (id: string, raw: unknown): void => {
    if (raw === undefined) return;
    const key = BY_ID.get(id);
    if (!key) {
      errors.push(`${id}: unknown key (from overrides)`);
      return;
    }
    try {
      layer.set(key, { value: checkValue(key, raw), source: sourceOf(key) });
    } catch (e) {
      if (!(e instanceof Problem)) throw e;
      errors.push(`${key.name}: ${e.message} (from ${sourceOf(key)})`);
    }
  };
  for (const [k, v] of Object.entries(overrides as Record<string, unknown>)) {
    if (SECTIONS.has(k) && v !== undefined) {
      if (!isTable(v)) {
        errors.push(`${k}: expected an object, got ${show(v)} (from overrides)`);
        continue;
      }
      for (const [k2, v2] of Object.entries(v)) take(`${k}.${k2}`, v2);
    } else {
      take(k, v);
    }
  }
  return layer;
}

function cloneDefaults(): GatewayConfig {
  return structuredClone(DEFAULT_CONFIG);
}

function setPath(cfg: GatewayConfig, key: ConfigKey, value: Value): void {
  const root = cfg as unknown as Record<string, unknown>;
  const [a, b] = key.path;
  if (a === undefined) return;
  if (b === undefined) root[a] = value;
  else (root[a] as Record<string, unknown>)[b] = value;
}

/**
 * The effective configuration: DEFAULT_CONFIG, then the TOML file (opts.configFile, else $LPGW_CONFIG, else
 * <cwd>/config/gateway.toml if it exists), then LPGW_* variables, then opts.overrides. `directory.peers`
 * from overrides (--peer) is appended to the peers of the lower layers; every other key replaces.
 * Throws GatewayError LPGW_ERR_CONFIG listing every problem, one per line, each naming key and source.
 */
export function loadConfig(opts: LoadConfigOptions = {}): GatewayConfig {
  const errors: string[] = [];
  const file = resolveConfigFile(opts);
  const layers: Layer[] = [];
  if (file) layers.push(readToml(file, errors));
  layers.push(readEnv(opts.env ?? process.env, errors));
  const over = readOverrides(opts.overrides ?? {}, errors);

  const cfg = cloneDefaults();
  const origin = new Map<string, string>();
  for (const layer of layers) {
    for (const [key, { value, source }] of layer) {
      setPath(cfg, key, value);
      origin.set(key.id, source);
    }
  }
  for (const [key, { value, source }] of over) {
    if (key.id === 'directory.peers' && Array.isArray(value)) {
      const merged = [...cfg.directory.peers];
      for (const p of value) if (!merged.includes(p)) merged.push(p);
      cfg.directory.peers = merged;
    } else {
      setPath(cfg, key, value);
    }
    origin.set(key.id, source);
  }

  // cross-key checks
  const from = (id: string): string => origin.get(id) ?? 'defaults';
  if (cfg.forward.backoffMaxMs < cfg.forward.backoffBaseMs) {
    errors.push(`forward.backoff_max_ms: ${cfg.forward.backoffMaxMs} is below forward.backoff_base_ms ${cfg.forward.backoffBaseMs} (from ${from('forward.backoffMaxMs')}; base from ${from('forward.backoffBaseMs')})`);
  }
  if (cfg.registration.store === 'postgres' && cfg.registration.postgresUrl === '') {
    errors.push(`registration.store: "postgres" needs registration.postgres_url (or LPGW_REGISTRATION_POSTGRES_URL) (from ${from('registration.store')})`);
  }
  if (cfg.wireguard.manage && cfg.wireguard.interface === '') {
    errors.push(`wireguard.manage: true needs wireguard.interface (the name of the interface to create) (from ${from('wireguard.manage')})`);
  }
  if (cfg.wireguard.uplink !== '' && !cfg.wireguard.manage) {
    errors.push(`wireguard.uplink: forwarding is set up only for a managed interface; set wireguard.manage = true or configure forwarding yourself (from ${from('wireguard.uplink')})`);
  }
  for (const [family, poolKey, addrKey] of [[4, 'registration.ipv4Pool', 'wireguard.tunnelIpv4'], [6, 'registration.ipv6Pool', 'wireguard.tunnelIpv6']] as const) {
    const addr = family === 4 ? cfg.wireguard.tunnelIpv4 : cfg.wireguard.tunnelIpv6;
    if (addr === '') continue;
    try {
      AddressPool.parse(family === 4 ? cfg.registration.ipv4Pool : cfg.registration.ipv6Pool, family, addr);
    } catch (e) {
      errors.push(`${addrKey === 'wireguard.tunnelIpv4' ? 'wireguard.tunnel_ipv4' : 'wireguard.tunnel_ipv6'}: ${(e as Error).message} (from ${from(addrKey)}; pool from ${from(poolKey)})`);
    }
  }
  if (errors.length === 0) {
    const http = parseHostPort(cfg.http.listen);
    const tcp = parseHostPort(cfg.lp.tcp);
    const wildcard = (h: string): boolean => h === '0.0.0.0' || h === '::';
    if (http.port !== 0 && http.port === tcp.port && (http.host === tcp.host || wildcard(http.host) || wildcard(tcp.host))) {
      errors.push(`http.listen: port ${http.port} is also the LP TCP port (lp.tcp = ${cfg.lp.tcp}) (from ${from('http.listen')}; lp.tcp from ${from('lp.tcp')})`);
    }
  }
  if (errors.length > 0) throw new GatewayError(GatewayErrorCode.CONFIG, errors.join('\n'));
  return cfg;
}
