/**
 * EncryptedData round-trip load: C established sessions each send Ping and wait for Pong until the
 * deadline. Runs as its own process so its CPU is not charged to the gateway. Prints one JSON line.
 * With a rate, the sessions together start at most that many round trips per second (each its share, on absolute
 * deadlines, as echo-load.ts paces): an A/B of two gateways at one fixed rate compares CPU per round trip at the
 * same packets per second (a server's CPU per packet falls as its rate rises).
 * Usage: node --import tsx bench/clients/ping-load.ts <http url> <udp|tcp-stream> <concurrency> <seconds> [payload bytes] [rate/s]
 */
import { LpConnection, TcpStreamTransport, UdpTransport, fetchDescriptor } from '../../src/client/index.js';

const [http, transport, conc, secs, size] = process.argv.slice(2);
if (!http || (transport !== 'udp' && transport !== 'tcp-stream')) {
  process.stderr.write('usage: ping-load.ts <http url> <udp|tcp-stream> <concurrency> <seconds> [payload bytes]\n');
  process.exit(2);
}
const concurrency = Number(conc ?? 16);
const durationMs = Number(secs ?? 5) * 1000;
const payload = new Uint8Array(Number(size ?? 64));
const rate = Number(process.argv[7] ?? 0);
/** Each session's interval between request starts (ms), 0 for no pacing. */
const periodMs = rate > 0 ? (concurrency * 1000) / rate : 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const { descriptor, pin } = await fetchDescriptor(http);
const conns: LpConnection[] = [];
for (let i = 0; i < concurrency; i++) {
  const t = transport === 'udp' ? new UdpTransport(descriptor.lp.udp as string) : new TcpStreamTransport(descriptor.lp.tcp);
  conns.push(await LpConnection.connect({ transport: t, gateway: pin }));
}
let roundTrips = 0;
let errors = 0;
const start = performance.now();
const deadline = start + durationMs;
await Promise.all(
  conns.map(async (c, k) => {
    let next = start + (periodMs * k) / concurrency;
    while (performance.now() < deadline) {
      if (periodMs > 0) {
        const now = performance.now();
        if (next > now) await sleep(next - now);
        next += periodMs;
      }
      try {
        await c.ping(payload);
        roundTrips++;
      } catch {
        errors++;
      }
    }
  }),
);
const elapsedS = (performance.now() - start) / 1000;
for (const c of conns) c.close();
process.stdout.write(`${JSON.stringify({ roundTrips, errors, elapsedS, perSec: roundTrips / elapsedS })}\n`);
