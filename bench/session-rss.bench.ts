/**
 * Resident memory per gateway table entry (issue 13): the process's RSS before and after filling the tables,
 * divided by the entries. Runs in a process of its own (RSS is per process); prints one JSON line.
 *
 *   node --expose-gc --import tsx bench/session-rss.bench.ts handshakes N   N real handshakes through a LocalShard
 *       (the gateway's code path, in-thread; the client side runs in the same process and is dropped), each left
 *       established in the session table
 *   node --expose-gc --import tsx bench/session-rss.bench.ts constructed N  N sessions built as the responder
 *       builds them, without running handshakes (what 1,000,000 sessions cost, in seconds instead of minutes)
 *   node --expose-gc --import tsx bench/session-rss.bench.ts pending N      N handshakes left waiting for message 1
 *       (UDP client: padded KKTRequest answered), the largest state a handshake holds before keys exist
 *
 * RSS, unlike heap figures, includes what the allocator keeps around (fragmentation from every handshake's
 * temporary buffers) and V8's heap slack: it is what the machine actually gives the gateway.
 */
import { readFileSync } from 'node:fs';
import { InitiatorHandshake, InitiatorStage, KKT_UDP_PAD_TO, Session, clientKeysFromSeed, defaultSuite, gatewayKeysFromSeeds, outerKeys, sessionSecret } from '../src/core/index.js';
import { CipherState } from '../src/core/noise/index.js';
import { createLogger } from '../src/log.js';
import { LocalShard, type AppHandler, type PacketSource } from '../src/gateway/shard.js';
import type { ShardMetrics } from '../src/gateway/shard-metrics.js';
import { SessionTables } from '../src/gateway/tables.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const mode = process.argv[2] ?? 'handshakes';
const N = Number(process.argv[3] ?? 100_000);
const suite = defaultSuite;
const { prims } = suite;

/** Native finalizers (the BLAKE3 binding's hashers and buffers) run from setImmediate: a loop must yield for them. */
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function rss(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await yieldToLoop();
  }
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m?.[1] ?? NaN) * 1024;
}
function heap(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const keys = gatewayKeysFromSeeds(suite, { ed25519Seed: prims.randomBytes(32), kemSeed: prims.randomBytes(64) });
const pin = { ed25519Public: keys.ed25519.publicKey, kemKeyHash: keys.kemKeyHash };
const noMetrics: ShardMetrics = { count: () => undefined };
const app: AppHandler = { handle: () => null };
const limits = { maxHandshakes: N + 1, maxSessions: N + 1, handshakeTtlSec: 3600, sessionIdleTtlSec: 86_400, demotedIdleTtlSec: 60 };
// Sessions of one UDP client each, from distinct ports (the gateway keeps each session's return route).
const src = (i: number): PacketSource => ({ transport: 'udp', address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 40_000 + (i % 20_000) });
const clients = Array.from({ length: 64 }, () => clientKeysFromSeed(suite, prims.randomBytes(32)));

let index = 1;
async function handshake(shard: LocalShard, i: number, stopBeforeMsg1: boolean): Promise<void> {
  // Distinct receiver indexes: no collisions to retry.
  const hs = new InitiatorHandshake({ suite, client: clients[i % clients.length] as (typeof clients)[number], gateway: pin, kktPadTo: KKT_UDP_PAD_TO, receiverIndex: index++ });
  let out = hs.start(Math.floor(Date.now() / 1000));
  for (let step = 0; step < 4 && out.kind === 'send'; step++) {
    if (stopBeforeMsg1 && hs.stage === InitiatorStage.AwaitMsg2) return;
    const r = await shard.handle(out.packet, src(i), Date.now());
    if (!r.reply) throw new Error(`no reply at step ${step}`);
    out = hs.receive(r.reply, Math.floor(Date.now() / 1000));
  }
  if (out.kind !== 'established') throw new Error('handshake did not complete');
  out.session.close();
}

function constructed(i: number): Session {
  const psk = prims.randomBytes(32);
  const h = prims.randomBytes(32);
  const s = new Session({
    prims,
    receiverIndex: i,
    role: 'responder',
    keys: outerKeys(prims, psk),
    noiseSend: new CipherState(prims, prims.randomBytes(32)),
    noiseRecv: new CipherState(prims, prims.randomBytes(32)),
    secret: sessionSecret(prims, psk, h),
    handshakeHash: h,
    generation: 0,
    localStatic: keys.x25519,
    remoteStatic: prims.randomBytes(32),
    sendCounter: 3,
    receivedCounters: [2],
  });
  s.rememberReply(s.seal(8, new Uint8Array(0)), 2);
  const a = src(i);
  s.returnRoute = `${a.address}|${a.port}`;
  return s;
}

const shard = new LocalShard({ suite, keys, limits, timestampToleranceSec: 3600, app, metrics: noMetrics, logger: createLogger({ level: 'silent' }) });
const tables = mode === 'constructed' ? new SessionTables(limits) : shard.tables;
// Warm-up outside the measurement: code paths compiled, the KEM module and the allocator's pools in use.
const warm = new LocalShard({ suite, keys, limits: { ...limits, maxHandshakes: 1000, maxSessions: 1000 }, timestampToleranceSec: 3600, app, metrics: noMetrics, logger: createLogger({ level: 'silent' }) });
for (let i = 0; i < 500; i++) await handshake(warm, i, false);
warm.close();
const r0 = await rss();
const h0 = heap();
const mu0 = process.memoryUsage();
const t0 = performance.now();
for (let i = 1; i <= N; i++) {
  if (mode === 'constructed') tables.sessions.set(i, constructed(i));
  else await handshake(shard, i, mode === 'pending');
  if (mode === 'churn') shard.tables.clear();
  // A gateway's event loop turns between packets; so does this one, now and then.
  if (i % 64 === 0) await yieldToLoop();
}
const seconds = (performance.now() - t0) / 1000;
const r1 = await rss();
const h1 = heap();
const mu1 = process.memoryUsage();
if (process.env.BENCH_VERBOSE) process.stderr.write(`${JSON.stringify(Object.fromEntries(Object.entries(mu1).map(([k, v]) => [k, Math.round((v - (mu0[k as keyof typeof mu0] ?? 0)) / N)])))}\n`);
const entries = mode === 'pending' ? tables.handshakes.size : tables.sessions.size;
if (entries !== N && mode !== 'churn') throw new Error(`expected ${N} entries, the tables hold ${entries}`);
process.stdout.write(`${JSON.stringify({ mode, entries, seconds: Math.round(seconds), rssBytes: r1 - r0, rssPerEntry: Math.round((r1 - r0) / N), heapPerEntry: Math.round((h1 - h0) / N), rssBefore: r0, rssAfter: r1 })}\n`);
