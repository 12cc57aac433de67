/**
 * Property/fuzz tests (PRODUCT.md §6): random inputs and mutations of valid inputs through every parser and
 * state-machine entry point of the core give only LpError with a known code — no other exception, no hang.
 * The targets live in test/helpers/fuzz-targets.ts; this file runs each in a worker thread (two at a time on
 * this 2-core machine) and watches its heartbeats: node:test's `timeout` cannot interrupt a synchronous
 * infinite loop, but terminating the worker can, and the last heartbeat says where it stuck.
 *
 * Environment:
 *   LP_FUZZ_SEED=<u32>         reproduce a run (the seed is printed in the diagnostics)
 *   LP_FUZZ_TARGETS=a,b        run only these targets (names as in the test titles)
 *   LP_FUZZ_SCALE=<x>          multiply every iteration count (e.g. 10 for a long local run)
 *   LP_FUZZ_INLINE=1           run in this thread (for a debugger), without the hang watchdog
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { type Progress, type TargetResult, TARGETS, runTarget } from '../helpers/fuzz-targets.js';

function parseSeed(s: string | undefined): number | null {
  if (s === undefined || s.trim() === '') return null;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`LP_FUZZ_SEED must be a u32, got ${s}`);
  return n;
}

const SEED = parseSeed(process.env.LP_FUZZ_SEED) ?? (Date.now() ^ (process.pid << 16)) >>> 0;
const SCALE = Number(process.env.LP_FUZZ_SCALE ?? '1');
const ONLY = process.env.LP_FUZZ_TARGETS ? new Set(process.env.LP_FUZZ_TARGETS.split(',').map((s) => s.trim())) : null;
const INLINE = process.env.LP_FUZZ_INLINE === '1';
/** A target that sends no heartbeat for this long is hung (heartbeats come every 64 inputs). */
const STALL_MS = 15_000;
/** Per-test timeout; the watchdog gives up 5 s earlier so the failure names the stuck input. */
const TARGET_TIMEOUT_MS = 60_000 * Math.max(1, SCALE);
const WATCHDOG_MS = TARGET_TIMEOUT_MS - 5_000;
const REQUIRED_TOTAL = 100_000;

console.log(`lp fuzz seed ${SEED} (reproduce: LP_FUZZ_SEED=${SEED})`);

const selected = TARGETS.filter((t) => !ONLY || ONLY.has(t.name));
const results = new Map<string, TargetResult>();

type WorkerMessage = { type: 'progress'; progress: Progress } | { type: 'done'; result: TargetResult };

function isWorkerMessage(m: unknown): m is WorkerMessage {
  const t = (m as { type?: unknown } | null)?.type;
  return t === 'progress' || t === 'done';
}

function runInWorker(name: string): Promise<TargetResult> {
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const targets = new URL('../helpers/fuzz-targets.ts', import.meta.url).href;
  // tsx's --import hook does not reach worker threads on Node 20: register it inside the worker first.
  const source = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(targets)}); });`;
  return new Promise<TargetResult>((resolve, reject) => {
    const worker = new Worker(source, { eval: true, workerData: { lpFuzz: true, target: name, seed: SEED, scale: SCALE } });
    const started = Date.now();
    let lastBeat = started;
    let last: Progress = { name, phase: 'setup', iteration: 0 };
    let settled = false;
    const finish = (err: Error | null, result?: TargetResult): void => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      void worker.terminate();
      if (err) reject(err);
      else resolve(result as TargetResult);
    };
    const watchdog = setInterval(() => {
      const now = Date.now();
      if (now - lastBeat > STALL_MS || now - started > WATCHDOG_MS) {
        finish(
          new Error(
            `fuzz target ${name} hung: no progress for ${now - lastBeat} ms (total ${now - started} ms) after ${last.phase} input #${last.iteration}; ` +
              `reproduce with LP_FUZZ_SEED=${SEED} LP_FUZZ_TARGETS=${name}`,
          ),
        );
      }
    }, 200);
    worker.on('message', (m: unknown) => {
      if (!isWorkerMessage(m)) return;
      lastBeat = Date.now();
      if (m.type === 'progress') last = m.progress;
      else finish(null, m.result);
    });
    worker.on('error', (e: Error) => finish(new Error(`fuzz worker for ${name} crashed after ${last.phase} input #${last.iteration} (seed ${SEED}): ${e.stack ?? e.message}`)));
    worker.on('exit', (code) => finish(new Error(`fuzz worker for ${name} exited with code ${code} before reporting`)));
  });
}

