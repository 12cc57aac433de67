/**
 * UdpTransport against a scripted UDP peer on loopback: only the gateway's own datagrams count (the socket is
 * connected), a late second copy of the previous reply is not taken for the next request's, a Busy repeated
 * byte for byte is still delivered, and one request at a time.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { MessageType, encodeBusy, serializeClear } from '../../src/core/index.js';
import { UdpTransport } from '../../src/client/transports.js';
import { ClientError } from '../../src/client/errors.js';

type Script = (msg: Buffer, reply: (b: Uint8Array, delayMs?: number) => void) => void;

/** Everything a test opened is closed after it, also when an assertion failed half-way. */
const open: { close(): void }[] = [];
afterEach(() => {
  for (const c of open.splice(0)) {
    try {
      c.close();
    } catch {
      /* already closed */
    }
  }
});
function track<T extends { close(): void }>(c: T): T {
  open.push(c);
  return c;
}

async function peer(script: Script): Promise<{ address: string; close: () => void }> {
  const s = dgram.createSocket('udp4');
  s.on('message', (msg, rinfo) => script(msg, (b, delayMs = 0) => setTimeout(() => s.send(b, rinfo.port, rinfo.address), delayMs)));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return track({ address: `127.0.0.1:${s.address().port}`, close: () => s.close() });
}

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

test('datagrams from anyone but the gateway are not replies', async () => {
  const gw = await peer((msg, reply) => reply(bytes(0xa0, msg[0] as number), 40));
  const t = track(new UdpTransport(gw.address));
  const first = t.request(bytes(1), 1000);
  // A stranger learns the client's port only after the first datagram left; it sprays while the reply is due.
  await new Promise((r) => setTimeout(r, 5));
  const stranger = track(dgram.createSocket('udp4'));
  const clientPort = (t as unknown as { socket: dgram.Socket }).socket.address().port;
  for (let i = 0; i < 5; i++) stranger.send(bytes(0xee, i), clientPort, '127.0.0.1');
  assert.deepEqual(await first, bytes(0xa0, 1));
});

test('a late second copy of the previous reply is not taken for the next request', async () => {
  // Request 1 is answered twice (as after a re-send), the copy 60 ms later; request 2's reply takes 120 ms.
  const gw = await peer((msg, reply) => {
    if (msg[0] === 1) {
      reply(bytes(0xa1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30));
      reply(bytes(0xa1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30), 60);
    } else reply(bytes(0xa2), 120);
  });
  const t = track(new UdpTransport(gw.address, 1));
  assert.equal((await t.request(bytes(1), 1000))[0], 0xa1);
  assert.deepEqual(await t.request(bytes(2), 1000), bytes(0xa2));
});

test('the same Busy twice in a row is delivered both times', async () => {
  const busy = serializeClear({ receiverIndex: 7, counter: 0, type: MessageType.Busy, content: encodeBusy(25) });
  const gw = await peer((_msg, reply) => reply(busy));
  const t = track(new UdpTransport(gw.address, 1));
  assert.deepEqual(await t.request(bytes(1), 500), busy);
  assert.deepEqual(await t.request(bytes(1), 500), busy);
});

test('one request at a time; a timeout is a typed error and the transport stays usable', async () => {
  let answer = false;
  const gw = await peer((msg, reply) => {
    if (answer) reply(bytes(0xa3, msg[0] as number));
  });
  const t = track(new UdpTransport(gw.address, 2));
  const inFlight = t.request(bytes(1), 200);
  await assert.rejects(t.request(bytes(2), 200), (e: unknown) => e instanceof ClientError && e.code === 'LPC_ERR_BUSY_TRANSPORT');
  await assert.rejects(inFlight, (e: unknown) => e instanceof ClientError && e.code === 'LPC_ERR_TIMEOUT');
  answer = true;
  assert.deepEqual(await t.request(bytes(3), 500), bytes(0xa3, 3));
});
