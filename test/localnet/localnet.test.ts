/**
 * The namespace localnet end to end, through the npm scripts: `localnet:up` → `localnet:status` →
 * `localnet:probe` (telescoped, tcp and udp, --rekey, the one-hop and two-hop WireGuard tunnels and echoes
 * to the inet host beyond the exit) → collector checks → `localnet:down` (twice: it is idempotent). The
 * collector checks read the collectors' own output — the NDJSON windows under each gateway's data dir and
 * `GET /v1/collector/windows/latest` — not the script's summary: the exit must see traffic — LP and
 * WireGuard — only from the entry's address and never the probe's; the entry must see the probe's TCP, UDP
 * and WireGuard flows. Afterwards nothing of ours may be left: namespaces, host interfaces, processes
 * (wireguard-go too), wireguard-go sockets, TCX links.
 * Root, nft and WireGuard (the kernel's or wireguard-go) only (skipped otherwise); `down` always runs in after().
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { after, test } from 'node:test';
import type { WindowSnapshot } from '../../src/collector/schema.js';
import { findLeftovers, readCollectorWindows, ROOT, STATE_DIR, wireguardMissing, type ProbeReportLike, type StatusResult } from '../../scripts/localnet/localnet.js';
import { which } from '../../scripts/localnet/sys.js';
import { INET, NODES, PORTS, PROBE_TRANSPORTS, WIREGUARD, httpUrl } from '../../scripts/localnet/topology.js';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const SKIP = !isRoot ? 'needs root (network namespaces, veth, eBPF collector, WireGuard interfaces)' : (wireguardMissing() ?? false);

const NPM = which('npm') ?? 'npm';

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env };
  // The node:test runner marks its children; the scripts' own node processes must not inherit that.
  delete e.NODE_TEST_CONTEXT;
  return e;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `npm run -s <script> -- args`, bounded. */