function describeResult(r: TargetResult): string {
  const codes = Object.entries(r.codes)
    .sort((a, b) => b[1] - a[1])
    .map(([c, n]) => `${c.replace('LP_ERR_', '')}=${n}`)
    .join(' ');
  return `${r.name}: ${r.random} random + ${r.mutated} mutated, ${r.accepted} accepted, ${r.elapsedMs.toFixed(0)} ms (slowest call ${r.slowestCallMs.toFixed(1)} ms); rejected: ${codes}`;
}

function describeFailures(r: TargetResult): string {
  return [
    `${r.failureCount} input(s) to ${r.name} raised something other than a coded LpError or broke a property (seed ${SEED}, reproduce with LP_FUZZ_SEED=${SEED} LP_FUZZ_TARGETS=${r.name}):`,
    ...r.failures.map((f) => `  [${f.phase} #${f.iteration}] ${f.error}\n    input: ${f.input}`),
  ].join('\n');
}

describe('fuzz: every parser and entry point rejects garbage only with LpError', { concurrency: INLINE ? 1 : 2 }, () => {
  // Slowest targets first so the two workers finish together.
  const order = [...selected].sort((a, b) => Number(b.name.includes('.receive') || b.name.includes('FrameDecoder')) - Number(a.name.includes('.receive') || a.name.includes('FrameDecoder')));
  for (const spec of order) {
    test(`${spec.name}`, { timeout: TARGET_TIMEOUT_MS }, async (t) => {
      const result = INLINE ? runTarget(spec, SEED, SCALE, () => {}) : await runInWorker(spec.name);
      results.set(spec.name, result);
      t.diagnostic(describeResult(result));
      assert.equal(result.failureCount, 0, describeFailures(result));
      assert.equal(result.random, Math.ceil(spec.random * SCALE));
      assert.equal(result.mutated, Math.ceil(spec.mutated * SCALE));
    });
  }
});

test('fuzz totals: ≥ 100,000 random and ≥ 100,000 mutated inputs over all parsers', (t) => {
  const rows = selected.map((s) => results.get(s.name));
  const done = rows.filter((r): r is TargetResult => r !== undefined);
  const random = done.reduce((n, r) => n + r.random, 0);
  const mutated = done.reduce((n, r) => n + r.mutated, 0);
  const table = [
    `seed ${SEED}, scale ${SCALE}`,
    `${'target'.padEnd(28)} ${'random'.padStart(8)} ${'mutated'.padStart(8)} ${'accepted'.padStart(9)} ${'ms'.padStart(7)}`,
    ...done.map((r) => `${r.name.padEnd(28)} ${String(r.random).padStart(8)} ${String(r.mutated).padStart(8)} ${String(r.accepted).padStart(9)} ${r.elapsedMs.toFixed(0).padStart(7)}`),
    `${'total'.padEnd(28)} ${String(random).padStart(8)} ${String(mutated).padStart(8)}`,
  ];
  for (const line of table) t.diagnostic(line);
  assert.equal(done.length, selected.length, 'every target reported');
  if (!ONLY && SCALE >= 1) {
    assert.ok(random >= REQUIRED_TOTAL, `random inputs ${random} < ${REQUIRED_TOTAL}`);
    assert.ok(mutated >= REQUIRED_TOTAL, `mutated inputs ${mutated} < ${REQUIRED_TOTAL}`);
  }
});
