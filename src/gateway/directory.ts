/**
 * The entry's forwarding allow-list (PRODUCT.md §1 item 8: no open relay). Sources:
 *  - `directory.peers`: descriptor URLs (`http://host:port` gets `/v1/gateway` appended), fetched with a
 *    5 s timeout and a 64 KiB body cap;
 *  - `directory.topology`: a JSON file `{ "gateways": [ { "url": "..." } | <descriptor> ] }`, re-read on every
 *    refresh; its URLs are fetched like peers.
 * Every descriptor is verified (shape and signature) before it is used; one with our own identity is ignored.
 *
 * A source that fails (unreachable, HTTP error, bad JSON, bad signature) is logged with one warn line and
 * keeps the descriptor it last served, if any. Refresh runs every `refreshSec`; while any source is failing
 * it runs sooner, with backoff from 1 s up to min(refreshSec, 60 s) (also with refreshSec = 0, until all
 * sources have answered once), so an entry started before its exits finds them quickly.
 *
 * lookup() answers only when BOTH the identity and the normalised LP TCP address match one descriptor.
 */
import { readFile } from 'node:fs/promises';
import { equalBytes, toHex, type CryptoSuite } from '../core/index.js';
import { silentLogger, type Logger } from '../log.js';
import type { GatewayConfig } from './config.js';
import { normalizeLpAddress, verifyDescriptor, type GatewayDescriptor } from './descriptor.js';
import { isGatewayError } from './errors.js';

export const DIRECTORY_FETCH_TIMEOUT_MS = 5000;
export const DIRECTORY_MAX_BODY_BYTES = 64 * 1024;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 60_000;

export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

export interface DirectoryOptions {
  /** Descriptor URLs (directory.peers). */
  peers: readonly string[];
  /** Topology file path, '' for none (directory.topology). */
  topology: string;
  /** Refresh period in seconds; 0 = only at start (failed sources are still retried until they answer). */
  refreshSec: number;
  /** This gateway's Ed25519 identity; its own descriptor is ignored. */
  ownIdentity: Uint8Array;
  /** Injectable for tests; defaults to the global fetch. */
  fetch?: FetchFn;
  fetchTimeoutMs?: number;
}

export interface DirectoryLoadResult {
  /** Sources that answered with a valid descriptor this round. */
  ok: number;
  /** Sources that failed this round (each logged once). */
  failed: number;
  /** Descriptors in the allow-list after the round. */
  size: number;
}

/** `http://host:port` (no path) → `http://host:port/v1/gateway`; a URL with a path is used as is. */
export function peerDescriptorUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`not an http(s) URL: ${url}`);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/gateway';
  return u.toString();
}

interface Outcome {
  /** Stable key: the peer URL, or `topology:<path>#<index>`. */
  source: string;
  /** For log lines. */
  label: string;
  /** null when the source answered with our own descriptor. */
  descriptor: GatewayDescriptor | null;
  error: string | null;
}

export class Directory {
  private readonly opts: DirectoryOptions;
  private readonly suite: CryptoSuite;
  private readonly log: Logger;
  private readonly fetchFn: FetchFn;
  /** Last good descriptors per source (URL or `topology:<path>#<index>`). */
  private readonly bySource = new Map<string, GatewayDescriptor>();
  /** Index `identityHex|normalisedTcp` → descriptor. */
  private index = new Map<string, GatewayDescriptor>();
  private readonly failing = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private retryMs = RETRY_MIN_MS;
  private failedRounds = 0;
  private inFlight: Promise<DirectoryLoadResult> | null = null;
  private abort = new AbortController();

  /** `logger` is used as given (pass a child with `component: 'directory'`). */
  constructor(opts: DirectoryOptions, suite: CryptoSuite, logger: Logger = silentLogger()) {
    this.opts = { ...opts, peers: [...opts.peers] };
    this.suite = suite;
    this.log = logger;
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
  }

  static fromConfig(config: GatewayConfig, suite: CryptoSuite, ownIdentity: Uint8Array, logger?: Logger, fetchFn?: FetchFn): Directory {
    const { peers, topology, refreshSec } = config.directory;
    return new Directory({ peers, topology, refreshSec, ownIdentity, ...(fetchFn ? { fetch: fetchFn } : {}) }, suite, logger);
  }

