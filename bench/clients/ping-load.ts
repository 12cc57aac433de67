/**
 * EncryptedData round-trip load: C established sessions each send Ping and wait for Pong until the
 * deadline. Runs as its own process so its CPU is not charged to the gateway. Prints one JSON line.
 * With a rate, the sessions together start at most that many round trips per second (paced.ts): an A/B of two
 * gateways at one fixed rate compares CPU per round trip at the same packets per second.
 * Usage: node --import tsx bench/clients/ping-load.ts <http url> <udp|tcp-stream> <concurrency> <seconds> [payload bytes] [rate/s]
 */
import { runPaced } from './paced.js';
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

const { descriptor, pin } = await fetchDescriptor(http);
const conns: LpConnection[] = [];
for (let i = 0; i < concurrency; i++) {
  const t = transport === 'udp' ? new UdpTransport(descriptor.lp.udp as string) : new TcpStreamTransport(descriptor.lp.tcp);
  conns.push(await LpConnection.connect({ transport: t, gateway: pin }));
}
let roundTrips = 0;
let errors = 0;
const elapsedS = await runPaced(concurrency, durationMs, rate, async (k) => {
  try {
    await (conns[k] as LpConnection).ping(payload);
    roundTrips++;
  } catch {
    errors++;
  }
});
for (const c of conns) c.close();
process.stdout.write(`${JSON.stringify({ roundTrips, errors, elapsedS, perSec: roundTrips / elapsedS })}\n`);