function npmRun(script: string, args: string[] = [], timeoutMs = 60_000): Promise<Ran> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(NPM, ['run', '-s', script, ...(args.length > 0 ? ['--', ...args] : [])], { cwd: ROOT, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

after(() => {
  if (!isRoot) return;
  // Whatever happened above: nothing of ours stays (idempotent; a no-op after a passing test).
  spawnSync(NPM, ['run', '-s', 'localnet:down'], { cwd: ROOT, env: env(), stdio: 'ignore', timeout: 60_000 });
});

/** GET inside the probe namespace (the path the probe's traffic takes). */
function getFromProbe(url: string): { status: number | null; body: unknown } {
  const agent = `${ROOT}/scripts/localnet/ns-agent.ts`;
  const r = spawnSync('ip', ['netns', 'exec', NODES.probe.netns, process.execPath, '--import', 'tsx', agent, JSON.stringify({ op: 'get', urls: [url] })], { cwd: ROOT, env: env(), encoding: 'utf8', timeout: 15_000 });
  const res = JSON.parse(r.stdout.trim()) as { results: { status: number | null; body: unknown }[] };
  const first = res.results[0];
  assert.ok(first, `an answer for ${url}`);
  return first;
}

const flowsOf = (ws: WindowSnapshot[]): WindowSnapshot['flows'] => ws.flatMap((w) => w.flows);

test('localnet: up, probe (tcp + udp, telescoped, rekey, one- and two-hop tunnels), collectors, down', { skip: SKIP, timeout: 150_000 }, async (t) => {
  const timings: Record<string, number> = {};

  // up
  const upRun = await npmRun('localnet:up', [], 90_000);
  timings.up = upRun.ms;
  assert.equal(upRun.code, 0, `localnet:up failed:\n${upRun.stderr}\n${upRun.stdout}`);

  // status
  const st = await npmRun('localnet:status', ['--json']);
  assert.equal(st.code, 0, `localnet:status: ${st.stderr}`);
  const status = JSON.parse(st.stdout) as StatusResult;
  assert.equal(status.state, 'up');
  const linkIds: number[] = [];
  for (const g of ['entry', 'exit'] as const) {
    const n = status.nodes.find((x) => x.name === g);
    assert.ok(n?.running, `${g} runs`);
    assert.equal(n.health, 'ok');
    assert.equal(n.collector?.state, 'running');
    assert.equal(n.collector.iface, 'eth0');
    linkIds.push(...n.collector.link_ids);
    assert.equal(n.wireguard?.iface, WIREGUARD[g].iface, `${g}: WireGuard interface`);
    assert.ok(n.wireguard.kind === 'wireguard' || (n.wireguard.kind === 'tun' && n.wireguard.wireguard_go_pid !== null), `${g}: ${WIREGUARD[g].iface} is WireGuard (kernel, or tun served by wireguard-go): ${JSON.stringify(n.wireguard)}`);
  }
  assert.ok(status.nodes.find((x) => x.name === 'inet')?.netns_present, 'the inet namespace exists');
  assert.ok(status.uplink.length === 2 && status.uplink.every((r) => r.result === 'refused' || r.result === 'open'), `the exit reaches inet over IPv4 and IPv6: ${JSON.stringify(status.uplink)}`);
  assert.equal(status.nodes.find((x) => x.name === 'entry')?.directory_peers, 1, 'the entry knows the exit');
  assert.ok(status.ipv6.length === 2 && status.ipv6.every((r) => r.result === 'refused' || r.result === 'open'), `IPv6 between namespaces: ${JSON.stringify(status.ipv6)}`);

  // probe
  const probeStart = new Date();
  const pr = await npmRun('localnet:probe', [], 120_000);
  const probeEnd = new Date();
  timings.probe = pr.ms;
  t.diagnostic((pr.stderr.split('--- summary\n')[1] ?? pr.stderr).split('\n').filter((l) => /^(probe (tcp|udp): |collector check|localnet probe)/.test(l)).join(' | '));
  assert.equal(pr.code, 0, `localnet:probe failed:\n${pr.stderr}`);
  const out = JSON.parse(pr.stdout) as { passed: boolean; runs: { transport: string; exit_code: number; report: ProbeReportLike }[]; collector: { ok: boolean; problems: string[] } };
  assert.equal(out.passed, true);
  assert.deepEqual(out.collector.problems, [], "the script's own collector check");
  assert.deepEqual(
    out.runs.map((r) => r.transport),
    [...PROBE_TRANSPORTS],
  );
  for (const r of out.runs) {
    assert.equal(r.exit_code, 0, `${r.transport}: exit 0`);
    const o = r.report.outcome as Record<string, Record<string, unknown>>;
    for (const [section, flags] of [
      ['lp', ['can_connect', 'can_handshake', 'can_register']],
      ['telescoping', ['can_handshake', 'can_register']],
      ['rekey', ['can_rekey']],
    ] as const) {
      for (const f of flags) assert.equal(o[section]?.[f], true, `${r.transport}: outcome.${section}.${f}`);
      assert.equal(o[section]?.error, null, `${r.transport}: outcome.${section}.error`);
    }
    // One hop (the entry's tunnel) and two hops (the exit's, inside the entry's): handshakes and every echo.
    for (const section of ['wg', 'wg_exit'] as const) {
      const w = o[section];
      assert.ok(w, `${r.transport}: outcome.${section}`);
      for (const f of ['can_register', 'can_handshake_v4', 'can_handshake_v6'] as const) assert.equal(w[f], true, `${r.transport}: outcome.${section}.${f}`);
      assert.equal(w.ping_ips_performance_v4, 1, `${r.transport}: outcome.${section}.ping_ips_performance_v4`);
      assert.equal(w.ping_ips_performance_v6, 1, `${r.transport}: outcome.${section}.ping_ips_performance_v6`);
      assert.equal(w.error, null, `${r.transport}: outcome.${section}.error`);
    }
    // Beyond the exit: the inet host answered through the two-hop tunnel.
    assert.deepEqual(o.as_exit, { can_route_ip_v4: true, can_route_ip_v6: true, targets: { ipv4: INET.ipv4, ipv6: INET.ipv6 }, error: null }, `${r.transport}: outcome.as_exit`);
    // The tunnels' addresses come from each gateway's own pool.
    const reg = (section: string): Record<string, unknown> => (o[section]?.registration ?? {}) as Record<string, unknown>;
    assert.ok(String(reg('lp').private_ipv4).startsWith('10.1.'), `${r.transport}: the entry's pool`);
    assert.ok(String(reg('telescoping').private_ipv4).startsWith('10.2.'), `${r.transport}: the exit's pool`);
  }

  // The collectors' own output. Windows are 1 s: wait (bounded) for one that closes after the probe run.
  const after = new Date(probeEnd.getTime() + 300).toISOString();
  const deadline = Date.now() + 10_000;
  while (!(['entry', 'exit'] as const).every((g) => readCollectorWindows(g).some((w) => w.ended_at > after)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
  }
  const entryAll = readCollectorWindows('entry');
  const exitAll = readCollectorWindows('exit');
  const during = (ws: WindowSnapshot[]): WindowSnapshot[] => ws.filter((w) => w.ended_at >= probeStart.toISOString() && w.started_at <= after);
  assert.ok(exitAll.some((w) => w.ended_at > after) && entryAll.some((w) => w.ended_at > after), 'a window of each collector covers the probe run');

  const probeAddrs = [NODES.probe.ipv4, NODES.probe.ipv6];
  // exit: LP and WireGuard traffic from the entry, never anything of the probe's (over the collector's whole life).
  const exitFlows = flowsOf(exitAll);
  assert.ok(
    flowsOf(during(exitAll)).some((f) => f.proto === 'tcp' && f.remote === NODES.entry.ipv4 && f.local === NODES.exit.ipv4 && f.local_port === PORTS.lpTcp && f.request.packets > 0 && f.response.packets > 0),
    'the exit collector shows the entry forwarding over LP TCP',
  );
  for (const w of exitAll) assert.ok(w.source.watched_ports.includes(PORTS.wireguard), `the exit collector watches the WireGuard port: ${w.source.watched_ports.join(',')}`);
  assert.ok(
    flowsOf(during(exitAll)).some((f) => f.proto === 'udp' && f.remote === NODES.entry.ipv4 && f.local === NODES.exit.ipv4 && f.local_port === PORTS.wireguard && f.request.packets > 0 && f.response.packets > 0),
    "the exit collector shows the two-hop tunnel's WireGuard traffic, from the entry's address",
  );
  for (const f of exitFlows) {
    assert.equal(f.remote, NODES.entry.ipv4, `exit flow from ${f.remote}:${f.remote_port} (${f.proto}): only the entry may reach the exit`);
    assert.ok(!probeAddrs.includes(f.local) && !probeAddrs.includes(f.remote), 'no probe address at the exit');
  }
  // entry: the probe's TCP and UDP.
  const entryDuring = flowsOf(during(entryAll));
  for (const [proto, port] of [
    ['tcp', PORTS.lpTcp],
    ['udp', PORTS.lpUdp],
    ['udp', PORTS.wireguard],
  ] as const) {
    assert.ok(
      entryDuring.some((f) => f.proto === proto && f.remote === NODES.probe.ipv4 && f.local === NODES.entry.ipv4 && f.local_port === port && f.request.packets > 0 && f.response.packets > 0),
      `the entry collector shows the probe's ${proto} flow to ${NODES.entry.ipv4}:${port}`,
    );
  }
  t.diagnostic(
    `collector windows: entry ${entryAll.length} (${during(entryAll).length} during the probe), exit ${exitAll.length} (${during(exitAll).length}); exit remotes ${[...new Set(exitFlows.map((f) => f.remote))].join(',')}; entry remotes during the probe ${[...new Set(entryDuring.map((f) => f.remote))].join(',')}`,
  );

  // The same collectors over HTTP: the latest window, schema v1, TCX on eth0.
  for (const g of ['entry', 'exit'] as const) {
    const latest = getFromProbe(`${httpUrl(g)}/v1/collector/windows/latest`);
    assert.equal(latest.status, 200, `${g} latest window`);
    const w = latest.body as WindowSnapshot;
    assert.equal(w.schema_version, 1);
    assert.equal(w.kind, 'lp_collector_window');
    assert.equal(w.source.iface, 'eth0');
    assert.equal(w.source.attach_mode, 'tcx');
    assert.deepEqual(w.source.hooks, ['ingress', 'egress']);
    if (g === 'exit') for (const f of w.flows) assert.equal(f.remote, NODES.entry.ipv4);
  }

  // down: everything goes, and a second down is a no-op.
  const dn = await npmRun('localnet:down');
  timings.down = dn.ms;
  assert.equal(dn.code, 0, `localnet:down: ${dn.stdout}\n${dn.stderr}`);
  const left = findLeftovers();
  assert.deepEqual(left, { netns: [], hostLinks: [], pids: [], wgSockets: [] }, 'no namespace, host interface, process (wireguard-go included) or wireguard-go socket of ours is left');
  const bpftool = which('bpftool');
  if (bpftool) {
    for (const id of linkIds) assert.notEqual(spawnSync(bpftool, ['link', 'show', 'id', String(id)], { stdio: 'ignore' }).status, 0, `TCX link ${id} is gone`);
  } else {
    t.diagnostic('bpftool not installed: TCX links checked through the processes being gone');
  }
  if (existsSync(STATE_DIR)) assert.deepEqual(readdirSync(STATE_DIR), ['logs'], 'only the logs stay in .localnet');
  const again = await npmRun('localnet:down');
  assert.equal(again.code, 0);
  assert.match(again.stdout, /nothing was running/);

  t.diagnostic(`timings ms: up ${timings.up}, probe ${timings.probe}, down ${timings.down}`);
});
