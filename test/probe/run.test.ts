/**
 * gateway-probe run against real gateway processes on loopback: direct, telescoped (entry → exit) with
 * rekey over tcp, tcp-stream and udp, and the probe's LP traffic bound to 127.0.0.3 so that the exit's
 * own `/v1/stats` shows it only ever saw the entry (127.0.0.1), never the probe.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type GatewayProcess, startGatewayProcess, stopAll } from '../helpers/gateway-process.js';
import { probeLoad, probeRun, recentSources, runCli } from './probe-helpers.js';

const PROBE_SOURCE = '127.0.0.3';
/**
 * The probes below run in parallel from one source address: lift the per-source ClientHello limit. The test
 * reads who each gateway saw from /v1/stats, which lists client addresses only when turned on.
 */
const env = { LPGW_LP_HELLO_RATE_PER_SEC: '1000', LPGW_LP_HELLO_BURST: '1000', LPGW_HTTP_STATS_CLIENT_ADDRESSES: 'true' };

describe('gateway-probe run (real gateways)', () => {
  let exit: GatewayProcess;
  let entry: GatewayProcess;

  before(async () => {
    exit = await startGatewayProcess(['--mock-ecash'], { env });
    entry = await startGatewayProcess(['--mock-ecash', '--peer', exit.pinned], { env });
  });
  after(stopAll);

  test('direct, telescoped + rekey on tcp / tcp-stream / udp, mixnet; the exit only sees the entry', async () => {
    const [direct, tcp, stream, udp, mixnet] = await Promise.all([
      probeRun(['--entry', entry.http]),
      probeRun(['--entry', entry.http, '--exit', exit.http, '--rekey', '--source-address', PROBE_SOURCE]),
      probeRun(['--entry', entry.http, '--exit', exit.http, '--rekey', '--transport', 'tcp-stream', '--source-address', PROBE_SOURCE]),
      probeRun(['--entry', entry.http, '--exit', exit.http, '--rekey', '--transport', 'udp', '--source-address', PROBE_SOURCE, '--mock-ecash']),
      probeRun(['--entry', entry.http, '--mode', 'mixnet', '--transport', 'tcp-stream']),
    ]);

    // direct: every LP check true, exit status 0, the PRODUCT.md §3 shape
    const d = direct.report;
    assert.equal(direct.code, 0, direct.stderr);
    assert.deepEqual({ ...d.outcome.lp, registration: null }, { can_connect: true, can_handshake: true, can_register: true, error: null, registration: null });
    assert.equal(d.outcome.lp.registration?.ticket_type, 'wireguard-entry');
    assert.match(d.outcome.lp.registration?.private_ipv4 ?? '', /^10\.1\.\d+\.\d+$/);
    assert.equal(d.exit, null);
    assert.equal(d.outcome.telescoping, null);
    assert.equal(d.outcome.rekey, null);
    assert.equal(d.entry.identity, (await (await fetch(`${entry.http}/v1/gateway`)).json() as { identity_key: string }).identity_key);
    assert.equal(d.entry.lp_tcp, entry.lpTcp);
    assert.equal(d.transport, 'tcp');
    assert.equal(d.credential, 'mock');
    assert.equal(d.passed, true);
    assert.equal(typeof d.version, 'string');
    for (const k of ['descriptor', 'connect', 'handshake', 'register', 'total'] as const) assert.ok((d.timings_ms[k] ?? -1) >= 0, `timings_ms.${k}`);
    assert.match(direct.stderr, /PASS/);
    assert.match(direct.stderr, /credential: mock \(neither --mock-ecash nor --ticket given/);

    // telescoped with rekey, on each transport
    for (const [name, r] of [['tcp', tcp], ['tcp-stream', stream], ['udp', udp]] as const) {
      const o = r.report.outcome;
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.equal(r.report.transport, name);
      assert.ok(o.lp.can_connect && o.lp.can_handshake && o.lp.can_register, name);
      assert.equal(o.telescoping?.can_handshake, true, name);
      assert.equal(o.telescoping?.can_register, true, name);
      assert.equal(o.telescoping?.registration?.ticket_type, 'wireguard-exit');
      assert.equal(o.rekey?.can_rekey, true, name);
      assert.notEqual(o.rekey?.new_index, o.rekey?.old_index);
      assert.equal(o.telescoping_rekey?.can_rekey, true, name);
      assert.equal(r.report.exit?.lp_tcp, exit.lpTcp);
      assert.equal(r.report.source_address, PROBE_SOURCE);
      assert.ok((r.report.timings_ms.telescoped_handshake ?? -1) >= 0 && (r.report.timings_ms.telescoped_rekey ?? -1) >= 0, name);
    }
    assert.equal(udp.report.timings_ms.connect, null, 'UDP has no connect step');
    assert.equal(udp.report.credential, 'mock');
    assert.match(udp.stderr, /credential: mock \(--mock-ecash\)/);

    // mixnet mode registers a client id with a mixnet-entry ticket type
    assert.equal(mixnet.code, 0, mixnet.stderr);
    assert.equal(mixnet.report.outcome.lp.registration?.ticket_type, 'mixnet-entry');
    assert.equal(mixnet.report.outcome.lp.registration?.private_ipv4, null);

    // The exit saw only the entry's address; the entry saw the probe's.
    const atExit = await recentSources(exit.http);
    assert.ok(atExit.length > 0, 'the exit saw the forwarded traffic');
    assert.deepEqual([...new Set(atExit.map((s) => s.address))], ['127.0.0.1'], JSON.stringify(atExit));
    assert.ok(!atExit.some((s) => s.address === PROBE_SOURCE));
    const atEntry = await recentSources(entry.http);
    assert.ok(atEntry.some((s) => s.address === PROBE_SOURCE && s.transport === 'tcp'), JSON.stringify(atEntry));
    assert.ok(atEntry.some((s) => s.address === PROBE_SOURCE && s.transport === 'udp'), JSON.stringify(atEntry));
  });

  test('load through the entry to the exit, with registrations', async () => {
    const r = await probeLoad(['--entry', entry.http, '--exit', exit.http, '--register', '--concurrency', '4', '--duration', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.report.telescoped, true);
    assert.ok(r.report.successes > 0);
    assert.equal(r.report.failures, 0);
    assert.equal(r.report.handshakes.telescoped_completed, r.report.successes);
    assert.equal(r.report.registrations.telescoped_completed, r.report.successes);
    assert.ok(r.report.telescoped_handshake_latency_ms !== null);
  });

  test('--help explains every option; bad usage exits 2', async () => {
    const [runHelp, loadHelp, overview, noEntry, both, badTransport, badTimeout] = await Promise.all([
      runCli(['run', '--help']),
      runCli(['load', '--help']),
      runCli(['--help']),
      runCli(['run']),
      runCli(['run', '--entry', entry.http, '--mock-ecash', '--ticket', '/nonexistent']),
      runCli(['run', '--entry', entry.http, '--transport', 'quic']),
      runCli(['run', '--entry', entry.http, '--timeout', '-1']),
    ]);
    assert.equal(runHelp.code, 0);
    for (const opt of ['--entry', '--exit', '--transport', '--mode', '--mock-ecash', '--ticket', '--rekey', '--timeout', '--compact', '--quiet', '--source-address', 'Example']) assert.ok(runHelp.stdout.includes(opt), `run --help mentions ${opt}`);
    assert.equal(loadHelp.code, 0);
    for (const opt of ['--entry', '--exit', '--concurrency', '--duration', '--rate', '--register', '--transport', '--drain', '--verbose', '--ticket', 'Example']) assert.ok(loadHelp.stdout.includes(opt), `load --help mentions ${opt}`);
    assert.equal(overview.code, 0);
    assert.match(overview.stdout, /run .*\n.*load/s);
    for (const r of [noEntry, both, badTransport, badTimeout]) {
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
    }
    assert.match(noEntry.stderr, /--entry URL is required/);
    assert.match(both.stderr, /exclude each other/);
  });
});
