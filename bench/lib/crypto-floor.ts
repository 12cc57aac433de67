/**
 * The crypto floor of a gateway handshake: the primitive operations the gateway performs per handshake,
 * counted by instrumenting its crypto suite during real (replayed) handshakes, each then timed in this process
 * with the very arguments it was called with. The floor is what a handshake would cost if everything but
 * those calls were free; the handshake's CPU ÷ the floor is what the protocol code, codecs, allocation and GC
 * add. Both run in the same process in the same run, so the ratio does not move with the host as the
 * absolute figures do.
 */
import { readFileSync } from 'node:fs';
import { cpuUsage } from 'node:process';
import type { CryptoSuite } from '../../src/core/index.js';
import { seededSuite } from '../../test/helpers/fixtures.js';
import { recordClientPackets, replayGateway } from './core-figures.js';

export interface RecordedCall {
  op: string;
  call: () => unknown;
}

export interface OpCost {
  op: string;
  /** Calls per handshake (per unit of the recording: a flow, for timeRecorded). */
  perHandshake: number;
  /** CPU µs per call, timed alone. */
  usPerCall: number;
}

export interface CryptoFloor {
  ops: OpCost[];
  /** Σ perHandshake × usPerCall. */
  usPerHandshake: number;
}

function cpuMicros(): number {
  const u = cpuUsage();
  return u.user + u.system;
}

/**
 * CPU µs of the calling thread alone (Linux schedstat, nanosecond run time), or NaN without it. process.cpuUsage
 * sums every thread, so process − this thread is what V8's background threads (optimizing compiler, concurrent GC)
 * spent meanwhile: high while the handshake code is still being compiled, small once it is warm.
 */
function threadMicros(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]) / 1000;
  } catch {
    return Number.NaN;
  }
}

/** An argument as it was when the call was made (callers zeroize and reuse their buffers afterwards). */
function snapshot(a: unknown): unknown {
  return a instanceof Uint8Array ? Uint8Array.prototype.slice.call(a) : a;
}

/** A suite that runs `suite` and records every call (name and a replayable closure over copied arguments). */
export function recordingSuite(suite: CryptoSuite, log: RecordedCall[]): CryptoSuite {
  const wrap = <T extends object>(obj: T, prefix: string): T => {
    const out: Record<string, unknown> = {};
    for (const [name, v] of Object.entries(obj)) {
      if (typeof v !== 'function') {
        out[name] = v;
        continue;
      }
      const fn = v as (...a: unknown[]) => unknown;
      out[name] = (...args: unknown[]): unknown => {
        const copy = args.map(snapshot);
        log.push({ op: `${prefix}${name}`, call: () => fn.apply(obj, copy) });
        return fn.apply(obj, args);
      };
    }
    return out as T;
  };
  return { prims: wrap(suite.prims, ''), kem: wrap(suite.kem, 'kem.') };
}

function groupByOp(calls: readonly RecordedCall[]): Map<string, RecordedCall[]> {
  const byOp = new Map<string, RecordedCall[]>();
  for (const c of calls) (byOp.get(c.op) ?? byOp.set(c.op, []).get(c.op))?.push(c);
  return byOp;
}

/**
 * The floor of recorded work: every recorded call run again `rounds` times (grouped by operation, each
 * operation timed), per unit of work (`units`: how many flows or handshakes the recording spans).
 */
export function timeRecorded(calls: readonly RecordedCall[], units: number, rounds: number): CryptoFloor {
  const byOp = groupByOp(calls);
  const opUs = new Map<string, number>();
  for (let r = 0; r <= rounds; r++) {
    for (const [op, list] of byOp) {
      const t0 = cpuMicros();
      for (const c of list) c.call();
      if (r > 0) opUs.set(op, (opUs.get(op) ?? 0) + cpuMicros() - t0); // round 0 warms up
    }
  }
  const ops: OpCost[] = [...byOp].map(([op, list]) => ({ op, perHandshake: list.length / units, usPerCall: (opUs.get(op) ?? 0) / (list.length * rounds) }));
  ops.sort((a, b) => b.perHandshake * b.usPerCall - a.perHandshake * a.usPerCall);
  return { ops, usPerHandshake: [...opUs.values()].reduce((a, b) => a + b, 0) / (units * rounds) };
}

