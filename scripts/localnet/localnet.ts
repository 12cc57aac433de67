/**
 * The namespace localnet: entry, exit and probe "hosts" as network namespaces joined by a bridge, real
 * gateways (with their eBPF collectors) started detached inside them, and the telescoped probe run from the
 * probe namespace. Everything is described by topology.ts; this module only builds, inspects and removes it.
 *
 *   namespaces  lpgw-ln-hub (bridge lpgw-ln-br + the hub ends of the veths), lpgw-ln-entry, lpgw-ln-exit,
 *               lpgw-ln-probe (each: lo up, eth0 = the node's veth end with 10.77.0.x/24 and fd77::x/64),
 *               lpgw-ln-inet (eth0 10.78.0.2/24, fd78::2/64: the other end of the exit's uplink eth1)
 *   wireguard   lpgw-ln-wgentry in lpgw-ln-entry, lpgw-ln-wgexit in lpgw-ln-exit: created by the gateways
 *               (`--wg-manage`; wireguard-go here, the kernel's WireGuard where it has one), removed by `down`
 *   state       .localnet/run/ (pid files, state.json, lock), .localnet/<gateway>/data (keys, SQLite,
 *               collector NDJSON), .localnet/topology.json, .localnet/logs/ (kept by `down`)
 *
 * The bridge lives in its own namespace, not the host's: no interface of the localnet is visible to the
 * host's firewall (br_netfilter would otherwise push bridged frames through the host's iptables FORWARD
 * chain) and nothing has a route out, so the traffic stays inside the namespaces. `down` finds leftovers by
 * name prefix (namespaces, host interfaces), by namespace membership and by command line (processes), so it
 * also cleans up after a crash or an interrupted `up`.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FlowWindow, WindowSnapshot } from '../../src/collector/schema.js';
import { nftTableName } from '../../src/gateway/wireguard/interface.js';
import type { AgentRequest, AgentResponse, HttpResult, ReachResult } from './ns-agent.js';
import {
  ALL_NETNS,
  DOCKER,
  GATEWAY_NAMES,
  type GatewayName,
  HUB,
  INET,
  LOCALNET_DIR,
  NODE_NAMES,
  NODES,
  PORTS,
  PREFIX,
  PREFIX_LEN4,
  PREFIX_LEN6,
  type ProbeTransport,
  PROBE_TRANSPORTS,
  SUBNET4,
  SUBNET6,
  UPLINK,
  WIREGUARD,
  gatewayArgs,
  gatewayEnv,
  httpUrl,
  localnetPaths,
  probeArgs,
  topologyDocument,
  wireguardEndpoint,
} from './topology.js';
import {
  LocalnetError,
  allPids,
  cmdline,
  cwdOf,
  ip,
  ipBin,
  ipTry,
  isRoot,
  listLinks,
  listNetns,
  netnsPids,
  pidAlive,
  run,
  signal,
  sleepSync,
  which,
} from './sys.js';

export { LocalnetError } from './sys.js';

/** Repository root (the gateways' working directory; their relative paths start here). */
export const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));
export const STATE_DIR = join(ROOT, LOCALNET_DIR);
export const LOG_DIR = join(STATE_DIR, 'logs');
const RUN_DIR = join(STATE_DIR, 'run');
const STATE_FILE = join(RUN_DIR, 'state.json');
const LOCK_FILE = join(STATE_DIR, 'lock');
const AGENT = join(ROOT, 'scripts', 'localnet', 'ns-agent.ts');
const LP_GATEWAY = join(ROOT, 'bin', 'lp-gateway.js');
const GATEWAY_PROBE = join(ROOT, 'bin', 'gateway-probe.js');

/** Bounds (ms). */
export const LIMITS = {
  /** One gateway from spawn to healthy (first start creates keys and the database). */
  health: 45_000,
  /** The entry's directory must list the exit. */
  directory: 15_000,
  /** One gateway-probe run. */
  probe: 90_000,
  /** Collector windows covering the probe run (windows are 1 s). */
  window: 10_000,
  /** SIGTERM → exit (the gateways' shutdown grace is 2 s), then SIGKILL → gone. */
  term: 8_000,
  kill: 3_000,
  /** One ns-agent invocation beyond its own bound. */
  agentSlack: 10_000,
  /** The entry's forwarding policy lists the exit's WireGuard endpoint (installed when its directory loads). */
  policy: 10_000,
  /** wireguard-go exits once its interface is deleted. */
  wgGone: 3_000,
} as const;

/** Where wireguard-go keeps its control sockets (one per interface, shared by every namespace). */
export const WG_SOCKET_DIR = '/var/run/wireguard';

export interface Io {
  /** Results (stdout). */
  out(line: string): void;
  /** Progress and diagnostics (stderr). */
  log(line: string): void;
}

export const consoleIo: Io = {
  out: (l) => void process.stdout.write(`${l}\n`),
  log: (l) => void process.stderr.write(`${l}\n`),
};

// ---------------------------------------------------------------------------------------------------------
// Preflight, lock, state

export function requireRoot(what: string): void {
  if (!isRoot()) throw new LocalnetError(`${what} needs root (network namespaces, veth, eBPF); run it as root, e.g. sudo npm run localnet:${what}`);
}

function preflight(): void {
  ipBin();
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 20) throw new LocalnetError(`node ${process.versions.node}: the localnet needs node ≥ 20`);
  if (!existsSync(LP_GATEWAY)) throw new LocalnetError(`${LP_GATEWAY} is missing`);
  if (!existsSync(join(ROOT, 'node_modules', 'tsx'))) throw new LocalnetError('node_modules is missing: run npm ci first');
  for (const name of [...ALL_NETNS, HUB.bridge, ...NODE_NAMES.map((n) => NODES[n].hubIface), ...GATEWAY_NAMES.map((g) => WIREGUARD[g].iface)]) {
    if (name.length > 15) throw new LocalnetError(`interface/namespace name ${name} is longer than 15 characters`);
  }
  const why = wireguardMissing();
  if (why !== null) throw new LocalnetError(why);
}

/** Kernel WireGuard is loaded (the gateways then use it instead of wireguard-go). */
function kernelWireguard(): boolean {
  return existsSync('/sys/module/wireguard');
}

/**
 * Why the gateways' managed WireGuard interfaces cannot be made here, or null: they need nft (the forwarding
 * policy and masquerade of `wireguard.uplink`) and the kernel's WireGuard or wireguard-go (with /dev/net/tun).
 */
export function wireguardMissing(): string | null {
  if (which('nft') === null) return 'nft (nftables) not found: the gateways need it for their WireGuard forwarding policy (apt-get install nftables)';
  if (kernelWireguard()) return null;
  if (which('wireguard-go') === null) return 'the kernel has no WireGuard module loaded and wireguard-go is not installed (apt-get install wireguard-go wireguard-tools)';
  if (!existsSync('/dev/net/tun')) return 'wireguard-go needs /dev/net/tun, which does not exist';
  return null;
}

