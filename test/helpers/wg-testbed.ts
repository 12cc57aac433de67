/**
 * A real WireGuard test bed: a gateway namespace and a client namespace joined by a veth pair
 * (gateway 10.251.0.1/24, client 10.251.0.2/24), gateways started inside the gateway namespace, the probe
 * and a real WireGuard client (wg-quick + wireguard-go) inside the client namespace. Interface names are
 * unique on the machine (wireguard-go's control sockets live in /var/run/wireguard, shared by all
 * namespaces). Everything is removed by `destroy()`, also after failures: deleting an interface makes its
 * wireguard-go exit, deleting a namespace removes its veth end, and only processes this bed started are
 * signalled, by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { WgOutcome } from '../../probe/report.js';
import { Netns, isRoot, which } from '../collector/helpers/env.js';

const ROOT_DIR = fileURLToPath(new URL('../../', import.meta.url));
export const LP_GATEWAY = join(ROOT_DIR, 'bin/lp-gateway.js');
const GATEWAY_PROBE = join(ROOT_DIR, 'bin/gateway-probe.js');

export const GW_ADDR = '10.251.0.1';
export const CLIENT_ADDR = '10.251.0.2';

/** Why the real-WireGuard tests cannot run here, or false when they can. */
export function wireguardSkip(): string | false {
  if (!isRoot) return 'needs root (network namespaces, WireGuard interfaces)';
  for (const tool of ['wireguard-go', 'wg', 'wg-quick', 'ip', 'ping']) if (which(tool) === null) return `needs ${tool} (apt-get install wireguard-go wireguard-tools iproute2 iputils-ping; .ci/run installs them)`;
  return false;
}

let ifCounter = 0;
/** A WireGuard interface name unique on this machine: lpw<pid><n> (≤ 15 characters). */
export function uniqueIfName(tag: string): string {
  return `lw${tag}${process.pid % 100000}${ifCounter++}`.slice(0, 15);
}

