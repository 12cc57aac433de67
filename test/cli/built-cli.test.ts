/**
 * The binaries run the compiled JavaScript in dist/ (built by `npm ci` through `prepare`, or `npm run build`;
 * `npm run test:unit` rebuilds it first when a source is newer): dist/ is current, both programs and every
 * command print their help from dist/ exactly as from the TypeScript sources, a `--help` loads none of the
 * heavy modules (crypto backends, logger, HTTP server, databases), and a checkout whose dist/ is stale or
 * missing runs the sources through tsx, or says clearly what to do when tsx is not installed either.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { distStale } from '../../bin/dist-state.js';
import { commands as gatewayCommands } from '../../src/cli/lp-gateway.js';
import { commands as probeCommands } from '../../src/cli/gateway-probe.js';
import { TicketType } from '../../src/core/codec/app.js';
import { TICKET_TYPE_NAMES, ticketTypeFromName, ticketTypeName } from '../../src/gateway/registration/ticket-types.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROGRAMS = { 'lp-gateway': gatewayCommands, 'gateway-probe': probeCommands } as const;

function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...nodeArgs, bin, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('dist/ is current (npm ci and npm run test:unit build it; npm run build by hand)', () => {
  assert.equal(distStale(ROOT), null);
});

test('both programs and every command print the same help from dist/ as from the sources', () => {
  for (const [program, commands] of Object.entries(PROGRAMS)) {
    const bin = join(ROOT, 'bin', `${program}.js`);
    for (const args of [['--help'], ...commands.map((c) => [...c.path, '--help'])]) {
      const built = run(bin, args, { LP_GATEWAY_FROM_SOURCE: '0' });
      assert.equal(built.code, 0, `${program} ${args.join(' ')}: ${built.stderr}`);
      assert.equal(built.stderr, '');
      assert.match(built.stdout, new RegExp(`Usage: ${program}`));
      const source = run(bin, args, { LP_GATEWAY_FROM_SOURCE: '1' });
      assert.equal(source.code, 0, source.stderr);
      assert.equal(built.stdout, source.stdout, `${program} ${args.join(' ')}: dist/ and src/ print the same help`);
    }
  }
});

test('a --help loads only the CLI: no crypto backend, logger, HTTP server, metrics or database', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lpgw-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  // A resolve hook that records every module the process loads.
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(hooks, `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(join(dir, 'loaded.txt'))}, r.url + '\\n'); return r; }\n`);
  const register = join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
  const heavy = ['sodium-native', 'libsodium', '@noble', '@napi-rs', 'pino', 'fastify', 'prom-client', 'better-sqlite3', '/pg/', 'smol-toml', 'koffi', 'lru-cache', 'tsx'];
  for (const [program, commands] of Object.entries(PROGRAMS)) {
    for (const args of [['--help'], ...commands.map((c) => [...c.path, '--help'])]) {
      writeFileSync(join(dir, 'loaded.txt'), '');
      const r = run(join(ROOT, 'bin', `${program}.js`), args, { LP_GATEWAY_FROM_SOURCE: '0' }, ['--import', register]);
      assert.equal(r.code, 0, r.stderr);
      const loaded = readFileSync(join(dir, 'loaded.txt'), 'utf8').split('\n').filter(Boolean);
      assert.ok(loaded.some((u) => u.includes('/dist/src/cli/')), `${program} ${args.join(' ')} ran from dist/`);
      const bad = loaded.filter((u) => heavy.some((h) => u.includes(h)));
      assert.deepEqual(bad, [], `${program} ${args.join(' ')} --help loaded ${bad.join(', ')}`);
    }
  }
});

/** A package root with its own bin/ and dist/ and the checkout's sources (and, if asked, node_modules) linked in. */
function fakeCheckout(withNodeModules: boolean, dist: 'stale' | 'missing'): string {
  const dir = mkdtempSync(join(tmpdir(), 'lpgw-stale-'));
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  for (const d of ['src', 'probe']) symlinkSync(join(ROOT, d), join(dir, d));
  if (withNodeModules) symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  if (dist === 'stale') {
    // A dist/ that would say so if it ran, stamped long before the sources' last change.
    mkdirSync(join(dir, 'dist/src/cli'), { recursive: true });
    for (const p of ['lp-gateway', 'gateway-probe']) writeFileSync(join(dir, `dist/src/cli/${p}.js`), "export async function main() { process.stdout.write('STALE DIST\\n'); return 0; }\n");
    writeFileSync(join(dir, 'dist/BUILD-STAMP'), 'old\n');
    utimesSync(join(dir, 'dist/BUILD-STAMP'), new Date('2001-01-01'), new Date('2001-01-01'));
  }
  return dir;
}

test('a stale dist/ is not run: the sources run through tsx instead', () => {
  const dir = fakeCheckout(true, 'stale');
  after(() => rmSync(dir, { recursive: true, force: true }));
  assert.match(distStale(dir) ?? '', /dist\/ is older than (src|probe)\//);
  const r = run(join(dir, 'bin/gateway-probe.js'), ['--help']);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /STALE DIST/);
  assert.match(r.stdout, /Usage: gateway-probe/);
  // LP_GATEWAY_FROM_SOURCE=0 insists on dist/, whatever its age.
  assert.match(run(join(dir, 'bin/gateway-probe.js'), ['--help'], { LP_GATEWAY_FROM_SOURCE: '0' }).stdout, /STALE DIST/);
});

test('without dist/ and without tsx the binaries say what to do and exit 1', () => {
  const dir = fakeCheckout(false, 'missing');
  after(() => rmSync(dir, { recursive: true, force: true }));
  for (const program of ['lp-gateway', 'gateway-probe']) {
    const r = run(join(dir, 'bin', `${program}.js`), ['--help']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^${program}: dist/ is missing .*tsx .* not installed .*run \`npm ci\` or \`npm run build\``));
  }
});

test("ticket type names (kept free of the codec's module for --help) follow the codec's TicketType values", () => {
  const expected: [TicketType, string][] = [
    [TicketType.V1MixnetEntry, 'mixnet-entry'],
    [TicketType.V1MixnetExit, 'mixnet-exit'],
    [TicketType.V1WireguardEntry, 'wireguard-entry'],
    [TicketType.V1WireguardExit, 'wireguard-exit'],
  ];
  for (const [t, name] of expected) {
    assert.equal(ticketTypeName(t), name);
    assert.equal(ticketTypeFromName(name), t);
  }
  assert.deepEqual([...TICKET_TYPE_NAMES].sort(), expected.map(([, n]) => n).sort());
});

test('the Docker image takes dist/ (not the sources) and the build script npm ci runs in it', () => {
  const df = readFileSync(join(ROOT, 'docker/Dockerfile'), 'utf8');
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8');
  assert.match(df, /^COPY dist \.\/dist$/m);
  assert.doesNotMatch(df, /^COPY src /m);
  assert.match(df, /^COPY scripts\/build\.mjs \.\/scripts\/$/m);
  assert.match(ignore, /^!dist\/$/m);
  assert.match(ignore, /^!scripts\/build\.mjs$/m);
});