/** A lock so two up/down commands never interleave; a lock left by a dead process is taken over. */
export function acquireLock(): () => void {
  mkdirSync(STATE_DIR, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(LOCK_FILE, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        rmSync(LOCK_FILE, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = NaN;
      try {
        holder = Number(readFileSync(LOCK_FILE, 'utf8').trim());
      } catch {
        // vanished meanwhile
      }
      if (Number.isSafeInteger(holder) && holder !== process.pid && pidAlive(holder)) {
        throw new LocalnetError(`another localnet command (pid ${holder}) is running; wait for it, or remove ${LOCK_FILE} if that is wrong`);
      }
      rmSync(LOCK_FILE, { force: true });
    }
  }
  throw new LocalnetError(`could not take ${LOCK_FILE}`);
}

export interface CollectorInfo {
  state: string;
  attach_mode: string | null;
  link_ids: number[];
  prog_id: number | null;
  iface: string | null;
}

/** A gateway's managed WireGuard interface as `up` found it. */
export interface WireguardInfo {
  iface: string;
  /** `wireguard` = the kernel's; `tun` = a userspace implementation's (wireguard-go). */
  kind: string;
  /** The wireguard-go process that holds the interface (null with kernel WireGuard). */
  wireguard_go_pid: number | null;
}

export interface LocalnetState {
  started_at: string;
  root: string;
  gateways: Partial<Record<GatewayName, { pid: number; netns: string; log: string; collector: CollectorInfo | null; wireguard?: WireguardInfo | null }>>;
}

function readState(): LocalnetState | null {
  try {
    return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as LocalnetState;
  } catch {
    return null;
  }
}

function writeState(s: LocalnetState): void {
  mkdirSync(RUN_DIR, { recursive: true });
  writeFileSync(STATE_FILE, `${JSON.stringify(s, null, 2)}\n`);
}

const pidFile = (name: string): string => join(RUN_DIR, `${name}.pid`);

function readPid(name: string): number | null {
  try {
    const n = Number(readFileSync(pidFile(name), 'utf8').trim());
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** Last `n` lines of a log file ('' when absent); reads at most the last 256 KiB. */
export function tail(file: string, n: number): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = statSync(file).size;
    const len = Math.min(size, 256 * 1024);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-n).join('\n');
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Child processes

/** The environment of everything we start inside the namespaces: no inherited LPGW_* (the gateway rejects unknown ones). */
function childEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // NODE_TEST_CONTEXT: set by node's test runner for its children; a gateway is not a test file.
    if (k.startsWith('LPGW_') || k === 'NODE_TEST_CONTEXT') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

interface AsyncRun {
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; timedOut: boolean }>;
  kill(): void;
}

function runAsync(cmd: string, args: readonly string[], timeoutMs: number, env: NodeJS.ProcessEnv = childEnv()): AsyncRun {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, timeoutMs);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; timedOut: boolean }>((res) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      res({ code: null, signal: null, stdout, stderr: `${stderr}${e.message}`, timedOut });
    });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      res({ code, signal: sig, stdout, stderr, timedOut });
    });
  });
  return { done, kill };
}

/** Runs ns-agent inside `netns`; rejects with LocalnetError (carrying its stderr) when it gives no answer. */
function agent(netns: string, req: AgentRequest, timeoutMs: number): { result: Promise<AgentResponse>; kill(): void } {
  const r = runAsync(ipBin(), ['netns', 'exec', netns, process.execPath, '--import', 'tsx', AGENT, JSON.stringify(req)], timeoutMs + LIMITS.agentSlack);
  return {
    kill: r.kill,
    result: r.done.then((d) => {
      const line = d.stdout.trim().split('\n').pop() ?? '';
      try {
        return JSON.parse(line) as AgentResponse;
      } catch {
        throw new LocalnetError(`ns-agent in ${netns} gave no answer${d.timedOut ? ' (timed out)' : ''}: ${d.stderr.trim().slice(0, 500) || `exit ${String(d.code)}`}`);
      }
    }),
  };
}

async function httpGet(urls: string[], timeoutMs = 3000): Promise<HttpResult[]> {
  const res = await agent(NODES.probe.netns, { op: 'get', urls, timeoutMs }, timeoutMs).result;
  return res.op === 'reach' ? [] : res.results;
}

// ---------------------------------------------------------------------------------------------------------
// up

export interface UpResult {
  already: boolean;
  ms: number;
  state: LocalnetState;
}

/** Whatever of ours exists right now (by prefix, pid files and process scan). */
export interface Leftovers {
  netns: string[];
  hostLinks: string[];
  pids: number[];
  /** wireguard-go control sockets of our interface names. */
  wgSockets: string[];
}

export function findLeftovers(): Leftovers {
  return {
    netns: listNetns().filter((n) => n.startsWith(PREFIX)),
    hostLinks: ourHostLinks(),
    pids: findOurProcesses(),
    wgSockets: wgSockets(),
  };
}

/**
 * Interfaces with our prefix in the host's namespace (the localnet makes none there: these are leftovers),
 * except the Docker localnet's bridges (docker/compose.yaml names them lpgw-ln-br and lpgw-ln-up): they belong
 * to the engine, and deleting them would cut a running Docker localnet's containers off.
 */
function ourHostLinks(): string[] {
  const docker = new Set<string>([DOCKER.bridge, DOCKER.uplinkBridge]);
  return listLinks(null).filter((n) => n.startsWith(PREFIX) && !docker.has(n));
}

const isEmpty = (l: Leftovers): boolean => l.netns.length === 0 && l.hostLinks.length === 0 && l.pids.length === 0 && l.wgSockets.length === 0;

