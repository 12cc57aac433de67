/**
 * gateway-probe load against one real gateway: the probe's counts agree with the gateway's own /metrics
 * counters (handshakes completed, registrations succeeded) within 1 %, and the report is written.
 *
 * The acceptance run is 30 s; here the duration is a parameter set to LOAD_SECONDS (5 s) to keep the
 * suite fast — the counting logic does not depend on the duration.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type GatewayProcess, scrape, startGatewayProcess, stopAll } from '../helpers/gateway-process.js';
import { descriptorOf, probeLoad, resignedDescriptor, serveDescriptor } from './probe-helpers.js';

const LOAD_SECONDS = Number(process.env.PROBE_LOAD_SECONDS ?? 5);

function within1Percent(probe: number, gateway: number, what: string): void {
  assert.ok(gateway > 0, `${what}: the gateway counted nothing`);
  assert.ok(Math.abs(probe - gateway) <= gateway * 0.01, `${what}: probe ${probe} vs gateway ${gateway}`);
}

describe('gateway-probe load (real gateway)', () => {
  let g: GatewayProcess;

  before(async () => {
    // One source address drives all the load: lift the per-source ClientHello limit (default 20/s).
    g = await startGatewayProcess(['--mock-ecash'], { env: { LPGW_LP_HELLO_RATE_PER_SEC: '100000', LPGW_LP_HELLO_BURST: '100000' } });
  });
  after(stopAll);

  test(`${LOAD_SECONDS} s of concurrent handshakes + registrations agree with the gateway's /metrics`, async () => {
    const before = await scrape(g.http);
    const r = await probeLoad(['--entry', g.http, '--concurrency', '8', '--duration', String(LOAD_SECONDS), '--register', '-v']);
    const afterM = await scrape(g.http);
    const delta = (k: string): number => (afterM.get(k) ?? 0) - (before.get(k) ?? 0);

    assert.equal(r.code, 0, r.stderr);
    const rep = r.report;
    assert.equal(rep.failures, 0, JSON.stringify(rep.errors_by_code));
    assert.equal(rep.abandoned, 0);
    assert.equal(rep.attempts, rep.successes + rep.failures + rep.abandoned);
    assert.ok(rep.successes > LOAD_SECONDS * 5, `only ${rep.successes} attempts succeeded`);
    assert.ok(rep.elapsed_s >= LOAD_SECONDS && rep.elapsed_s < LOAD_SECONDS + 10, `elapsed ${rep.elapsed_s} s`);
    assert.ok(rep.rate_per_sec > 0);
    const lat = rep.latency_ms;
    assert.ok(lat && lat.p50 <= lat.p90 && lat.p90 <= lat.p99 && lat.p99 <= lat.max && lat.count === rep.successes);
    within1Percent(rep.handshakes.completed, delta('lp_handshakes_total{result="completed"}'), 'handshakes');
    within1Percent(rep.registrations.completed, delta('lp_registrations_total{mode="dvpn",result="success"}'), 'registrations');
    // not a TTY: with -v, plain progress lines (one per second) and the summary
    assert.ok((r.stderr.match(/^\[\s*\d+s\/\d+s\] attempts/gm) ?? []).length >= LOAD_SECONDS - 1, r.stderr);
    assert.match(r.stderr, /gateway-probe load: PASS/);
  });

  test('--rate paces attempts with a token bucket', async () => {
    const r = await probeLoad(['--entry', g.http, '--concurrency', '4', '--duration', '2', '--rate', '10', '-q']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', '-q prints nothing on stderr');
    assert.equal(r.report.rate_limit_per_sec, 10);
    // burst 1 at 10/s for 2 s: at most 20 attempts (the first at t=0); fewer only on a very slow machine
    assert.ok(r.report.attempts >= 10 && r.report.attempts <= 21, `attempts ${r.report.attempts}`);
  });

  test('attempts still in flight at the drain cap are abandoned, and the load still ends on time', async () => {
    // a descriptor signed by the gateway's identity whose LP address accepts connections and never answers
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => {
      sockets.push(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const srv = await serveDescriptor(resignedDescriptor(g.dataDir, await descriptorOf(g.http), { lpTcp: `127.0.0.1:${(silent.address() as net.AddressInfo).port}` }));
    try {
      const r = await probeLoad(['--entry', srv.url, '--concurrency', '3', '--duration', '1', '--drain', '1', '--transport', 'tcp-stream']);
      assert.equal(r.code, 1);
      assert.deepEqual({ attempts: r.report.attempts, abandoned: r.report.abandoned, successes: r.report.successes, failures: r.report.failures }, { attempts: 3, abandoned: 3, successes: 0, failures: 0 });
      assert.ok(r.report.elapsed_s >= 2 && r.report.elapsed_s < 3, `elapsed ${r.report.elapsed_s}`);
      assert.ok(r.ms < 8000, `the process lived ${r.ms} ms`);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
      await srv.close();
    }
  });
});
