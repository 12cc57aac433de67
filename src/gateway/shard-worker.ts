/**
 * Worker-thread side of a shard: a LocalShard whose application messages are served by the I/O thread
 * (registration needs the single SQLite writer, forwarding needs the network) and whose counters are
 * shipped to the I/O thread's metrics with each sweep.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type AppMessage, decodeAppMessage, encodeAppMessage, suiteWithKem } from '../core/index.js';
import { createLogger } from '../log.js';
import type { LevelWithSilent } from 'pino';
import { LocalShard, type AppHandler, type ShardResult } from './shard.js';
import { BufferedShardMetrics } from './shard-metrics.js';
import type { FromWorker, ShardWorkerData, ToWorker } from './shard-protocol.js';
import { Outbox } from './outbox.js';
import { currentThreadId } from './thread-cpu.js';

const data = workerData as ShardWorkerData;
if (!parentPort) throw new Error('shard-worker must run in a worker thread');
const port = parentPort;
const outbox = new Outbox<FromWorker>((batch) => port.postMessage(batch));
const post = (m: FromWorker): void => outbox.push(m);

let nextAppId = 1;
const appWaiters = new Map<number, (m: Uint8Array | null) => void>();

const appProxy: AppHandler = {
  handle(msg: AppMessage, ctx): Promise<AppMessage | null> {
    const id = nextAppId++;
    const psk = msg.kind === 'register' && msg.request.mode.kind === 'dvpn' ? ctx.wireguardPsk(msg.request.mode.wgPublicKey) : null;
    return new Promise((resolve) => {
      appWaiters.set(id, (bytes) => {
        // The message (and with it the clone of the PSK) left with an earlier batch: this copy can go.
        psk?.fill(0);
        resolve(bytes ? decodeAppMessage(bytes) : null);
      });
      post({ t: 'app', id, msg: encodeAppMessage(msg), src: ctx.src, session: ctx.session, psk });
    });
  },
};

const metrics = new BufferedShardMetrics();
const shard = new LocalShard({
  suite: suiteWithKem(data.kemBackend),
  keys: data.keys,
  limits: data.limits,
  timestampToleranceSec: data.timestampToleranceSec,
  app: appProxy,
  metrics,
  logger: createLogger({ level: data.logLevel as LevelWithSilent }).child({ component: 'shard', shard: data.shardId }),
  shardId: data.shardId,
  shardCount: data.shardCount,
});

port.on('message', (batch: ToWorker[]) => {
  for (const m of batch) onMessage(m);
});

/** A packet's result goes back as soon as it exists: synchronously for a Ping, after the handler otherwise. */
function onPacket(m: Extract<ToWorker, { t: 'packet' }>): void {
  const done = (r: ShardResult): void => post({ t: 'result', id: m.id, reply: r.reply, authenticated: r.authenticated });
  const failed = (): void => post({ t: 'result', id: m.id, reply: null, authenticated: false });
  let r: ShardResult | Promise<ShardResult>;
  try {
    r = shard.handle(m.packet, m.src, m.nowMs);
  } catch {
    failed();
    return;
  }
  if (r instanceof Promise) r.then(done, failed);
  else done(r);
}

function onMessage(m: ToWorker): void {
  switch (m.t) {
    case 'packet':
      onPacket(m);
      return;
    case 'app-result': {
      const w = appWaiters.get(m.id);
      appWaiters.delete(m.id);
      w?.(m.msg);
      return;
    }
    case 'sweep':
      shard.sweep();
      post({ t: 'stats', stats: shard.stats(), counts: metrics.drain() });
      return;
    case 'close':
      outbox.flush();
      shard.close();
      port.close();
      return;
  }
}
post({ t: 'ready', tid: currentThreadId() });