export interface HandshakeVsFloor {
  /** Gateway CPU per handshake (replayed handshakes, µs; every thread of the process). */
  handshakeUs: number;
  /** Of handshakeUs, what V8's background threads spent (JIT compiler, concurrent GC); NaN where unmeasurable. */
  backgroundUs: number;
  floor: CryptoFloor;
  ratio: number;
}

/**
 * Handshake CPU and its crypto floor measured interleaved: `rounds` rounds, each replaying the recorded
 * handshakes into fresh gateway responders (timed), then running every recorded primitive call of those
 * handshakes once more, grouped by operation (each operation timed), in alternating order. Interleaving in
 * batches of tens of milliseconds puts the host's slow and fast moments into both sides alike.
 */
export function handshakeVsFloor(handshakes: number, rounds: number): HandshakeVsFloor {
  const recorded = recordClientPackets(handshakes);
  const calls: RecordedCall[] = [];
  const sessions = replayGateway(recorded, recorded.map((_, i) => recordingSuite(seededSuite(`bench-gateway-${i}`), calls)));
  if (sessions !== handshakes) throw new Error(`only ${sessions}/${handshakes} instrumented handshakes completed`);
  const byOp = groupByOp(calls);
  const opUs = new Map<string, number>([...byOp.keys()].map((k) => [k, 0]));
  let hsUs = 0;
  let mainUs = 0;
  const runHandshakes = (): void => {
    const suites = recorded.map((_, i) => seededSuite(`bench-gateway-${i}`));
    const m0 = threadMicros();
    const t0 = cpuMicros();
    if (replayGateway(recorded, suites) !== handshakes) throw new Error('a replayed handshake did not complete');
    hsUs += cpuMicros() - t0;
    mainUs += threadMicros() - m0;
  };
  const runFloor = (): void => {
    for (const [op, list] of byOp) {
      const t0 = cpuMicros();
      for (const c of list) c.call();
      opUs.set(op, (opUs.get(op) ?? 0) + cpuMicros() - t0);
    }
  };
  runHandshakes(); // warm-up, not counted
  runFloor();
  hsUs = 0;
  mainUs = 0;
  for (const k of opUs.keys()) opUs.set(k, 0);
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      runHandshakes();
      runFloor();
    } else {
      runFloor();
      runHandshakes();
    }
  }
  const n = handshakes * rounds;
  const ops: OpCost[] = [...byOp].map(([op, list]) => ({ op, perHandshake: list.length / handshakes, usPerCall: (opUs.get(op) ?? 0) / (list.length * rounds) }));
  ops.sort((a, b) => b.perHandshake * b.usPerCall - a.perHandshake * a.usPerCall);
  const floorUs = [...opUs.values()].reduce((a, b) => a + b, 0) / n;
  return { handshakeUs: hsUs / n, backgroundUs: Math.max(0, hsUs - mainUs) / n, floor: { ops, usPerHandshake: floorUs }, ratio: hsUs / n / floorUs };
}

/**
 * Runs untimed trials of `handshakeVsFloor` (the recording, the replays and the floor: all the code a trial runs)
 * until about `handshakes` handshakes have been replayed, so that V8 has compiled that code before anything is
 * timed. A fresh process keeps compiling the handshake code over its first few thousand handshakes, on background
 * threads that process.cpuUsage counts: measured, 120–670 µs per handshake over the first 1,200 and 30–75 µs
 * after 2,400. A gateway serves millions, so its steady state is the figure; this costs a few seconds once.
 */
export function warmUpHandshakes(handshakes: number): void {
  const rounds = 15;
  for (let done = 0; done < handshakes; done += 40 * rounds) handshakeVsFloor(40, rounds);
}
