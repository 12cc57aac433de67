/**
 * The collector's lifecycle and window loop.
 *
 * startCollector(): privilege probe → load (safety check first) → watched ports → attach → loop. Without
 * privileges (or without bpf() at all) it logs ONE line and returns null: the caller runs without it.
 * Every window: read both maps in chunks, compute deltas, then hand the snapshot to each sink (NDJSON
 * writer, metrics, stream listeners), each isolated: a failing sink or a failed read is counted and logged,
 * never fatal to the loop. stop(): closes a final window (final: true), detaches, closes every fd.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { packagePath } from '../package-path.js';
import { attachProgram, AttachMode, l2HeaderLen, type Attachment, type TcHook } from './attach.js';
import { BpfSys, Errno } from './bpf-syscall.js';
import { CollectorError, CollectorErrorCode } from './errors.js';
import { ConfigSlot, EXPECTED_MAPS, MAP_CONFIG, MAP_FLOWS, MAP_PORTS, MAP_STATS, PROGRAM_NAME, STAT_SLOTS } from './layout.js';
import { loadObjectFile, type LoadedObject } from './loader.js';
import { MapReader, possibleCpus, readPercpuU64 } from './map-reader.js';
import { CollectorMetrics } from './metrics.js';
import type { SourceInfo, WindowSnapshot } from './schema.js';
import { SnapshotWriter } from './snapshot-writer.js';
import { WindowComputer } from './windows.js';
import { MapType } from './safety-policy.js';
import { DEFAULT_IFACE, DEFAULT_MAX_FLOWS, DEFAULT_PORTS, DEFAULT_WINDOW_SEC } from './defaults.js';

export { DEFAULT_PORTS } from './defaults.js';
export const DEFAULT_OBJECT_PATH = packagePath('bpf/collector.bpf.o');

/** The one line logged when the collector cannot run for lack of privileges. */
export const NOT_PERMITTED_MESSAGE = 'flow collector disabled: bpf() not permitted (run as root or with CAP_BPF+CAP_NET_ADMIN)';

export const CollectorState = {
  STARTING: 'starting',
  RUNNING: 'running',
  STOPPING: 'stopping',
  STOPPED: 'stopped',
} as const;
export type CollectorState = (typeof CollectorState)[keyof typeof CollectorState];

export interface CollectorOptions {
  /** interface to attach to (in this process's network namespace). Default 'lo'. */
  iface?: string;
  /** watched ports (TCP and UDP). Default 41264, 51264. */
  ports?: readonly number[];
  /** window length. Default 10 s. */
  windowSec?: number;
  /**
   * lpgw_flows (LRU) capacity in entries: one per (connection, receiver index) a connection carried, and one for
   * its packets without an index (every TCP connection has one). Flows and indexes share it. Default 65,536.
   */
  maxFlows?: number;
  /** NDJSON output directory; null/undefined = no files */
  outDir?: string | null;
  maxFiles?: number;
  maxAgeSec?: number;
  windowsPerFile?: number;
  fileAgeSec?: number;
  /** flows/indexes listed per snapshot (totals always cover all). Default 1000. */
  maxFlowsPerWindow?: number;
  maxIndexesPerWindow?: number;
  /** default: ingress only on loopback, both elsewhere */
  hooks?: readonly TcHook[];
  /** 'auto' (TCX, clsact when the kernel lacks TCX), 'tcx' or 'clsact'. */
  attachMode?: AttachMode;
  /** counters-only safety policy. Default true. */
  strict?: boolean;
  /** metrics go here when given */
  registry?: Registry;
  /** BPF object; default bpf/collector.bpf.o of this package */
  objectPath?: string;
}

export interface CollectorStatus {
  state: CollectorState | 'disabled';
  iface: string | null;
  ifindex: number | null;
  attach_mode: 'tcx' | 'clsact' | null;
  hooks: string[];
  watched_ports: number[];
  window_sec: number | null;
  started_at: string | null;
  windows: number;
  last_window_at: string | null;
  flows_capacity: number | null;
  link_ids: number[];
  prog_id: number | null;
  out_file: string | null;
  errors: { read: number; decode: number; write: number; listener: number };
}

export type WindowListener = (w: WindowSnapshot) => void;

/** What the HTTP routes and the stream need; a Collector is one. */
export interface CollectorSource {
  status(): CollectorStatus;
  latest(): WindowSnapshot | null;
  onWindow(listener: WindowListener): () => void;
}

export function disabledStatus(): CollectorStatus {
  return {
    state: 'disabled',
    iface: null,
    ifindex: null,
    attach_mode: null,
    hooks: [],
    watched_ports: [],
    window_sec: null,
    started_at: null,
    windows: 0,
    last_window_at: null,
    flows_capacity: null,
    link_ids: [],
    prog_id: null,
    out_file: null,
    errors: { read: 0, decode: 0, write: 0, listener: 0 },
  };
}

