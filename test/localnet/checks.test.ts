/**
 * The localnet's verdicts on crafted input (no privileges): `checkCollectors` — the collector check of
 * `localnet:probe` — passes on windows that match the topology and fails when the exit's collector shows the
 * probe's address (LP or WireGuard traffic), a remote other than the entry, or no WireGuard flow from the
 * entry, or when it does not watch the WireGuard port; `judge` fails a probe run whose report lacks the
 * tunnel sections or has a failed tunnel check.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FlowWindow, WindowSnapshot } from '../../src/collector/schema.js';
import { type CollectorCheckInput, checkCollectors, judge, REQUIRED_SECTIONS } from '../../scripts/localnet/localnet.js';
import { NODES, PORTS } from '../../scripts/localnet/topology.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const iso = (s: number): string => new Date(T0 + s * 1000).toISOString();
const counters = (packets: number): FlowWindow['request'] => ({ packets, l3_bytes: packets * 100, payload_bytes: packets * 80 });

function flow(proto: 'tcp' | 'udp', remote: string, local: string, localPort: number, remotePort = 40000): FlowWindow {
  return { proto, family: remote.includes(':') ? 6 : 4, local, local_port: localPort, remote, remote_port: remotePort, receiver_index: null, request: counters(3), response: counters(3), amplification: 1, amplification_l3: 1 };
}

/** A one-second window starting at second `s`. */
function win(s: number, flows: FlowWindow[], watched: number[] = [PORTS.lpTcp, PORTS.lpUdp, PORTS.wireguard]): WindowSnapshot {
  return { started_at: iso(s), ended_at: iso(s + 1), flows, source: { iface: 'eth0', ifindex: 2, hooks: ['ingress', 'egress'], attach_mode: 'tcx', watched_ports: watched, pid: 1 } } as unknown as WindowSnapshot;
}

const P4 = NODES.probe.ipv4;
const E4 = NODES.entry.ipv4;
const X4 = NODES.exit.ipv4;

/** What a passing localnet run writes: the probe at the entry (LP TCP, LP UDP, WireGuard), the entry at the exit (LP TCP, WireGuard). */
function good(): CollectorCheckInput {
  return {
    entry: [win(10, [flow('tcp', P4, E4, PORTS.lpTcp), flow('udp', P4, E4, PORTS.lpUdp), flow('udp', P4, E4, PORTS.wireguard)])],
    exit: [win(5, []), win(10, [flow('tcp', E4, X4, PORTS.lpTcp), flow('udp', E4, X4, PORTS.wireguard)]), win(12, [])],
    from: new Date(T0 + 10_000),
    until: new Date(T0 + 10_500),
    covered: true,
    transports: ['tcp', 'udp'],
    tunnel: true,
  };
}

