/**
 * Helpers for the gateway-probe tests: run `node bin/gateway-probe.js …` as a child process and parse its
 * JSON report; serve a (doctored) signed descriptor from a tiny local HTTP server; find a free port.
 * Everything listens on and talks to 127.0.0.0/8 only.
 */
import { spawn } from 'node:child_process';
import { type Server, createServer } from 'node:http';
import net from 'node:net';
import { defaultSuite } from '../../src/core/index.js';
import { type GatewayDescriptor, buildDescriptor } from '../../src/gateway/descriptor.js';
import { loadOrCreateKeys } from '../../src/gateway/keystore.js';
import type { LoadReport } from '../../probe/load.js';
import type { ProbeReport } from '../../probe/report.js';

const PROBE_BIN = new URL('../../bin/gateway-probe.js', import.meta.url).pathname;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function runCli(args: string[], timeoutMs = 45_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [PROBE_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`gateway-probe ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    p.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** Trust anchor flags; without one, the helpers add --trust-on-first-use (tests that are not about trust). */
const ANCHORS = ['--entry-identity', '--directory', '--trust-on-first-use'];
const anchored = (args: string[]): string[] => (args.some((a) => ANCHORS.includes(a)) ? args : [...args, '--trust-on-first-use']);

export function probeRun(args: string[]): Promise<CliResult & { report: ProbeReport }> {
  return probeRunExact(anchored(args));
}

/** `gateway-probe run` with exactly these arguments (no trust anchor added). */
export async function probeRunExact(args: string[]): Promise<CliResult & { report: ProbeReport }> {
  const r = await runCli(['run', '--compact', ...args]);
  let report: ProbeReport;
  try {
    report = JSON.parse(r.stdout) as ProbeReport;
  } catch {
    throw new Error(`gateway-probe run ${args.join(' ')}: stdout is not one JSON report (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
  return { ...r, report };
}

export async function probeLoad(args: string[]): Promise<CliResult & { report: LoadReport }> {
  const r = await runCli(['load', '--compact', ...anchored(args)]);
  let report: LoadReport;
  try {
    report = JSON.parse(r.stdout) as LoadReport;
  } catch {
    throw new Error(`gateway-probe load ${args.join(' ')}: stdout is not one JSON report (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
  return { ...r, report };
}

/** A loopback port nothing listens on (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `body` as JSON at GET /v1/gateway on 127.0.0.1. */
export function serveDescriptor(body: unknown): Promise<StaticServer> {
  const text = JSON.stringify(body);
  const server: Server = createServer((req, res) => {
    if (req.url === '/v1/gateway') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(text);
    } else res.writeHead(404).end();
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}

/**
 * A descriptor signed with the real identity key of the gateway in `dataDir` (read from its
 * identity.key), copied from `real` with `changes` applied before signing — e.g. a wrong KEM key hash or
 * another LP address. Its signature verifies, so only the changed field can make a probe fail.
 */
export function resignedDescriptor(dataDir: string, real: GatewayDescriptor, changes: { kemKeyHash?: Uint8Array; lpTcp?: string; issuedAt?: number }): GatewayDescriptor {
  const { keys } = loadOrCreateKeys(dataDir, defaultSuite);
  const wg = real.wireguard;
  return buildDescriptor(
    {
      lpTcp: changes.lpTcp ?? real.lp.tcp,
      lpUdp: real.lp.udp,
      mode: real.roles.length === 2 ? 'both' : (real.roles[0] ?? 'both'),
      wireguard: wg ? { publicKey: new Uint8Array(Buffer.from(wg.public_key, 'base64')), endpoint: wg.endpoint, tunnelIpv4: wg.tunnel_ipv4, tunnelIpv6: wg.tunnel_ipv6 } : null,
      softwareVersion: real.software_version,
      ...(changes.issuedAt !== undefined ? { issuedAt: changes.issuedAt } : {}),
    },
    defaultSuite,
    { ...keys, kemKeyHash: changes.kemKeyHash ?? keys.kemKeyHash },
  );
}

export async function recentSources(http: string): Promise<{ address: string; transport: string; packets: number }[]> {
  const stats = (await (await fetch(`${http}/v1/stats`)).json()) as { recent_sources: { address: string; transport: string; packets: number }[] };
  return stats.recent_sources;
}

export async function descriptorOf(http: string): Promise<GatewayDescriptor> {
  return (await (await fetch(`${http}/v1/gateway`)).json()) as GatewayDescriptor;
}