  get size(): number {
    return this.index.size;
  }

  entries(): GatewayDescriptor[] {
    return [...this.index.values()];
  }

  /** The descriptor whose identity AND normalised LP TCP address both match, else null (never throws). */
  lookup(identity: Uint8Array, lpAddress: string): GatewayDescriptor | null {
    if (identity.length !== 32) return null;
    let addr: string;
    try {
      addr = normalizeLpAddress(lpAddress);
    } catch {
      return null;
    }
    return this.index.get(`${toHex(identity)}|${addr}`) ?? null;
  }

  /** Fetches every source once (concurrent calls share one round). */
  load(): Promise<DirectoryLoadResult> {
    this.inFlight ??= this.loadRound().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /** Starts the refresh timer (unref'd). Call after the first load(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  /** Stops refreshing and aborts fetches in flight (their sources count as failed); load() still works after. */
  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort.abort();
    this.abort = new AbortController();
  }

  private schedule(): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const refreshMs = this.opts.refreshSec * 1000;
    let delay: number | null = refreshMs > 0 ? refreshMs : null;
    if (this.failing.size > 0) delay = Math.min(delay ?? RETRY_MAX_MS, this.retryMs);
    if (delay === null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.load().then(
        () => this.schedule(),
        (e: unknown) => {
          this.log.error({ err: e }, 'directory refresh failed');
          this.schedule();
        },
      );
    }, delay);
    this.timer.unref();
  }

  private async loadRound(): Promise<DirectoryLoadResult> {
    const jobs: Promise<Outcome>[] = this.opts.peers.map((url) => this.fromUrl(url, url, url));
    let topologyOk = true;
    if (this.opts.topology !== '') {
      const topo = await this.readTopology(this.opts.topology);
      if (topo.error !== null) {
        topologyOk = false;
        this.log.warn({ source: this.opts.topology, reason: topo.error }, `topology file ${this.opts.topology} skipped: ${topo.error}`);
      } else {
        jobs.push(...topo.jobs);
      }
    }
    const outcomes = await Promise.all(jobs);
    let ok = 0;
    let failed = topologyOk ? 0 : 1;
    const topoKey = `topology:${this.opts.topology}`;
    if (topologyOk) this.failing.delete(topoKey);
    else this.failing.add(topoKey);
    const seenSources = new Set<string>();
    for (const o of outcomes) {
      seenSources.add(o.source);
      if (o.error !== null) {
        failed++;
        const kept = this.bySource.has(o.source) ? ' (keeping its last descriptor)' : '';
        const line = `gateway descriptor from ${o.label} skipped: ${o.error}${kept}`;
        if (o.error.startsWith('aborted')) this.log.debug({ source: o.label, reason: o.error }, line);
        else this.log.warn({ source: o.label, reason: o.error }, line);
        this.failing.add(o.source);
        continue;
      }
      if (this.failing.delete(o.source)) this.log.info({ source: o.label }, `gateway descriptor from ${o.label} loaded after earlier failures`);
      ok++;
      if (o.descriptor) this.bySource.set(o.source, o.descriptor);
      else this.bySource.delete(o.source); // our own descriptor
    }
    // topology entries removed from the file are dropped (when the file itself was readable)
    if (topologyOk) {
      for (const src of [...this.bySource.keys()]) if (src.startsWith('topology:') && !seenSources.has(src)) this.bySource.delete(src);
      for (const src of [...this.failing]) if (src.startsWith('topology:') && src !== topoKey && !seenSources.has(src)) this.failing.delete(src);
    }
    this.rebuildIndex();
    if (this.failing.size > 0) {
      this.retryMs = this.failedRounds === 0 ? RETRY_MIN_MS : Math.min(this.retryMs * 2, RETRY_MAX_MS);
      this.failedRounds++;
    } else {
      this.failedRounds = 0;
      this.retryMs = RETRY_MIN_MS;
    }
    this.log.debug({ ok, failed, size: this.index.size }, 'directory loaded');
    return { ok, failed, size: this.index.size };
  }

  private rebuildIndex(): void {
    const next = new Map<string, GatewayDescriptor>();
    for (const d of this.bySource.values()) {
      const key = `${d.identity_key}|${normalizeLpAddress(d.lp.tcp)}`;
      const prev = next.get(key);
      if (!prev || prev.issued_at < d.issued_at) next.set(key, d);
    }
    const changed = next.size !== this.index.size || [...next].some(([k, d]) => this.index.get(k)?.signature !== d.signature);
    this.index = next;
    if (changed) this.changeListener?.(this.entries());
  }

  private changeListener: ((entries: GatewayDescriptor[]) => void) | null = null;

  /** Called with every gateway after a load or refresh that changed the set (e.g. to update forwarding rules). */
  onChange(listener: (entries: GatewayDescriptor[]) => void): void {
    this.changeListener = listener;
  }

  /** Verifies a descriptor object; null when it is our own. Throws a reason string as Error. */
  private accept(json: unknown): GatewayDescriptor | null {
    const d = verifyDescriptor(json, this.suite);
    const id = Buffer.from(d.identity_key, 'hex');
    if (equalBytes(id, this.opts.ownIdentity)) {
      this.log.debug({ identityKey: d.identity_key }, 'ignoring our own descriptor');
      return null;
    }
    return d;
  }

  private describe(e: unknown): string {
    if (isGatewayError(e)) return `${e.code}: ${e.message}`;
    if (e instanceof Error) {
      if (e.name === 'TimeoutError') return `timed out after ${this.opts.fetchTimeoutMs ?? DIRECTORY_FETCH_TIMEOUT_MS} ms`;
      if (e.name === 'AbortError') return 'aborted (directory stopped)';
      const cause = (e as Error & { cause?: unknown }).cause;
      const detail = cause instanceof Error ? `: ${(cause as NodeJS.ErrnoException).code ?? cause.message}` : '';
      return `${e.message}${detail}`;
    }
    return String(e);
  }

  private async fromUrl(source: string, label: string, url: string): Promise<Outcome> {
    try {
      const json = await this.fetchJson(peerDescriptorUrl(url));
      return { source, label, descriptor: this.accept(json), error: null };
    } catch (e) {
      return { source, label, descriptor: null, error: this.describe(e) };
    }
  }

  private async fetchJson(url: string): Promise<unknown> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.opts.fetchTimeoutMs ?? DIRECTORY_FETCH_TIMEOUT_MS), this.abort.signal]);
    const res = await this.fetchFn(url, { signal, redirect: 'error', headers: { accept: 'application/json' } });
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > DIRECTORY_MAX_BODY_BYTES) {
      await res.body?.cancel();
      throw new Error(`response too large (${declared} bytes)`);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.length;
        if (total > DIRECTORY_MAX_BODY_BYTES) {
          await reader.cancel();
          throw new Error(`response larger than ${DIRECTORY_MAX_BODY_BYTES} bytes`);
        }
        chunks.push(value);
      }
    }
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new Error('response is not JSON');
    }
  }

  private async readTopology(path: string): Promise<{ error: string | null; jobs: Promise<Outcome>[] }> {
    let doc: unknown;
    try {
      doc = JSON.parse(await readFile(path, 'utf8')) as unknown;
    } catch (e) {
      return { error: e instanceof SyntaxError ? `not valid JSON: ${e.message}` : (e as Error).message, jobs: [] };
    }
    const gateways = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as { gateways?: unknown }).gateways : undefined;
    if (!Array.isArray(gateways)) return { error: 'expected { "gateways": [ ... ] }', jobs: [] };
    const jobs = gateways.map(async (entry: unknown, i): Promise<Outcome> => {
      const source = `topology:${path}#${i}`;
      const isUrlEntry = typeof entry === 'object' && entry !== null && !Array.isArray(entry) && Object.keys(entry).length === 1 && 'url' in entry;
      if (isUrlEntry) {
        const url = (entry as { url: unknown }).url;
        if (typeof url !== 'string') return { source, label: `${path} gateways[${i}]`, descriptor: null, error: 'url must be a string' };
        return this.fromUrl(source, `${url} (${path} gateways[${i}])`, url);
      }
      const label = `${path} gateways[${i}]`;
      try {
        return { source, label, descriptor: this.accept(entry), error: null };
      } catch (e) {
        return { source, label, descriptor: null, error: this.describe(e) };
      }
    });
    return { error: null, jobs };
  }
}
