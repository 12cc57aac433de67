/**
 * `lp-gateway collect`: runs the eBPF traffic collector on its own (no gateway), writing window snapshots
 * and optionally serving the collector routes + /metrics. Without privileges it logs the one
 * "flow collector disabled" line and exits 1: collecting is this command's only job.
 */
import { parseArgs } from 'node:util';
import { type Command, UsageError } from '../command.js';
import { AttachMode } from '../../collector/attach-mode.js';
import {
  DEFAULT_IFACE,
  DEFAULT_MAX_AGE_SEC,
  DEFAULT_MAX_FILES,
  DEFAULT_MAX_FLOWS,
  DEFAULT_PORTS,
  DEFAULT_WINDOW_SEC,
  DEFAULT_WINDOWS_PER_FILE,
} from '../../collector/defaults.js';

const HELP = `Usage: lp-gateway collect [options]

Attach the eBPF traffic collector to an interface and record per-window packet/byte counts per flow and per
LP receiver_index (docs/COLLECTOR.md). Needs root, or CAP_BPF + CAP_NET_ADMIN. Runs until SIGINT/SIGTERM
(or --duration-sec), then writes a final window and detaches; nothing stays attached after it exits.

Options:
  -p, --port PORT          watched TCP/UDP port; repeatable (default: ${DEFAULT_PORTS.join(', ')})
  -i, --iface NAME         interface in this network namespace (default: ${DEFAULT_IFACE}; on loopback only the
                           ingress hook is attached so each packet counts once)
      --out-dir DIR        NDJSON snapshot directory (default: data/collector; '' disables files)
      --window-sec N       window length in seconds (default: ${DEFAULT_WINDOW_SEC})
      --max-flows N        kernel flow map (LRU) capacity in entries, one per connection and receiver index (default: ${DEFAULT_MAX_FLOWS})
      --max-files N        keep at most N snapshot files (default: ${DEFAULT_MAX_FILES})
      --max-age DURATION   delete snapshot files older than this: seconds or 30m / 12h / 7d (default: ${DEFAULT_MAX_AGE_SEC}s)
      --windows-per-file N rotate the snapshot file after N windows (default: ${DEFAULT_WINDOWS_PER_FILE})
      --duration-sec N     stop after N seconds (default: run until a signal)
      --http HOST:PORT     also serve GET /v1/collector/windows/latest, GET /v1/collector/status,
                           WS /v1/collector/stream and GET /metrics on this address
      --attach MODE        auto (TCX, clsact fallback on kernels < 6.6), tcx or clsact (default: auto)
  -v, --verbose            debug logging (one line per window)
  -h, --help               this help

Exit status: 0 after a clean stop; 1 when the collector cannot run (no privileges, unknown interface,
object rejected); 2 for bad usage.
`;

function positiveInt(name: string, v: string | undefined, def: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in ${min}..${max}, got '${v}'`);
  return n;
}

function positiveNumber(name: string, v: string | undefined, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number, got '${v}'`);
  return n;
}

/** "3600", "90s", "30m", "12h", "7d" → seconds */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(v.trim());
  if (!m) throw new UsageError(`--max-age must look like 3600, 30m, 12h or 7d, got '${v}'`);
  const mult = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  const n = Number(m[1]) * mult;
  if (n <= 0) throw new UsageError('--max-age must be positive');
  return n;
}

function hostPort(v: string): { host: string; port: number } {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(v);
  if (!m || m[1] === undefined || m[2] === undefined) throw new UsageError(`--http must be HOST:PORT, got '${v}'`);
  return { host: m[1] || '127.0.0.1', port: positiveInt('http', m[2], 0, 0, 65535) };
}

function attachMode(v: string | undefined): AttachMode {
  if (v === undefined) return AttachMode.AUTO;
  const modes = Object.values(AttachMode) as string[];
  if (!modes.includes(v)) throw new UsageError(`--attach must be one of ${modes.join(', ')}`);
  return v as AttachMode;
}