function validPorts(ports: readonly number[]): number[] {
  const out = [...new Set(ports)];
  for (const p of out) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new CollectorError(CollectorErrorCode.STATE, `invalid port ${p}`);
  }
  if (out.length === 0) throw new CollectorError(CollectorErrorCode.STATE, 'watch at least one port');
  return out;
}

const pause = (): Promise<void> => new Promise((r) => setImmediate(r));

export class Collector implements CollectorSource {
  private stateValue: CollectorState = CollectorState.STARTING;
  private readonly sys: BpfSys;
  private readonly obj: LoadedObject;
  private readonly attachment: Attachment;
  private readonly log: Logger;
  private readonly windowMs: number;
  private readonly ports: number[];
  private readonly computer: WindowComputer;
  private readonly flowsReader: MapReader;
  private readonly statsFd: number;
  private readonly cpus = possibleCpus();
  private readonly writer: SnapshotWriter | null;
  private readonly metrics: CollectorMetrics | null;
  private readonly listeners = new Set<WindowListener>();
  private readonly progId: number;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private windowStart = Date.now();
  private readonly startedAt = Date.now();
  private seq = 0;
  private last: WindowSnapshot | null = null;
  private readFailing = false;
  private readonly errorTotals = { read: 0, decode: 0, write: 0, listener: 0 };
  private finalWindow: Promise<WindowSnapshot | null> | null = null;

  /** Use startCollector(); the constructor takes already loaded and attached resources. */
  constructor(args: { sys: BpfSys; obj: LoadedObject; attachment: Attachment; log: Logger; opts: CollectorOptions; ports: number[] }) {
    this.sys = args.sys;
    this.obj = args.obj;
    this.attachment = args.attachment;
    this.log = args.log;
    this.ports = args.ports;
    this.windowMs = Math.max(50, Math.round((args.opts.windowSec ?? DEFAULT_WINDOW_SEC) * 1000));
    this.computer = new WindowComputer({ maxFlowsPerWindow: args.opts.maxFlowsPerWindow, maxIndexesPerWindow: args.opts.maxIndexesPerWindow });
    const flows = args.obj.maps.get(MAP_FLOWS);
    const stats = args.obj.maps.get(MAP_STATS);
    if (!flows || !stats) throw new CollectorError(CollectorErrorCode.LAYOUT, 'object lacks the collector maps');
    this.flowsReader = new MapReader(args.sys, flows.fd, flows.spec.keySize, flows.spec.valueSize);
    this.statsFd = stats.fd;
    this.writer = args.opts.outDir
      ? new SnapshotWriter({ dir: args.opts.outDir, maxFiles: args.opts.maxFiles, maxAgeSec: args.opts.maxAgeSec, windowsPerFile: args.opts.windowsPerFile, fileAgeSec: args.opts.fileAgeSec }, args.log)
      : null;
    this.metrics = args.opts.registry ? new CollectorMetrics(args.opts.registry) : null;
    const prog = args.obj.programs.get(PROGRAM_NAME);
    this.progId = prog ? args.sys.objInfo(prog.fd, 256).readUInt32LE(4) : 0; // bpf_prog_info.id
  }

  get state(): CollectorState {
    return this.stateValue;
  }

  get attachInfo(): Attachment {
    return this.attachment;
  }

  get programId(): number {
    return this.progId;
  }

  /** @internal started by startCollector() */
  run(): void {
    this.stateValue = CollectorState.RUNNING;
    this.metrics?.setUp(true);
    this.windowStart = Date.now();
    this.schedule();
  }

