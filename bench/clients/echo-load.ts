/**
 * Load for the round-trip floor (bench/servers/echo-server.mjs): the same shape as ping-load.ts — C clients,
 * each with its own connected UDP socket or TCP connection, each sending a request of the LP Ping's size and
 * waiting for its echo before the next, until the deadline. TCP requests are framed as LP's (u32 BE length).
 * With a rate, the clients together start at most that many round trips per second (each client its share, on
 * absolute deadlines): the floor is then measured at the LP load's rate, so both servers see the same packets per
 * second (a server's CPU per packet falls as its rate rises: more datagrams per wake-up).
 * Runs as its own process; prints one JSON line.
 * Usage: node --import tsx bench/clients/echo-load.ts <udp|tcp> <host:port> <concurrency> <seconds> <request bytes> [rate/s]
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { runPaced } from './paced.js';

const [kind, address, conc, secs, size] = process.argv.slice(2);
if ((kind !== 'udp' && kind !== 'tcp') || !address) {
  process.stderr.write('usage: echo-load.ts <udp|tcp> <host:port> <concurrency> <seconds> <request bytes>\n');
  process.exit(2);
}
const i = address.lastIndexOf(':');
const host = address.slice(0, i);
const port = Number(address.slice(i + 1));
const concurrency = Number(conc ?? 32);
const durationMs = Number(secs ?? 10) * 1000;
const bytes = Number(size ?? 128);
const rate = Number(process.argv[7] ?? 0);

interface Client {
  exchange(): Promise<void>;
  close(): void;
}

async function udpClient(): Promise<Client> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.connect(port, host, resolve));
  const req = Buffer.alloc(bytes, 7);
  let pending: (() => void) | null = null;
  s.on('message', () => {
    const p = pending;
    pending = null;
    p?.();
  });
  return {
    // A lost datagram is sent again after 200 ms (as the LP client re-sends), so one loss cannot stall a client.
    exchange: () =>
      new Promise<void>((resolve) => {
        const timer = setInterval(() => s.send(req), 200);
        pending = () => {
          clearInterval(timer);
          resolve();
        };
        s.send(req);
      }),
    close: () => s.close(),
  };
}

async function tcpClient(): Promise<Client> {
  const s = net.connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  const req = Buffer.alloc(4 + bytes, 7);
  req.writeUInt32BE(bytes, 0);
  let got = 0;
  let pending: (() => void) | null = null;
  s.on('data', (d: Buffer) => {
    got += d.length;
    if (got < req.length) return;
    got -= req.length;
    const p = pending;
    pending = null;
    p?.();
  });
  return {
    exchange: () =>
      new Promise<void>((resolve) => {
        pending = resolve;
        s.write(req);
      }),
    close: () => s.destroy(),
  };
}

const clients = await Promise.all(Array.from({ length: concurrency }, () => (kind === 'udp' ? udpClient() : tcpClient())));
let roundTrips = 0;
const elapsedS = await runPaced(concurrency, durationMs, rate, async (k) => {
  await (clients[k] as Client).exchange();
  roundTrips++;
});
for (const c of clients) c.close();
process.stdout.write(`${JSON.stringify({ roundTrips, errors: 0, elapsedS, perSec: roundTrips / elapsedS })}\n`);
