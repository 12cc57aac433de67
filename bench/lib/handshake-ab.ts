/**
 * Server CPU per handshake, handshake v1 (a checkout of HANDSHAKE_V1_REF, path in argv[2]) against v2 (this tree),
 * interleaved handshake by handshake in one process so the machine's load falls on both alike. Each gateway
 * handshake replays recorded client packets with its own deterministic random stream (as bench/lib/core-figures.ts).
 * Prints one JSON line: µs per step (hello, KKT, msg1, msg3) and in total, for each version.
 */
import { join } from 'node:path';
import * as V2 from '../../src/core/index.js';
import { seededSuite } from '../../test/helpers/fixtures.js';

/** The v1 core API this bench drives (b3cb4c7: a stateful ClientHello). */
interface V1Core {
  acceptClientHello(cfg: unknown, bytes: Uint8Array, nowSec: number, inUse: (i: number) => boolean): { kind: string; handshake: { receive(b: Uint8Array): { reply?: Uint8Array } }; reply: Uint8Array };
  InitiatorHandshake: new (cfg: unknown) => V2.InitiatorHandshake;
}

const V1 = (await import(join(process.argv[2] ?? '', 'src/core/index.ts'))) as V1Core;
const N = Number(process.argv[3] ?? 40);
const REPS = Number(process.argv[4] ?? 8);
const d = V2.defaultSuite;
const gwKeys = V2.gatewayKeysFromSeeds(d, { ed25519Seed: d.prims.randomBytes(32), kemSeed: d.prims.randomBytes(64) });
const pin = { ed25519Public: gwKeys.ed25519.publicKey, kemKeyHash: gwKeys.kemKeyHash };
const now = Math.floor(Date.now() / 1000);
const cpu = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
type Step = (p: Uint8Array, k: number) => Uint8Array | undefined;

function gatewayV2(i: number, times: number[]): Step {
  const suite = seededSuite(`ab-${i}`);
  const tokens = new V2.RoutabilityTokens(suite.prims);
  const cfg = { suite, keys: gwKeys };
  const ctx = { nowSec: now, source: '127.0.0.1' };
  let resp: V2.ResponderHandshake | null = null;
  return (p, k) => {
    const t0 = cpu();
    const h = V2.parseHeader(p);
    let r: Uint8Array | undefined;
    if (h.receiverIndex === 0) r = V2.answerClientHello(cfg, tokens, p, ctx).reply;
    else if (!resp) {
      const o = V2.acceptKktRequest(cfg, tokens, p, h, ctx, () => false);
      if (o.kind !== 'accepted') throw new Error(`KKT ${o.kind}`);
      resp = o.handshake;
      r = o.reply;
    } else r = resp.receive(p, h).reply;
    times[k] = (times[k] ?? 0) + cpu() - t0;
    return r;
  };
}

function gatewayV1(i: number, times: number[]): Step {
  const cfg = { suite: seededSuite(`ab-${i}`), keys: gwKeys };
  let resp: { receive(b: Uint8Array): { reply?: Uint8Array } } | null = null;
  return (p, k) => {
    const t0 = cpu();
    let r: Uint8Array | undefined;
    if (!resp) {
      const o = V1.acceptClientHello(cfg, p, now, () => false);
      if (o.kind !== 'accepted') throw new Error(`hello ${o.kind}`);
      resp = o.handshake;
      r = o.reply;
    } else r = resp.receive(p).reply;
    times[k] = (times[k] ?? 0) + cpu() - t0;
    return r;
  };
}

function record(gateway: (i: number, t: number[]) => Step, Ini: new (cfg: V2.InitiatorConfig) => V2.InitiatorHandshake): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  for (let i = 0; i < N; i++) {
    const step = gateway(i, []);
    const ini = new Ini({ suite: d, client: V2.clientKeysFromSeed(d, d.prims.randomBytes(32)), gateway: pin });
    const packets: Uint8Array[] = [];
    let o = ini.start(now);
    let k = 0;
    while (o.kind === 'send') {
      packets.push(o.packet);
      o = ini.receive(step(o.packet, k++) as Uint8Array, now);
    }
    if (o.kind !== 'established') throw new Error('handshake did not complete');
    out.push(packets);
  }
  return out;
}

const r1 = record(gatewayV1, V1.InitiatorHandshake);
const r2 = record(gatewayV2, V2.InitiatorHandshake);
const t1: number[] = [];
const t2: number[] = [];
for (let rep = 0; rep < REPS; rep++) {
  for (let i = 0; i < N; i++) {
    const g1 = gatewayV1(i, t1);
    (r1[i] as Uint8Array[]).forEach((p, k) => g1(p, k));
    const g2 = gatewayV2(i, t2);
    (r2[i] as Uint8Array[]).forEach((p, k) => g2(p, k));
  }
}
const per = (t: number[]): number[] => t.map((x) => x / (N * REPS));
const sum = (t: number[]): number => per(t).reduce((a, b) => a + b, 0);
console.log(JSON.stringify({ v1: { steps: per(t1), total: sum(t1) }, v2: { steps: per(t2), total: sum(t2) } }));