function buildNetwork(io: Io): void {
  for (const ns of ALL_NETNS) {
    ip(['netns', 'add', ns]);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  ip(['-n', HUB.netns, 'link', 'add', HUB.bridge, 'type', 'bridge']);
  ip(['-n', HUB.netns, 'link', 'set', HUB.bridge, 'up']);
  for (const name of NODE_NAMES) {
    const n = NODES[name];
    // Both ends are created directly in their namespaces: nothing ever appears in the host's namespace.
    ip(['-n', HUB.netns, 'link', 'add', n.hubIface, 'type', 'veth', 'peer', 'name', n.iface, 'netns', n.netns]);
    ip(['-n', HUB.netns, 'link', 'set', n.hubIface, 'master', HUB.bridge]);
    ip(['-n', HUB.netns, 'link', 'set', n.hubIface, 'up']);
    ip(['-n', n.netns, 'addr', 'add', `${n.ipv4}/${PREFIX_LEN4}`, 'dev', n.iface]);
    ip(['-n', n.netns, '-6', 'addr', 'add', `${n.ipv6}/${PREFIX_LEN6}`, 'dev', n.iface, 'nodad']);
    ip(['-n', n.netns, 'link', 'set', n.iface, 'up']);
  }
  // The exit's uplink: one veth pair straight from the exit (eth1) to the inet host (eth0), no bridge.
  const exit = NODES.exit;
  ip(['-n', exit.netns, 'link', 'add', UPLINK.exitIface, 'type', 'veth', 'peer', 'name', INET.iface, 'netns', INET.netns]);
  ip(['-n', exit.netns, 'addr', 'add', `${UPLINK.exitIpv4}/${UPLINK.prefixLen4}`, 'dev', UPLINK.exitIface]);
  ip(['-n', exit.netns, '-6', 'addr', 'add', `${UPLINK.exitIpv6}/${UPLINK.prefixLen6}`, 'dev', UPLINK.exitIface, 'nodad']);
  ip(['-n', exit.netns, 'link', 'set', UPLINK.exitIface, 'up']);
  ip(['-n', INET.netns, 'addr', 'add', `${INET.ipv4}/${UPLINK.prefixLen4}`, 'dev', INET.iface]);
  ip(['-n', INET.netns, '-6', 'addr', 'add', `${INET.ipv6}/${UPLINK.prefixLen6}`, 'dev', INET.iface, 'nodad']);
  ip(['-n', INET.netns, 'link', 'set', INET.iface, 'up']);
  io.log(`network: namespaces ${ALL_NETNS.join(', ')}; bridge ${HUB.bridge} in ${HUB.netns}; ${SUBNET4}, ${SUBNET6}; exit uplink ${UPLINK.exitIface} ↔ ${INET.netns} ${UPLINK.subnet4}, ${UPLINK.subnet6}`);
}

function startGateway(name: GatewayName): number {
  const n = NODES[name];
  const log = join(LOG_DIR, `${name}.log`);
  if (existsSync(log)) renameSync(log, join(LOG_DIR, `${name}.prev.log`));
  // 0700: the gateway keeps its keys here (and warns about a group/other-readable directory).
  mkdirSync(join(ROOT, localnetPaths(name).dataDir), { recursive: true, mode: 0o700 });
  const fd = openSync(log, 'w');
  try {
    // `ip netns exec` execs the program: the pid is the gateway's. detached: its own session, so a Ctrl-C of
    // the terminal that ran `up` does not reach it.
    const child = spawn(ipBin(), ['netns', 'exec', n.netns, process.execPath, LP_GATEWAY, ...gatewayArgs(name, localnetPaths(name))], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: childEnv(gatewayEnv(name)),
    });
    child.on('error', () => undefined);
    child.unref();
    if (child.pid === undefined) throw new LocalnetError(`could not start the ${name} gateway (${ipBin()} netns exec …)`);
    writeFileSync(pidFile(name), `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

function failWithLog(name: GatewayName, why: string): never {
  const log = join(LOG_DIR, `${name}.log`);
  throw new LocalnetError(`${name} gateway: ${why}\n--- last lines of ${log} ---\n${tail(log, 25)}`);
}

/** Waits (bounded) until the HTTP checks pass, failing at once if the gateway process dies. */
async function waitFor(name: GatewayName, pid: number, req: AgentRequest & { op: 'wait' }, what: string): Promise<HttpResult[]> {
  const a = agent(NODES.probe.netns, req, req.timeoutMs);
  let settled = false;
  const res = a.result.finally(() => (settled = true));
  for (;;) {
    await Promise.race([res.catch(() => undefined), new Promise((r) => setTimeout(r, 250))]);
    if (settled) break;
    if (!pidAlive(pid)) {
      a.kill();
      await res.catch(() => undefined);
      failWithLog(name, `the process (pid ${pid}) exited while waiting for ${what}`);
    }
  }
  const r = await res;
  if (r.op === 'reach') throw new LocalnetError('ns-agent: unexpected answer');
  if (!r.ok) {
    const detail = r.results.map((x) => `${x.url}: ${x.error ?? `HTTP ${String(x.status)} ${JSON.stringify(x.body).slice(0, 200)}`}`).join('; ');
    failWithLog(name, `${what} not reached within ${req.timeoutMs} ms (${detail})`);
  }
  return r.results;
}

/** The kind of a link in a namespace (`wireguard` for the kernel's WireGuard, `tun` for wireguard-go's), or null when absent. */
export function linkKindIn(netns: string, iface: string): string | null {
  const r = run(ipBin(), ['-n', netns, '-details', '-json', 'link', 'show', 'dev', iface]);
  if (r.code !== 0) return null;
  try {
    return (JSON.parse(r.stdout) as { linkinfo?: { info_kind?: string } }[])[0]?.linkinfo?.info_kind ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const OUR_WG_IFACES: readonly string[] = GATEWAY_NAMES.map((g) => WIREGUARD[g].iface);

/** wireguard-go processes that serve one of our interfaces (by argv; they run inside our namespaces, or linger after a crash). */
export function findWireguardGo(): { pid: number; iface: string }[] {
  const out: { pid: number; iface: string }[] = [];
  for (const pid of allPids()) {
    const argv = cmdline(pid);
    if (!argv || !(argv[0] ?? '').endsWith('wireguard-go')) continue;
    const iface = argv.slice(1).find((a) => OUR_WG_IFACES.includes(a));
    if (iface !== undefined && pidAlive(pid)) out.push({ pid, iface });
  }
  return out;
}

/** Control sockets of our interfaces that exist (wireguard-go removes its own when it exits normally). */
export function wgSockets(): string[] {
  return OUR_WG_IFACES.map((i) => join(WG_SOCKET_DIR, `${i}.sock`)).filter((f) => existsSync(f));
}

/** The gateway made its WireGuard interface; an entry's forwarding policy lets its clients through to the exit's endpoint. */
async function checkWireguard(name: GatewayName, pid: number, io: Io): Promise<WireguardInfo> {
  const n = NODES[name];
  const w = WIREGUARD[name];
  const kind = linkKindIn(n.netns, w.iface);
  if (kind === null) failWithLog(name, `its WireGuard interface ${w.iface} does not exist in ${n.netns}`);
  const wgGo = findWireguardGo().find((x) => x.iface === w.iface)?.pid ?? null;
  if (kind !== 'wireguard' && wgGo === null) failWithLog(name, `${w.iface} is a ${kind} interface but no wireguard-go process serves it`);
  if (name === 'entry') {
    // Installed when the entry's directory loads (before /health answers), re-installed when it changes.
    const table = nftTableName(w.iface);
    const want = `${NODES.exit.ipv4} . ${PORTS.wireguard}`;
    const end = Date.now() + LIMITS.policy;
    let text = '';
    for (;;) {
      if (!pidAlive(pid)) failWithLog(name, 'the process exited while waiting for its forwarding policy');
      text = run(ipBin(), ['netns', 'exec', n.netns, 'nft', 'list', 'table', 'inet', table]).stdout;
      if (text.includes(want)) break;
      if (Date.now() > end) failWithLog(name, `its forwarding policy (nft table inet ${table}) does not let clients through to the exit's WireGuard endpoint ${wireguardEndpoint('exit')} within ${LIMITS.policy} ms:\n${text}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  io.log(`${name}: WireGuard ${w.iface} (${kind === 'wireguard' ? 'kernel' : `wireguard-go pid ${String(wgGo)}`}), ${wireguardEndpoint(name)}, tunnel ${w.tunnel4} / ${w.tunnel6}, uplink ${w.uplink}${name === 'entry' ? ` (only to the exit's ${wireguardEndpoint('exit')})` : ''}`);
  return { iface: w.iface, kind, wireguard_go_pid: wgGo };
}

async function startAndWait(name: GatewayName, io: Io): Promise<{ pid: number; collector: CollectorInfo; wireguard: WireguardInfo }> {
  const t = Date.now();
  const pid = startGateway(name);
  io.log(`${name}: started pid ${pid} in ${NODES[name].netns}; waiting for ${httpUrl(name)}/health (from ${NODES.probe.netns})`);
  const base = httpUrl(name);
  await waitFor(name, pid, { op: 'wait', checks: [{ url: `${base}/health` }], timeoutMs: LIMITS.health }, 'health');
  // The collector starts before the API listens: by now it is running, or it never will.
  const [st] = await httpGet([`${base}/v1/collector/status`]);
  const body = (st?.body ?? {}) as Partial<CollectorInfo>;
  if (!st?.ok || body.state !== 'running') failWithLog(name, `the eBPF collector is not running (status ${JSON.stringify(st?.body ?? st?.error).slice(0, 300)})`);
  const collector: CollectorInfo = { state: body.state, attach_mode: body.attach_mode ?? null, link_ids: body.link_ids ?? [], prog_id: body.prog_id ?? null, iface: body.iface ?? null };
  if (name === 'entry') {
    await waitFor(name, pid, { op: 'wait', checks: [{ url: `${base}/v1/stats`, path: 'directory.peers', min: 1 }], timeoutMs: LIMITS.directory }, 'the exit in its directory (topology file)');
  }
  const wireguard = await checkWireguard(name, pid, io);
  io.log(`${name}: healthy after ${Date.now() - t} ms; collector ${collector.attach_mode ?? '?'} on ${collector.iface ?? '?'} (links ${collector.link_ids.join(',')}, prog ${collector.prog_id ?? '?'})`);
  return { pid, collector, wireguard };
}

