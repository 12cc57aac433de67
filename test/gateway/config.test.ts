/**
 * Configuration: defaults, the documented sample (config/gateway.toml) equals DEFAULT_CONFIG and lists every
 * key, precedence TOML < LPGW_* < flags, and every class of invalid input is LPGW_ERR_CONFIG naming the key
 * and the source of the bad value.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { DEFAULT_CONFIG } from '../../src/gateway/config.js';
import { CONFIG_KEYS, RUN_FLAGS_HELP, loadConfig, parseHostPort, parseRunFlags, staleRuleIds, type LoadConfigOptions } from '../../src/gateway/config-load.js';
import { GatewayError } from '../../src/gateway/errors.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLE = join(REPO, 'config', 'gateway.toml');

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'lpgw-config-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Loads with an isolated cwd and environment unless told otherwise. */
function load(opts: LoadConfigOptions = {}): ReturnType<typeof loadConfig> {
  return loadConfig({ cwd: dir, env: {}, ...opts });
}

let fileNo = 0;
function tomlFile(text: string): string {
  const f = join(dir, `c${fileNo++}.toml`);
  writeFileSync(f, text);
  return f;
}

/** Asserts LPGW_ERR_CONFIG whose message contains every fragment. */
function rejects(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof GatewayError, `expected GatewayError, got ${String(e)}`);
    assert.equal(e.code, 'LPGW_ERR_CONFIG');
    for (const f of fragments) assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

describe('defaults and the sample file', () => {
  test('no file, no environment, no flags: DEFAULT_CONFIG', () => {
    assert.deepEqual(load(), DEFAULT_CONFIG);
  });

  test('the result is a copy: mutating it leaves DEFAULT_CONFIG alone', () => {
    const c = load();
    c.directory.peers.push('http://x:1');
    c.lp.tcp = '1.2.3.4:5';
    assert.deepEqual(DEFAULT_CONFIG.directory.peers, []);
    assert.equal(DEFAULT_CONFIG.lp.tcp, '0.0.0.0:41264');
  });

  test('config/gateway.toml loads to exactly DEFAULT_CONFIG', () => {
    assert.deepEqual(load({ configFile: SAMPLE }), DEFAULT_CONFIG);
  });

  test('config/gateway.toml lists every key explicitly, each with a comment line above it', () => {
    const doc = parseToml(readFileSync(SAMPLE, 'utf8')) as Record<string, unknown>;
    const listed: string[] = [];
    for (const [k, v] of Object.entries(doc)) {
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) for (const k2 of Object.keys(v)) listed.push(`${k}.${k2}`);
      else listed.push(k);
    }
    assert.deepEqual([...listed].sort(), CONFIG_KEYS.map((k) => k.name).sort());
    const lines = readFileSync(SAMPLE, 'utf8').split('\n');
    for (const key of CONFIG_KEYS) {
      const bare = key.name.split('.').pop() ?? '';
      const i = lines.findIndex((l, idx) => l.startsWith(`${bare} =`) && (key.path.length === 1 || sectionAt(lines, idx) === key.path[0]));
      assert.ok(i > 0, `${key.name} not found`);
      assert.match(lines[i - 1] ?? '', /^# \S/, `${key.name} has no comment line`);
    }
  });

  test('found at <cwd>/config/gateway.toml without --config', () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    mkdirSync(join(cwd, 'config'));
    writeFileSync(join(cwd, 'config', 'gateway.toml'), 'mode = "exit"\n');
    assert.equal(loadConfig({ cwd, env: {} }).mode, 'exit');
    // LPGW_CONFIG wins over the default location, --config over LPGW_CONFIG
    const viaEnv = tomlFile('mode = "entry"\n');
    assert.equal(loadConfig({ cwd, env: { LPGW_CONFIG: viaEnv } }).mode, 'entry');
    assert.equal(loadConfig({ cwd, env: { LPGW_CONFIG: viaEnv }, configFile: SAMPLE }).mode, 'both');
  });

  test('schema rules and flag table only name existing keys', () => {
    assert.deepEqual(staleRuleIds(), []);
  });

  test('environment names are generated from the schema', () => {
    const env = new Map(CONFIG_KEYS.map((k) => [k.id, k.env]));
    assert.equal(env.get('mode'), 'LPGW_MODE');
    assert.equal(env.get('dataDir'), 'LPGW_DATA_DIR');
    assert.equal(env.get('lp.tcp'), 'LPGW_LP_TCP');
    assert.equal(env.get('lp.timestampToleranceSec'), 'LPGW_LP_TIMESTAMP_TOLERANCE_SEC');
    assert.equal(env.get('tables.maxSessions'), 'LPGW_TABLES_MAX_SESSIONS');
    assert.equal(env.get('http.listen'), 'LPGW_HTTP_LISTEN');
    assert.equal(env.get('directory.peers'), 'LPGW_DIRECTORY_PEERS');
    assert.equal(env.get('registration.ticketIssuers'), 'LPGW_REGISTRATION_TICKET_ISSUERS');
    assert.equal(env.get('registration.ipv4Pool'), 'LPGW_REGISTRATION_IPV4_POOL');
    assert.equal(env.get('shutdownGraceSec'), 'LPGW_SHUTDOWN_GRACE_SEC');
  });
});

