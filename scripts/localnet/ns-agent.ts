/**
 * A tiny helper run *inside* a localnet namespace (`ip netns exec <ns> node --import tsx ns-agent.ts REQ`):
 * HTTP GETs, a bounded wait for HTTP conditions, and TCP reachability, so that health checks travel the
 * same path as the probe's traffic. REQ is one JSON argument (AgentRequest); the answer is one JSON line on
 * stdout (AgentResponse). Exit status 0 when every check passed, 1 otherwise, 2 on a bad request.
 */
import net from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface HttpCheck {
  url: string;
  /** Optional: a dotted path into the JSON body whose number must be ≥ min (e.g. `directory.peers`). */
  path?: string;
  min?: number;
  /** Optional: a dotted path whose value must equal this string (e.g. `state` = `running`). */
  equals?: string;
}

export type AgentRequest =
  | { op: 'get'; urls: string[]; timeoutMs?: number }
  | { op: 'wait'; checks: HttpCheck[]; timeoutMs: number; intervalMs?: number }
  | { op: 'reach'; targets: { host: string; port: number }[]; timeoutMs?: number };

export interface HttpResult {
  url: string;
  ok: boolean;
  status: number | null;
  body: unknown;
  error: string | null;
  ms: number;
}

export interface ReachResult {
  host: string;
  port: number;
  /** open: connected; refused: the host answered with a RST (reachable, nothing listening); else an error code. */
  result: string;
  ms: number;
}

export type AgentResponse = { op: 'get' | 'wait'; ok: boolean; results: HttpResult[]; attempts?: number } | { op: 'reach'; ok: boolean; results: ReachResult[] };

function dig(body: unknown, path: string): unknown {
  let v: unknown = body;
  for (const k of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

async function get(url: string, timeoutMs: number): Promise<HttpResult> {
  const t = performance.now();
  const ms = (): number => Math.round(performance.now() - t);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      // not JSON: keep the text
    }
    return { url, ok: res.ok, status: res.status, body, error: null, ms: ms() };
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return { url, ok: false, status: null, body: null, error: cause?.code ?? cause?.message ?? (e as Error).message, ms: ms() };
  }
}

function checkPassed(c: HttpCheck, r: HttpResult): boolean {
  if (!r.ok) return false;
  if (c.path !== undefined) {
    const v = dig(r.body, c.path);
    if (c.min !== undefined && !(typeof v === 'number' && v >= c.min)) return false;
    if (c.equals !== undefined && v !== c.equals) return false;
  }
  return true;
}

function reach(host: string, port: number, timeoutMs: number): Promise<ReachResult> {
  const t = performance.now();
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (result: string): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ host, port, result, ms: Math.round(performance.now() - t) });
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    s.once('connect', () => done('open'));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'refused' : (e.code ?? e.message)));
  });
}

export async function handle(req: AgentRequest): Promise<AgentResponse> {
  switch (req.op) {
    case 'get': {
      const results = await Promise.all(req.urls.map((u) => get(u, req.timeoutMs ?? 3000)));
      return { op: 'get', ok: results.every((r) => r.ok), results };
    }
    case 'wait': {
      const end = Date.now() + req.timeoutMs;
      const interval = req.intervalMs ?? 200;
      let attempts = 0;
      for (;;) {
        attempts++;
        const left = Math.max(1, end - Date.now());
        const results = await Promise.all(req.checks.map((c) => get(c.url, Math.min(2000, left))));
        const ok = req.checks.every((c, i) => checkPassed(c, results[i] as HttpResult));
        if (ok || Date.now() + interval > end) return { op: 'wait', ok, results, attempts };
        await new Promise((r) => setTimeout(r, interval));
      }
    }
    case 'reach': {
      const results = await Promise.all(req.targets.map((x) => reach(x.host, x.port, req.timeoutMs ?? 2000)));
      return { op: 'reach', ok: results.every((r) => r.result === 'open' || r.result === 'refused'), results };
    }
  }
}

async function main(): Promise<number> {
  let req: AgentRequest;
  try {
    req = JSON.parse(process.argv[2] ?? '') as AgentRequest;
  } catch {
    process.stderr.write('usage: ns-agent.ts \'{"op":"get","urls":["http://…/health"]}\'\n');
    return 2;
  }
  const res = await handle(req);
  process.stdout.write(`${JSON.stringify(res)}\n`);
  return res.ok ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main();
}
