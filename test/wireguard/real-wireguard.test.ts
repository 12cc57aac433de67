/**
 * The WireGuard data plane against REAL WireGuard (wireguard-go and wireguard-tools; kernel WireGuard where
 * the kernel has it, which these machines do not): a gateway in one network namespace, the probe and a real
 * WireGuard client (wg-quick) in another (test/helpers/wg-testbed.ts). Issue "WireGuard for real":
 *
 * - managed interface: probe --wg-config → wg-quick up → handshake and pings over IPv4 and IPv6; equal PSKs
 *   on both sides; the PSK in no log, report or command line; kill -9 + interface gone → restart → peers
 *   back, the untouched client's tunnel recovers, usage counted before the kill still counts;
 * - an operator-made interface (driven with `wg`), and a gateway refusing one whose key or port differ;
 * - a 200 KB grant removed within a poll after that much traffic, its address reusable; an expired grant
 *   removed; both counted; a probe run leaves no peer behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { which } from '../collector/helpers/env.js';
import { CmdlineSampler, type GatewayHandle, LP_GATEWAY, WgTestbed, must, run, uniqueIfName, wireguardSkip } from '../helpers/wg-testbed.js';

const skip = wireguardSkip();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Base64 and hex of the PSK in a wg-quick file. */
function pskOf(config: string): { b64: string; hex: string } {
  const b64 = /PresharedKey = (\S+)/.exec(config)?.[1] ?? assert.fail('no PresharedKey line');
  return { b64, hex: Buffer.from(b64, 'base64').toString('hex') };
}

/** The gateway's `wg show <if> preshared-keys` entry for a client public key. */
async function gatewayPskFor(bed: WgTestbed, iface: string, clientPublicKey: string): Promise<string | undefined> {
  return (await bed.wgShow(bed.gw, iface, 'preshared-keys'))
    .split('\n')
    .map((l) => l.split('\t'))
    .find(([k]) => k === clientPublicKey)?.[1];
}

async function deviceAllowedIps(bed: WgTestbed, iface: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const line of (await bed.wgShow(bed.gw, iface, 'allowed-ips')).split('\n')) {
    const [k, ips] = line.split('\t');
    if (k && ips !== undefined) m.set(k, ips);
  }
  return m;
}

async function clientPublicKey(bed: WgTestbed, iface: string): Promise<string> {
  return (await bed.wgShow(bed.client, iface, 'public-key')).trim();
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, stepMs = 200): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await sleep(stepMs);
  }
}