describe('checkCollectors', () => {
  test('passes when the exit sees only the entry, for LP and WireGuard', () => {
    const e = checkCollectors(good());
    assert.deepEqual(e.problems, []);
    assert.equal(e.ok, true);
    assert.deepEqual(e.exit.remotes_ever, [E4]);
    assert.deepEqual(e.exit.watched_ports, [PORTS.lpTcp, PORTS.lpUdp, PORTS.wireguard]);
  });

  test("fails when the probe's address reaches the exit's WireGuard port (a one-hop leak)", () => {
    const i = good();
    i.exit = [...i.exit, win(11, [flow('udp', P4, X4, PORTS.wireguard)])];
    const e = checkCollectors(i);
    assert.equal(e.ok, false);
    assert.ok(e.problems.includes(`exit collector shows a flow from ${P4}; only the entry (${E4}) may reach it`), e.problems.join('; '));
    assert.ok(e.problems.includes("exit collector shows the probe's address"), e.problems.join('; '));
  });

  test("fails when the probe's address shows at the exit at any time, over IPv6 too, also outside the run", () => {
    const i = good();
    i.exit = [win(1, [flow('tcp', NODES.probe.ipv6, NODES.exit.ipv6, PORTS.lpTcp)]), ...i.exit];
    const e = checkCollectors(i);
    assert.equal(e.ok, false);
    assert.ok(e.problems.includes("exit collector shows the probe's address"), e.problems.join('; '));
  });

  test('fails on any remote other than the entry (e.g. the inet host) at the exit', () => {
    const i = good();
    i.exit = [...i.exit, win(11, [flow('udp', '10.78.0.2', X4, PORTS.wireguard)])];
    assert.deepEqual(checkCollectors(i).problems, [`exit collector shows a flow from 10.78.0.2; only the entry (${E4}) may reach it`]);
  });

  test("fails when the exit does not watch the WireGuard port, or shows no WireGuard flow from the entry during the run", () => {
    const notWatched = good();
    notWatched.exit = [win(10, [flow('tcp', E4, X4, PORTS.lpTcp)], [PORTS.lpTcp, PORTS.lpUdp])];
    const a = checkCollectors(notWatched);
    assert.equal(a.ok, false);
    assert.ok(a.problems.some((p) => p.startsWith(`exit collector does not watch the WireGuard port ${PORTS.wireguard}`)), a.problems.join('; '));
    assert.ok(a.problems.some((p) => p.startsWith('exit collector shows no WireGuard flow from the entry')), a.problems.join('; '));

    const before = good();
    // The entry's WireGuard flow only in a window that ended before the run.
    before.exit = [win(2, [flow('udp', E4, X4, PORTS.wireguard)]), win(10, [flow('tcp', E4, X4, PORTS.lpTcp)])];
    assert.deepEqual(checkCollectors(before).problems, [`exit collector shows no WireGuard flow from the entry (udp ${E4} → ${X4}:${PORTS.wireguard}: the two-hop tunnel) during the probe run`]);
    // Without the tunnel checks, no WireGuard traffic is expected.
    assert.deepEqual(checkCollectors({ ...notWatched, tunnel: false }).problems, []);
  });

  test("fails when the entry shows no WireGuard flow from the probe, or no window covers the run", () => {
    const i = good();
    i.entry = [win(10, [flow('tcp', P4, E4, PORTS.lpTcp), flow('udp', P4, E4, PORTS.lpUdp)])];
    assert.deepEqual(checkCollectors(i).problems, [`entry collector shows no WireGuard flow from the probe (udp ${P4} → ${E4}:${PORTS.wireguard})`]);
    assert.equal(checkCollectors({ ...good(), covered: false }).ok, false);
  });
});

describe('judge', () => {
  const wg = { can_register: true, can_handshake_v4: true, can_handshake_v6: true, ping_ips_performance_v4: 1, ping_ips_performance_v6: 1, latency_ms: { p50: 1, max: 2 }, handshake_ms: 3, error: null };
  const report = (over: Record<string, unknown> = {}): string =>
    JSON.stringify({
      entry: {},
      exit: {},
      outcome: {
        lp: { can_connect: true, can_handshake: true, can_register: true, error: null },
        telescoping: { can_handshake: true, can_register: true, error: null },
        rekey: { can_rekey: true, error: null },
        telescoping_rekey: { can_rekey: true, error: null },
        wg,
        wg_exit: wg,
        as_exit: { can_route_ip_v4: true, can_route_ip_v6: true, targets: { ipv4: '10.78.0.2', ipv6: 'fd78::2' }, error: null },
        ...over,
      },
      timings_ms: { total: 1 },
      passed: true,
    });

  test('a run with every section and every check passes', () => {
    const r = judge('udp', 0, report(), '', 10, false);
    assert.deepEqual(r.failed, []);
    assert.equal(r.passed, true);
    assert.deepEqual([...REQUIRED_SECTIONS], ['lp', 'telescoping', 'rekey', 'telescoping_rekey', 'wg', 'wg_exit', 'as_exit']);
  });

  test('a run without the two-hop sections fails (the probe skipped its tunnel checks)', () => {
    const r = judge('tcp', 0, report({ wg_exit: null, as_exit: null }), '', 10, false);
    assert.equal(r.passed, false);
    assert.deepEqual(r.failed, ['outcome.wg_exit missing', 'outcome.as_exit missing']);
  });

  test('a failed tunnel check fails the run', () => {
    const r = judge('tcp', 1, report({ as_exit: { can_route_ip_v4: true, can_route_ip_v6: false, targets: {}, error: { code: 'X', message: 'y' } }, wg_exit: { ...wg, can_handshake_v6: false } }), '', 10, false);
    assert.equal(r.passed, false);
    assert.deepEqual(r.failed, ['wg_exit.can_handshake_v6', 'as_exit.can_route_ip_v6', 'exit status 1']);
  });
});
