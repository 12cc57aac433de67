/**
 * WireGuard client benchmark (root: it builds its own namespaces). The TS client (in a child process in
 * namespace C) and, for comparison, a wireguard-go client interface in the same namespace C, both talk to a
 * wireguard-go server interface in namespace S over a veth pair, in the same run:
 *
 * - handshakes/s of the TS client (full connects: socket, handshake, key-confirmation keepalive, close),
 *   sequential and 8 concurrent, round-robin over 128 registered peer keys (wireguard-go refuses a second
 *   initiation from one peer within 20 ms), with the wireguard-go server's CPU per handshake;
 * - wireguard-go's own handshake latency as a client (peer removed and re-added with `wg set`, then the
 *   first UDP echo through it, minus the steady echo time);
 * - echo round trips/s, one at a time: TS ping (ICMP) and UDP echo through the TS tunnel, against
 *   `ping -f` and the same Node UDP echo through the wireguard-go client interface.
 *
 *   node --import tsx bench/wireguard-client.bench.ts        (BENCH_QUICK=1 for a short run)
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { wgKeyPair, type WgKeyPair } from '../src/client/wireguard/index.js';
import { Driver, Netns, WG_SKIP, WgGo, b64, cleanup, uniqueName, which, type Json } from '../test/client/wireguard/helpers/wg-env.js';

export interface WireguardClientBenchResult {
  quick: boolean;
  ts: {
    handshakesPerSec: number;
    handshakeP50Ms: number;
    handshakeP99Ms: number;
    handshakesPerSecConcurrent8: number;
    serverCpuMsPerHandshake: number;
    pingRoundTripsPerSec: number;
    pingP50Ms: number;
    udpRoundTripsPerSec: number;
    udpP50Ms: number;
  };
  wireguardGo: {
    handshakeLatencyP50Ms: number;
    pingRoundTripsPerSec: number | null;
    pingAvgMs: number | null;
    udpRoundTripsPerSec: number;
    udpP50Ms: number;
  };
}

const n = (v: unknown): number => Number(v);

function ok(r: Json): Json {
  if (r.ok !== true) throw new Error(`bench step failed: ${JSON.stringify(r).slice(0, 500)}`);
  return r;
}

export async function runWireguardClientBench(): Promise<WireguardClientBenchResult> {
  if (WG_SKIP) throw new Error(`wireguard client bench: ${WG_SKIP}`);
  const quick = process.env.BENCH_QUICK === '1';
  const N = { handshakes: quick ? 200 : 1000, pings: quick ? 1000 : 5000, wgHandshakes: quick ? 8 : 25 };
  try {
    const S = Netns.create();
    const C = Netns.create();
    const vS = uniqueName();
    const vC = uniqueName();
    S.ip(['link', 'add', vS, 'type', 'veth', 'peer', 'name', vC]);
    S.ip(['link', 'set', vC, 'netns', C.name]);
    S.ip(['address', 'add', '10.95.0.1/30', 'dev', vS]);
    S.ip(['link', 'set', vS, 'up']);
    C.ip(['address', 'add', '10.95.0.2/30', 'dev', vC]);
    C.ip(['link', 'set', vC, 'up']);

    const psk = wgKeyPair().privateKey;
    const server = wgKeyPair();
    const wgS = await WgGo.start(S, { privateKey: server.privateKey, port: 51820, addr4: '10.96.0.1/24', addr6: 'fd96::1/64', logLevel: 'error' });
    const benchPeers: WgKeyPair[] = Array.from({ length: 128 }, () => wgKeyPair());
    const tsKeys = wgKeyPair();
    const wgcKeys = wgKeyPair();
    wgS.setPeers(
      [...benchPeers.map((k, i) => ({ publicKey: k.publicKey, allowedIps: `10.97.${i >> 8}.${(i & 0xff) + 1}/32` })), { publicKey: tsKeys.publicKey, allowedIps: '10.96.0.2/32,fd96::2/128' }, { publicKey: wgcKeys.publicKey, allowedIps: '10.96.0.200/32' }],
      psk,
    );
    const wgC = await WgGo.start(C, { privateKey: wgcKeys.privateKey, port: 51830, addr4: '10.96.0.200/24', addr6: 'fd96::c8/64', logLevel: 'error' });
    const serverPeer = { publicKey: server.publicKey, psk, allowedIps: '10.96.0.0/24', endpoint: '10.95.0.1:51820' };
    wgC.setPeer(serverPeer);

    const atS = Driver.start(S);
    ok(await atS.call('udpEchoServer', { addr: '10.96.0.1', port: 7 }));
    const atC = Driver.start(C);
    const common = { peerPublicKey: b64(server.publicKey), presharedKey: b64(psk), host: '10.95.0.1', port: 51820 };
    const privateKeys = benchPeers.map((k) => b64(k.privateKey));

    // warm-up (JIT, first-connection costs), then the measured runs
    ok(await atC.call('benchHandshakes', { ...common, privateKeys, count: 50, concurrency: 1 }, 60_000));
    const cpu0 = wgS.cpuSeconds();
    const seq = ok(await atC.call('benchHandshakes', { ...common, privateKeys, count: N.handshakes, concurrency: 1 }, 300_000));
    const cpu1 = wgS.cpuSeconds();
    const conc = ok(await atC.call('benchHandshakes', { ...common, privateKeys, count: N.handshakes, concurrency: 8 }, 300_000));

    ok(await atC.call('connect', { ...common, tid: 'b', privateKey: b64(tsKeys.privateKey), localIpv4: '10.96.0.2', localIpv6: 'fd96::2' }));
    ok(await atC.call('benchPing', { tid: 'b', dst: '10.96.0.1', count: 200 }, 60_000));
    const tsPing = ok(await atC.call('benchPing', { tid: 'b', dst: '10.96.0.1', count: N.pings }, 300_000));
    const tsUdp = ok(await atC.call('tunnelUdpEcho', { tid: 'b', src: '10.96.0.2', srcPort: 41000, dst: '10.96.0.1', dstPort: 7, count: N.pings }, 300_000));

    ok(await atC.call('udpEchoClient', { host: '10.96.0.1', port: 7, count: 200 }, 60_000));
    const goUdp = ok(await atC.call('udpEchoClient', { host: '10.96.0.1', port: 7, count: N.pings }, 300_000));
    let goPing: { rate: number; avg: number } | null = null;
    if (which('ping')) {
      const out = C.exec('ping', ['-f', '-q', '-c', String(N.pings), '-W', '1', '10.96.0.1'], 300_000);
      const time = /(\d+) received.*time (\d+)ms/s.exec(out);
      const avg = /= [\d.]+\/([\d.]+)\//.exec(out);
      if (time && avg) goPing = { rate: n(time[1]) / (n(time[2]) / 1000), avg: n(avg[1]) };
    }
    // wireguard-go as the client: a fresh handshake per round (peer removed and re-added), then one echo
    const firsts: number[] = [];
    for (let i = 0; i < N.wgHandshakes; i++) {
      wgC.removePeer(server.publicKey);
      wgC.setPeer(serverPeer);
      const r = ok(await atC.call('udpEchoClient', { host: '10.96.0.1', port: 7, count: 1 }, 30_000));
      if (n(r.received) === 1) firsts.push(n(r.p50));
      await new Promise((res) => setTimeout(res, 30)); // past wireguard-go's 20 ms per-peer initiation limit
    }
    firsts.sort((a, b) => a - b);
    const firstP50 = firsts[Math.floor(firsts.length / 2)] ?? NaN;
    atS.kill();
    atC.kill();
    return {
      quick,
      ts: {
        handshakesPerSec: n(seq.count) / (n(seq.elapsedMs) / 1000),
        handshakeP50Ms: n(seq.p50),
        handshakeP99Ms: n(seq.p99),
        handshakesPerSecConcurrent8: n(conc.count) / (n(conc.elapsedMs) / 1000),
        serverCpuMsPerHandshake: ((cpu1 - cpu0) * 1000) / N.handshakes,
        pingRoundTripsPerSec: n(tsPing.received) / (n(tsPing.elapsedMs) / 1000),
        pingP50Ms: n(tsPing.p50),
        udpRoundTripsPerSec: n(tsUdp.received) / (n(tsUdp.elapsedMs) / 1000),
        udpP50Ms: n(tsUdp.p50),
      },
      wireguardGo: {
        handshakeLatencyP50Ms: Math.max(0, firstP50 - n(goUdp.p50)),
        pingRoundTripsPerSec: goPing?.rate ?? null,
        pingAvgMs: goPing?.avg ?? null,
        udpRoundTripsPerSec: n(goUdp.received) / (n(goUdp.elapsedMs) / 1000),
        udpP50Ms: n(goUdp.p50),
      },
    };
  } finally {
    cleanup();
  }
}

export function formatWireguardClientBench(r: WireguardClientBenchResult): string {
  const f = (v: number | null, d = 0): string => (v === null || !Number.isFinite(v) ? 'n/a' : v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
  const cpus = execFileSync('nproc', { encoding: 'utf8' }).trim();
  return [
    `WireGuard client vs wireguard-go (${cpus} CPUs, ${r.quick ? 'quick' : 'full'} run; both clients in one namespace, wireguard-go server in another, veth between)`,
    '',
    '| figure | TS client | wireguard-go client |',
    '|---|---|---|',
    `| handshakes/s, one at a time (full connect + close) | ${f(r.ts.handshakesPerSec)} (p50 ${f(r.ts.handshakeP50Ms, 2)} ms, p99 ${f(r.ts.handshakeP99Ms, 2)} ms) | latency ${f(r.wireguardGo.handshakeLatencyP50Ms, 2)} ms p50 (≈ ${f(1000 / r.wireguardGo.handshakeLatencyP50Ms)}/s) |`,
    `| handshakes/s, 8 concurrent | ${f(r.ts.handshakesPerSecConcurrent8)} | — |`,
    `| wireguard-go server CPU per TS handshake | ${f(r.ts.serverCpuMsPerHandshake, 3)} ms | — |`,
    `| ICMP echo round trips/s, one outstanding | ${f(r.ts.pingRoundTripsPerSec)} (p50 ${f(r.ts.pingP50Ms, 3)} ms) | ${f(r.wireguardGo.pingRoundTripsPerSec)} (ping -f, avg ${f(r.wireguardGo.pingAvgMs, 3)} ms) |`,
    `| UDP echo round trips/s, one outstanding (Node echo server) | ${f(r.ts.udpRoundTripsPerSec)} (p50 ${f(r.ts.udpP50Ms, 3)} ms) | ${f(r.wireguardGo.udpRoundTripsPerSec)} (p50 ${f(r.wireguardGo.udpP50Ms, 3)} ms) |`,
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = await runWireguardClientBench();
  process.stdout.write(`${formatWireguardClientBench(r)}\n`);
}