/** Is the localnet completely up and healthy? (For an idempotent `up`.) */
async function isHealthy(): Promise<boolean> {
  const state = readState();
  if (!state) return false;
  const ns = new Set(listNetns());
  if (!ALL_NETNS.every((n) => ns.has(n))) return false;
  for (const g of GATEWAY_NAMES) {
    const pid = state.gateways[g]?.pid;
    if (pid === undefined || !pidAlive(pid)) return false;
    if (linkKindIn(NODES[g].netns, WIREGUARD[g].iface) === null) return false;
  }
  const res = await httpGet(GATEWAY_NAMES.map((g) => `${httpUrl(g)}/health`)).catch(() => []);
  return res.length === GATEWAY_NAMES.length && res.every((r) => r.ok);
}

export async function up(io: Io = consoleIo): Promise<UpResult> {
  requireRoot('up');
  preflight();
  const t0 = Date.now();
  const release = acquireLock();
  let building = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    io.log(`${sig}: tearing down the half-built localnet`);
    if (building) teardown(io);
    release();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (await isHealthy()) {
      io.log('localnet is already up and healthy (npm run localnet:status for details)');
      return { already: true, ms: Date.now() - t0, state: readState() as LocalnetState };
    }
    const left = findLeftovers();
    if (!isEmpty(left)) {
      io.log(`removing leftovers of an earlier run: namespaces [${left.netns.join(' ')}], host links [${left.hostLinks.join(' ')}], pids [${left.pids.join(' ')}], wireguard-go sockets [${left.wgSockets.join(' ')}]`);
      const r = teardown(io);
      if (!r.clean) throw new LocalnetError(`could not remove the leftovers: ${r.problems.join('; ')}`);
    }
    building = true;
    mkdirSync(LOG_DIR, { recursive: true });
    mkdirSync(RUN_DIR, { recursive: true });
    const probeLog = join(LOG_DIR, 'probe.log');
    if (existsSync(probeLog)) renameSync(probeLog, join(LOG_DIR, 'probe.prev.log'));
    writeFileSync(join(ROOT, localnetPaths('entry').topologyFile), `${JSON.stringify(topologyDocument(), null, 2)}\n`);
    buildNetwork(io);
    const state: LocalnetState = { started_at: new Date().toISOString(), root: ROOT, gateways: {} };
    for (const g of GATEWAY_NAMES) {
      const { pid, collector, wireguard } = await startAndWait(g, io);
      state.gateways[g] = { pid, netns: NODES[g].netns, log: join(LOG_DIR, `${g}.log`), collector, wireguard };
      writeState(state);
    }
    // IPv6 between the namespaces: a RST from the HTTP port (the listeners are IPv4) proves the path.
    const reach = await agent(NODES.probe.netns, { op: 'reach', targets: GATEWAY_NAMES.map((g) => ({ host: NODES[g].ipv6, port: PORTS.http })) }, 3000).result;
    if (!reach.ok) throw new LocalnetError(`IPv6 between the namespaces does not work: ${JSON.stringify(reach.results)}`);
    // The exit's uplink, both versions: a RST from the inet host (nothing listens on port 9) proves the path.
    const uplink = await agent(NODES.exit.netns, { op: 'reach', targets: [INET.ipv4, INET.ipv6].map((host) => ({ host, port: 9 })) }, 3000).result;
    if (!uplink.ok) throw new LocalnetError(`the exit's uplink to ${INET.netns} does not work: ${JSON.stringify(uplink.results)}`);
    building = false;
    io.log(`localnet up in ${Date.now() - t0} ms`);
    return { already: false, ms: Date.now() - t0, state };
  } catch (e) {
    if (building) {
      io.log('up failed: tearing down what was built (the logs stay in .localnet/logs)');
      teardown(io);
    }
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    release();
  }
}

// ---------------------------------------------------------------------------------------------------------
// down

const GATEWAY_DATA_RE = new RegExp(`(^|/)${LOCALNET_DIR.replace('.', '\\.')}/(entry|exit)/data$`);

/**
 * Our processes: the pid files' (if still the same program), everything inside our namespaces, gateways whose
 * argv names our data dirs, and wireguard-go processes serving our interface names.
 */
export function findOurProcesses(): number[] {
  const found = new Set<number>();
  const self = new Set([process.pid, process.ppid]);
  const ours = (pid: number): boolean => {
    const argv = cmdline(pid);
    return argv !== null && argv.some((a) => a.endsWith('lp-gateway.js') || a.endsWith('gateway-probe.js') || a.endsWith('ns-agent.ts'));
  };
  if (existsSync(RUN_DIR)) {
    for (const f of readdirSync(RUN_DIR).filter((x) => x.endsWith('.pid'))) {
      const pid = readPid(f.slice(0, -4));
      if (pid !== null && pidAlive(pid) && ours(pid)) found.add(pid);
    }
  }
  for (const ns of listNetns().filter((n) => n.startsWith(PREFIX))) for (const pid of netnsPids(ns)) if (pidAlive(pid)) found.add(pid);
  for (const pid of allPids()) {
    if (found.has(pid)) continue;
    const argv = cmdline(pid);
    if (argv?.some((a) => a.endsWith('lp-gateway.js')) && argv.some((a) => GATEWAY_DATA_RE.test(a) && resolve(cwdOf(pid) ?? '/', a).startsWith(STATE_DIR))) found.add(pid);
  }
  for (const w of findWireguardGo()) found.add(w.pid);
  for (const s of self) found.delete(s);
  return [...found].sort((a, b) => a - b);
}

export interface TeardownResult {
  clean: boolean;
  killed: number[];
  /** WireGuard interfaces deleted (before their namespaces). */
  wireguard: string[];
  /** wireguard-go processes that served them (gone with their interface, else signalled by PID). */
  wireguardGo: number[];
  netns: string[];
  hostLinks: string[];
  /** TCX link ids recorded at `up` that still existed after the processes were gone. */
  bpfLinksLeft: number[];
  problems: string[];
  ms: number;
}

function waitGone(pids: number[], ms: number): number[] {
  const end = Date.now() + ms;
  let alive = pids.filter(pidAlive);
  while (alive.length > 0 && Date.now() < end) {
    sleepSync(100);
    alive = alive.filter(pidAlive);
  }
  return alive;
}

/** bpftool's answer about a link id: true = exists, false = gone, null = cannot tell (no bpftool). */
function bpfLinkExists(id: number): boolean | null {
  const bpftool = which('bpftool');
  if (bpftool === null) return null;
  const r = run(bpftool, ['link', 'show', 'id', String(id)]);
  if (r.error !== null) return null;
  return r.code === 0;
}

/**
 * Removes everything of ours, synchronously and idempotently: processes (SIGTERM, then SIGKILL), namespaces
 * with our prefix (which takes the bridge and the veths with them), host interfaces with our prefix, and the
 * state under .localnet except the logs. Never throws; `clean` says whether anything was left.
 */
