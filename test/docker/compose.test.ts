/**
 * The Docker localnet end to end, on the offline path CI can take (no Docker Hub, no npm registry inside a
 * build): a private dockerd (Debian's docker.io), a base image made by docker/offline/base-image.sh
 * (debootstrap + this host's Node), production dependencies from docker/offline/prebuilt-deps.sh, then
 * docker/compose.yaml through Compose v1 exactly as docker/README.md documents it: build, then
 * `up --exit-code-from probe`. Checks the probe's exit status and both of its reports (tcp and udp,
 * telescoped, rekey, the one-hop and two-hop WireGuard tunnels and pings to the inet host beyond the exit),
 * that each gateway made its WireGuard interface and attached its collector to its eth0, and — from the
 * collectors' own NDJSON windows, with the namespace localnet's own check — that the entry saw the probe's
 * TCP, UDP and WireGuard flows and the exit only the entry, for LP and WireGuard traffic. Then
 * `down -v --rmi all` must leave the engine empty.
 *
 * Root only, with docker.io, docker-compose and debootstrap installed (.ci/run installs them); skipped
 * otherwise, except under CI, where a missing tool fails the test: CI is where this must run. Everything it
 * starts is removed in after(), also on failure: the project (containers, network, volumes, images), the
 * engine (by PID) with its directory, the prebuilt dependencies, the bridges by their names.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { WindowSnapshot } from '../../src/collector/schema.js';
import { checkCollectors } from '../../scripts/localnet/localnet.js';
import { which } from '../../scripts/localnet/sys.js';
import { DOCKER, INET, NODES, PORTS, PROBE_TRANSPORTS, WIREGUARD } from '../../scripts/localnet/topology.js';
import { PrivateDockerd, killRunningCommands, removeTree, runCommand, runSync, type CommandResult } from '../helpers/private-dockerd.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMPOSE_FILE = join(ROOT, 'docker/compose.yaml');
/** The name docker/README.md gives the offline base image. */
const BASE_IMAGE = 'lp-gateway-base:local';
/** The client that comes with Debian's engine; a newer one on PATH (/usr/local/bin) would want BuildKit. */
const DOCKER_CLIENT = '/usr/bin/docker';

const LIMITS = { deps: 300_000, dockerd: 60_000, base: 1_200_000, build: 600_000, up: 300_000, cp: 60_000, down: 120_000 } as const;

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const inCi = process.env.CI === 'true';

/** What is missing for this test, or null. */
function missing(): string | null {
  if (!isRoot) return 'needs root (dockerd, debootstrap, the eBPF collectors)';
  const lacks = [
    ['dockerd', which('dockerd')],
    [DOCKER_CLIENT, existsSync(DOCKER_CLIENT) ? DOCKER_CLIENT : null],
    ['docker-compose', which('docker-compose')],
    ['debootstrap', which('debootstrap')],
  ]
    .filter(([, path]) => path === null)
    .map(([name]) => name);
  return lacks.length > 0 ? `needs ${lacks.join(', ')} (apt-get install docker.io docker-compose debootstrap; .ci/run installs them)` : null;
}
const lack = missing();
// Under CI a skip would hide a broken compose path: there the test runs and fails on what is missing.
const SKIP = lack !== null && !(inCi && isRoot) ? lack : false;

let engine: PrivateDockerd | null = null;
/** Set once this process has started an engine: only then can the bridge below be ours. */
let startedEngine = false;
let work: string | null = null;
const cleanupProblems: string[] = [];

function compose(args: readonly string[]): string[] {
  return ['-p', DOCKER.project, '-f', COMPOSE_FILE, ...args];
}

/** Removes everything this file made; idempotent, synchronous (also runs on exit). */
function teardown(): void {
  // A step cut short by the test's timeout (a debootstrap, a compose up) must not outlive it.
  if (killRunningCommands() > 0) cleanupProblems.push('a command was still running; killed');
  if (engine !== null) {
    const e = engine;
    if (e.pid !== undefined) runSync('docker-compose', compose(['down', '-v', '--rmi', 'all', '--remove-orphans', '-t', '5']), { env: e.env, timeoutMs: LIMITS.down });
    cleanupProblems.push(...e.stop());
    engine = null;
  }
  // Docker's bridges for the project's networks, should the engine not have removed them (the preflight made
  // sure no such interface existed before).
  for (const bridge of [DOCKER.bridge, DOCKER.uplinkBridge]) {
    if (startedEngine && runSync('ip', ['link', 'show', bridge]).code === 0) {
      cleanupProblems.push(`interface ${bridge} was left; deleted`);
      runSync('ip', ['link', 'del', bridge]);
    }
  }
  startedEngine = false;
  if (work !== null) {
    runSync(join(ROOT, 'docker/offline/prebuilt-deps.sh'), ['--clean']);
    const kept = removeTree(work);
    if (kept !== null) cleanupProblems.push(kept);
    work = null;
  }
}