  private schedule(): void {
    if (this.stateValue !== CollectorState.RUNNING) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.enqueue(false).finally(() => this.schedule());
    }, this.windowMs);
    this.timer.unref?.();
  }

  /** Serialises window closes (timer, flush, stop) so two reads never interleave. */
  private enqueue(final: boolean): Promise<WindowSnapshot | null> {
    const p = this.chain.then(() => this.closeWindow(final));
    this.chain = p.catch(() => undefined);
    return p;
  }

  private source(): SourceInfo {
    return {
      iface: this.attachment.iface,
      ifindex: this.attachment.ifindex,
      hooks: [...this.attachment.hooks],
      attach_mode: this.attachment.mode,
      watched_ports: [...this.ports],
      pid: process.pid,
    };
  }

  private async closeWindow(final: boolean): Promise<WindowSnapshot | null> {
    const t0 = performance.now();
    const endedAt = Date.now();
    this.computer.begin();
    let complete = true;
    let readErrors = 0;
    let stats: number[] | null = null;
    try {
      await this.flowsReader.read((k, v, n) => this.computer.addFlows(k, v, n), pause);
      stats = readPercpuU64(this.sys, this.statsFd, STAT_SLOTS, this.cpus);
      if (this.readFailing) {
        this.readFailing = false;
        this.log.info('collector map reads recovered');
      }
    } catch (e) {
      complete = false;
      readErrors++;
      if (!this.readFailing) {
        this.readFailing = true;
        this.log.warn({ err: (e as Error).message, code: 'LPGW_COLLECTOR_READ_FAILED' }, 'collector map read failed; the collector keeps running');
      }
    }
    const readSeconds = (performance.now() - t0) / 1000;
    let snap: WindowSnapshot;
    try {
      snap = this.computer.finish({
        seq: ++this.seq,
        startedAt: this.windowStart,
        endedAt,
        final,
        source: this.source(),
        flowsCapacity: this.obj.maps.get(MAP_FLOWS)?.spec.maxEntries ?? 0,
        kernelStats: stats,
        errors: { read: readErrors, write: this.writer?.takeErrors() ?? 0 },
        complete,
      });
    } catch (e) {
      this.errorTotals.decode++;
      this.metrics?.error('decode');
      this.log.warn({ err: (e as Error).message }, 'collector window computation failed');
      this.windowStart = endedAt;
      return null;
    }
    this.windowStart = endedAt;
    this.last = snap;
    this.errorTotals.read += snap.errors.read;
    this.errorTotals.decode += snap.errors.decode;
    if (this.writer && !this.writer.write(snap)) {
      this.errorTotals.write++;
      this.metrics?.error('write');
    }
    try {
      this.metrics?.observe(snap, readSeconds);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'collector metrics update failed');
    }
    for (const l of this.listeners) {
      try {
        l(snap);
      } catch (e) {
        this.errorTotals.listener++;
        this.metrics?.error('listener');
        this.log.warn({ err: (e as Error).message }, 'collector window listener failed');
      }
    }
    this.log.debug({ seq: snap.seq, flows: snap.totals.flows_active, read_ms: Math.round(readSeconds * 1000) }, 'collector window');
    return snap;
  }

  /** Closes the current window now (tests, on-demand reads). */
  flush(): Promise<WindowSnapshot | null> {
    if (this.stateValue !== CollectorState.RUNNING) return Promise.resolve(this.last);
    return this.enqueue(false);
  }

  latest(): WindowSnapshot | null {
    return this.last;
  }

  onWindow(listener: WindowListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): CollectorStatus {
    return {
      state: this.stateValue,
      iface: this.attachment.iface,
      ifindex: this.attachment.ifindex,
      attach_mode: this.attachment.mode,
      hooks: [...this.attachment.hooks],
      watched_ports: [...this.ports],
      window_sec: this.windowMs / 1000,
      started_at: new Date(this.startedAt).toISOString(),
      windows: this.seq,
      last_window_at: this.last?.ended_at ?? null,
      flows_capacity: this.obj.maps.get(MAP_FLOWS)?.spec.maxEntries ?? null,
      link_ids: [...this.attachment.linkIds],
      prog_id: this.progId || null,
      out_file: this.writer?.currentFile ?? null,
      errors: { ...this.errorTotals },
    };
  }

  /** Final window, then detach and close everything. Idempotent; resolves with the final window. */
  stop(): Promise<WindowSnapshot | null> {
    if (this.finalWindow) return this.finalWindow;
    this.stateValue = CollectorState.STOPPING;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.finalWindow = this.enqueue(true)
      .catch(() => null)
      .finally(() => {
        this.release();
      });
    return this.finalWindow;
  }

  /** Detaches and closes fds synchronously (also usable from an 'exit' handler). */
  release(): void {
    if (this.stateValue === CollectorState.STOPPED) return;
    try {
      this.attachment.detach();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'collector detach failed');
    }
    this.obj.close();
    this.writer?.close();
    this.metrics?.setUp(false);
    this.stateValue = CollectorState.STOPPED;
    this.log.info({ iface: this.attachment.iface, windows: this.seq }, 'collector detached');
  }
}

/**
 * Starts the collector. Returns null — after logging exactly one line — when this process may not use
 * bpf() (not root, no CAP_BPF+CAP_NET_ADMIN) or the platform has no bpf() at all. Other failures (unknown
 * interface, an object rejected by the safety check or the verifier) throw a CollectorError.
 */
