/**
 * The entry's forwarding allow-list (PRODUCT.md §1 item 8: no open relay), trusted only through an
 * out-of-band anchor (PRODUCT.md §8, DESIGN.md §7.6). Sources:
 *  - `directory.documents` + `directory.keys`: signed directory documents (URLs or files) — their gateway
 *    records are trusted as signed, as long as the document is valid and its version does not go down;
 *  - `directory.peers`: descriptor URLs (`http://host:port` gets `/v1/gateway` appended), fetched with a
 *    5 s timeout and a 64 KiB body cap, each pinned to its identity as `URL#<64 hex>`; an unpinned one is
 *    trusted only if a trusted document lists its identity with the same record, or with
 *    `directory.trust_on_first_use` (localnets only);
 *  - `directory.topology`: a JSON file `{ "gateways": [ { "url": "...", "identity"?: "<hex>" } | <descriptor> ] }`,
 *    re-read on every refresh: a descriptor written into the operator's own file is anchored by the file,
 *    a URL entry like a peer.
 * Every descriptor is verified (shape, signature, validity) before it is used, and one older than a
 * descriptor already seen for its identity is refused (rollback); one with our own identity is ignored.
 * Expired descriptors and records of expired documents drop out of the allow-list.
 *
 * A source that fails (unreachable, HTTP error, bad JSON, bad signature) is logged with one warn line and
 * keeps the descriptor it last served, if any. Refresh runs every `refreshSec`; while any source is failing
 * it runs sooner, with backoff from 1 s up to min(refreshSec, 60 s) (also with refreshSec = 0, until all
 * sources have answered once), so an entry started before its exits finds them quickly.
 *
 * lookup() answers only when BOTH the identity and the normalised LP TCP address match one descriptor.
 */
import { readFile } from 'node:fs/promises';
import { equalBytes, fromHex, toHex, type CryptoSuite } from '../core/index.js';
import { silentLogger, type Logger } from '../log.js';
import type { GatewayConfig } from './config.js';
import { canonicalJson, normalizeLpAddress, recordOf, verifyDescriptor, type GatewayRecord } from './descriptor.js';
import { verifyDirectory } from './directory-document.js';
import { GatewayError, GatewayErrorCode, isGatewayError } from './errors.js';

export const DIRECTORY_FETCH_TIMEOUT_MS = 5000;
export const DIRECTORY_MAX_BODY_BYTES = 64 * 1024;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 60_000;

export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

export interface DirectoryOptions {
  /** Descriptor URLs (directory.peers), each optionally pinned as `URL#<64 hex identity>`. */
  peers: readonly string[];
  /** Signed directory documents, URLs or file paths (directory.documents). */
  documents?: readonly string[];
  /** Trusted directory keys (directory.keys). */
  keys?: readonly Uint8Array[];
  /** Accept unpinned peers on their self-signed descriptor alone (directory.trust_on_first_use). */
  trustOnFirstUse?: boolean;
  /** Unix seconds (tests). */
  now?: () => number;
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

/** `http://host:port` (no path) → `http://host:port/v1/gateway`; a URL with a path is used as is; a `#pin` is dropped. */
export function peerDescriptorUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`not an http(s) URL: ${url}`);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/gateway';
  u.hash = '';
  return u.toString();
}

/** `URL#<64 hex>` → the URL and its pinned identity (lower-case hex), or no pin. */
export function parsePinnedUrl(entry: string): { url: string; pin: string | null } {
  const i = entry.indexOf('#');
  if (i < 0) return { url: entry, pin: null };
  const pin = entry.slice(i + 1).toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(pin)) throw new GatewayError(GatewayErrorCode.CONFIG, `'${entry}': the part after # must be the gateway's identity key (64 hex characters)`);
  return { url: entry.slice(0, i), pin };
}

/** A gateway the allow-list holds: its record and until when it may be used. */
interface Held {
  record: GatewayRecord;
  expiresAt: number;
}

interface Outcome {
  /** Stable key: the peer URL, `topology:<path>#<index>` or `document:<source>#<identity>`. */
  source: string;
  /** For log lines. */
  label: string;
  /** null when the source answered with our own descriptor. */
  held: Held | null;
  error: string | null;
}

/** Records are compared as canonical JSON (same fields, same values). */
const sameRecord = (a: GatewayRecord, b: GatewayRecord): boolean => canonicalJson(a) === canonicalJson(b);