export function teardown(io: Io = consoleIo): TeardownResult {
  const t0 = Date.now();
  const problems: string[] = [];
  const state = readState();
  const recordedLinks = GATEWAY_NAMES.flatMap((g) => state?.gateways[g]?.collector?.link_ids ?? []);

  // 1. The gateways (and anything else in our namespaces) — not wireguard-go yet: it goes with its interface.
  const all = findOurProcesses();
  const wgGo = findWireguardGo().map((w) => w.pid);
  const pids = all.filter((p) => !wgGo.includes(p));
  for (const pid of pids) signal(pid, 'SIGTERM');
  let alive = waitGone(pids, LIMITS.term);
  if (alive.length > 0) {
    io.log(`SIGKILL to ${alive.join(' ')} (no exit within ${LIMITS.term} ms of SIGTERM)`);
    for (const pid of alive) signal(pid, 'SIGKILL');
    alive = waitGone(alive, LIMITS.kill);
  }
  // Something may have been started in a namespace meanwhile (an agent of a concurrent status).
  const late = findOurProcesses().filter((p) => !pids.includes(p) && !wgGo.includes(p) && !findWireguardGo().some((w) => w.pid === p));
  for (const pid of late) signal(pid, 'SIGKILL');
  alive = [...alive, ...waitGone(late, LIMITS.kill)];

  // 2. The WireGuard interfaces, before their namespaces: a managed interface outlives its gateway (so clients
  // keep their tunnels across a restart); deleting it makes its wireguard-go exit (and removes its socket).
  const nsNow = listNetns();
  const wireguard: string[] = [];
  for (const g of GATEWAY_NAMES) {
    const ns = NODES[g].netns;
    const iface = WIREGUARD[g].iface;
    if (!nsNow.includes(ns) || linkKindIn(ns, iface) === null) continue;
    if (ipTry(['-n', ns, 'link', 'delete', 'dev', iface])) wireguard.push(iface);
    else problems.push(`ip -n ${ns} link delete ${iface} failed`);
  }
  // 3. wireguard-go processes serving our names (also one that outlived its namespace): gone with the
  // interface, else SIGTERM, then SIGKILL — by PID.
  const wireguardGo = [...new Set([...wgGo, ...findWireguardGo().map((w) => w.pid)])].sort((a, b) => a - b);
  let wgAlive = waitGone(wireguardGo, LIMITS.wgGone);
  if (wgAlive.length > 0) {
    for (const pid of wgAlive) signal(pid, 'SIGTERM');
    wgAlive = waitGone(wgAlive, LIMITS.kill);
  }
  if (wgAlive.length > 0) {
    io.log(`SIGKILL to wireguard-go ${wgAlive.join(' ')}`);
    for (const pid of wgAlive) signal(pid, 'SIGKILL');
    wgAlive = waitGone(wgAlive, LIMITS.kill);
  }
  alive = [...alive, ...wgAlive];
  if (alive.length > 0) problems.push(`processes still alive: ${alive.join(' ')}`);
  // A wireguard-go that was killed cannot remove its socket: remove ours once nothing serves them.
  if (findWireguardGo().length === 0) for (const f of wgSockets()) rmSync(f, { force: true });

  const netns = listNetns().filter((n) => n.startsWith(PREFIX));
  // Node namespaces first, the hub (bridge) last.
  for (const ns of [...netns].sort((a, b) => Number(a === HUB.netns) - Number(b === HUB.netns))) {
    if (!ipTry(['netns', 'delete', ns])) problems.push(`ip netns delete ${ns} failed`);
  }
  const hostLinks = ourHostLinks();
  // Deleting one end of a veth pair deletes the other: failures are judged by the check below, not here.
  for (const l of hostLinks) if (listLinks(null).includes(l)) ipTry(['link', 'delete', l]);

  const left = findLeftovers();
  if (left.netns.length > 0) problems.push(`namespaces left: ${left.netns.join(' ')}`);
  if (left.hostLinks.length > 0) problems.push(`host interfaces left: ${left.hostLinks.join(' ')}`);
  if (left.wgSockets.length > 0) problems.push(`wireguard-go sockets left: ${left.wgSockets.join(' ')}`);

  // TCX links belong to the processes' fds: they are gone once the processes are (checked with bpftool if present).
  let bpfLinksLeft: number[] = [];
  if (recordedLinks.length > 0) {
    const end = Date.now() + 2000;
    for (;;) {
      bpfLinksLeft = recordedLinks.filter((id) => bpfLinkExists(id) === true);
      if (bpfLinksLeft.length === 0 || Date.now() > end) break;
      sleepSync(100);
    }
    if (bpfLinksLeft.length > 0) problems.push(`BPF links still present: ${bpfLinksLeft.join(' ')} (bpftool link show)`);
  }

  // State, keeping the logs (and the lock, which its holder releases).
  if (existsSync(STATE_DIR)) {
    for (const f of readdirSync(STATE_DIR)) {
      if (f === 'logs' || f === 'lock') continue;
      try {
        rmSync(join(STATE_DIR, f), { recursive: true, force: true });
      } catch (e) {
        problems.push(`cannot remove ${join(STATE_DIR, f)}: ${(e as Error).message}`);
      }
    }
  }
  const r: TeardownResult = { clean: problems.length === 0, killed: pids, wireguard, wireguardGo, netns, hostLinks, bpfLinksLeft, problems, ms: Date.now() - t0 };
  return r;
}

export function down(io: Io = consoleIo): TeardownResult {
  requireRoot('down');
  const release = acquireLock();
  try {
    const r = teardown(io);
    const what = [
      r.killed.length > 0 ? `stopped pids ${r.killed.join(' ')}` : null,
      r.wireguard.length > 0 ? `deleted WireGuard interfaces ${r.wireguard.join(' ')}` : null,
      r.wireguardGo.length > 0 ? `wireguard-go ${r.wireguardGo.join(' ')} gone` : null,
      r.netns.length > 0 ? `deleted namespaces ${r.netns.join(' ')} (with bridge ${HUB.bridge} and the veths)` : null,
      r.hostLinks.length > 0 ? `deleted host interfaces ${r.hostLinks.join(' ')}` : null,
    ].filter((x) => x !== null);
    io.out(what.length > 0 ? `localnet down: ${what.join('; ')} in ${r.ms} ms` : 'localnet down: nothing was running');
    for (const p of r.problems) io.out(`problem: ${p}`);
    if (existsSync(LOG_DIR)) io.out(`logs kept in ${LOG_DIR}`);
    return r;
  } finally {
    release();
  }
}

// ---------------------------------------------------------------------------------------------------------
// status

export interface NodeStatus {
  name: string;
  netns: string;
  netns_present: boolean;
  ipv4: string;
  ipv6: string;
  pid: number | null;
  running: boolean | null;
  health: string | null;
  collector: { state: string; attach_mode: string | null; windows: number; link_ids: number[]; iface: string | null } | null;
  directory_peers: number | null;
  /** A gateway's WireGuard interface: its link kind (`tun` = wireguard-go, `wireguard` = kernel), null when absent. */
  wireguard: { iface: string; kind: string | null; wireguard_go_pid: number | null } | null;
}

export interface StatusResult {
  state: 'up' | 'degraded' | 'down';
  netns: string[];
  hostLinks: string[];
  nodes: NodeStatus[];
  ipv6: ReachResult[];
  /** From the exit namespace to the inet host, IPv4 and IPv6. */
  uplink: ReachResult[];
}

