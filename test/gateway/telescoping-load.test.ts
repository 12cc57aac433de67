/**
 * Telescoping under load (found by the probe's load test): an exit sees every client of an entry as one
 * source. Exempted entries are not rate-limited as one client; the entry limits forwarded ClientHellos per
 * client instead; and an exit's Busy delays only new handshakes, never packets of established sessions.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ForwardTransport, LpConnection, TcpStreamTransport, fetchDescriptor } from '../../src/client/index.js';
import { MessageType, encodeClientHello, makeSalt, serializeClear, defaultSuite, parseClear } from '../../src/core/index.js';
import { scrape, startGatewayProcess, stopAll } from '../helpers/gateway-process.js';

after(stopAll);

test('many clients through one entry: an exit that exempts the entry serves them all', async () => {
  const exit = await startGatewayProcess(['--mock-ecash', '--mode', 'exit'], { env: { LPGW_LP_HELLO_RATE_EXEMPT: '127.0.0.1' } });
  // The entry's own per-source limit is raised: all test clients share 127.0.0.1.
  const entry = await startGatewayProcess(['--mock-ecash', '--mode', 'entry', '--peer', exit.pinned], { env: { LPGW_LP_HELLO_RATE_PER_SEC: '100000', LPGW_LP_HELLO_BURST: '100000' } });
  const e = await fetchDescriptor(entry.http);
  const x = await fetchDescriptor(exit.http);
  const clients = await Promise.all(
    Array.from({ length: 24 }, async () => {
      const outer = await LpConnection.connect({ transport: new TcpStreamTransport(e.descriptor.lp.tcp), gateway: e.pin });
      const inner = await LpConnection.connect({ transport: new ForwardTransport(outer, x.pin.ed25519Public, x.descriptor.lp.tcp), gateway: x.pin });
      await inner.ping();
      return outer;
    }),
  );
  assert.equal(clients.length, 24);
  const m = await scrape(exit.http);
  assert.equal(m.get('lp_hello_rate_limited_total') ?? 0, 0, 'the exempted entry was not rate-limited');
  assert.equal(m.get('lp_handshakes_total{result="completed"}'), 24);
  for (const c of clients) c.close();
});

test("an exit's Busy delays new telescoped handshakes but established inner sessions keep working", async () => {
  // Exit with a tiny hello budget and no exemption: the entry's forwarded hellos soon get Busy.
  const exit = await startGatewayProcess(['--mock-ecash', '--mode', 'exit'], { env: { LPGW_LP_HELLO_RATE_PER_SEC: '0.5', LPGW_LP_HELLO_BURST: '1' } });
  const entry = await startGatewayProcess(['--mock-ecash', '--mode', 'entry', '--peer', exit.pinned], { env: { LPGW_LP_HELLO_RATE_PER_SEC: '100000', LPGW_LP_HELLO_BURST: '100000' } });
  const e = await fetchDescriptor(entry.http);
  const x = await fetchDescriptor(exit.http);
  const outer = await LpConnection.connect({ transport: new TcpStreamTransport(e.descriptor.lp.tcp), gateway: e.pin });
  const inner = await LpConnection.connect({ transport: new ForwardTransport(outer, x.pin.ed25519Public, x.descriptor.lp.tcp), gateway: x.pin });
  await inner.ping();

  // Another client's forwarded ClientHellos now exhaust the exit's budget: it answers Busy.
  const other = await LpConnection.connect({ transport: new TcpStreamTransport(e.descriptor.lp.tcp), gateway: e.pin });
  const { prims } = defaultSuite;
  let busy = 0;
  for (let i = 0; i < 3; i++) {
    const c = prims.ed25519FromSeed(prims.randomBytes(32));
    const hello = serializeClear({
      receiverIndex: 0,
      counter: 0,
      type: MessageType.ClientHello,
      content: encodeClientHello({ receiverIndex: 1000 + i, clientX25519: prims.ed25519PkToX25519(c.publicKey), clientEd25519: c.publicKey, salt: makeSalt(Math.floor(Date.now() / 1000), prims.randomBytes(24)) }),
    });
    const r = await other.request({ kind: 'forward', forward: { targetGatewayIdentity: x.pin.ed25519Public, targetLpAddress: x.descriptor.lp.tcp, innerPacketBytes: hello } });
    assert.equal(r.kind, 'forwardResponse');
    if (r.kind === 'forwardResponse' && parseClear(r.innerPacketBytes).type === MessageType.Busy) busy++;
  }
  assert.ok(busy >= 1, 'the exit (or the entry on its behalf) answered Busy');
  // The established inner session is not blocked by the exit's Busy.
  for (let i = 0; i < 5; i++) await inner.ping();
  const m = await scrape(entry.http);
  assert.equal(m.get('lp_forwards_total{result="refused_backoff"}') ?? 0, 0);
  outer.close();
  other.close();
});
