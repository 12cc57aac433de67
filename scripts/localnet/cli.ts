/**
 * `npm run localnet:<command>` → `node --import tsx scripts/localnet/cli.ts <command> [options]`.
 * Exit status: 0 success, 1 failure (or `status`: degraded), 2 usage, 3 `status`: down.
 */
import { parseArgs } from 'node:util';
import { LocalnetError, consoleIo, down, evidenceLines, formatStatus, logs, probe, status, summaryLine, up } from './localnet.js';
import { PROBE_TRANSPORTS, type ProbeTransport } from './topology.js';

const USAGE = `Usage: npm run localnet:<command> [-- options]   (node --import tsx scripts/localnet/cli.ts <command>)

  up                       namespaces lpgw-ln-{hub,entry,exit,probe,inet}, bridge, veths, addresses, the
                           exit's uplink to inet; starts the exit and the entry gateway (collectors attached,
                           managed WireGuard interfaces) and waits until they are healthy
  probe [--transport T]    gateway-probe (telescoped, --rekey, one- and two-hop WireGuard tunnels, echoes to
                           the inet host beyond the exit) from the probe namespace, tcp then udp (or the
                           given transports); prints the reports as JSON on stdout, summaries on stderr; exit 1
                           if any check failed or the collectors contradict the topology
  status [--json]          namespaces, processes, health, collectors, WireGuard interfaces; exit 0 up,
                           1 degraded, 3 down
  logs [entry|exit|probe] [-n N] [-f]
                           last N (default 100) lines of the logs in .localnet/logs; -f follows until Ctrl-C
  down                     stops everything, deletes the WireGuard interfaces (their wireguard-go exits), then
                           the namespaces, bridge, veths and state (keeps the logs); idempotent, also after a
                           crash or an interrupted up
All but logs and status need root.`;

function usage(msg: string): number {
  process.stderr.write(`localnet: ${msg}\n\n${USAGE}\n`);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const io = consoleIo;
  switch (cmd) {
    case 'up': {
      if (rest.length > 0) return usage(`up takes no arguments, got ${rest.join(' ')}`);
      await up(io);
      for (const l of formatStatus(await status())) io.out(l);
      return 0;
    }
    case 'probe': {
      const { values } = parseArgs({ args: rest, options: { transport: { type: 'string', multiple: true } }, strict: true, allowPositionals: false });
      const transports = values.transport ?? [...PROBE_TRANSPORTS];
      for (const t of transports) if (!(PROBE_TRANSPORTS as readonly string[]).includes(t)) return usage(`--transport must be one of ${PROBE_TRANSPORTS.join(', ')}, not '${t}'`);
      const r = await probe({ transports: transports as ProbeTransport[] }, io);
      io.out(JSON.stringify({ passed: r.passed, started_at: r.started_at, ended_at: r.ended_at, runs: r.runs.map(({ stderr: _stderr, ...x }) => x), collector: r.collector }, null, 2));
      io.log('--- summary');
      for (const run of r.runs) io.log(summaryLine(run));
      if (r.collector) for (const l of evidenceLines(r.collector)) io.log(l);
      io.log(`localnet probe: ${r.passed ? 'PASS' : 'FAIL'}`);
      return r.passed ? 0 : 1;
    }
    case 'status': {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean', default: false } }, strict: true, allowPositionals: false });
      const s = await status();
      if (values.json) io.out(JSON.stringify(s, null, 2));
      else for (const l of formatStatus(s)) io.out(l);
      return s.state === 'up' ? 0 : s.state === 'down' ? 3 : 1;
    }
    case 'logs': {
      const { values, positionals } = parseArgs({
        args: rest,
        options: { lines: { type: 'string', short: 'n', default: '100' }, follow: { type: 'boolean', short: 'f', default: false } },
        strict: true,
        allowPositionals: true,
      });
      if (positionals.length > 1) return usage('logs takes at most one name');
      const lines = Number(values.lines);
      if (!Number.isSafeInteger(lines) || lines < 1 || lines > 100_000) return usage(`-n must be an integer from 1 to 100000, not '${values.lines}'`);
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        return await logs({ ...(positionals[0] !== undefined ? { name: positionals[0] } : {}), lines, follow: values.follow, signal: ac.signal }, io);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    }
    case 'down': {
      if (rest.length > 0) return usage(`down takes no arguments, got ${rest.join(' ')}`);
      return down(io).clean ? 0 : 1;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return cmd === undefined ? 2 : 0;
    default:
      return usage(`unknown command '${cmd}'`);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  const code = (e as { code?: string }).code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) process.exitCode = usage((e as Error).message);
  else {
    process.stderr.write(`localnet: ${e instanceof LocalnetError ? e.message : ((e as Error).stack ?? String(e))}\n`);
    process.exitCode = 1;
  }
}