export async function status(): Promise<StatusResult> {
  const allNs = listNetns();
  const netns = allNs.filter((n) => n.startsWith(PREFIX));
  const hostLinks = ourHostLinks();
  const canAsk = isRoot() && netns.includes(NODES.probe.netns);
  const urls = GATEWAY_NAMES.flatMap((g) => [`${httpUrl(g)}/health`, `${httpUrl(g)}/v1/collector/status`, `${httpUrl(g)}/v1/stats`]);
  const answers = canAsk ? await httpGet(urls, 2000).catch(() => []) : [];
  const byUrl = new Map(answers.map((a) => [a.url, a]));
  const reach = async (netns: string, targets: { host: string; port: number }[]): Promise<ReachResult[]> =>
    agent(netns, { op: 'reach', targets }, 2000)
      .result.then((r) => (r.op === 'reach' ? r.results : []))
      .catch(() => []);
  const ipv6 = canAsk ? await reach(NODES.probe.netns, GATEWAY_NAMES.map((g) => ({ host: NODES[g].ipv6, port: PORTS.http }))) : [];
  const uplink = isRoot() && netns.includes(NODES.exit.netns) && netns.includes(INET.netns) ? await reach(NODES.exit.netns, [INET.ipv4, INET.ipv6].map((host) => ({ host, port: 9 }))) : [];
  const wgGo = isRoot() ? findWireguardGo() : [];
  const nodes: NodeStatus[] = [...NODE_NAMES, INET.name].map((name) => {
    const n = name === 'inet' ? INET : NODES[name];
    const s: NodeStatus = { name, netns: n.netns, netns_present: allNs.includes(n.netns), ipv4: n.ipv4, ipv6: n.ipv6, pid: null, running: null, health: null, collector: null, directory_peers: null, wireguard: null };
    if (name === 'probe' || name === 'inet') return s;
    const g = name;
    const wgIf = WIREGUARD[g].iface;
    s.wireguard = { iface: wgIf, kind: s.netns_present ? linkKindIn(n.netns, wgIf) : null, wireguard_go_pid: wgGo.find((w) => w.iface === wgIf)?.pid ?? null };
    s.pid = readPid(g);
    s.running = s.pid === null ? null : pidAlive(s.pid);
    const h = byUrl.get(`${httpUrl(g)}/health`);
    s.health = h === undefined ? null : h.ok ? 'ok' : (h.error ?? `HTTP ${String(h.status)}`);
    const c = byUrl.get(`${httpUrl(g)}/v1/collector/status`);
    if (c?.ok) {
      const b = c.body as { state: string; attach_mode: string | null; windows: number; link_ids: number[]; iface: string | null };
      s.collector = { state: b.state, attach_mode: b.attach_mode, windows: b.windows, link_ids: b.link_ids, iface: b.iface };
    }
    const st = byUrl.get(`${httpUrl(g)}/v1/stats`);
    if (st?.ok) s.directory_peers = (st.body as { directory: { peers: number } | null }).directory?.peers ?? null;
    return s;
  });
  const gw = nodes.filter((n) => n.name === 'entry' || n.name === 'exit');
  const allUp = ALL_NETNS.every((n) => netns.includes(n)) && gw.every((n) => n.running === true && n.health === 'ok' && n.collector?.state === 'running' && n.wireguard?.kind != null);
  const nothing = netns.length === 0 && hostLinks.length === 0 && gw.every((n) => n.running !== true) && wgGo.length === 0;
  return { state: allUp ? 'up' : nothing ? 'down' : 'degraded', netns, hostLinks, nodes, ipv6, uplink };
}

