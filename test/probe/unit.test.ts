/** gateway-probe building blocks without sockets: percentiles, token bucket, tickets, deadline, report, summary. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TicketType } from '../../src/core/codec/app.js';
import { generateIssuerKey, mintTicket } from '../../src/gateway/registration/tickets.js';
import { MockCredentials, TicketCredentials, registerRequest, ticketTypeFor } from '../../probe/credentials.js';
import { Deadline } from '../../probe/deadline.js';
import { TokenBucket, percentiles } from '../../probe/load.js';
import { type ProbeReport, errorInfo, reportPassed, skipped } from '../../probe/report.js';
import { httpBase } from '../../probe/steps.js';
import { progressLine, runSummary } from '../../probe/summary.js';
import { ClientError } from '../../src/client/index.js';
import { LpError } from '../../src/core/index.js';

describe('percentiles', () => {
  test('nearest rank over 1..100', () => {
    const p = percentiles(Array.from({ length: 100 }, (_, i) => 100 - i));
    assert.deepEqual(p, { count: 100, mean: 50.5, p50: 50, p90: 90, p99: 99, max: 100 });
  });
  test('one value, and none', () => {
    assert.deepEqual(percentiles([7.25]), { count: 1, mean: 7.3, p50: 7.3, p90: 7.3, p99: 7.3, max: 7.3 });
    assert.equal(percentiles([]), null);
  });
});

describe('TokenBucket', () => {
  test('burst, then one token per 1/rate seconds, reservations queue up', () => {
    const b = new TokenBucket(10, 2, 0);
    assert.equal(b.reserve(0), 0);
    assert.equal(b.reserve(0), 0);
    assert.equal(Math.round(b.reserve(0)), 100);
    assert.equal(Math.round(b.reserve(0)), 200);
    // after 1 s the debt (2 tokens) is paid and 8 more accrued, capped at the burst of 2
    assert.equal(b.reserve(1000), 0);
    assert.equal(b.reserve(1000), 0);
    assert.ok(b.reserve(1000) > 0);
  });
  test('refuses a non-positive rate', () => {
    assert.throws(() => new TokenBucket(0, 1, 0), RangeError);
  });
});

describe('credentials', () => {
  const issuer = generateIssuerKey();
  const mint = (ticketType: TicketType) => mintTicket(issuer, { ticketType, bandwidthBytes: 1000n, expiry: 4_000_000_000n });
  const exitT = mint(TicketType.V1WireguardExit);
  const entry1 = mint(TicketType.V1WireguardEntry);
  const entry2 = mint(TicketType.V1WireguardEntry);

  test('run: the first ticket of the matching type, every time', () => {
    const c = new TicketCredentials([exitT, entry1, entry2], false);
    const a = c.take(TicketType.V1WireguardEntry);
    const b = c.take(TicketType.V1WireguardEntry);
    assert.ok(a.kind === 'ticket' && b.kind === 'ticket' && a.ticket === entry1 && b.ticket === entry1);
    assert.throws(() => c.take(TicketType.V1MixnetEntry), (e: ClientError) => e.code === 'LPC_ERR_NO_MATCHING_TICKET' && /no mixnet-entry ticket/.test(e.message));
  });
  test('load: each ticket once, then used up', () => {
    const c = new TicketCredentials([exitT, entry1, entry2], true);
    const got = [c.take(TicketType.V1WireguardEntry), c.take(TicketType.V1WireguardEntry)];
    assert.deepEqual(
      got.map((x) => (x.kind === 'ticket' ? x.ticket : null)),
      [entry1, entry2],
    );
    assert.throws(() => c.take(TicketType.V1WireguardEntry), (e: ClientError) => e.code === 'LPC_ERR_NO_MATCHING_TICKET' && /used up/.test(e.message));
  });
  test('mock credential and request shapes', () => {
    assert.equal(new MockCredentials().take().kind, 'mock');
    assert.equal(ticketTypeFor('dvpn', 'entry'), TicketType.V1WireguardEntry);
    assert.equal(ticketTypeFor('dvpn', 'exit'), TicketType.V1WireguardExit);
    assert.equal(ticketTypeFor('mixnet', 'entry'), TicketType.V1MixnetEntry);
    assert.equal(ticketTypeFor('mixnet', 'exit'), TicketType.V1MixnetExit);
    const r1 = registerRequest('dvpn', new MockCredentials().take(), TicketType.V1WireguardEntry, 1000);
    const r2 = registerRequest('dvpn', new MockCredentials().take(), TicketType.V1WireguardEntry, 1000);
    assert.ok(r1.mode.kind === 'dvpn' && r2.mode.kind === 'dvpn');
    assert.notDeepEqual(r1.mode.wgPublicKey, r2.mode.wgPublicKey, 'a fresh WireGuard key per registration');
    assert.equal(r1.timestamp, 1000n);
    assert.equal(registerRequest('mixnet', new MockCredentials().take(), TicketType.V1MixnetEntry).mode.kind, 'mixnet');
  });
});

describe('Deadline', () => {
  test('no deadline: defaults pass through', async () => {
    const d = Deadline.after(null);
    assert.equal(d.clamp(15_000), 15_000);
    assert.equal(await d.race(Promise.resolve(3)), 3);
  });
  test('clamps to what is left, then refuses', async () => {
    const d = Deadline.after(50);
    assert.ok(d.clamp(15_000) <= 50);
    await new Promise((r) => setTimeout(r, 60));
    assert.throws(() => d.clamp(15_000), (e: ClientError) => e.code === 'LPC_ERR_RUN_TIMEOUT');
  });
  test('race: a step that never ends fails with LPC_ERR_RUN_TIMEOUT and is cleaned up', async () => {
    let cleaned = false;
    const d = Deadline.after(20);
    await assert.rejects(
      d.race(new Promise(() => undefined), () => (cleaned = true)),
      (e: ClientError) => e.code === 'LPC_ERR_RUN_TIMEOUT',
    );
    assert.ok(cleaned);
  });
});

function report(over: Partial<ProbeReport['outcome']> = {}): ProbeReport {
  const gw = { identity: 'ab'.repeat(32), lp_tcp: '127.0.0.1:41264', lp_udp: '127.0.0.1:51264', http: 'http://127.0.0.1:8080', software_version: '0.1.0', roles: ['entry', 'exit'], kem_key_hash: 'cd'.repeat(32), trusted_by: 'pinned' as const };
  const reg = { ticket_type: 'wireguard-entry', private_ipv4: '10.1.0.2', private_ipv6: 'fd00:1::2', wireguard_endpoint: '127.0.0.1:51820', allocated_bandwidth_bytes: '1073741824', deregistered: true };
  return {
    entry: gw,
    exit: { ...gw, http: 'http://127.0.0.1:8081' },
    outcome: {
      lp: { can_connect: true, can_handshake: true, can_register: true, error: null, registration: reg },
      telescoping: { can_handshake: true, can_register: true, error: null, registration: { ...reg, ticket_type: 'wireguard-exit' } },
      rekey: { can_rekey: true, old_index: 1, new_index: 2, error: null },
      telescoping_rekey: { can_rekey: true, old_index: 3, new_index: 4, error: null },
      wg: null,
      wg_exit: null,
      as_exit: null,
      ...over,
    },
    timings_ms: { descriptor: 3, connect: 0.4, handshake: 40, register: 5, telescoped_handshake: 50, telescoped_register: 6, rekey: 7, telescoped_rekey: 8, tunnel: null, telescoped_tunnel: null, total: 120 },
    transport: 'tcp',
    mode: 'dvpn',
    credential: 'mock',
    source_address: null,
    passed: true,
    version: '0.1.0',
    started_at: '2026-01-01T00:00:00.000Z',
  };
}

describe('report and summary', () => {
  test('passed only when every requested check passed', () => {
    assert.equal(reportPassed(report()), true);
    assert.equal(reportPassed(report({ telescoping: null, rekey: null, telescoping_rekey: null })), true);
    assert.equal(reportPassed(report({ telescoping_rekey: { can_rekey: false, old_index: null, new_index: null, error: skipped('x') } })), false);
    assert.equal(reportPassed(report({ lp: { can_connect: true, can_handshake: true, can_register: false, error: { code: 'LPGW_ERR_TICKET_SPENT', message: 'spent' }, registration: null } })), false);
  });

  test('errorInfo keeps the codes of coded errors', () => {
    assert.deepEqual(errorInfo(new ClientError('LPGW_ERR_TICKET_SPENT', 'spent')), { code: 'LPGW_ERR_TICKET_SPENT', message: 'spent' });
    assert.equal(errorInfo(new LpError('LP_ERR_KKT_KEY_HASH_MISMATCH', 'x')).code, 'LP_ERR_KKT_KEY_HASH_MISMATCH');
    assert.equal(errorInfo(new Error('boom')).code, 'LPC_ERR_INTERNAL');
  });

  test('summary: one line per check, failures carry the code, later checks are skipped', () => {
    const ok = runSummary(report(), 'mock (--mock-ecash)');
    assert.match(ok, /^gateway-probe run: PASS/);
    for (const row of ['descriptor', 'connect', 'handshake', 'register', 'telescoped handshake', 'telescoped register', 'rekey', 'telescoped rekey']) assert.match(ok, new RegExp(`\\n  ${row} +ok`));
    assert.match(ok, /credential: mock \(--mock-ecash\)/);

    const err = { code: 'LPGW_ERR_FORWARD_TARGET_UNKNOWN', message: 'not in the directory' };
    const bad = runSummary(
      { ...report({ telescoping: { can_handshake: false, can_register: false, error: err, registration: null }, telescoping_rekey: { can_rekey: false, old_index: null, new_index: null, error: skipped('x') } }), passed: false },
      'mock',
    );
    assert.match(bad, /^gateway-probe run: FAIL/);
    assert.match(bad, /telescoped handshake +FAIL +LPGW_ERR_FORWARD_TARGET_UNKNOWN: not in the directory/);
    assert.match(bad, /telescoped register +skip/);
    assert.match(bad, /\n {2}rekey +ok/);
    assert.match(bad, /telescoped rekey +skip/);
  });

  test('progress line', () => {
    const line = progressLine({ elapsedSec: 3.2, durationSec: 30, attempts: 10, successes: 9, failures: 1, inFlight: 4, ratePerSec: 2.8, latency: percentiles([1, 2, 3]) });
    assert.equal(line, '[  3s/30s] attempts 10  ok 9  fail 1  in-flight 4  2.8/s  p50 2.0 ms, p99 3.0 ms');
  });

  test('httpBase', () => {
    assert.equal(httpBase('127.0.0.1:8080'), 'http://127.0.0.1:8080');
    assert.equal(httpBase('http://127.0.0.1:8080/v1/gateway'), 'http://127.0.0.1:8080');
    assert.equal(httpBase('https://gw.example/'), 'https://gw.example');
  });
});