// The three beds are independent (own namespaces and interface names) and mostly wait on WireGuard's timers: they run side by
// side, the tests inside each in order (concurrency is inherited, hence the explicit 1).
describe('real WireGuard', { skip, concurrency: true, timeout: 300_000 }, () => {
  describe('managed interface (wireguard-go here)', { concurrency: 1, timeout: 240_000 }, () => {
    let bed: WgTestbed;
    let dataDir: string;
    const wgIf = uniqueIfName('m');
    const clientIf = uniqueIfName('c');
    const args = ['--mock-ecash', '--wg-interface', wgIf, '--wg-manage'];
    const env = { LPGW_WIREGUARD_POLL_SEC: '1' };
    let gw: GatewayHandle;
    let config = '';
    const sampler = new CmdlineSampler();

    before(async () => {
      bed = WgTestbed.create('m');
      bed.own(bed.gw, wgIf);
      dataDir = mkdtempSync(join(bed.dir, 'data-'));
      gw = await bed.startGateway(dataDir, args, env);
    });
    after(() => {
      sampler.stop();
      bed?.destroy();
    });

    test('the gateway created and configured the interface: key, port, tunnel addresses, up, forwarding policy', async () => {
      const created = gw.logs.find((l) => /created WireGuard interface/.test(String(l.msg)));
      assert.equal(created?.implementation, 'wireguard-go', 'no kernel WireGuard here: wireguard-go');
      const descriptor = JSON.parse(await bed.gatewayGet(gw, '/v1/gateway')) as { wireguard: { public_key: string; endpoint: string; tunnel_ipv4: string; tunnel_ipv6: string } };
      assert.equal((await bed.wgShow(bed.gw, wgIf, 'public-key')).trim(), descriptor.wireguard.public_key);
      assert.equal((await bed.wgShow(bed.gw, wgIf, 'listen-port')).trim(), '51820');
      assert.equal(descriptor.wireguard.endpoint, '10.251.0.1:51820');
      assert.deepEqual([descriptor.wireguard.tunnel_ipv4, descriptor.wireguard.tunnel_ipv6], ['10.1.0.1', 'fd00:1::1']);
      const addrs = bed.gw.ip(['addr', 'show', 'dev', wgIf]);
      assert.match(addrs, /inet 10\.1\.0\.1\/16/);
      assert.match(addrs, /inet6 fd00:1::1\/112/);
      assert.match(bed.gw.ip(['link', 'show', 'dev', wgIf]), /UP/);
      const rules = await must('ip', ['netns', 'exec', bed.gw.name, 'nft', 'list', 'table', 'inet', `lp_gateway_${wgIf}`]);
      assert.match(rules, new RegExp(`iifname "${wgIf}" drop`));
    });

    test('probe --wg-config → wg-quick up: handshake and pings over IPv4 and IPv6; equal PSKs; the PSK nowhere else', async () => {
      const file = join(bed.dir, 'probe-wg.conf');
      sampler.start();
      const r = await bed.probe(gw, ['--wg-config', file]);
      sampler.stop();
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.equal(statSync(file).mode & 0o777, 0o600, 'the configuration holds secrets: 0600');
      config = readFileSync(file, 'utf8');
      assert.match(config, /AllowedIPs = 10\.1\.0\.1\/32, fd00:1::1\/128/);
      assert.match(config, /Endpoint = 10\.251\.0\.1:51820/);
      assert.equal(r.report.outcome?.lp?.registration?.deregistered, null, '--wg-config keeps the registration');
      await bed.clientUp(config, clientIf);
      assert.ok(await bed.pingFromClient('10.1.0.1'), 'IPv4 ping through the tunnel');
      assert.ok(await bed.pingFromClient('fd00:1::1'), 'IPv6 ping through the tunnel');
      assert.match(await bed.wgShow(bed.client, clientIf, 'latest-handshakes'), /\t[1-9]\d*/, 'a WireGuard handshake completed');

      const psk = pskOf(config);
      const pub = await clientPublicKey(bed, clientIf);
      assert.equal(await gatewayPskFor(bed, wgIf, pub), psk.b64, "the gateway's PSK for the peer equals the client's");
      assert.equal((await bed.wgShow(bed.client, clientIf, 'preshared-keys')).trim().split('\t')[1], psk.b64);
      const allowed = (await deviceAllowedIps(bed, wgIf)).get(pub) ?? '';
      assert.equal(allowed, `${r.report.outcome?.lp?.registration?.private_ipv4}/32 ${r.report.outcome?.lp?.registration?.private_ipv6}/128`);

      for (const secret of [psk.b64, psk.hex]) {
        assert.ok(!gw.text().includes(secret), 'not in the gateway log');
        assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'not in the probe report');
        assert.ok(![...sampler.seen].some((c) => c.includes(secret)), 'not on any command line while the peer was applied');
      }
      assert.ok(sampler.seen.size > 0, 'the sampler saw processes');
    });

    test('usage is counted and persisted by the peer controller', async () => {
      await must('ip', ['netns', 'exec', bed.client.name, 'ping', '-c', '20', '-i', '0.01', '-s', '1000', '-q', '10.1.0.1']);
      const ok = await waitFor(async () => (await bed.peersView(gw)).peers.some((p) => BigInt(p.rx_bytes) > 20_000n && BigInt(p.tx_bytes) > 20_000n && p.latest_handshake > 0), 5000);
      assert.ok(ok, JSON.stringify(await bed.peersView(gw)));
      assert.ok(await bed.metric(gw, 'lp_wg_transfer_bytes_total{direction="rx"}') > 20_000);
      assert.equal(await bed.metric(gw, 'lp_wg_peers'), 1);
      // the operator's view: addresses, handshake, transfer, grant — never a key
      const show = await must('ip', ['netns', 'exec', bed.gw.name, process.execPath, LP_GATEWAY, 'wg', 'show', '--http', `127.0.0.1:${gw.httpPort}`]);
      const peer = (await bed.peersView(gw)).peers[0];
      assert.ok(peer);
      assert.match(show, new RegExp(`peer ${peer.ipv4.replace(/\./g, '\\.')}, ${peer.ipv6}`));
      assert.match(show, /latest handshake: \d+ seconds? ago/);
      assert.match(show, /grant: [\d.]+ (MiB|GiB) left of 1\.00 GiB, expires in 29 days/);
      assert.ok(!show.includes(pskOf(config).b64) && !show.includes(await clientPublicKey(bed, clientIf)), 'no key or PSK');
    });

    test('kill -9, interface gone: after restart every peer is back with its PSK and allowed IPs, the tunnel recovers, usage still counts', async () => {
      const before = (await bed.peersView(gw)).peers[0];
      assert.ok(before);
      const pub = await clientPublicKey(bed, clientIf);
      const allowedBefore = (await deviceAllowedIps(bed, wgIf)).get(pub);
      await bed.stop(gw, 'SIGKILL');
      await bed.deleteInterface(bed.gw, wgIf); // wireguard-go exits with it: the device is empty
      assert.doesNotMatch(bed.gw.ip(['link', 'show']), new RegExp(wgIf));

      gw = await bed.startGateway(dataDir, args, env);
      assert.ok(gw.logs.some((l) => /created WireGuard interface/.test(String(l.msg))), 'the managed interface was created again');
      const reapplied = gw.logs.find((l) => l.msg === 're-applied stored WireGuard peers');
      assert.equal(reapplied?.peers, 1);
      assert.equal(reapplied?.missingFromDevice, 1);
      assert.equal(await gatewayPskFor(bed, wgIf, pub), pskOf(config).b64, 'the PSK is back');
      assert.equal((await deviceAllowedIps(bed, wgIf)).get(pub), allowedBefore, 'the allowed IPs are back');

      // the client was not touched: its WireGuard re-handshakes by itself once its old session goes unanswered
      const t0 = Date.now();
      assert.ok(await bed.pingFromClient('10.1.0.1', 40), 'the tunnel recovered');
      assert.ok(await bed.pingFromClient('fd00:1::1', 5));
      const after = await waitFor(async () => {
        const p = (await bed.peersView(gw)).peers[0];
        return p !== undefined && BigInt(p.rx_bytes) > BigInt(before.rx_bytes) && BigInt(p.tx_bytes) > BigInt(before.tx_bytes);
      }, 5000);
      assert.ok(after, `usage from before the kill still counts, new traffic adds to it (recovery took ${Date.now() - t0} ms): ${JSON.stringify((await bed.peersView(gw)).peers[0])} vs ${JSON.stringify(before)}`);
    });

    test('a probe run leaves no peer behind', async () => {
      const before = (await deviceAllowedIps(bed, wgIf)).size;
      const storeBefore = (await bed.peersView(gw)).peers.length;
      const r = await bed.probe(gw);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.equal(r.report.outcome?.lp?.registration?.deregistered, true);
      assert.equal((await deviceAllowedIps(bed, wgIf)).size, before, 'the device has as many peers as before');
      assert.equal((await bed.peersView(gw)).peers.length, storeBefore, 'and so has the registry');
      assert.equal(await bed.metric(gw, 'lp_wg_peer_removals_total{reason="deregistered"}'), 1);
    });

    test('SIGTERM stops the gateway; the managed interface stays up for its clients', async () => {
      assert.equal(await bed.stop(gw), 0);
      assert.match(bed.gw.ip(['link', 'show', 'dev', wgIf]), /UP/);
      assert.ok(await bed.pingFromClient('10.1.0.1', 3), 'the data plane does not need the control plane');
    });
  });

  describe('an interface the operator made (driven with wg)', { concurrency: 1, timeout: 180_000 }, () => {
    let bed: WgTestbed;
    let dataDir: string;
    let keyFile: string;
    const wgIf = uniqueIfName('u');
    const clientIf = uniqueIfName('k');
    const env = { LPGW_WIREGUARD_CONTROL: 'wg', LPGW_WIREGUARD_POLL_SEC: '1' };

    before(async () => {
      bed = WgTestbed.create('u');
      dataDir = mkdtempSync(join(bed.dir, 'data-'));
      keyFile = join(bed.dir, 'gw-wg.key');
      await must(process.execPath, [LP_GATEWAY, 'wg', 'key', '--data-dir', dataDir, '--private-out', keyFile]);
      assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    });
    after(() => bed?.destroy());

    test('registration, tunnel and pings work; the PSK never reaches a command line', async () => {
      await bed.makeInterface(wgIf, { privateKeyFile: keyFile, listenPort: 51820, addresses: ['10.1.0.1/16', 'fd00:1::1/112'] });
      // a pass-through recorder in front of the real wg: every command line the gateway gives it, then the real thing
      const shimDir = join(bed.dir, 'wg-shim');
      const argvLog = join(bed.dir, 'wg-argv.log');
      mkdirSync(shimDir);
      writeFileSync(join(shimDir, 'wg'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nexec ${which('wg') ?? '/usr/bin/wg'} "$@"\n`, { mode: 0o755 });
      const gw = await bed.startGateway(dataDir, ['--mock-ecash', '--wg-interface', wgIf], { ...env, PATH: `${shimDir}:${process.env.PATH ?? ''}` });
      assert.ok(gw.logs.some((l) => l.msg === 'WireGuard interface matches the announced key and port' && l.control === 'wg'));
      const sampler = new CmdlineSampler();
      sampler.start();
      const file = join(bed.dir, 'probe-u.conf');
      const r = await bed.probe(gw, ['--wg-config', file]);
      sampler.stop();
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      const config = readFileSync(file, 'utf8');
      await bed.clientUp(config, clientIf);
      assert.ok(await bed.pingFromClient('10.1.0.1'), 'IPv4 ping through the tunnel');
      assert.ok(await bed.pingFromClient('fd00:1::1'), 'IPv6 ping through the tunnel');
      const psk = pskOf(config);
      assert.equal(await gatewayPskFor(bed, wgIf, await clientPublicKey(bed, clientIf)), psk.b64);
      const wgCalls = readFileSync(argvLog, 'utf8').trim().split('\n');
      assert.ok(wgCalls.some((c) => c.startsWith(`addconf ${wgIf} `)), `the peer went through the real wg: ${wgCalls.join(' | ')}`);
      for (const secret of [psk.b64, psk.hex]) {
        assert.ok(!wgCalls.some((c) => c.includes(secret)), 'not on the command line of any wg call');
        assert.ok(![...sampler.seen].some((c) => c.includes(secret)), 'not on any command line the sampler saw');
        assert.ok(!gw.text().includes(secret), 'not in the log');
      }

      // the probe checks the tunnel itself, unprivileged (in TypeScript over UDP: no root, no TUN)
      const peersBefore = (await deviceAllowedIps(bed, wgIf)).size;
      const t = await bed.probe(gw, ['--pings', '3'], { asNobody: true });
      assert.equal(t.code, 0, `${t.stdout}\n${t.stderr}`);
      const w = t.report.outcome?.wg;
      assert.ok(w, 'outcome.wg is reported when the gateway announces a WireGuard endpoint');
      assert.deepEqual([w.can_register, w.can_handshake_v4, w.can_handshake_v6, w.ping_ips_performance_v4, w.ping_ips_performance_v6, w.error], [true, true, true, 1, 1, null]);
      assert.ok(w.latency_ms && w.latency_ms.p50 > 0 && w.latency_ms.max >= w.latency_ms.p50);
      assert.equal((await deviceAllowedIps(bed, wgIf)).size, peersBefore, 'and leaves no peer behind');

      // the operator changes the interface's key behind the gateway's back: no handshake is possible, and the probe says so
      const otherKey = join(bed.dir, 'rotated.key');
      await must('sh', ['-c', `umask 077 && wg genkey > ${otherKey}`]);
      await must('ip', ['netns', 'exec', bed.gw.name, 'wg', 'set', wgIf, 'private-key', otherKey]);
      const bad = await bed.probe(gw, ['--wg-timeout', '3', '--pings', '1'], { asNobody: true });
      assert.equal(bad.code, 1, `${bad.stdout}\n${bad.stderr}`);
      assert.equal(bad.report.outcome?.lp?.can_register, true);
      assert.equal(bad.report.outcome?.wg?.can_handshake_v4, false);
      assert.equal(bad.report.outcome?.wg?.error?.code, 'LPWG_ERR_HANDSHAKE_TIMEOUT');
      assert.equal(await bed.stop(gw), 0);
    });

    test('a gateway refuses to start when the interface key or port differs from what it announces', async () => {
      const otherKey = join(bed.dir, 'other.key');
      await must('sh', ['-c', `umask 077 && wg genkey > ${otherKey}`]);
      const wrongKey = uniqueIfName('x');
      await bed.makeInterface(wrongKey, { privateKeyFile: otherKey, listenPort: 51821, addresses: [] });
      const e = await bed.gatewayExit(dataDir, ['--mock-ecash', '--wg-interface', wrongKey], env);
      assert.equal(e.code, 1);
      const fatal = e.logs.find((l) => l.level === 60);
      assert.equal(fatal?.code, 'LPGW_ERR_WG_MISMATCH');
      const announced = (await must(process.execPath, [LP_GATEWAY, 'wg', 'key', '--data-dir', dataDir])).trim();
      assert.match(String(fatal?.msg), new RegExp(`its public key is ${(await bed.wgShow(bed.gw, wrongKey, 'public-key')).trim().replace(/[+/]/g, '\\$&')} but the gateway announces ${announced.replace(/[+/]/g, '\\$&')}`));
      assert.match(String(fatal?.msg), /listens on port 51821 but the gateway announces 51820/);

      // right key, wrong port: only the port is named
      const wrongPort = uniqueIfName('y');
      await bed.makeInterface(wrongPort, { privateKeyFile: keyFile, listenPort: 51822, addresses: [] });
      const e2 = await bed.gatewayExit(dataDir, ['--mock-ecash', '--wg-interface', wrongPort], env);
      const fatal2 = e2.logs.find((l) => l.level === 60);
      assert.equal(fatal2?.code, 'LPGW_ERR_WG_MISMATCH');
      assert.doesNotMatch(String(fatal2?.msg), /public key/);
      assert.match(String(fatal2?.msg), /port 51822/);

      // a missing interface is named too
      const e3 = await bed.gatewayExit(dataDir, ['--mock-ecash', '--wg-interface', uniqueIfName('z')], {});
      assert.equal(e3.logs.find((l) => l.level === 60)?.code, 'LPGW_ERR_WG_CONTROL');
    });
  });

  describe('grants are enforced from the interface counters', { concurrency: 1, timeout: 180_000 }, () => {
    let bed: WgTestbed;
    before(() => {
      bed = WgTestbed.create('q');
    });
    after(() => bed?.destroy());

    test('a 200 KB grant is removed within a poll of passing that much; its address is reusable; counted', async () => {
      const wgIf = bed.own(bed.gw, uniqueIfName('q'));
      const clientIf = uniqueIfName('r');
      const dataDir = mkdtempSync(join(bed.dir, 'data-'));
      // a /30 has one client address: the next registration gets it only once the first peer is gone
      const gw = await bed.startGateway(dataDir, ['--mock-ecash', '--wg-interface', wgIf, '--wg-manage'], {
        LPGW_WIREGUARD_POLL_SEC: '1',
        LPGW_REGISTRATION_MOCK_BANDWIDTH_BYTES: '200000',
        LPGW_REGISTRATION_IPV4_POOL: '10.77.0.0/30',
        LPGW_REGISTRATION_IPV6_POOL: 'fd00:77::/126',
      });
      const file = join(bed.dir, 'grant.conf');
      const r = await bed.probe(gw, ['--wg-config', file]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.equal(r.report.outcome?.lp?.registration?.private_ipv4, '10.77.0.2');
      await bed.clientUp(readFileSync(file, 'utf8'), clientIf);
      assert.ok(await bed.pingFromClient('10.77.0.1'));
      // the pool is full now
      const full = await bed.probe(gw);
      assert.equal(full.code, 1);
      assert.equal(full.report.outcome?.lp?.error?.code, 'LPGW_ERR_POOL_EXHAUSTED');

      // ~300 KB through the tunnel (1,000-byte echoes both ways), as fast as it goes
      await passTraffic(bed, '10.77.0.1');
      const sent = Date.now();
      const gone = await waitFor(async () => (await bed.peersView(gw)).peers.length === 0, 10_000, 100);
      assert.ok(gone, `removed: ${JSON.stringify(await bed.peersView(gw))}`);
      // when, by the gateway's own clock: the poll running as the traffic ended may have read just before it, the next one must not
      const removal = gw.logs.find((l) => l.msg === 'WireGuard peer removed; its addresses are free again');
      assert.equal(removal?.reason, 'bandwidth');
      const removedAfterMs = Date.parse(String(removal?.time)) - sent;
      assert.ok(removedAfterMs < 2 * 1000 + 1500, `removed ${removedAfterMs} ms after the traffic (poll interval 1 s)`);
      assert.equal((await deviceAllowedIps(bed, wgIf)).size, 0, 'and from the device');
      assert.equal(await bed.pingFromClient('10.77.0.1', 2), false, 'the tunnel no longer carries traffic');
      assert.equal(await bed.metric(gw, 'lp_wg_peer_removals_total{reason="bandwidth"}'), 1);
      const again = await bed.probe(gw);
      assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`);
      assert.equal(again.report.outcome?.lp?.registration?.private_ipv4, '10.77.0.2', 'the address was reusable');
      await bed.stop(gw);
    });

    test('an expired grant is removed and counted', async () => {
      const wgIf = bed.own(bed.gw, uniqueIfName('e'));
      const dataDir = mkdtempSync(join(bed.dir, 'data-'));
      // the first test's managed interface still holds 51820 in this namespace (it outlives its gateway)
      const gw = await bed.startGateway(dataDir, ['--mock-ecash', '--wg-interface', wgIf, '--wg-manage'], { LPGW_WIREGUARD_POLL_SEC: '1', LPGW_REGISTRATION_MOCK_VALIDITY_SEC: '2', LPGW_WIREGUARD_LISTEN_PORT: '51830' });
      const r = await bed.probe(gw, ['--keep-registration']);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.equal((await deviceAllowedIps(bed, wgIf)).size, 1);
      assert.ok(await waitFor(async () => (await bed.peersView(gw)).peers.length === 0, 6000), 'removed after its expiry');
      assert.equal((await deviceAllowedIps(bed, wgIf)).size, 0);
      assert.equal(await bed.metric(gw, 'lp_wg_peer_removals_total{reason="expired"}'), 1);
      await bed.stop(gw);
      rmSync(dataDir, { recursive: true, force: true });
    });
  });


  describe('an exit with an uplink: forwarding and masquerade', { concurrency: 1, timeout: 120_000 }, () => {
    let bed: WgTestbed;
    before(() => {
      bed = WgTestbed.create('n');
    });
    after(() => bed?.destroy());

    test("a client's traffic reaches a host behind the exit only through the tunnel, masqueraded", async () => {
      const net = bed.addInternet('n');
      const wgIf = bed.own(bed.gw, uniqueIfName('n'));
      const clientIf = uniqueIfName('o');
      const dataDir = mkdtempSync(join(bed.dir, 'data-'));
      const gw = await bed.startGateway(dataDir, ['--mock-ecash', '--mode', 'exit', '--wg-interface', wgIf, '--wg-manage'], { LPGW_WIREGUARD_UPLINK: net.uplink });
      const rules = await must('ip', ['netns', 'exec', bed.gw.name, 'nft', 'list', 'table', 'inet', `lp_gateway_${wgIf}`]);
      assert.match(rules, new RegExp(`oifname "${net.uplink}" ip saddr 10\\.1\\.0\\.0/16 masquerade`));
      const file = join(bed.dir, 'exit.conf');
      const r = await bed.probe(gw, ['--wg-config', file]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      // a client of an exit routes the world through it; here: the host behind it
      const config = readFileSync(file, 'utf8').replace(/AllowedIPs = (.*)/, `AllowedIPs = $1, ${net.host4}/32, ${net.host6}/128`);
      await bed.clientUp(config, clientIf);
      assert.ok(await bed.pingFromClient(net.host4), 'IPv4 beyond the exit');
      assert.ok(await bed.pingFromClient(net.host6), 'IPv6 beyond the exit');
      // the host has no route to the client pools: its replies could only go to the exit's own address
      assert.notEqual((await run('ip', ['-n', net.ns.name, 'route', 'get', '10.1.0.5'])).code, 0);
      assert.equal((await must('ip', ['netns', 'exec', bed.gw.name, 'cat', '/proc/sys/net/ipv4/ip_forward'])).trim(), '1');
      await bed.stop(gw);
    });
  });
});

/** 150 × 1,000-byte echoes from the client: ≈ 300 KB through the tunnel, both directions. */
async function passTraffic(bed: WgTestbed, addr: string): Promise<void> {
  await must('ip', ['netns', 'exec', bed.client.name, 'ping', '-c', '150', '-i', '0.002', '-s', '1000', '-q', '-W', '1', addr]);
}
