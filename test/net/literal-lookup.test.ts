/**
 * The UDP listener's lookup: a literal resolves to itself in the same turn (no dns.lookup, no deferred
 * send); a host name still goes through dns.lookup; and a real socket using it answers to its sources.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { literalLookup } from '../../src/net/literal-lookup.js';

test('literalLookup: IPv4 and IPv6 literals resolve synchronously to themselves', () => {
  for (const [addr, fam] of [['127.0.0.1', 4], ['::1', 6], ['fe80::1%lo', 6], ['::ffff:127.0.0.1', 6]] as const) {
    let got: [string, number] | null = null;
    literalLookup(addr, 4, (err, a, f) => {
      assert.equal(err, null);
      got = [a, f];
    });
    assert.deepEqual(got, [addr, fam], addr);
  }
});

test('literalLookup: a host name goes to dns.lookup (asynchronously)', async () => {
  let sync = true;
  const r = await new Promise<{ err: NodeJS.ErrnoException | null; a: string; f: number }>((resolve) => {
    literalLookup('localhost', 4, (err, a, f) => resolve({ err, a, f }));
    sync = false;
  });
  assert.equal(sync, false);
  assert.equal(r.err, null);
  assert.equal(r.f, 4);
  assert.equal(r.a, '127.0.0.1');
});

test('literalLookup: a socket using it sends replies to a datagram source', async () => {
  const server = dgram.createSocket({ type: 'udp4', lookup: literalLookup });
  const client = dgram.createSocket('udp4');
  try {
    server.on('message', (m, r) => server.send(Buffer.concat([Buffer.from('re:'), m]), r.port, r.address));
    // With a synchronous lookup, bind emits 'listening' in its own turn: listen for it first.
    const listening = once(server, 'listening');
    server.bind(0, '127.0.0.1');
    await listening;
    client.send(Buffer.from('ping'), server.address().port, '127.0.0.1');
    const [msg] = (await once(client, 'message')) as [Buffer];
    assert.equal(msg.toString(), 're:ping');
  } finally {
    server.close();
    client.close();
  }
});
