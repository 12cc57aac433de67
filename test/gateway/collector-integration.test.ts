/**
 * The collector inside `lp-gateway run`: attached as root (its metrics on the gateway's /metrics, a live
 * window on the gateway's WebSocket, counts that match the LP traffic sent), and, without privileges, one
 * clear log line while the gateway serves normally.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import WebSocket from 'ws';
import { LpConnection, UdpTransport, fetchDescriptor } from '../../src/client/index.js';
import { NOT_PERMITTED_MESSAGE, WINDOW_KIND } from '../../src/collector/index.js';
import { scrape, startGatewayProcess, stopAll, tempDataDir } from '../helpers/gateway-process.js';
import { isRoot, which } from '../collector/helpers/env.js';

after(stopAll);

const register = {
  mode: { kind: 'dvpn' as const, wgPublicKey: new Uint8Array(32).fill(3) },
  credential: { kind: 'mock' as const, blob: new Uint8Array([1]) },
  ticketType: 2 as const,
  timestamp: BigInt(Math.floor(Date.now() / 1000)),
};

test('root: the collector attaches in run, counts the gateway traffic, and streams windows', { skip: isRoot ? false : 'needs root' }, async () => {
  const gw = await startGatewayProcess(['--mock-ecash', '--collector', '--collector-iface', 'lo'], { env: { LPGW_COLLECTOR_WINDOW_SEC: '1' } });
  assert.ok(gw.logs.some((l) => l.msg === 'eBPF collector attached'));
  const ws = new WebSocket(`${gw.http.replace('http', 'ws')}/v1/collector/stream`);
  const windows: Record<string, unknown>[] = [];
  ws.on('message', (d: Buffer) => windows.push(JSON.parse(d.toString()) as Record<string, unknown>));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const { descriptor, pin } = await fetchDescriptor(gw.http);
  const c = await LpConnection.connect({ transport: new UdpTransport(descriptor.lp.udp as string), gateway: pin });
  assert.equal((await c.register(register)).success, true);
  c.close();
  // Every UDP datagram of this exchange went to or came from the gateway's LP UDP port.
  const deadline = Date.now() + 5000;
  let udpPackets = 0;
  while (Date.now() < deadline) {
    const m = await scrape(gw.http);
    udpPackets = [...m.entries()].filter(([k]) => k.startsWith('lp_collector_') && k.includes('packets') && k.includes('udp')).reduce((a, [, v]) => a + v, 0);
    if (udpPackets >= 10 && windows.some((w) => w.kind === WINDOW_KIND)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  // 5 requests + 5 replies (ClientHello, KKT, msg1, msg3, register), no loss on loopback.
  assert.ok(udpPackets >= 10, `collector counted ${udpPackets} UDP packets of the exchange`);
  assert.ok(windows.some((w) => w.kind === WINDOW_KIND), 'a window arrived on the gateway WebSocket');
  ws.close();
  assert.equal(await gw.stop('SIGTERM'), 0);
});

test('unprivileged: one clear log line, and the gateway serves normally', { skip: isRoot && which('setpriv') ? false : 'needs root to drop privileges with setpriv' }, async () => {
  const dataDir = tempDataDir();
  chmodSync(dataDir, 0o777);
  const gw = await startGatewayProcess(['--mock-ecash', '--collector'], {
    dataDir,
    wrap: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'],
  });
  const lines = gw.logs.filter((l) => typeof l.msg === 'string' && (l.msg as string).includes('collector'));
  assert.equal(lines.length, 1, JSON.stringify(lines));
  assert.equal(lines[0]?.msg, NOT_PERMITTED_MESSAGE);
  assert.equal((await fetch(`${gw.http}/health`)).status, 200);
  const { descriptor, pin } = await fetchDescriptor(gw.http);
  const c = await LpConnection.connect({ transport: new UdpTransport(descriptor.lp.udp as string), gateway: pin });
  assert.equal((await c.register(register)).success, true);
  c.close();
  const status = (await (await fetch(`${gw.http}/v1/collector/status`)).json()) as Record<string, unknown>;
  assert.notEqual(status.state, 'running');
  assert.equal(await gw.stop('SIGTERM'), 0);
});