function sectionAt(lines: string[], idx: number): string | null {
  for (let i = idx; i >= 0; i--) {
    const m = /^\[(\w+)\]/.exec(lines[i] ?? '');
    if (m) return m[1] ?? null;
  }
  return null;
}

describe('precedence: TOML < LPGW_* < flags', () => {
  const file = (): string => tomlFile('[lp]\ntcp = "10.0.0.1:1000"\ntimestamp_tolerance_sec = 45\n[directory]\npeers = ["http://a:8080"]\n');

  test('one key set in all three sources: the flag wins', () => {
    const { configFile, overrides } = parseRunFlags(['--config', file(), '--lp-tcp', '10.0.0.3:3000']);
    const c = load({ configFile, overrides, env: { LPGW_LP_TCP: '10.0.0.2:2000' } });
    assert.equal(c.lp.tcp, '10.0.0.3:3000');
  });

  test('TOML and environment: the environment wins; TOML alone applies', () => {
    const c = load({ configFile: file(), env: { LPGW_LP_TCP: '10.0.0.2:2000' } });
    assert.equal(c.lp.tcp, '10.0.0.2:2000');
    assert.equal(c.lp.timestampToleranceSec, 45);
    assert.equal(load({ configFile: file() }).lp.tcp, '10.0.0.1:1000');
  });

  test('lists: LPGW_ replaces the TOML list; --peer is appended', () => {
    const f = file();
    assert.deepEqual(load({ configFile: f, env: { LPGW_DIRECTORY_PEERS: 'http://b:8080, http://c:8080' } }).directory.peers, ['http://b:8080', 'http://c:8080']);
    const { overrides } = parseRunFlags(['--peer', 'http://d:8080', '--peer', 'http://a:8080']);
    assert.deepEqual(load({ configFile: f, overrides }).directory.peers, ['http://a:8080', 'http://d:8080']);
    const issuer = 'ab'.repeat(32);
    assert.deepEqual(load({ env: { LPGW_REGISTRATION_TICKET_ISSUERS: `${issuer},${'CD'.repeat(32)}` } }).registration.ticketIssuers, [issuer, 'CD'.repeat(32)]);
  });

  test('environment values are typed: numbers, booleans, lists', () => {
    const c = load({ env: { LPGW_TABLES_MAX_SESSIONS: '42', LPGW_COLLECTOR_ENABLED: 'true', LPGW_LP_HELLO_RATE_PER_SEC: '0.5', LPGW_MODE: 'exit', LPGW_CONFIG: '' } });
    assert.equal(c.tables.maxSessions, 42);
    assert.equal(c.collector.enabled, true);
    assert.equal(c.lp.helloRatePerSec, 0.5);
    assert.equal(c.mode, 'exit');
  });
});

