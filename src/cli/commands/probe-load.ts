/** `gateway-probe load`: concurrent handshakes/registrations for a while, then one JSON report (probe/load.ts). */
import { parseArgs } from 'node:util';
// Only what --help needs is imported statically; the rest loads in run() (a command's --help loads nothing else).
import { DEFAULT_DRAIN_MS } from '../../../probe/defaults.js';
import type { Command } from '../command.js';
import { COMMON_OPTIONS, intOption, positiveOption, printJson, secondsOption, TRUST_HELP } from './probe-options.js';

const MAX_CONCURRENCY = 10_000;

export const probeLoadCommand: Command = {
  path: ['load'],
  summary: 'drive many concurrent handshakes/registrations and report rate, latency and errors',
  help: `Usage: gateway-probe load --entry URL [--exit URL] TRUST [--concurrency N] [--duration S]
                          [--rate R] [--register] [options]

Runs attempts from N concurrent workers for S seconds, then waits for the ones in
flight (at most --drain seconds) and prints one JSON report on stdout. One attempt
is: a fresh transport and client key, a handshake with the entry, with --register
a registration, and with --exit a telescoped handshake with the exit through the
entry (plus a registration with the exit when --register is given).

While it runs, a progress line on stderr is rewritten once per second when stderr
is a terminal; otherwise plain progress lines are printed only with -v. A summary
follows at the end. Exit status: 0 when the load ran and every attempt succeeded,
1 otherwise (setup failure, failed or abandoned attempts), 2 for a usage error.

${TRUST_HELP}

Options:
  --entry URL          HTTP API of the entry gateway (required), e.g.
                       http://127.0.0.1:8080
  --exit URL           telescope every attempt through the entry to this exit
  --concurrency N      concurrent workers, 1..${MAX_CONCURRENCY} (default 10)
  --duration S         seconds to start attempts for (default 30)
  --rate R             start at most R attempts per second in total (token
                       bucket, burst 1; default: no limit)
  --register           register after each handshake (entry, and exit with --exit)
  --transport T        tcp | tcp-stream | udp (default tcp), as for 'run'
  --mode M             dvpn | mixnet (default dvpn)
  --mock-ecash         mock credentials (the default without --ticket)
  --ticket FILE        take each ticket of the file once, in file order, for the
                       registrations of its type; when they run out, further
                       registrations fail with LPC_ERR_NO_MATCHING_TICKET
  --drain S            cap on waiting for in-flight attempts after the duration
                       (default ${DEFAULT_DRAIN_MS / 1000}); attempts still running then are
                       'abandoned'
  -v, --verbose        plain progress lines on stderr when it is not a terminal
  --compact            print the report on one line (default: indented JSON)
  -q, --quiet          no progress and no summary on stderr
  -h, --help           show this help

Advanced:
  --source-address IP  bind the LP sockets to this local address

Note: gateways limit ClientHellos per source IP (lp.hello_rate_per_sec, default
20/s, burst 5) and answer Busy beyond that; the client waits and retries, which
shows up as latency. Raise the limit on a gateway under test to measure more.

Report: { entry, exit, transport, mode, credential, register, telescoped,
          concurrency, rate_limit_per_sec, duration_s, drain_cap_s, elapsed_s,
          attempts, successes, failures, abandoned, rate_per_sec,
          attempts_per_sec, handshakes: {completed, telescoped_completed},
          registrations: {completed, telescoped_completed},
          latency_ms, handshake_latency_ms, register_latency_ms,
          telescoped_handshake_latency_ms   (each {count, mean, p50, p90, p99,
                                             max} in ms, or null),
          errors_by_code: {CODE: count}, error, passed, source_address,
          version, started_at }

Example:
  gateway-probe load --entry http://127.0.0.1:8080 --concurrency 32 --duration 30 --register
`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...COMMON_OPTIONS,
        concurrency: { type: 'string', default: '10' },
        duration: { type: 'string', default: '30' },
        rate: { type: 'string' },
        register: { type: 'boolean', default: false },
        drain: { type: 'string', default: String(DEFAULT_DRAIN_MS / 1000) },
        verbose: { type: 'boolean', short: 'v', default: false },
        quiet: { type: 'boolean', short: 'q', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    const [{ commonOptions }, { runLoad }, { loadSummary, progressLine }] = await Promise.all([import('./probe-common.js'), import('../../../probe/load.js'), import('../../../probe/summary.js')]);
    const common = commonOptions(values, true);
    const concurrency = intOption('--concurrency', values.concurrency, 1, MAX_CONCURRENCY);
    const durationMs = secondsOption('--duration', values.duration, 86_400);
    const drainMs = secondsOption('--drain', values.drain, 3600);
    const ratePerSec = values.rate === undefined ? null : positiveOption('--rate', values.rate, 1_000_000, 'a rate per second');
    const tty = process.stderr.isTTY === true;
    const progress = values.quiet ? null : tty ? (line: string) => process.stderr.write(`\r${line}\x1b[K`) : values.verbose ? (line: string) => process.stderr.write(`${line}\n`) : null;
    const report = await runLoad({
      ...common,
      register: values.register,
      concurrency,
      durationMs,
      ratePerSec,
      drainMs,
      ...(progress ? { onProgress: (s) => progress(progressLine(s)) } : {}),
    });
    if (progress && tty) process.stderr.write('\n');
    printJson(report, values.compact);
    if (!values.quiet) process.stderr.write(loadSummary(report));
    return report.passed ? 0 : 1;
  },
};