export function formatStatus(s: StatusResult): string[] {
  const lines = [`localnet: ${s.state}   (prefix ${PREFIX}, ${SUBNET4}, ${SUBNET6}, bridge ${HUB.bridge} in ${HUB.netns})`];
  lines.push(`namespaces: ${s.netns.length > 0 ? [...s.netns].sort().join(' ') : '(none)'}${s.hostLinks.length > 0 ? `; host interfaces: ${s.hostLinks.join(' ')}` : ''}`);
  const rows = [['node', 'netns', 'ipv4', 'ipv6', 'pid', 'process', 'health', 'collector', 'directory', 'wireguard']];
  for (const n of s.nodes) {
    const col = n.collector ? `${n.collector.state} ${n.collector.attach_mode ?? ''} ${n.collector.iface ?? ''} windows=${n.collector.windows} links=${n.collector.link_ids.join(',')}` : '-';
    const w = n.wireguard;
    const wg = w === null ? '-' : w.kind === null ? `${w.iface} missing` : `${w.iface} ${w.kind === 'wireguard' ? 'kernel' : w.wireguard_go_pid !== null ? `wireguard-go ${w.wireguard_go_pid}` : w.kind}`;
    rows.push([
      n.name,
      n.netns_present ? n.netns : `${n.netns} (missing)`,
      n.ipv4,
      n.ipv6,
      n.pid === null ? '-' : String(n.pid),
      n.running === null ? '-' : n.running ? 'running' : 'not running',
      n.health ?? '-',
      col,
      n.directory_peers === null ? '-' : `peers=${n.directory_peers}`,
      wg,
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const r of rows) lines.push(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
  if (s.ipv6.length > 0) lines.push(`ipv6 from probe: ${s.ipv6.map((r) => `[${r.host}]:${r.port} ${r.result === 'open' || r.result === 'refused' ? 'reachable' : r.result}`).join(', ')}`);
  if (s.uplink.length > 0) lines.push(`exit uplink ${UPLINK.exitIface} → inet: ${s.uplink.map((r) => `${r.host} ${r.result === 'open' || r.result === 'refused' ? 'reachable' : r.result}`).join(', ')}`);
  if (!isRoot() && s.netns.length > 0) lines.push('(not root: health and collector not queried)');
  return lines;
}

// ---------------------------------------------------------------------------------------------------------
// logs

export const LOG_NAMES = ['entry', 'exit', 'probe'] as const;

export function logFiles(name?: string): string[] {
  if (name !== undefined && !(LOG_NAMES as readonly string[]).includes(name)) throw new LocalnetError(`unknown log '${name}': one of ${LOG_NAMES.join(', ')}`);
  return (name === undefined ? [...LOG_NAMES] : [name]).map((n) => join(LOG_DIR, `${n}.log`));
}

/** Prints the last `lines` lines of each log; with `follow`, keeps printing what is appended until `signal` aborts. */
export async function logs(opts: { name?: string; lines: number; follow: boolean; signal?: AbortSignal }, io: Io = consoleIo): Promise<number> {
  const files = logFiles(opts.name);
  const present = files.filter((f) => existsSync(f));
  if (present.length === 0) {
    io.log(`no logs yet in ${LOG_DIR} (npm run localnet:up)`);
    return 1;
  }
  for (const f of present) {
    if (present.length > 1) io.out(`==> ${f} <==`);
    const t = tail(f, opts.lines);
    if (t !== '') io.out(t);
  }
  if (!opts.follow) return 0;
  const offsets = new Map(present.map((f) => [f, statSync(f).size]));
  while (!opts.signal?.aborted) {
    await new Promise((r) => setTimeout(r, 250));
    for (const f of files) {
      let size: number;
      try {
        size = statSync(f).size;
      } catch {
        continue;
      }
      const from = offsets.get(f) ?? 0;
      if (size < from) offsets.set(f, 0);
      if (size <= from) continue;
      const fd = openSync(f, 'r');
      try {
        const buf = Buffer.alloc(Math.min(size - from, 1024 * 1024));
        const n = readSync(fd, buf, 0, buf.length, from);
        offsets.set(f, from + n);
        const text = buf.subarray(0, n).toString('utf8').replace(/\n$/, '');
        if (text !== '') io.out(files.length > 1 ? text.split('\n').map((l) => `[${f.slice(LOG_DIR.length + 1, -4)}] ${l}`).join('\n') : text);
      } finally {
        closeSync(fd);
      }
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------------
// collector output

/** Every window a gateway's collector wrote (its NDJSON files under <data-dir>/collector), oldest first. */
export function readCollectorWindows(name: GatewayName): WindowSnapshot[] {
  const dir = join(ROOT, localnetPaths(name).dataDir, 'collector');
  if (!existsSync(dir)) return [];
  const out: WindowSnapshot[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.ndjson')).sort()) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        out.push(JSON.parse(line) as WindowSnapshot);
      } catch {
        // a line being written
      }
    }
  }
  return out.sort((a, b) => a.ended_at.localeCompare(b.ended_at));
}

/** Waits (bounded) until both collectors have closed a window after `until`. */
export async function waitForWindowsAfter(until: Date, timeoutMs: number = LIMITS.window): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  const iso = until.toISOString();
  for (;;) {
    if (GATEWAY_NAMES.every((g) => readCollectorWindows(g).some((w) => w.ended_at > iso))) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface Counters {
  packets: number;
  payload_bytes: number;
}

/** Flows of one peer to one watched address, summed over connections and windows. */
export interface PeerSummary {
  proto: FlowWindow['proto'];
  /** The non-watched side (the client: the probe at the entry, the entry at the exit). */
  remote: string;
  /** The watched side. */
  local: string;
  local_port: number;
  /** Distinct remote ports (TCP: connections; UDP: sockets). */
  connections: number;
  request: Counters;
  response: Counters;
}

export interface GatewayEvidence {
  gateway: GatewayName;
  windows_total: number;
  /** Windows overlapping the probe run. */
  windows_in_run: number;
  /** The ports the collector watched (every window's `source.watched_ports`, merged). */
  watched_ports: number[];
  /** Distinct remote addresses (the non-watched side) during the run / over the collector's whole life. */
  remotes_in_run: string[];
  remotes_ever: string[];
  /** Traffic during the run per (proto, remote, local, local port). */
  peers_in_run: PeerSummary[];
}

export interface CollectorEvidence {
  window_covering_run: boolean;
  entry: GatewayEvidence;
  exit: GatewayEvidence;
  ok: boolean;
  problems: string[];
}

function evidenceFor(g: GatewayName, all: readonly WindowSnapshot[], from: Date, until: Date): GatewayEvidence {
  const f = from.toISOString();
  const u = until.toISOString();
  const inRun = all.filter((w) => w.ended_at >= f && w.started_at <= u);
  const peers = new Map<string, PeerSummary & { ports: Set<number> }>();
  for (const w of inRun) {
    for (const fl of w.flows) {
      const key = `${fl.proto} ${fl.remote} ${fl.local}:${fl.local_port}`;
      const p = peers.get(key) ?? { proto: fl.proto, remote: fl.remote, local: fl.local, local_port: fl.local_port, connections: 0, request: { packets: 0, payload_bytes: 0 }, response: { packets: 0, payload_bytes: 0 }, ports: new Set<number>() };
      p.ports.add(fl.remote_port);
      p.request.packets += fl.request.packets;
      p.request.payload_bytes += fl.request.payload_bytes;
      p.response.packets += fl.response.packets;
      p.response.payload_bytes += fl.response.payload_bytes;
      peers.set(key, p);
    }
  }
  const uniq = (xs: string[]): string[] => [...new Set(xs)].sort();
  return {
    gateway: g,
    windows_total: all.length,
    windows_in_run: inRun.length,
    watched_ports: [...new Set(all.flatMap((w) => w.source.watched_ports))].sort((a, b) => a - b),
    remotes_in_run: uniq(inRun.flatMap((w) => w.flows.map((x) => x.remote))),
    remotes_ever: uniq(all.flatMap((w) => w.flows.map((x) => x.remote))),
    peers_in_run: [...peers.values()].map(({ ports, ...p }) => ({ ...p, connections: ports.size })),
  };
}

export interface CollectorCheckInput {
  /** Every window each collector wrote (its NDJSON output), any order. */
  entry: readonly WindowSnapshot[];
  exit: readonly WindowSnapshot[];
  /** The probe run. */
  from: Date;
  until: Date;
  /** A window of each collector closed after `until`. */
  covered: boolean;
  transports: readonly ProbeTransport[];
  /** The probe ran its tunnel checks: WireGuard traffic (UDP 51820) is expected at both gateways. */
  tunnel: boolean;
}

/**
 * Whether the collectors' windows match the topology (a pure function of their output, unit-tested on crafted
 * windows): the entry sees the probe — its LP flows per transport and, with the tunnel checks, its WireGuard
 * flow to the entry's port 51820; the exit watches its WireGuard port and sees the entry's LP TCP flow and,
 * with the tunnel checks, the entry's WireGuard flow to its port 51820 (the probe's two-hop tunnel,
 * masqueraded by the entry); and over the exit collector's whole life every flow's remote side is the entry's
 * address and no flow names the probe's — for LP and WireGuard traffic alike: the privacy of two hops.
 */
export function checkCollectors(i: CollectorCheckInput): CollectorEvidence {
  const entry = evidenceFor('entry', i.entry, i.from, i.until);
  const exit = evidenceFor('exit', i.exit, i.from, i.until);
  const problems: string[] = [];
  const probe = [NODES.probe.ipv4, NODES.probe.ipv6];
  const e4 = NODES.entry.ipv4;
  const x4 = NODES.exit.ipv4;
  const twoWay = (f: PeerSummary): boolean => f.request.packets > 0 && f.response.packets > 0;
  if (!i.covered) problems.push(`no collector window closed after the probe run within ${LIMITS.window} ms`);
  for (const t of i.transports) {
    const port = t === 'tcp' ? PORTS.lpTcp : PORTS.lpUdp;
    if (!entry.peers_in_run.some((f) => f.proto === t && f.remote === NODES.probe.ipv4 && f.local === e4 && f.local_port === port && twoWay(f))) {
      problems.push(`entry collector shows no ${t} flow from the probe (${NODES.probe.ipv4} → ${e4}:${port})`);
    }
  }
  if (!exit.peers_in_run.some((f) => f.proto === 'tcp' && f.remote === e4 && f.local === x4 && f.local_port === PORTS.lpTcp && f.response.packets > 0)) problems.push(`exit collector shows no tcp flow from the entry (${e4} → ${x4}:${PORTS.lpTcp}) during the probe run`);
  if (i.tunnel) {
    if (!entry.peers_in_run.some((f) => f.proto === 'udp' && f.remote === NODES.probe.ipv4 && f.local === e4 && f.local_port === PORTS.wireguard && twoWay(f))) {
      problems.push(`entry collector shows no WireGuard flow from the probe (udp ${NODES.probe.ipv4} → ${e4}:${PORTS.wireguard})`);
    }
    if (!exit.watched_ports.includes(PORTS.wireguard)) problems.push(`exit collector does not watch the WireGuard port ${PORTS.wireguard} (watched: ${exit.watched_ports.join(', ') || 'none'})`);
    if (!exit.peers_in_run.some((f) => f.proto === 'udp' && f.remote === e4 && f.local === x4 && f.local_port === PORTS.wireguard && twoWay(f))) {
      problems.push(`exit collector shows no WireGuard flow from the entry (udp ${e4} → ${x4}:${PORTS.wireguard}: the two-hop tunnel) during the probe run`);
    }
  }
  for (const r of exit.remotes_ever) if (r !== e4) problems.push(`exit collector shows a flow from ${r}; only the entry (${e4}) may reach it`);
  const exitAddrs = i.exit.flatMap((w) => w.flows.flatMap((x) => [x.local, x.remote]));
  if (exitAddrs.some((a) => probe.includes(a))) problems.push("exit collector shows the probe's address");
  return { window_covering_run: i.covered, entry, exit, ok: problems.length === 0, problems };
}

/** What the collectors wrote about the probe run (waiting, bounded, for a window that closes after `until`), checked by checkCollectors. */
export async function collectorEvidence(from: Date, until: Date, transports: readonly ProbeTransport[] = PROBE_TRANSPORTS, tunnel = true): Promise<CollectorEvidence> {
  const covered = await waitForWindowsAfter(new Date(until.getTime() + 300));
  return checkCollectors({ entry: readCollectorWindows('entry'), exit: readCollectorWindows('exit'), from, until, covered, transports, tunnel });
}

// ---------------------------------------------------------------------------------------------------------
// probe

/** The parts of gateway-probe's report the localnet checks (the report has more). */
export interface ProbeReportLike {
  entry: unknown;
  exit: unknown;
  outcome: Record<string, Record<string, unknown> | null>;
  timings_ms: Record<string, number | null>;
  passed?: boolean;
}

export interface ProbeRun {
  transport: ProbeTransport;
  exit_code: number | null;
  passed: boolean;
  /** Checks that were false (outcome.<section>.<can_*>), or why there is no report. */
  failed: string[];
  report: ProbeReportLike | null;
  stderr: string;
  ms: number;
}

export interface ProbeResult {
  passed: boolean;
  runs: ProbeRun[];
  collector: CollectorEvidence | null;
  started_at: string;
  ended_at: string;
}

/** Every `can_*` flag in the report's outcome, with its value. */
export function outcomeChecks(report: ProbeReportLike): { name: string; ok: boolean }[] {
  const checks: { name: string; ok: boolean }[] = [];
  for (const [section, v] of Object.entries(report.outcome)) {
    if (v === null) continue;
    for (const [k, flag] of Object.entries(v)) if (k.startsWith('can_')) checks.push({ name: `${section}.${k}`, ok: flag === true });
  }
  return checks;
}

/**
 * The sections every localnet run must report: LP, telescoping and rekey, and the tunnel checks — one hop
 * (`wg`, the entry's tunnel), two hops (`wg_exit`, the exit's tunnel inside the entry's) and beyond the exit
 * (`as_exit`, echoes to the inet host). Their `can_*` flags must all be true.
 */
export const REQUIRED_SECTIONS = ['lp', 'telescoping', 'rekey', 'telescoping_rekey', 'wg', 'wg_exit', 'as_exit'] as const;

/** One probe run's verdict from its exit status and output (exported for the unit tests). */
export function judge(transport: ProbeTransport, code: number | null, stdout: string, stderr: string, ms: number, timedOut: boolean): ProbeRun {
  const failed: string[] = [];
  let report: ProbeReportLike | null = null;
  try {
    const parsed = JSON.parse(stdout.trim()) as ProbeReportLike;
    if (typeof parsed === 'object' && parsed !== null && typeof parsed.outcome === 'object' && parsed.outcome !== null) report = parsed;
  } catch {
    // below
  }
  if (timedOut) failed.push(`gateway-probe did not finish within ${LIMITS.probe} ms`);
  if (report === null) failed.push(`no JSON report on stdout (exit ${String(code)}): ${(stdout.trim() || stderr.trim()).slice(0, 300)}`);
  else {
    for (const section of REQUIRED_SECTIONS) if (!report.outcome[section]) failed.push(`outcome.${section} missing`);
    for (const c of outcomeChecks(report)) if (!c.ok) failed.push(c.name);
    if (report.passed === false) failed.push('passed=false');
  }
  if (code !== 0) failed.push(`exit status ${String(code)}`);
  return { transport, exit_code: code, passed: failed.length === 0, failed, report, stderr, ms };
}

export function summaryLine(r: ProbeRun): string {
  const checks = r.report ? outcomeChecks(r.report).map((c) => `${c.name.replace(/\.can_/, ':')}${c.ok ? '✓' : '✗'}`) : [];
  const ratio = (section: string): string => {
    const w = r.report?.outcome[section];
    return w ? ` ${section} echoes v4 ${String(w.ping_ips_performance_v4 ?? '?')} v6 ${String(w.ping_ips_performance_v6 ?? '?')}` : '';
  };
  const total = r.report?.timings_ms.total;
  return `probe ${r.transport}: ${r.passed ? 'PASS' : 'FAIL'}  ${checks.join(' ')} ${ratio('wg')}${ratio('wg_exit')}  probe total ${total ?? '?'} ms, wall ${r.ms} ms${r.passed ? '' : `  failed: ${r.failed.join(', ')}`}`;
}

export function evidenceLines(e: CollectorEvidence): string[] {
  const lines: string[] = [];
  for (const g of [e.entry, e.exit]) {
    lines.push(`collector ${g.gateway}: ${g.windows_in_run} window${g.windows_in_run === 1 ? '' : 's'} during the run (${g.windows_total} in all); remote addresses during the run [${g.remotes_in_run.join(', ')}], ever [${g.remotes_ever.join(', ')}]`);
    for (const p of g.peers_in_run) {
      lines.push(`  ${p.proto} ${p.remote} → ${p.local}:${p.local_port}  ${p.connections} conn  request ${p.request.packets} pkts/${p.request.payload_bytes} B  response ${p.response.packets} pkts/${p.response.payload_bytes} B`);
    }
  }
  lines.push(`collector check: ${e.ok ? `OK (the entry sees the probe ${NODES.probe.ipv4}; the exit, watching ports ${e.exit.watched_ports.join(', ')}, sees only the entry ${NODES.entry.ipv4}, for LP and WireGuard)` : `FAIL: ${e.problems.join('; ')}`}`);
  return lines;
}

export async function probe(opts: { transports?: readonly ProbeTransport[] } = {}, io: Io = consoleIo): Promise<ProbeResult> {
  requireRoot('probe');
  ipBin();
  const transports = opts.transports ?? PROBE_TRANSPORTS;
  if (!listNetns().includes(NODES.probe.netns)) throw new LocalnetError(`namespace ${NODES.probe.netns} does not exist: the localnet is not up (npm run localnet:up)`);
  const health = await httpGet(GATEWAY_NAMES.map((g) => `${httpUrl(g)}/health`));
  const sick = health.filter((h) => !h.ok);
  if (sick.length > 0 || health.length === 0) throw new LocalnetError(`gateways not healthy: ${sick.map((h) => `${h.url} ${h.error ?? String(h.status)}`).join('; ')} (npm run localnet:status)`);
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, 'probe.log');
  const startedAt = new Date();
  const runs: ProbeRun[] = [];
  for (const t of transports) {
    const args = ['netns', 'exec', NODES.probe.netns, process.execPath, GATEWAY_PROBE, ...probeArgs(t)];
    io.log(`probe ${t}: ip ${args.join(' ').replace(process.execPath, 'node').replace(ROOT + '/', '')}`);
    const t0 = Date.now();
    const r = await runAsync(ipBin(), args, LIMITS.probe).done;
    const ms = Date.now() - t0;
    writeFileSync(logFile, `=== ${new Date().toISOString()} gateway-probe ${probeArgs(t).join(' ')} → exit ${String(r.code)} in ${ms} ms\n--- stderr\n${r.stderr}--- stdout\n${r.stdout}\n`, { flag: 'a' });
    if (r.stderr.trim() !== '') io.log(r.stderr.trimEnd());
    runs.push(judge(t, r.code, r.stdout, r.stderr, ms, r.timedOut));
  }
  const endedAt = new Date();
  let collector: CollectorEvidence | null = null;
  if (runs.some((r) => r.report !== null)) {
    io.log('waiting for collector windows that cover the run');
    collector = await collectorEvidence(startedAt, endedAt, transports);
  }
  const passed = runs.every((r) => r.passed) && (collector?.ok ?? false);
  return { passed, runs, collector, started_at: startedAt.toISOString(), ended_at: endedAt.toISOString() };
}