export class Directory {
  private readonly opts: DirectoryOptions;
  private readonly suite: CryptoSuite;
  private readonly log: Logger;
  private readonly fetchFn: FetchFn;
  /** Last good gateways per source (URL, `topology:<path>#<index>`, `document:<source>#<identity>`). */
  private readonly bySource = new Map<string, Held>();
  /** Index `identityHex|normalisedTcp` → record. */
  private index = new Map<string, GatewayRecord>();
  /** Rollback protection: newest descriptor issued_at per identity, highest version per document source. */
  private readonly newestIssued = new Map<string, number>();
  private readonly highestVersion = new Map<string, number>();
  /** Records of the valid trusted documents, by identity (anchors unpinned peers). */
  private documentRecords = new Map<string, GatewayRecord>();
  private readonly now: () => number;
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
    for (const p of this.opts.peers) parsePinnedUrl(p); // a bad pin is a configuration error, at once
    this.suite = suite;
    this.log = logger;
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
    this.now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  }

  static fromConfig(config: GatewayConfig, suite: CryptoSuite, ownIdentity: Uint8Array, logger?: Logger, fetchFn?: FetchFn): Directory {
    const { peers, documents, keys, trustOnFirstUse, topology, refreshSec } = config.directory;
    return new Directory({ peers, documents, keys: keys.map((k) => fromHex(k)), trustOnFirstUse, topology, refreshSec, ownIdentity, ...(fetchFn ? { fetch: fetchFn } : {}) }, suite, logger);
  }

  get size(): number {
    return this.index.size;
  }

  entries(): GatewayRecord[] {
    return [...this.index.values()];
  }

  /** The gateway whose identity AND normalised LP TCP address both match, else null (never throws). */
  lookup(identity: Uint8Array, lpAddress: string): GatewayRecord | null {
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
    // Documents first: their records anchor unpinned peers of this same round.
    const docOutcomes = await Promise.all((this.opts.documents ?? []).map((src) => this.fromDocument(src)));
    this.documentRecords = new Map();
    const nowSec = this.now();
    for (const [src, held] of this.bySource) if (src.startsWith('document:') && held.expiresAt > nowSec) this.documentRecords.set(held.record.identity_key, held.record);
    for (const o of docOutcomes.flat()) if (o.held) this.documentRecords.set(o.held.record.identity_key, o.held.record);
    const jobs: Promise<Outcome>[] = this.opts.peers.map((entry) => {
      const { url, pin } = parsePinnedUrl(entry);
      return this.fromUrl(entry, url, url, pin);
    });
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
    jobs.push(...docOutcomes.flat().map((o) => Promise.resolve(o)));
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
        // a gateway that lost its anchor (pin, document) is not kept; an unreachable one keeps its last descriptor
        if (o.error.startsWith(GatewayErrorCode.DESCRIPTOR_UNTRUSTED)) this.bySource.delete(o.source);
        const kept = this.bySource.has(o.source) ? ' (keeping its last descriptor)' : '';
        const line = `gateway descriptor from ${o.label} skipped: ${o.error}${kept}`;
        if (o.error.startsWith('aborted')) this.log.debug({ source: o.label, reason: o.error }, line);
        else this.log.warn({ source: o.label, reason: o.error }, line);
        this.failing.add(o.source);
        continue;
      }
      if (this.failing.delete(o.source)) this.log.info({ source: o.label }, `gateway descriptor from ${o.label} loaded after earlier failures`);
      ok++;
      if (o.held) this.bySource.set(o.source, o.held);
      else this.bySource.delete(o.source); // our own descriptor
    }
    // gateways a document no longer lists are dropped (when the document itself verified this round)
    for (const doc of docOutcomes) {
      const ok = doc.find((o) => o.error === null);
      if (!ok) continue;
      const prefix = ok.source.slice(0, ok.source.lastIndexOf('#') + 1);
      for (const src of [...this.bySource.keys()]) if (src.startsWith(prefix) && !seenSources.has(src)) this.bySource.delete(src);
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
    const nowSec = this.now();
    const next = new Map<string, GatewayRecord>();
    for (const [src, held] of this.bySource) {
      if (held.expiresAt <= nowSec) {
        this.log.warn({ source: src, identityKey: held.record.identity_key }, 'a gateway in the directory expired; dropped until a fresh descriptor or document arrives');
        this.bySource.delete(src);
        continue;
      }
      next.set(`${held.record.identity_key}|${normalizeLpAddress(held.record.lp.tcp)}`, held.record);
    }
    const changed = next.size !== this.index.size || [...next].some(([k, r]) => { const prev = this.index.get(k); return !prev || !sameRecord(prev, r); });
    this.index = next;
    if (changed) this.changeListener?.(this.entries());
  }

  private changeListener: ((entries: GatewayRecord[]) => void) | null = null;

  /** Called with every gateway after a load or refresh that changed the set (e.g. to update forwarding rules). */
  onChange(listener: (entries: GatewayRecord[]) => void): void {
    this.changeListener = listener;
  }

  /**
   * Verifies a descriptor object and its anchor; null when it is our own. `anchor`: the pinned identity, or
   * 'file' for a descriptor the operator wrote into the topology file, or null (document or TOFU needed).
   * Throws a coded GatewayError.
   */
  private accept(json: unknown, anchor: string | 'file' | null): Held | null {
    const d = verifyDescriptor(json, this.suite, this.now());
    if (equalBytes(Buffer.from(d.identity_key, 'hex'), this.opts.ownIdentity)) {
      this.log.debug({ identityKey: d.identity_key }, 'ignoring our own descriptor');
      return null;
    }
    const record = recordOf(d);
    const listed = this.documentRecords.get(d.identity_key);
    if (anchor !== null && anchor !== 'file' && anchor !== d.identity_key) {
      throw new GatewayError(GatewayErrorCode.DESCRIPTOR_UNTRUSTED, `the descriptor's identity ${d.identity_key.slice(0, 16)}… is not the pinned ${anchor.slice(0, 16)}…`);
    }
    if (listed && !sameRecord(listed, record)) {
      throw new GatewayError(GatewayErrorCode.DESCRIPTOR_UNTRUSTED, `the descriptor of ${d.identity_key.slice(0, 16)}… does not match its record in the trusted directory document`);
    }
    if (anchor === null && !listed && this.opts.trustOnFirstUse !== true) {
      throw new GatewayError(
        GatewayErrorCode.DESCRIPTOR_UNTRUSTED,
        `gateway ${d.identity_key.slice(0, 16)}… has no trust anchor: pin it (URL#${d.identity_key}), list it in a trusted directory document, or set directory.trust_on_first_use (localnets only)`,
      );
    }
    const newest = this.newestIssued.get(d.identity_key) ?? 0;
    if (d.issued_at < newest) throw new GatewayError(GatewayErrorCode.DESCRIPTOR_ROLLBACK, `descriptor of ${d.identity_key.slice(0, 16)}… issued at ${d.issued_at} is older than one already seen (${newest})`);
    this.newestIssued.set(d.identity_key, d.issued_at);
    return { record, expiresAt: d.expires_at };
  }

  /** One signed directory document: an outcome per gateway it lists (or one error outcome). */
  private async fromDocument(source: string): Promise<Outcome[]> {
    const label = `directory document ${source}`;
    try {
      const json = /^https?:\/\//.test(source) ? await this.fetchJson(source) : (JSON.parse(await readFile(source, 'utf8')) as unknown);
      const minVersion = this.highestVersion.get(source);
      const doc = verifyDirectory(json, this.opts.keys ?? [], this.suite, { nowSec: this.now(), ...(minVersion !== undefined ? { minVersion } : {}) });
      this.highestVersion.set(source, doc.version);
      const own = toHex(this.opts.ownIdentity);
      const out = doc.gateways.filter((g) => g.identity_key !== own).map((g): Outcome => ({ source: `document:${source}#${g.identity_key}`, label, held: { record: g, expiresAt: doc.expires_at }, error: null }));
      return out.length > 0 ? out : [{ source: `document:${source}#`, label, held: null, error: null }];
    } catch (e) {
      return [{ source: `document:${source}#`, label, held: null, error: this.describe(e) }];
    }
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

  private async fromUrl(source: string, label: string, url: string, pin: string | null): Promise<Outcome> {
    try {
      const json = await this.fetchJson(peerDescriptorUrl(url));
      return { source, label, held: this.accept(json, pin), error: null };
    } catch (e) {
      return { source, label, held: null, error: this.describe(e) };
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
      const label = `${path} gateways[${i}]`;
      const keys = typeof entry === 'object' && entry !== null && !Array.isArray(entry) ? Object.keys(entry) : [];
      const isUrlEntry = keys.includes('url') && keys.every((k) => k === 'url' || k === 'identity');
      if (isUrlEntry) {
        const { url, identity } = entry as { url: unknown; identity?: unknown };
        if (typeof url !== 'string') return { source, label, held: null, error: 'url must be a string' };
        if (identity !== undefined && (typeof identity !== 'string' || !/^[0-9a-fA-F]{64}$/.test(identity))) return { source, label, held: null, error: 'identity must be 64 hex characters' };
        return this.fromUrl(source, `${url} (${label})`, url, identity === undefined ? null : identity.toLowerCase());
      }
      try {
        return { source, label, held: this.accept(entry, 'file'), error: null };
      } catch (e) {
        return { source, label, held: null, error: this.describe(e) };
      }
    });
    return { error: null, jobs };
  }
}