export async function startCollector(opts: CollectorOptions, log: Logger): Promise<Collector | null> {
  const ports = validPorts(opts.ports ?? DEFAULT_PORTS);
  const iface = opts.iface ?? DEFAULT_IFACE;
  let sys: BpfSys;
  try {
    sys = await BpfSys.open();
  } catch (e) {
    if (e instanceof CollectorError && e.code === CollectorErrorCode.UNAVAILABLE) {
      log.warn({ code: e.code, reason: e.message }, `flow collector disabled: ${e.message}`);
      return null;
    }
    throw e;
  }
  // Privilege probe: a 1-entry ARRAY map. EPERM here is the common "not root" case.
  try {
    sys.close(sys.mapCreate({ type: MapType.ARRAY, keySize: 4, valueSize: 4, maxEntries: 1, flags: 0, name: 'lpgw_probe' }));
  } catch (e) {
    if (e instanceof CollectorError && (e.code === CollectorErrorCode.NOT_PERMITTED || e.errno === Errno.EPERM)) {
      log.warn({ code: CollectorErrorCode.NOT_PERMITTED }, NOT_PERMITTED_MESSAGE);
      return null;
    }
    throw e;
  }

  if (sys.ifNameToIndex(iface) === 0) throw new CollectorError(CollectorErrorCode.NO_SUCH_IFACE, `no interface '${iface}' in this network namespace`);

  let obj: LoadedObject | null = null;
  let attachment: Attachment | null = null;
  try {
    obj = loadObjectFile(sys, opts.objectPath ?? DEFAULT_OBJECT_PATH, {
      strict: opts.strict ?? true,
      maxEntries: { [MAP_FLOWS]: opts.maxFlows ?? DEFAULT_MAX_FLOWS },
    });
    for (const [name, want] of Object.entries(EXPECTED_MAPS)) {
      const m = obj.maps.get(name);
      if (!m || m.spec.keySize !== want.keySize || m.spec.valueSize !== want.valueSize) {
        throw new CollectorError(CollectorErrorCode.LAYOUT, `map ${name} does not match src/collector/layout.ts (rebuild the object or update the layout)`);
      }
    }
    const portsMap = obj.maps.get(MAP_PORTS);
    const configMap = obj.maps.get(MAP_CONFIG);
    const prog = obj.programs.get(PROGRAM_NAME);
    if (!portsMap || !configMap || !prog) throw new CollectorError(CollectorErrorCode.LAYOUT, `object lacks ${MAP_PORTS}, ${MAP_CONFIG} or program ${PROGRAM_NAME}`);
    // Watched-port bitmap: word port >> 5, bit port & 31.
    const words = new Map<number, number>();
    for (const p of ports) words.set(p >>> 5, ((words.get(p >>> 5) ?? 0) | (1 << (p & 31))) >>> 0);
    for (const [word, bits] of words) {
      const k = Buffer.alloc(4);
      const v = Buffer.alloc(4);
      k.writeUInt32LE(word, 0);
      v.writeUInt32LE(bits, 0);
      sys.mapUpdate(portsMap.fd, k, v);
    }
    let l2 = l2HeaderLen(iface);
    if (l2 === null) {
      l2 = 14;
      log.warn({ iface }, 'collector: unknown device type, assuming a 14-byte Ethernet header for receiver_index reads');
    }
    const cfgKey = Buffer.alloc(4);
    const cfgVal = Buffer.alloc(4);
    cfgKey.writeUInt32LE(ConfigSlot.L2_LEN, 0);
    cfgVal.writeUInt32LE(l2, 0);
    sys.mapUpdate(configMap.fd, cfgKey, cfgVal);
    attachment = attachProgram(sys, prog.fd, { iface, hooks: opts.hooks, mode: opts.attachMode ?? AttachMode.AUTO });
    const c = new Collector({ sys, obj, attachment, log, opts, ports });
    c.run();
    log.info(
      {
        iface,
        ifindex: attachment.ifindex,
        attach_mode: attachment.mode,
        hooks: attachment.hooks,
        ports,
        link_ids: attachment.linkIds,
        prog_id: c.programId,
        stale_filters_removed: attachment.staleRemoved,
        window_sec: opts.windowSec ?? DEFAULT_WINDOW_SEC,
        out_dir: opts.outDir ?? null,
      },
      'collector attached',
    );
    return c;
  } catch (e) {
    attachment?.detach();
    obj?.close();
    // CAP_BPF without CAP_NET_ADMIN gets this far and fails at attach: same single line.
    if (e instanceof CollectorError && e.code === CollectorErrorCode.NOT_PERMITTED) {
      log.warn({ code: CollectorErrorCode.NOT_PERMITTED, reason: e.message }, NOT_PERMITTED_MESSAGE);
      return null;
    }
    throw e;
  }
}