after(() => teardown());
process.on('exit', () => teardown());

function tail(s: string, lines = 40): string {
  return s.trimEnd().split('\n').slice(-lines).join('\n');
}

function ok(r: CommandResult, what: string): void {
  assert.ok(!r.timedOut, `${what}: no result within its time bound (${r.ms} ms)\n${tail(r.stderr)}\n${tail(r.stdout)}`);
  assert.equal(r.code, 0, `${what}: exit ${String(r.code)}\n${tail(r.stderr)}\n${tail(r.stdout)}`);
}

/** Top-level JSON documents written one after another (the probe prints indented reports). */
function jsonDocuments(text: string): unknown[] {
  const docs: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}' && depth > 0 && --depth === 0) docs.push(JSON.parse(text.slice(start, i + 1)));
  }
  return docs;
}

function readWindows(dir: string): WindowSnapshot[] {
  const out: WindowSnapshot[] = [];
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.ndjson'))) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) if (line.trim() !== '') out.push(JSON.parse(line) as WindowSnapshot);
  }
  return out;
}

interface ProbeReport {
  outcome: Record<string, Record<string, unknown> | null>;
  passed?: boolean;
}

test('docker localnet: offline image, compose up, probe (tcp + udp, telescoped, rekey, one- and two-hop tunnels), collectors, down', { skip: SKIP, timeout: 1_800_000 }, async (t) => {
  assert.equal(lack, null, `under CI this test must run: ${String(lack)}`);
  const ms: Record<string, number> = {};
  for (const bridge of [DOCKER.bridge, DOCKER.uplinkBridge]) assert.notEqual(runSync('ip', ['link', 'show', bridge]).code, 0, `an interface ${bridge} exists already (a Docker localnet running?); remove it first`);
  work = mkdtempSync(join(tmpdir(), 'lpgw-docker-'));

  // Production dependencies, then the engine and the base image.
  const deps = await runCommand(join(ROOT, 'docker/offline/prebuilt-deps.sh'), [], { timeoutMs: LIMITS.deps });
  ok(deps, 'docker/offline/prebuilt-deps.sh');
  ms.deps = deps.ms;
  const t0 = Date.now();
  startedEngine = true;
  engine = await PrivateDockerd.start(join(work, 'engine'), { dockerd: which('dockerd') ?? 'dockerd', docker: DOCKER_CLIENT }, LIMITS.dockerd);
  ms.dockerd = Date.now() - t0;
  const e = engine;
  const base = await runCommand(join(ROOT, 'docker/offline/base-image.sh'), ['--work-dir', work, BASE_IMAGE], { env: e.env, timeoutMs: LIMITS.base });
  ok(base, 'docker/offline/base-image.sh');
  ms.base = base.ms;

  // Engines before 23.0 reject CAP_BPF (docker/README.md).
  const version = (await e.docker(['version', '--format', '{{.Server.Version}}'], 15_000)).stdout.trim();
  const major = Number(version.split('.')[0]);
  const env: NodeJS.ProcessEnv = { ...e.env, LPGW_NODE_IMAGE: BASE_IMAGE, LPGW_DEPS: 'prebuilt', ...(major < 23 ? { LPGW_CAP_BPF: 'SYS_ADMIN' } : {}) };

  const build = await runCommand('docker-compose', compose(['build']), { env, cwd: ROOT, timeoutMs: LIMITS.build });
  ok(build, 'docker-compose build');
  ms.build = build.ms;

  // The documented one-shot command: its exit status is the probe's.
  const up = await runCommand('docker-compose', compose(['up', '--no-color', '--exit-code-from', 'probe']), { env, cwd: ROOT, timeoutMs: LIMITS.up });
  ms.up = up.ms;
  if (up.code !== 0 || up.timedOut) {
    // The reason is usually in a gateway's own log (a container that never became healthy).
    const logs = await runCommand('docker-compose', compose(['logs', '--no-color', '--tail', '12', 'inet', 'exit', 'entry']), { env, cwd: ROOT, timeoutMs: 60_000 });
    up.stdout += `\n--- docker-compose logs --tail 12 inet exit entry\n${logs.stdout}${logs.stderr}`;
  }
  ok(up, 'docker-compose up --exit-code-from probe');

  const containerOf = async (service: string): Promise<string> => {
    const r = await e.docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${DOCKER.project}`, '--filter', `label=com.docker.compose.service=${service}`], 15_000);
    const id = r.stdout.trim().split('\n')[0] ?? '';
    assert.match(id, /^[0-9a-f]+$/, `a container for ${service}`);
    return id;
  };

  // The probe's two reports, tcp then udp (stdout; its summaries are on stderr).
  const probeLogs = await e.docker(['logs', await containerOf('probe')], 30_000);
  const reports = jsonDocuments(probeLogs.stdout) as ProbeReport[];
  assert.equal(reports.length, PROBE_TRANSPORTS.length, `one report per transport:\n${tail(probeLogs.stderr)}`);
  reports.forEach((report, i) => {
    const transport = PROBE_TRANSPORTS[i] ?? '?';
    assert.notEqual(report.passed, false, `${transport}: passed`);
    for (const [section, flags] of [
      ['lp', ['can_connect', 'can_handshake', 'can_register']],
      ['telescoping', ['can_handshake', 'can_register']],
      ['rekey', ['can_rekey']],
    ] as const) {
      for (const f of flags) assert.equal(report.outcome[section]?.[f], true, `${transport}: outcome.${section}.${f}`);
      assert.equal(report.outcome[section]?.error, null, `${transport}: outcome.${section}.error`);
    }
    // One hop (the entry's tunnel), two hops (the exit's inside it), and the inet host beyond the exit.
    for (const section of ['wg', 'wg_exit'] as const) {
      const w = report.outcome[section];
      for (const f of ['can_register', 'can_handshake_v4', 'can_handshake_v6'] as const) assert.equal(w?.[f], true, `${transport}: outcome.${section}.${f}`);
      assert.equal(w?.ping_ips_performance_v4, 1, `${transport}: outcome.${section}.ping_ips_performance_v4`);
      assert.equal(w?.ping_ips_performance_v6, 1, `${transport}: outcome.${section}.ping_ips_performance_v6`);
      assert.equal(w?.error, null, `${transport}: outcome.${section}.error`);
    }
    assert.deepEqual(report.outcome.as_exit, { can_route_ip_v4: true, can_route_ip_v6: true, targets: { ipv4: INET.ipv4, ipv6: INET.ipv6 }, error: null }, `${transport}: outcome.as_exit`);
  });
  t.diagnostic(
    probeLogs.stderr
      .split('\n')
      .filter((l) => l.startsWith('gateway-probe run:'))
      .join(' | '),
  );

  // Each collector attached to the container's eth0 (its log line), and its windows say what it saw.
  const windows: Record<'entry' | 'exit', WindowSnapshot[]> = { entry: [], exit: [] };
  const wgImpl: Record<'entry' | 'exit', string> = { entry: '?', exit: '?' };
  /** Whether Docker had attached the exit's uplink as eth0 (its entrypoint then swapped the names). */
  let swapped = false;
  for (const g of ['entry', 'exit'] as const) {
    const id = await containerOf(g);
    const logs = await e.docker(['logs', id], 30_000);
    const logLines = logs.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; iface?: string; attach_mode?: string; interface?: string; implementation?: string; uplink?: string | null });
    const attachedLine = logLines.find((l) => l.msg === 'collector attached');
    assert.equal(attachedLine?.iface, 'eth0', `${g}: the collector attached to eth0:\n${tail(logs.stdout, 15)}`);
    // The managed WireGuard interface: wireguard-go inside the container (or the host kernel's WireGuard).
    const wg = logLines.find((l) => l.interface === WIREGUARD[g].iface && l.implementation !== undefined);
    assert.ok(wg?.implementation === 'wireguard-go' || wg?.implementation === 'kernel', `${g}: created ${WIREGUARD[g].iface}:\n${tail(logs.stdout, 15)}`);
    assert.equal(wg.uplink, WIREGUARD[g].uplink, `${g}: uplink`);
    wgImpl[g] = wg.implementation;
    if (g === 'exit') swapped = logs.stderr.includes('exit: swapped eth0 and eth1');
    const dir = join(work, `collector-${g}`);
    ok(await e.docker(['cp', `${id}:/var/lib/lp-gateway/collector`, dir], LIMITS.cp), `docker cp ${g} collector windows`);
    windows[g] = readWindows(dir);
    assert.ok(windows[g].length > 0, `${g}: collector windows`);
    for (const w of windows[g]) {
      assert.equal(w.source.iface, 'eth0');
      assert.deepEqual(w.source.hooks, ['ingress', 'egress']);
    }
  }
  // The namespace localnet's own check (scripts/localnet/localnet.ts) over every window: the entry saw the
  // probe's LP TCP, LP UDP and WireGuard flows; the exit watched its WireGuard port and saw the entry's LP TCP
  // and WireGuard (two-hop) flows and never anything but the entry's address. (The check compares ISO
  // strings: the bounds stay within four-digit years.)
  const verdict = checkCollectors({ entry: windows.entry, exit: windows.exit, from: new Date(0), until: new Date('9999-12-31T23:59:59.999Z'), covered: true, transports: PROBE_TRANSPORTS, tunnel: true });
  assert.deepEqual(verdict.problems, [], 'the collector check');
  const exitFlows = windows.exit.flatMap((w) => w.flows);
  assert.ok(
    exitFlows.some((f) => f.proto === 'tcp' && f.remote === NODES.entry.ipv4 && f.local === NODES.exit.ipv4 && f.local_port === PORTS.lpTcp && f.request.packets > 0 && f.response.packets > 0),
    'the exit collector shows the entry forwarding over LP TCP',
  );
  for (const f of exitFlows) assert.equal(f.remote, NODES.entry.ipv4, `exit flow from ${f.remote}:${f.remote_port} (${f.proto}): only the entry may reach the exit`);
  const entryFlows = windows.entry.flatMap((w) => w.flows);
  for (const [proto, port] of [
    ['tcp', PORTS.lpTcp],
    ['udp', PORTS.lpUdp],
  ] as const) {
    assert.ok(
      entryFlows.some((f) => f.proto === proto && f.remote === NODES.probe.ipv4 && f.local === NODES.entry.ipv4 && f.local_port === port && f.request.packets > 0 && f.response.packets > 0),
      `the entry collector shows the probe's ${proto} flow to ${NODES.entry.ipv4}:${port}`,
    );
  }
  assert.ok(
    exitFlows.some((f) => f.proto === 'udp' && f.remote === NODES.entry.ipv4 && f.local === NODES.exit.ipv4 && f.local_port === PORTS.wireguard && f.request.packets > 0 && f.response.packets > 0),
    "the exit collector shows the two-hop tunnel's WireGuard traffic, from the entry's address",
  );
  t.diagnostic(`collector windows: entry ${windows.entry.length}, exit ${windows.exit.length} (attach mode ${windows.exit[0]?.source.attach_mode ?? '?'}); WireGuard entry ${wgImpl.entry}, exit ${wgImpl.exit}; exit interfaces ${swapped ? 'swapped by its entrypoint' : 'attached in order'}; engine ${version}${major < 23 ? ', LPGW_CAP_BPF=SYS_ADMIN' : ''}`);

  // down removes the project's containers, network, volumes and image; the build stages and the base go too.
  const down = await runCommand('docker-compose', compose(['down', '-v', '--rmi', 'all', '--remove-orphans', '-t', '5']), { env, cwd: ROOT, timeoutMs: LIMITS.down });
  ok(down, 'docker-compose down -v --rmi all');
  ok(await e.docker(['image', 'rm', BASE_IMAGE], 60_000), `docker image rm ${BASE_IMAGE}`);
  ok(await e.docker(['image', 'prune', '-af'], 120_000), 'docker image prune');
  for (const [what, args] of [
    ['containers', ['ps', '-aq']],
    ['volumes', ['volume', 'ls', '-q']],
    ['images', ['images', '-aq']],
    ['project networks', ['network', 'ls', '-q', '--filter', `label=com.docker.compose.project=${DOCKER.project}`]],
  ] as const) {
    const r = await e.docker(args, 30_000);
    assert.equal(r.stdout.trim(), '', `no ${what} left`);
  }
  for (const bridge of [DOCKER.bridge, DOCKER.uplinkBridge]) assert.notEqual(runSync('ip', ['link', 'show', bridge]).code, 0, `the bridge ${bridge} is gone`);

  const t1 = Date.now();
  teardown();
  ms.teardown = Date.now() - t1;
  assert.deepEqual(cleanupProblems, [], 'the engine stopped cleanly and left nothing behind');
  t.diagnostic(`timings ms: prebuilt deps ${ms.deps}, dockerd ${ms.dockerd}, base image ${ms.base}, compose build ${ms.build}, compose up → probe exit ${ms.up}, engine stop ${ms.teardown}`);
});
