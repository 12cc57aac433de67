/**
 * What one packet's trip to a shard worker and back costs: the I/O thread posts handshake-sized packets in
 * the shard protocol's message shape (batched per event-loop turn, as `Outbox` does) to a worker that answers
 * each with a reply of the same size. CPU of the whole process (both threads) per round trip, at several
 * numbers of packets in flight: with few in flight every packet is its own batch and pays a thread wake-up.
 */
import { Worker } from 'node:worker_threads';
import { cpuUsage } from 'node:process';
import { Outbox } from '../../src/gateway/outbox.js';

const WORKER = `
const { parentPort } = require('node:worker_threads');
let out = [];
let scheduled = false;
const flush = () => { scheduled = false; const b = out; out = []; parentPort.postMessage(b); };
parentPort.on('message', (batch) => {
  for (const m of batch) out.push({ t: 'result', id: m.id, reply: new Uint8Array(m.packet.length), authenticated: true });
  if (!scheduled) { scheduled = true; setImmediate(flush); }
});`;

interface Packet {
  t: 'packet';
  id: number;
  packet: Uint8Array;
  src: { address: string; port: number; transport: string };
  nowMs: number;
}

export async function workerRoundTrip(inFlight: number, total: number): Promise<{ usCpuPerRoundTrip: number; perSec: number }> {
  const worker = new Worker(WORKER, { eval: true });
  const pending = new Map<number, () => void>();
  const outbox = new Outbox<Packet>((batch) => worker.postMessage(batch));
  worker.on('message', (batch: { id: number }[]) => {
    for (const m of batch) {
      pending.get(m.id)?.();
      pending.delete(m.id);
    }
  });
  let nextId = 1;
  const send = (): Promise<void> =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      outbox.push({ t: 'packet', id, packet: new Uint8Array(1154), src: { address: '127.0.0.1', port: 40000, transport: 'udp' }, nowMs: Date.now() });
    });
  const run = async (n: number): Promise<void> => {
    let started = 0;
    const lane = async (): Promise<void> => {
      while (started < n) {
        started++;
        await send();
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
  };
  await run(2000); // warm-up
  const c0 = cpuUsage();
  const t0 = performance.now();
  await run(total);
  const ms = performance.now() - t0;
  const c = cpuUsage(c0);
  await worker.terminate();
  return { usCpuPerRoundTrip: (c.user + c.system) / total, perSec: (total / ms) * 1000 };
}