describe('flags', () => {
  test('every run flag maps to its key', () => {
    const { configFile, overrides } = parseRunFlags([
      '--config', 'x.toml',
      '--data-dir', '/var/lib/lpgw',
      '--http', '0.0.0.0:9090',
      '--lp-tcp', '[::]:41264',
      '--lp-udp', '127.0.0.1:0',
      '--mode', 'entry',
      '--mock-ecash',
      '--peer', 'http://10.0.0.2:8080',
      '--topology', 'topo.json',
      '--announce-host', '192.0.2.1',
      '--wg-interface', 'wg0',
      '--wg-manage',
      '--collector',
      '--collector-iface', 'eth0',
      '--log-level', 'debug',
    ]);
    assert.equal(configFile, 'x.toml');
    assert.deepEqual(overrides, {
      dataDir: '/var/lib/lpgw',
      http: { listen: '0.0.0.0:9090' },
      lp: { tcp: '[::]:41264', udp: '127.0.0.1:0', announceHost: '192.0.2.1' },
      mode: 'entry',
      registration: { credentialVerifier: 'mock' },
      directory: { peers: ['http://10.0.0.2:8080'], topology: 'topo.json' },
      wireguard: { interface: 'wg0', manage: true },
      collector: { enabled: true, iface: 'eth0' },
      log: { level: 'debug' },
    });
    const c = load({ overrides });
    assert.equal(c.registration.credentialVerifier, 'mock');
    assert.equal(c.collector.enabled, true);
  });

  test('--lp-udp off disables UDP', () => {
    const { overrides } = parseRunFlags(['--lp-udp', 'off']);
    assert.deepEqual(overrides, { lp: { udp: '' } });
    assert.equal(load({ overrides }).lp.udp, '');
    assert.equal(load({ env: { LPGW_LP_UDP: 'off' } }).lp.udp, '');
    assert.equal(load({ configFile: tomlFile('[lp]\nudp = ""\n') }).lp.udp, '');
  });

  test('unknown flags, positionals and missing values are parseArgs errors', () => {
    assert.throws(() => parseRunFlags(['--bogus']), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
    assert.throws(() => parseRunFlags(['extra']), { code: 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' });
    assert.throws(() => parseRunFlags(['--lp-tcp']), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  });

  test('bad flag values are reported by loadConfig with the flag as source', () => {
    rejects(() => load(parseRunFlags(['--mode', 'relay'])), "mode: expected one of entry, exit, both; got 'relay'", '(from --mode)');
    rejects(() => load(parseRunFlags(['--log-level', 'loud'])), 'log.level:', '(from --log-level)');
    rejects(() => load(parseRunFlags(['--http', 'localhost'])), 'http.listen:', 'missing :PORT', '(from --http)');
    rejects(() => load(parseRunFlags(['--peer', 'ftp://x'])), 'directory.peers:', '(from --peer)');
  });

  test('help lists every flag', () => {
    for (const f of ['--config', '--data-dir', '--http', '--lp-tcp', '--lp-udp', '--mode', '--mock-ecash', '--peer', '--topology', '--announce-host', '--wg-interface', '--collector ', '--collector-iface', '--log-level']) {
      assert.ok(RUN_FLAGS_HELP.includes(f), f);
    }
  });
});

describe('validation', () => {
  test('registration store: postgres needs a URL; a bad URL is named without quoting it (it may hold the password)', () => {
    const c = load({ env: { LPGW_REGISTRATION_STORE: 'postgres', LPGW_REGISTRATION_POSTGRES_URL: 'postgres://gw:s3cret@db.example:5433/lpgw', LPGW_REGISTRATION_POSTGRES_SSLMODE: 'require' } });
    assert.deepEqual([c.registration.store, c.registration.postgresUrl, c.registration.postgresSslmode], ['postgres', 'postgres://gw:s3cret@db.example:5433/lpgw', 'require']);
    rejects(() => load({ env: { LPGW_REGISTRATION_STORE: 'postgres' } }), 'registration.store: "postgres" needs registration.postgres_url', '(from LPGW_REGISTRATION_STORE)');
    rejects(() => load({ env: { LPGW_REGISTRATION_STORE: 'mysql' } }), 'registration.store: expected one of sqlite, postgres');
    for (const [url, why] of [
      ['mysql://gw:s3cret@db/lpgw', 'scheme'],
      ['postgres://gw:s3cret@db.example', 'no database'],
      ['postgres://:s3cret@db.example/lpgw', 'no user'],
      ['postgres://gw:s3cret@db.example/lpgw?sslmode=disable', 'registration.postgres_sslmode'],
      ['postgres://gw:s3cret@db.example/lpgw?connect_timeout=3', 'unsupported URL parameter'],
    ] as const) {
      assert.throws(
        () => load({ env: { LPGW_REGISTRATION_POSTGRES_URL: url } }),
        (e: unknown) => e instanceof GatewayError && e.message.includes('registration.postgres_url:') && e.message.includes(why) && !e.message.includes('s3cret'),
        url,
      );
    }
    rejects(() => load({ env: { LPGW_REGISTRATION_POSTGRES_SSLMODE: 'prefer' } }), 'registration.postgres_sslmode: expected one of disable, require, verify-full');
  });

  test('unknown keys: TOML key, TOML section, LPGW_ variable, override', () => {
    rejects(() => load({ configFile: tomlFile('[lp]\ntcpp = "1.2.3.4:5"\n') }), 'lp.tcpp: unknown key', "did you mean 'lp.tcp'", '.toml)');
    rejects(() => load({ configFile: tomlFile('[lp]\ntimestampToleranceSec = 3\n') }), "did you mean 'lp.timestamp_tolerance_sec'");
    rejects(() => load({ configFile: tomlFile('[lpp]\ntcp = "1.2.3.4:5"\n') }), '[lpp]: unknown section');
    rejects(() => load({ configFile: tomlFile('[lp]\nmode = "exit"\n') }), 'lp.mode: unknown key', 'top-level key');
    rejects(() => load({ env: { LPGW_LP_TPC: '1.2.3.4:5' } }), 'LPGW_LP_TPC: unknown LPGW_ environment variable', "did you mean 'LPGW_LP_TCP'");
    rejects(() => load({ overrides: { lp: { bogus: 1 } } as never }), 'lp.bogus: unknown key (from overrides)');
  });

  test('the source is named: file path, environment variable, flag', () => {
    const f = tomlFile('[lp]\ntcp = "nope"\n');
    rejects(() => load({ configFile: f }), 'lp.tcp:', `(from ${f})`);
    rejects(() => load({ env: { LPGW_LP_TCP: 'nope' } }), 'lp.tcp:', '(from LPGW_LP_TCP)');
    rejects(() => load(parseRunFlags(['--lp-tcp', 'nope'])), 'lp.tcp:', '(from --lp-tcp)');
  });

  test('wrong types', () => {
    rejects(() => load({ configFile: tomlFile('[lp]\ntimestamp_tolerance_sec = "30"\n') }), 'lp.timestamp_tolerance_sec: expected a number');
    rejects(() => load({ configFile: tomlFile('[collector]\nenabled = "yes"\n') }), 'collector.enabled: expected true or false');
    rejects(() => load({ configFile: tomlFile('[directory]\npeers = "http://a:1"\n') }), 'directory.peers: expected an array of strings');
    rejects(() => load({ configFile: tomlFile('lp = 5\n') }), 'lp: expected a table');
    rejects(() => load({ env: { LPGW_TABLES_MAX_SESSIONS: 'many' } }), 'tables.max_sessions: expected a number', '(from LPGW_TABLES_MAX_SESSIONS)');
    rejects(() => load({ env: { LPGW_COLLECTOR_ENABLED: 'maybe' } }), 'collector.enabled: expected true or false', '(from LPGW_COLLECTOR_ENABLED)');
  });

  test('HOST:PORT syntax', () => {
    for (const bad of ['1.2.3.4', '1.2.3.4:', '1.2.3.4:65536', '1.2.3.4:-1', '::1:80', '[::1]80', '[fe80::1%eth0]:80', '[nothex]:80', ':80', 'exa mple:80', '256.1.1.1:80', 'a..b:80']) {
      rejects(() => load({ env: { LPGW_HTTP_LISTEN: bad } }), 'http.listen:', '(from LPGW_HTTP_LISTEN)');
    }
    for (const good of ['0.0.0.0:0', '[::]:8080', '[fd00::1]:65535', 'localhost:8080', 'gw-1.example.org:1']) {
      assert.equal(load({ env: { LPGW_HTTP_LISTEN: good } }).http.listen, good);
    }
    assert.deepEqual(parseHostPort('[::1]:41264'), { host: '::1', port: 41264 });
    assert.deepEqual(parseHostPort('10.0.0.1:0'), { host: '10.0.0.1', port: 0 });
    rejects(() => load({ env: { LPGW_WIREGUARD_ENDPOINT: 'x' } }), 'wireguard.endpoint:');
  });

  test('positive / non-negative integers', () => {
    rejects(() => load({ env: { LPGW_FORWARD_MAX_PER_SESSION: '0' } }), 'forward.max_per_session: expected a positive integer');
    rejects(() => load({ env: { LPGW_TABLES_MAX_SESSIONS: '-1' } }), 'tables.max_sessions: expected a non-negative integer');
    assert.equal(load({ env: { LPGW_TABLES_MAX_SESSIONS: '0' } }).tables.maxSessions, 0, '0 = from the machine\'s memory');
    rejects(() => load({ env: { LPGW_LP_MAX_PENDING_BYTES_PER_CONNECTION: '1000' } }), 'lp.max_pending_bytes_per_connection: expected an integer from 16384');
    rejects(() => load({ env: { LPGW_LP_TIMESTAMP_TOLERANCE_SEC: '-5' } }), 'lp.timestamp_tolerance_sec: expected a positive integer', '(from LPGW_LP_TIMESTAMP_TOLERANCE_SEC)');
    rejects(() => load({ configFile: tomlFile('[forward]\nmax_concurrent = 1.5\n') }), 'forward.max_concurrent: expected a positive integer');
    rejects(() => load({ env: { LPGW_TABLES_SHARDS: '5000' } }), 'tables.shards: expected an integer from 0 to 1024');
    rejects(() => load({ env: { LPGW_TABLES_SHARDS: '-1' } }), 'tables.shards: expected an integer from 0 to 1024');
    assert.equal(load({}).tables.shards, 0, 'default: auto');
    assert.equal(load({}).lp.kemBackend, 'libsodium');
    assert.equal(load({ env: { LPGW_LP_KEM_BACKEND: 'noble' } }).lp.kemBackend, 'noble');
    rejects(() => load({ env: { LPGW_LP_KEM_BACKEND: 'liboqs' } }), 'lp.kem_backend: expected one of libsodium, noble');
    assert.equal(load({ env: { LPGW_TABLES_SHARDS: '3' } }).tables.shards, 3);
    rejects(() => load({ env: { LPGW_LP_HELLO_RATE_PER_SEC: '0' } }), 'lp.hello_rate_per_sec: expected a positive number');
    assert.equal(load({ env: { LPGW_DIRECTORY_REFRESH_SEC: '0', LPGW_SHUTDOWN_GRACE_SEC: '0' } }).directory.refreshSec, 0);
    rejects(() => load({ env: { LPGW_DIRECTORY_REFRESH_SEC: '-1' } }), 'directory.refresh_sec: expected a non-negative integer');
  });

  test('enums: mode, log level, credential verifier', () => {
    rejects(() => load({ env: { LPGW_MODE: 'relay' } }), 'mode: expected one of entry, exit, both', '(from LPGW_MODE)');
    rejects(() => load({ configFile: tomlFile('[log]\nlevel = "verbose"\n') }), 'log.level: expected one of fatal, error, warn, info, debug, trace, silent');
    rejects(() => load({ env: { LPGW_REGISTRATION_CREDENTIAL_VERIFIER: 'ecash' } }), 'registration.credential_verifier:');
  });

  test('pools parse as CIDRs of the right family', () => {
    rejects(() => load({ env: { LPGW_REGISTRATION_IPV4_POOL: '10.1.0.0' } }), 'registration.ipv4_pool:', '(from LPGW_REGISTRATION_IPV4_POOL)');
    rejects(() => load({ env: { LPGW_REGISTRATION_IPV4_POOL: 'fd00::/112' } }), 'registration.ipv4_pool:');
    rejects(() => load({ configFile: tomlFile('[registration]\nipv6_pool = "fd00:1::1/112"\n') }), 'registration.ipv6_pool:', 'host bits');
    assert.equal(load({ env: { LPGW_REGISTRATION_IPV4_POOL: '192.168.0.0/24' } }).registration.ipv4Pool, '192.168.0.0/24');
  });

  test('ticket issuer keys are 64 hex characters', () => {
    rejects(() => load({ env: { LPGW_REGISTRATION_TICKET_ISSUERS: `${'ab'.repeat(32)},abcd` } }), 'registration.ticket_issuers: item 2', '64 hex');
    rejects(() => load({ configFile: tomlFile(`[registration]\nticket_issuers = ["${'zz'.repeat(32)}"]\n`) }), 'registration.ticket_issuers: item 1');
  });

  test('other value checks: peers URLs, interface names, announce host, data dir, cross-key', () => {
    rejects(() => load({ env: { LPGW_DIRECTORY_PEERS: 'not a url' } }), 'directory.peers: item 1');
    rejects(() => load({ env: { LPGW_COLLECTOR_IFACE: '' } }), 'collector.iface:');
    rejects(() => load({ env: { LPGW_WIREGUARD_INTERFACE: 'much-too-long-interface' } }), 'wireguard.interface:');
    rejects(() => load({ env: { LPGW_LP_ANNOUNCE_HOST: '1.2.3.4:80' } }), 'lp.announce_host:');
    rejects(() => load({ env: { LPGW_DATA_DIR: '' } }), 'data_dir: must not be empty', '(from LPGW_DATA_DIR)');
    rejects(() => load({ env: { LPGW_FORWARD_BACKOFF_MAX_MS: '100' } }), 'forward.backoff_max_ms', 'LPGW_FORWARD_BACKOFF_MAX_MS');
    rejects(() => load({ env: { LPGW_HTTP_LISTEN: '0.0.0.0:41264' } }), 'http.listen: port 41264 is also the LP TCP port');
    assert.equal(load({ env: { LPGW_LP_ANNOUNCE_HOST: '[fd00::5]' } }).lp.announceHost, '[fd00::5]');
  });

  test('WireGuard: interface names that are not options, manage needs an interface, uplink needs manage, tunnel addresses in the pools', () => {
    rejects(() => load({ env: { LPGW_WIREGUARD_INTERFACE: '--help' } }), "wireguard.interface: expected an interface name", "not starting with '-'");
    rejects(() => load({ env: { LPGW_WIREGUARD_INTERFACE: 'wg:0' } }), 'wireguard.interface:');
    rejects(() => load({ env: { LPGW_WIREGUARD_MANAGE: 'true' } }), 'wireguard.manage: true needs wireguard.interface', '(from LPGW_WIREGUARD_MANAGE)');
    rejects(() => load({ env: { LPGW_WIREGUARD_INTERFACE: 'wg0', LPGW_WIREGUARD_UPLINK: 'eth0' } }), 'wireguard.uplink: forwarding is set up only for a managed interface');
    rejects(() => load({ env: { LPGW_WIREGUARD_TUNNEL_IPV4: '10.2.0.1' } }), 'wireguard.tunnel_ipv4:', 'not a usable host address of the pool 10.1.0.0/16', 'pool from defaults');
    rejects(() => load({ env: { LPGW_WIREGUARD_TUNNEL_IPV6: '10.1.0.1' } }), 'wireguard.tunnel_ipv6: expected an IPv6 address');
    rejects(() => load({ env: { LPGW_WIREGUARD_LISTEN_PORT: '0' } }), 'wireguard.listen_port');
    rejects(() => load({ env: { LPGW_WIREGUARD_CONTROL: 'netlink' } }), 'wireguard.control: expected one of auto, uapi, wg');
    const ok = load({ env: { LPGW_WIREGUARD_INTERFACE: 'wg0', LPGW_WIREGUARD_MANAGE: 'yes', LPGW_WIREGUARD_UPLINK: 'eth0', LPGW_WIREGUARD_TUNNEL_IPV4: '10.1.255.254', LPGW_WIREGUARD_POLL_SEC: '1' } });
    assert.deepEqual([ok.wireguard.manage, ok.wireguard.uplink, ok.wireguard.tunnelIpv4, ok.wireguard.pollSec], [true, 'eth0', '10.1.255.254', 1]);
  });

  test('all problems are reported together; file problems are config errors', () => {
    rejects(() => load({ env: { LPGW_MODE: 'x', LPGW_LP_TCP: 'y' } }), 'mode:', 'lp.tcp:');
    rejects(() => load({ configFile: join(dir, 'missing.toml') }), 'missing.toml: does not exist', '(from --config)');
    rejects(() => load({ env: { LPGW_CONFIG: join(dir, 'missing.toml') } }), '(from LPGW_CONFIG)');
    rejects(() => load({ configFile: tomlFile('[lp\n') }), 'TOML syntax error at line 1');
  });
});
