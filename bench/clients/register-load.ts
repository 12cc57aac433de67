/**
 * dVPN registration load against one or more gateways: C established sessions per gateway, each registering a
 * fresh WireGuard key with a fresh signed ticket (so every registration spends a serial) back to back until the
 * deadline. Latency is request → response of the registration alone (the sessions are set up before). Runs as
 * its own process so its CPU is not charged to the gateways. Prints one JSON line.
 * Usage: node --import tsx bench/clients/register-load.ts <issuer seed file> <seconds> <sessions per gateway> <http url>...
 * (the issuer's 32-byte seed, hex, in a file: a test key, but still not on a command line)
 */
import { readFileSync } from 'node:fs';
import { LpConnection, TcpStreamTransport, fetchDescriptor } from '../../src/client/index.js';
import { TicketType, defaultSuite, fromHex } from '../../src/core/index.js';
import { issuerKeyFromSeed, mintTicket } from '../../src/gateway/registration/tickets.js';

const [seedFile, secs, perGw, ...urls] = process.argv.slice(2);
if (!seedFile || !secs || !perGw || urls.length === 0) {
  process.stderr.write('usage: register-load.ts <issuer seed file> <seconds> <sessions per gateway> <http url>...\n');
  process.exit(2);
}
const prims = defaultSuite.prims;
const issuer = issuerKeyFromSeed(fromHex(readFileSync(seedFile, 'utf8').trim()), prims);
const durationMs = Number(secs) * 1000;

const conns: LpConnection[] = [];
for (const url of urls) {
  const { descriptor, pin } = await fetchDescriptor(url);
  for (let i = 0; i < Number(perGw); i++) conns.push(await LpConnection.connect({ transport: new TcpStreamTransport(descriptor.lp.tcp), gateway: pin }));
}
const latencies: number[] = [];
const byCode: Record<string, number> = {};
let errors = 0;
const start = performance.now();
const deadline = start + durationMs;
await Promise.all(
  conns.map(async (c) => {
    while (performance.now() < deadline) {
      const nowSec = Math.floor(Date.now() / 1000);
      const ticket = mintTicket(issuer, { ticketType: TicketType.V1WireguardEntry, bandwidthBytes: 1n << 30n, expiry: BigInt(nowSec + 3600) }, prims);
      const wgPublicKey = prims.randomBytes(32);
      wgPublicKey[0] = (wgPublicKey[0] ?? 0) | 1;
      const t0 = performance.now();
      try {
        const r = await c.register({ mode: { kind: 'dvpn', wgPublicKey }, credential: { kind: 'ticket', ticket }, ticketType: TicketType.V1WireguardEntry, timestamp: BigInt(nowSec) });
        if (r.success) latencies.push(performance.now() - t0);
        else byCode[r.error?.code ?? 'unknown'] = (byCode[r.error?.code ?? 'unknown'] ?? 0) + 1;
      } catch {
        errors++;
      }
    }
  }),
);
const elapsedS = (performance.now() - start) / 1000;
for (const c of conns) c.close();
latencies.sort((a, b) => a - b);
const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
process.stdout.write(`${JSON.stringify({ registrations: latencies.length, refused: byCode, errors, elapsedS, perSec: latencies.length / elapsedS, p50Ms: q(0.5), p99Ms: q(0.99) })}\n`);