/** Synchronous: only for setup and teardown. */
export function runSync(cmd: string, args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function mustSync(cmd: string, args: readonly string[]): string {
  const r = runSync(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * Asynchronous, so the suites that run side by side in this process (and samplers) keep running while a
 * command does: a synchronous spawn would block every other suite's timers. Killed after 30 s.
 */
export function run(cmd: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: e.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function must(cmd: string, args: readonly string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

export interface GatewayHandle {
  proc: ChildProcess;
  /** The gateway's identity key (hex), from its start log: the probe pins it. */
  identity: string;
  logs: Record<string, unknown>[];
  /** Raw stdout and stderr text (to search for secrets). */
  text(): string;
  /** The HTTP API port inside the gateway namespace. */
  httpPort: number;
  exited: Promise<number | null>;
}

export interface PeersView {
  peers: { ipv4: string; ipv6: string; rx_bytes: string; tx_bytes: string; latest_handshake: number; remaining_bytes: string }[];
}

/** The parts of a probe report these tests read. */
export interface ProbeOutput {
  passed?: boolean;
  outcome?: {
    lp?: { can_register?: boolean; error?: { code: string; message: string } | null; registration?: { private_ipv4: string; private_ipv6: string; deregistered: boolean | null } | null };
    wg?: WgOutcome | null;
  };
}

export class WgTestbed {
  readonly gw: Netns;
  readonly client: Netns;
  readonly dir: string;
  private readonly procs = new Set<ChildProcess>();
  private readonly ifaces: [Netns, string][] = [];

  private constructor(tag: string) {
    this.dir = mkdtempSync(join(tmpdir(), 'lpgw-wg-'));
    this.gw = Netns.create(`${tag}g`);
    this.client = Netns.create(`${tag}c`);
    const a = `lv${process.pid % 100000}${tag}a`.slice(0, 15);
    const b = `lv${process.pid % 100000}${tag}b`.slice(0, 15);
    mustSync('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    mustSync('ip', ['link', 'set', a, 'netns', this.gw.name]);
    mustSync('ip', ['link', 'set', b, 'netns', this.client.name]);
    this.gw.ip(['addr', 'add', `${GW_ADDR}/24`, 'dev', a]);
    this.client.ip(['addr', 'add', `${CLIENT_ADDR}/24`, 'dev', b]);
    this.gw.ip(['link', 'set', a, 'up']);
    this.client.ip(['link', 'set', b, 'up']);
  }

  static create(tag: string): WgTestbed {
    return new WgTestbed(tag);
  }

  private internet: Netns | null = null;

  /**
   * An "internet" host namespace behind the gateway: veth <uplink> in the gateway namespace (10.252.0.1/24,
   * fd77::1/64) to the host (10.252.0.2, fd77::2), which has no route back to the client pools — so a reply
   * reaches a client only if the gateway masqueraded its request. Returns the uplink's name.
   */
  addInternet(tag: string): { uplink: string; host4: string; host6: string; ns: Netns } {
    const net = Netns.create(`${tag}n`);
    this.internet = net;
    const a = `lu${process.pid % 100000}${tag}a`.slice(0, 15);
    const b = `lu${process.pid % 100000}${tag}b`.slice(0, 15);
    mustSync('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    mustSync('ip', ['link', 'set', a, 'netns', this.gw.name]);
    mustSync('ip', ['link', 'set', b, 'netns', net.name]);
    this.gw.ip(['addr', 'add', '10.252.0.1/24', 'dev', a]);
    this.gw.ip(['-6', 'addr', 'add', 'fd77::1/64', 'dev', a, 'nodad']);
    net.ip(['addr', 'add', '10.252.0.2/24', 'dev', b]);
    net.ip(['-6', 'addr', 'add', 'fd77::2/64', 'dev', b, 'nodad']);
    this.gw.ip(['link', 'set', a, 'up']);
    net.ip(['link', 'set', b, 'up']);
    return { uplink: a, host4: '10.252.0.2', host6: 'fd77::2', ns: net };
  }

  /** Records an interface for teardown (deleting it ends its wireguard-go). */
  own(ns: Netns, iface: string): string {
    this.ifaces.push([ns, iface]);
    return iface;
  }

  /** Starts `lp-gateway run` in the gateway namespace; resolves at "gateway listening". */
  async startGateway(dataDir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<GatewayHandle> {
    const proc = spawn(
      'ip',
      ['netns', 'exec', this.gw.name, process.execPath, LP_GATEWAY, 'run', '--data-dir', dataDir, '--http', '0.0.0.0:0', '--lp-tcp', '0.0.0.0:0', '--lp-udp', '0.0.0.0:0', '--announce-host', GW_ADDR, '--log-level', 'debug', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LPGW_CONFIG: '/dev/null', ...env } },
    );
    this.procs.add(proc);
    const logs: Record<string, unknown>[] = [];
    let raw = '';
    proc.stderr?.on('data', (d: Buffer) => (raw += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const listening = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`gateway did not start within 60 s; stderr: ${raw}; logs: ${JSON.stringify(logs.slice(-5))}`)), 60_000); // generous: a loaded CI machine starts a gateway slowly
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new GatewayExit(code, logs, raw));
      });
      createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        raw += `${line}\n`;
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          logs.push(rec);
          if (rec.msg === 'gateway listening') {
            clearTimeout(timer);
            resolve(Number(String(rec.http).split(':').pop()));
          }
        } catch {
          // not JSON
        }
      });
    });
    const httpPort = await listening;
    const identity = String(logs.find((l) => typeof l.identity === 'string')?.identity ?? '');
    return { proc, identity, logs, text: () => raw, httpPort, exited };
  }

  /** Runs `node bin/lp-gateway.js run …` to completion (a gateway expected to refuse to start). */
  async gatewayExit(dataDir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<GatewayExit> {
    try {
      const g = await this.startGateway(dataDir, args, env);
      await this.stop(g);
      throw new Error('the gateway started');
    } catch (e) {
      if (e instanceof GatewayExit) return e;
      throw e;
    }
  }

  async stop(g: GatewayHandle, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (g.proc.exitCode === null && g.proc.signalCode === null) g.proc.kill(signal);
    const code = await g.exited;
    this.procs.delete(g.proc);
    return code;
  }

  /** GET from inside the gateway namespace (the API is not reachable from the test's namespace). */
  gatewayGet(g: GatewayHandle, path: string): Promise<string> {
    const script = `fetch('http://127.0.0.1:${g.httpPort}${path}').then(r => r.text()).then(t => process.stdout.write(t), e => { console.error(String(e)); process.exit(1); })`;
    return must('ip', ['netns', 'exec', this.gw.name, process.execPath, '-e', script]);
  }

  async peersView(g: GatewayHandle): Promise<PeersView> {
    return JSON.parse(await this.gatewayGet(g, '/v1/wireguard/peers')) as PeersView;
  }

  async metric(g: GatewayHandle, name: string): Promise<number> {
    const line = (await this.gatewayGet(g, '/metrics')).split('\n').find((l) => l.startsWith(`${name} `));
    return line ? Number(line.slice(name.length + 1)) : 0;
  }

  /** `gateway-probe run` from the client namespace (asynchronous, so samplers keep running); exit status and report. */
  async probe(g: GatewayHandle, args: string[] = [], o: { asNobody?: boolean } = {}): Promise<{ code: number | null; report: ProbeOutput; stdout: string; stderr: string }> {
    // operators run the probe unprivileged: uid 65534, no capabilities
    const drop = o.asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'] : [];
    const child = spawn('ip', ['netns', 'exec', this.client.name, ...drop, process.execPath, GATEWAY_PROBE, 'run', '--entry', `http://${GW_ADDR}:${g.httpPort}`, '--entry-identity', g.identity, '--mock-ecash', '--compact', '-q', '--timeout', '60', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: '/tmp' },
    });
    this.procs.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    this.procs.delete(child);
    let report: ProbeOutput = {};
    try {
      report = JSON.parse(stdout) as ProbeOutput;
    } catch {
      // left empty: the caller's assertion shows stdout/stderr
    }
    return { code, report, stdout, stderr };
  }

  /** `wg-quick up` of a probe-written configuration in the client namespace (as a real client would). */
  async clientUp(config: string, iface: string): Promise<void> {
    const file = join(this.dir, `${iface}.conf`);
    writeFileSync(file, config, { mode: 0o600 });
    chmodSync(file, 0o600);
    this.own(this.client, iface);
    await must('ip', ['netns', 'exec', this.client.name, 'wg-quick', 'up', file]);
  }

  /** Pings from the client namespace until one reply or `tries` one-second attempts. */
  async pingFromClient(addr: string, tries = 5): Promise<boolean> {
    for (let i = 0; i < tries; i++) if ((await run('ip', ['netns', 'exec', this.client.name, 'ping', '-c', '1', '-W', '1', addr])).code === 0) return true;
    return false;
  }

  /** `wg show <iface> <what>` in a namespace. */
  wgShow(ns: Netns, iface: string, what: string): Promise<string> {
    return must('ip', ['netns', 'exec', ns.name, 'wg', 'show', iface, what]);
  }

  /** Creates an empty wireguard-go interface in the gateway namespace (an operator-made one). */
  async makeInterface(iface: string, o: { privateKeyFile: string; listenPort: number; addresses: string[] }): Promise<void> {
    this.own(this.gw, iface);
    await must('ip', ['netns', 'exec', this.gw.name, 'wireguard-go', iface]);
    await must('ip', ['netns', 'exec', this.gw.name, 'wg', 'set', iface, 'private-key', o.privateKeyFile, 'listen-port', String(o.listenPort)]);
    for (const a of o.addresses) await must('ip', ['-n', this.gw.name, ...(a.includes(':') ? ['-6'] : []), 'addr', 'add', a, 'dev', iface]);
    await must('ip', ['-n', this.gw.name, 'link', 'set', iface, 'up']);
  }

  async deleteInterface(ns: Netns, iface: string): Promise<void> {
    await run('ip', ['-n', ns.name, 'link', 'del', iface]);
  }

  destroy(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    this.procs.clear();
    for (const [ns, iface] of this.ifaces) runSync('ip', ['-n', ns.name, 'link', 'del', iface]);
    this.gw.delete();
    this.client.delete();
    this.internet?.delete();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A gateway that exited before listening. */
export class GatewayExit extends Error {
  constructor(
    readonly code: number | null,
    readonly logs: Record<string, unknown>[],
    readonly raw: string,
  ) {
    super(`gateway exited with ${code}: ${raw.slice(-2000)}`);
  }
}

/** Samples every process's command line until stopped (to prove a secret never appears in one). */
export class CmdlineSampler {
  readonly seen = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  start(): void {
    this.timer = setInterval(() => {
      for (const pid of readdirSync('/proc')) {
        if (!/^\d+$/.test(pid)) continue;
        try {
          this.seen.add(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
        } catch {
          // gone
        }
      }
    }, 5);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
