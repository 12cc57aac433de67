/**
 * The entry's connection pool to exits against a real framed TCP server on loopback: reuse, exclusivity,
 * no reply ever crossing to another request (timeouts, extra replies), transparent retry when the server
 * closed an idle connection, idle limits and expiry, close().
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { FrameDecoder, encodeFrame } from '../../src/core/index.js';
import { ExchangeError, TcpConnectionPool } from '../../src/net/tcp-exchange.js';

/** Request byte 0 selects the behaviour: 0 echo, 1 never answer, 2 answer twice, 3 answer then close, 4 echo after 30 ms. */
async function server(): Promise<{ port: number; accepted: () => number; open: () => number; closeAll: () => void; stop: () => Promise<void> }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    const dec = new FrameDecoder();
    s.on('data', (chunk: Buffer) => {
      for (const f of dec.push(chunk)) {
        const mode = f[0];
        if (mode === 1) continue;
        if (mode === 4) setTimeout(() => s.write(encodeFrame(f)), 30);
        else s.write(encodeFrame(f));
        if (mode === 2) s.write(encodeFrame(f));
        if (mode === 3) s.end();
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    accepted: () => accepted,
    open: () => sockets.size,
    closeAll: () => {
      for (const s of sockets) s.destroy();
    },
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

const pools: TcpConnectionPool[] = [];
after(() => {
  for (const p of pools) p.close();
});

function pool(port: number, over: Partial<ConstructorParameters<typeof TcpConnectionPool>[0]> = {}): { p: TcpConnectionPool; opened: () => number } {
  let opened = 0;
  const p = new TcpConnectionPool({ host: '127.0.0.1', port, connectTimeoutMs: 1000, ioTimeoutMs: 300, maxIdle: 4, idleMs: 5000, onConnect: () => opened++, ...over });
  pools.push(p);
  return { p, opened: () => opened };
}

const req = (mode: number, tag: number): Uint8Array => Uint8Array.from([mode, tag, 0xaa, 0xbb]);
const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('sequential exchanges share one connection and each gets its own reply', async () => {
  const s = await server();
  const { p, opened } = pool(s.port);
  for (let i = 0; i < 20; i++) assert.deepEqual(await p.exchange(req(0, i)), req(0, i));
  assert.equal(opened(), 1);
  assert.equal(s.accepted(), 1);
  assert.equal(p.idleCount, 1);
  await s.stop();
});

test('concurrent exchanges use one connection each, and replies never cross', async () => {
  const s = await server();
  const { p, opened } = pool(s.port, { maxIdle: 8 });
  const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => p.exchange(req(i % 2 ? 4 : 0, i))));
  replies.forEach((r, i) => assert.deepEqual(r, req(i % 2 ? 4 : 0, i)));
  assert.equal(opened(), 8);
  assert.equal(p.idleCount, 8);
  // The second round reuses them all.
  await Promise.all(Array.from({ length: 8 }, (_, i) => p.exchange(req(0, 100 + i))));
  assert.equal(opened(), 8);
  await s.stop();
});

test('a request without a reply times out, its connection is dropped, and the next request is not confused', async () => {
  const s = await server();
  const { p, opened } = pool(s.port);
  assert.deepEqual(await p.exchange(req(0, 1)), req(0, 1));
  await assert.rejects(p.exchange(req(1, 2)), (e: unknown) => e instanceof ExchangeError && e.code === 'LPGW_ERR_IO_TIMEOUT');
  assert.equal(p.idleCount, 0);
  assert.deepEqual(await p.exchange(req(0, 3)), req(0, 3));
  assert.equal(opened(), 2, 'a fresh connection after the timeout');
  await s.stop();
});

test('two replies to one request: an error, and the connection is not reused', async () => {
  const s = await server();
  const { p, opened } = pool(s.port);
  // The duplicate arrives in the same chunk (rejected at once) or right after (bytes on an idle connection).
  const first = await p.exchange(req(2, 1)).catch((e: unknown) => e);
  if (first instanceof Uint8Array) {
    assert.deepEqual(first, req(2, 1));
    await wait(50);
  } else assert.ok(first instanceof ExchangeError && first.code === 'LPGW_ERR_BAD_REPLY_FRAME');
  assert.equal(p.idleCount, 0, 'the connection that carried two replies is gone');
  assert.deepEqual(await p.exchange(req(0, 2)), req(0, 2));
  assert.equal(opened(), 2);
  await s.stop();
});

test('a connection the server closed while idle is replaced transparently', async () => {
  const s = await server();
  const { p, opened } = pool(s.port);
  assert.deepEqual(await p.exchange(req(0, 1)), req(0, 1));
  s.closeAll();
  assert.deepEqual(await p.exchange(req(0, 2)), req(0, 2));
  assert.equal(opened(), 2);
  // Answer-then-close: the reply counts, the closed connection is not handed out again.
  assert.deepEqual(await p.exchange(req(3, 3)), req(3, 3));
  await wait(30);
  assert.deepEqual(await p.exchange(req(0, 4)), req(0, 4));
  assert.equal(opened(), 3);
  await s.stop();
});

test('idle connections are bounded, expire, and close() closes them', async () => {
  const s = await server();
  const { p } = pool(s.port, { maxIdle: 2, idleMs: 150 });
  await Promise.all(Array.from({ length: 5 }, (_, i) => p.exchange(req(4, i))));
  assert.equal(p.idleCount, 2, 'only maxIdle kept');
  await wait(60);
  assert.equal(s.open(), 2);
  await wait(250);
  assert.equal(p.idleCount, 0, 'expired');
  await wait(30);
  assert.equal(s.open(), 0);
  await p.exchange(req(0, 9));
  p.close();
  await wait(30);
  assert.equal(s.open(), 0);
  await s.stop();
});

test('connect failures are typed errors', async () => {
  const s = await server();
  const port = s.port;
  await s.stop();
  const { p } = pool(port);
  await assert.rejects(p.exchange(req(0, 1)), (e: unknown) => e instanceof ExchangeError && e.code === 'LPGW_ERR_CONNECT_FAILED');
});