export const collectCommand: Command = {
  path: ['collect'],
  summary: 'run the eBPF traffic collector on an interface (root or CAP_BPF+CAP_NET_ADMIN)',
  help: HELP,
  async run(argv: string[]): Promise<number> {
    const { values } = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        port: { type: 'string', short: 'p', multiple: true },
        iface: { type: 'string', short: 'i' },
        'out-dir': { type: 'string' },
        'window-sec': { type: 'string' },
        'max-flows': { type: 'string' },
        'max-files': { type: 'string' },
        'max-age': { type: 'string' },
        'windows-per-file': { type: 'string' },
        'duration-sec': { type: 'string' },
        http: { type: 'string' },
        attach: { type: 'string' },
        verbose: { type: 'boolean', short: 'v' },
      },
    });
    const ports = (values.port ?? []).map((p) => positiveInt('port', p, 0, 1, 65535));
    const opts = {
      iface: values.iface ?? DEFAULT_IFACE,
      ports: ports.length > 0 ? ports : DEFAULT_PORTS,
      outDir: values['out-dir'] === undefined ? 'data/collector' : values['out-dir'] || null,
      windowSec: positiveNumber('window-sec', values['window-sec'], DEFAULT_WINDOW_SEC),
      maxFlows: positiveInt('max-flows', values['max-flows'], DEFAULT_MAX_FLOWS, 16, 1 << 24),
      maxFiles: positiveInt('max-files', values['max-files'], DEFAULT_MAX_FILES),
      maxAgeSec: values['max-age'] === undefined ? DEFAULT_MAX_AGE_SEC : parseDuration(values['max-age']),
      windowsPerFile: positiveInt('windows-per-file', values['windows-per-file'], DEFAULT_WINDOWS_PER_FILE),
      attachMode: attachMode(values.attach),
    };
    const durationSec = values['duration-sec'] === undefined ? 0 : positiveNumber('duration-sec', values['duration-sec'], 0);
    const http = values.http === undefined ? null : hostPort(values.http);
    // Loaded here, not at the top: every lp-gateway command imports this file to build the command list.
    const [{ createLogger }, { Registry }, { CollectorError, registerCollectorRoutes, startCollector }, { rejectUnclaimedUpgrades }] = await Promise.all([
      import('../../log.js'),
      import('prom-client'),
      import('../../collector/index.js'),
      import('../../net/http-server.js'),
    ]);
    const log = createLogger({ level: values.verbose ? 'debug' : 'info' }).child({ component: 'collector' });
    const registry = new Registry();

    // Signal handlers go in before the collector starts: a SIGTERM that arrives while it attaches must still
    // end in a clean stop (final window, detach), not in the default kill.
    let timer: NodeJS.Timeout | null = null;
    // signal listeners do not keep the event loop alive and the collector's timer is unref'd (library use
    // must not hold a process open): hold it open here until a signal or the duration ends
    const keepAlive = setInterval(() => undefined, 1 << 30);
    let onSignal: (s: NodeJS.Signals) => void = () => undefined;
    const stopRequested = new Promise<string>((resolve) => {
      onSignal = (s) => resolve(s);
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      if (durationSec > 0) timer = setTimeout(() => resolve('duration'), durationSec * 1000);
    });
    const cleanupSignals = (): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (timer) clearTimeout(timer);
      clearInterval(keepAlive);
    };

    let collector;
    try {
      collector = await startCollector({ ...opts, registry }, log);
    } catch (e) {
      cleanupSignals();
      if (e instanceof CollectorError) {
        log.error({ code: e.code, errno: e.errno }, `collector failed to start: ${e.message}`);
        return 1;
      }
      throw e;
    }
    if (!collector) {
      cleanupSignals();
      return 1; // startCollector logged the one line
    }
    const c = collector;
    // clsact mode leaves filters behind if the process dies between here and stop(); detach on any exit
    // path we still get to run (uncaught exception, process.exit). TCX links vanish with the process anyway.
    const onExit = (): void => c.release();
    process.on('exit', onExit);

    let app: import('fastify').FastifyInstance | null = null;
    if (http) {
      const { default: Fastify } = await import('fastify');
      app = Fastify({ logger: false });
      registerCollectorRoutes(app, c);
      rejectUnclaimedUpgrades(app.server);
      app.get('/metrics', async (_req, reply) => reply.header('content-type', registry.contentType).send(await registry.metrics()));
      try {
        const addr = await app.listen({ host: http.host, port: http.port });
        log.info({ http: addr }, 'collector routes listening');
      } catch (e) {
        log.error({ err: (e as Error).message }, 'collector --http listen failed');
        cleanupSignals();
        await c.stop();
        process.off('exit', onExit);
        return 1;
      }
    }

    const reason = await stopRequested;
    cleanupSignals();
    log.info({ reason }, 'collector stopping');
    const outFile = c.status().out_file;
    const last = await c.stop();
    if (app) await app.close();
    process.off('exit', onExit);
    log.info({ final_seq: last?.seq ?? null, out_file: outFile }, 'collector stopped');
    return 0;
  },
};
