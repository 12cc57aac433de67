/**
 * Directory: descriptors fetched from a local HTTP server and read from a topology file, verified; lookup
 * needs identity AND address; unreachable, timed-out and badly signed sources are logged and skipped; the
 * refresh timer retries failed sources and stops cleanly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { defaultSuite, gatewayKeysFromSeeds } from '../../src/core/index.js';
import { buildDescriptor, recordOf, type GatewayDescriptor } from '../../src/gateway/descriptor.js';
import { Directory, peerDescriptorUrl, type FetchFn } from '../../src/gateway/directory.js';
import { signDirectory } from '../../src/gateway/directory-document.js';
import { fill, gatewayKeys, otherGatewayKeys } from '../helpers/fixtures.js';

const thirdKeys = gatewayKeysFromSeeds(defaultSuite, { ed25519Seed: fill(6, 32), kemSeed: fill(7, 64) });
const fourthKeys = gatewayKeysFromSeeds(defaultSuite, { ed25519Seed: fill(8, 32), kemSeed: fill(9, 64) });

function descriptorFor(keys: typeof gatewayKeys, lpTcp: string): GatewayDescriptor {
  return buildDescriptor({ lpTcp, lpUdp: null, mode: 'exit', wireguard: null }, defaultSuite, keys);
}

// exit A: served over HTTP at /v1/gateway
const exitA = descriptorFor(otherGatewayKeys, '127.0.0.1:50001');
// exit B: listed inline in the topology file
const exitB = descriptorFor(thirdKeys, '[fd00::b]:50002');
// exit C: served at /c, referenced by URL from the topology file
const exitC = descriptorFor(fourthKeys, 'exit-c.example:50003');
// our own descriptor, listed too: must be ignored
const own = descriptorFor(gatewayKeys, '127.0.0.1:41264');
// badly signed: exit A's descriptor with another address
const forged = { ...exitA, lp: { tcp: '127.0.0.1:50099', udp: null } };

let server: Server;
let base: string;
let deadUrl: string;
let dir: string;
const hits = new Map<string, number>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lpgw-directory-'));
  server = createServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    const body = req.url === '/v1/gateway' ? exitA : req.url === '/c' ? exitC : req.url === '/forged' ? forged : req.url === '/own' ? own : null;
    if (req.url === '/notjson') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"oops"');
      return;
    }
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // a port that was just free: connection refused
  const tmp = createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  deadUrl = `http://127.0.0.1:${(tmp.address() as AddressInfo).port}`;
  await new Promise<void>((r) => tmp.close(() => r()));
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

type LogLine = { level: number; msg: string; source?: string; reason?: string };
function captureLogger(): { logger: Logger; lines: () => LogLine[] } {
  const out: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void out.push(s) });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as LogLine) };
}

function topologyFile(gateways: unknown[]): string {
  const f = join(dir, `topology-${Math.random().toString(16).slice(2)}.json`);
  writeFileSync(f, JSON.stringify({ gateways }));
  return f;
}

const id = (d: GatewayDescriptor): Uint8Array => Buffer.from(d.identity_key, 'hex');

describe('Directory', () => {
  test('peer URLs: http://host:port gets /v1/gateway, a full URL is kept', () => {
    assert.equal(peerDescriptorUrl('http://10.0.0.2:8080'), 'http://10.0.0.2:8080/v1/gateway');
    assert.equal(peerDescriptorUrl('http://10.0.0.2:8080/'), 'http://10.0.0.2:8080/v1/gateway');
    assert.equal(peerDescriptorUrl('https://gw.example/custom/path'), 'https://gw.example/custom/path');
  });

  test('loads from peers and a topology file; lookup needs both identity and address', async () => {
    const topology = topologyFile([exitB, { url: `${base}/c` }, own, { url: `${base}/own` }]);
    const { logger, lines } = captureLogger();
    const d = new Directory({ peers: [base], topology, refreshSec: 0, ownIdentity: gatewayKeys.ed25519.publicKey, trustOnFirstUse: true }, defaultSuite, logger);
    const r = await d.load();
    assert.deepEqual(r, { ok: 5, failed: 0, size: 3 });
    assert.equal(d.size, 3);
    assert.deepEqual(d.entries().map((e) => e.identity_key).sort(), [exitA, exitB, exitC].map((e) => e.identity_key).sort());

    assert.deepEqual(d.lookup(id(exitA), '127.0.0.1:50001'), recordOf(exitA));
    assert.deepEqual(d.lookup(id(exitB), '[FD00:0::B]:050002'), recordOf(exitB), 'address compared in normalised form');
    assert.deepEqual(d.lookup(id(exitC), 'EXIT-C.example:50003'), recordOf(exitC));
    // identity right, address wrong / address right, identity wrong / both of different gateways
    assert.equal(d.lookup(id(exitA), '127.0.0.1:50002'), null);
    assert.equal(d.lookup(id(exitB), '127.0.0.1:50001'), null);
    assert.equal(d.lookup(id(exitA), '[fd00::b]:50002'), null);
    // our own identity never matches, nor garbage
    assert.equal(d.lookup(gatewayKeys.ed25519.publicKey, '127.0.0.1:41264'), null);
    assert.equal(d.lookup(id(exitA), 'not an address'), null);
    assert.equal(d.lookup(new Uint8Array(31), '127.0.0.1:50001'), null);
    assert.equal(lines().filter((l) => l.level >= 40).length, 0);
  });

  test('unreachable, failing, non-JSON and badly signed sources are logged once each and skipped', async () => {
    const badTopologyEntry = { ...exitB, issued_at: exitB.issued_at + 1 };
    const topology = topologyFile([badTopologyEntry, { not: 'a descriptor' }, exitB]);
    const { logger, lines } = captureLogger();
    const peers = [deadUrl, `${base}/forged`, `${base}/missing`, `${base}/notjson`, base];
    const d = new Directory({ peers, topology, refreshSec: 0, ownIdentity: gatewayKeys.ed25519.publicKey, trustOnFirstUse: true }, defaultSuite, logger);
    const r = await d.load();
    assert.deepEqual(r, { ok: 2, failed: 6, size: 2 });
    assert.deepEqual(d.lookup(id(exitA), '127.0.0.1:50001'), recordOf(exitA));
    assert.deepEqual(d.lookup(id(exitB), '[fd00::b]:50002'), recordOf(exitB));
    assert.equal(d.lookup(id(exitA), '127.0.0.1:50099'), null, 'the forged address is not allowed');

    const warns = lines().filter((l) => l.level === 40);
    assert.equal(warns.length, 6);
    const reasonOf = (src: string): string => warns.find((w) => w.source === src)?.reason ?? '(no warning)';
    assert.match(reasonOf(deadUrl), /fetch failed|ECONNREFUSED/);
    assert.match(reasonOf(`${base}/forged`), /LPGW_ERR_DESCRIPTOR_SIGNATURE/);
    assert.match(reasonOf(`${base}/missing`), /HTTP 404/);
    assert.match(reasonOf(`${base}/notjson`), /not JSON/);
    assert.match(reasonOf(`${topology} gateways[0]`), /LPGW_ERR_DESCRIPTOR_SIGNATURE/);
    assert.match(reasonOf(`${topology} gateways[1]`), /LPGW_ERR_DESCRIPTOR_MALFORMED/);
    for (const w of warns) assert.ok(w.msg.includes(w.reason ?? '\0'), 'the reason is in the message line too');
  });

  test('a missing or invalid topology file is one warning', async () => {
    const { logger, lines } = captureLogger();
    const missing = join(dir, 'nope.json');
    const d = new Directory({ peers: [], topology: missing, refreshSec: 0, ownIdentity: gatewayKeys.ed25519.publicKey, trustOnFirstUse: true }, defaultSuite, logger);
    assert.deepEqual(await d.load(), { ok: 0, failed: 1, size: 0 });
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"gateways": 5}');
    const d2 = new Directory({ peers: [], topology: bad, refreshSec: 0, ownIdentity: gatewayKeys.ed25519.publicKey, trustOnFirstUse: true }, defaultSuite, logger);
    assert.deepEqual(await d2.load(), { ok: 0, failed: 1, size: 0 });
    const warns = lines().filter((l) => l.level === 40);
    assert.equal(warns.length, 2);
    assert.match(warns[0]?.reason ?? '', /ENOENT/);
    assert.match(warns[1]?.reason ?? '', /gateways/);
  });

  test('fetch timeout: the peer is skipped with a timeout reason', async () => {
    const hang: FetchFn = (_url, init) =>
      new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason as Error));
      });
    const { logger, lines } = captureLogger();
    const d = new Directory({ peers: ['http://192.0.2.1:8080'], topology: '', refreshSec: 0, ownIdentity: gatewayKeys.ed25519.publicKey, fetch: hang, fetchTimeoutMs: 50, trustOnFirstUse: true }, defaultSuite, logger);
    assert.deepEqual(await d.load(), { ok: 0, failed: 1, size: 0 });
    assert.match(lines().find((l) => l.level === 40)?.reason ?? '', /timed out after 50 ms/);
  });

  test('a source that fails later keeps its last descriptor; the refresh timer retries failures and stops', async () => {
    let mode: 'ok' | 'down' = 'down';
    let calls = 0;
    const flaky: FetchFn = async () => {
      calls++;
      if (mode === 'down') throw new TypeError('fetch failed');
      return new Response(JSON.stringify(exitA), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const { logger } = captureLogger();
    const d = new Directory({ peers: ['http://exit-a:8080'], topology: '', refreshSec: 0, ownIdentity: gatewayKeys.ed25519.publicKey, fetch: flaky, trustOnFirstUse: true }, defaultSuite, logger);
    assert.equal((await d.load()).size, 0);
    mode = 'ok';
    d.start(); // refreshSec 0, but a failed source is retried (first retry after 1 s)
    const deadline = Date.now() + 4000;
    while (d.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(d.size, 1, 'retried and loaded');
    d.stop();
    const after = calls;
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(calls, after, 'no fetch after stop(), and none once every source answered with refreshSec 0');

    // the peer goes down again: its last good descriptor stays in the allow-list
    mode = 'down';
    const r = await d.load();
    assert.deepEqual(r, { ok: 0, failed: 1, size: 1 });
    assert.deepEqual(d.lookup(id(exitA), '127.0.0.1:50001'), recordOf(exitA));
  });

  test('concurrent load() calls share one round', async () => {
    const before = hits.get('/v1/gateway') ?? 0;
    const d = new Directory({ peers: [base], topology: '', refreshSec: 0, ownIdentity: gatewayKeys.ed25519.publicKey, trustOnFirstUse: true }, defaultSuite);
    const [a, b] = await Promise.all([d.load(), d.load()]);
    assert.deepEqual(a, b);
    assert.equal((hits.get('/v1/gateway') ?? 0) - before, 1);
    assert.equal(d.entries()[0]?.identity_key, exitA.identity_key);
  });
});

describe('Directory trust anchors', () => {
  const dirKey = defaultSuite.prims.ed25519FromSeed(fill(0x31, 32));
  const otherDirKey = defaultSuite.prims.ed25519FromSeed(fill(0x32, 32));
  const serving = (docs: Record<string, unknown>): FetchFn => async (url) => {
    const body = docs[url];
    return body === undefined ? new Response('', { status: 404 }) : new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  };
  const doc = (o: { version: number; gateways: GatewayDescriptor[]; key?: typeof dirKey; validitySec?: number; issuedAt?: number }): unknown =>
    signDirectory({ key: o.key ?? dirKey, version: o.version, gateways: o.gateways.map(recordOf), validitySec: o.validitySec ?? 3600, ...(o.issuedAt !== undefined ? { issuedAt: o.issuedAt } : {}) }, defaultSuite);
  const warnings = (lines: () => LogLine[]): string[] => lines().filter((l) => l.level === 40).map((l) => l.reason ?? '');

  test('an unpinned peer without a document or TOFU is refused; a pinned one must carry the pinned identity', async () => {
    const { logger, lines } = captureLogger();
    const d = new Directory({ peers: [base, `${base}#${exitA.identity_key}`, `${base}/c#${exitA.identity_key}`], topology: '', refreshSec: 0, ownIdentity: gatewayKeys.ed25519.publicKey }, defaultSuite, logger);
    const r = await d.load();
    assert.equal(r.size, 1, 'only the correctly pinned one');
    assert.deepEqual(d.lookup(id(exitA), '127.0.0.1:50001'), recordOf(exitA));
    assert.equal(d.lookup(id(exitC), 'exit-c.example:50003'), null);
    const w = warnings(lines);
    assert.ok(w.some((x) => /LPGW_ERR_DESCRIPTOR_UNTRUSTED: gateway .* has no trust anchor/.test(x)), w.join('\n'));
    assert.ok(w.some((x) => /LPGW_ERR_DESCRIPTOR_UNTRUSTED: the descriptor's identity .* is not the pinned/.test(x)), w.join('\n'));
    assert.throws(() => new Directory({ peers: [`${base}#abc`], topology: '', refreshSec: 0, ownIdentity: gatewayKeys.ed25519.publicKey }, defaultSuite), (e: unknown) => (e as { code?: string }).code === 'LPGW_ERR_CONFIG');
  });

  test('a signed document anchors its gateways; another key, an expired document or a lower version is refused', async () => {
    const docs: Record<string, unknown> = { 'http://dir/good.json': doc({ version: 2, gateways: [exitA, exitC] }) };
    const { logger, lines } = captureLogger();
    let now = Math.floor(Date.now() / 1000);
    const d = new Directory(
      { peers: [base], documents: ['http://dir/good.json'], keys: [dirKey.publicKey], topology: '', refreshSec: 0, ownIdentity: gatewayKeys.ed25519.publicKey, fetch: async (url, init) => (url.startsWith('http://dir/') ? serving(docs)(url, init) : fetch(url, init)), now: () => now },
      defaultSuite,
      logger,
    );
    await d.load();
    assert.deepEqual(d.lookup(id(exitA), '127.0.0.1:50001'), recordOf(exitA), 'the unpinned peer is anchored by the document');
    assert.deepEqual(d.lookup(id(exitC), 'exit-c.example:50003'), recordOf(exitC), 'a document record is forwardable as signed');
    // a rollback to version 1 is refused; the last good document stays
    docs['http://dir/good.json'] = doc({ version: 1, gateways: [exitA] });
    await d.load();
    assert.ok(warnings(lines).some((x) => /LPGW_ERR_DIRECTORY_ROLLBACK/.test(x)), warnings(lines).join('\n'));
    assert.deepEqual(d.lookup(id(exitC), 'exit-c.example:50003'), recordOf(exitC));
    // signed by another key
    docs['http://dir/good.json'] = doc({ version: 3, gateways: [exitA], key: otherDirKey });
    await d.load();
    assert.ok(warnings(lines).some((x) => /LPGW_ERR_DIRECTORY_SIGNATURE: .*not a trusted directory key/.test(x)));
    // the document expires: its records leave the allow-list (the pinned-less peer with it)
    now += 3601;
    await d.load();
    assert.equal(d.lookup(id(exitC), 'exit-c.example:50003'), null, 'expired document: record gone');
    assert.equal(d.lookup(id(exitA), '127.0.0.1:50001'), null, 'and the peer it anchored lost its trust');
    assert.ok(lines().some((l) => /expired/.test(l.msg)));
  });

  test('a peer whose descriptor disagrees with its document record is refused', async () => {
    const tampered = { ...recordOf(exitA), lp: { tcp: '127.0.0.1:59999', udp: null } };
    const signed = signDirectory({ key: dirKey, version: 1, gateways: [tampered], validitySec: 3600 }, defaultSuite);
    const { logger, lines } = captureLogger();
    const d = new Directory(
      { peers: [base], documents: ['http://dir/x.json'], keys: [dirKey.publicKey], topology: '', refreshSec: 0, ownIdentity: gatewayKeys.ed25519.publicKey, fetch: async (url, init) => (url === 'http://dir/x.json' ? serving({ [url]: signed })(url, init) : fetch(url, init)) },
      defaultSuite,
      logger,
    );
    await d.load();
    assert.equal(d.lookup(id(exitA), '127.0.0.1:50001'), null);
    assert.ok(warnings(lines).some((x) => /does not match its record in the trusted directory document/.test(x)));
  });

  test('a descriptor older than one already seen for its identity is refused (rollback); the newer one stays', async () => {
    const newer = buildDescriptor({ lpTcp: '127.0.0.1:50001', lpUdp: null, mode: 'exit', wireguard: null, issuedAt: Math.floor(Date.now() / 1000) }, defaultSuite, otherGatewayKeys);
    const older = buildDescriptor({ lpTcp: '127.0.0.1:50001', lpUdp: null, mode: 'exit', wireguard: null, issuedAt: Math.floor(Date.now() / 1000) - 600 }, defaultSuite, otherGatewayKeys);
    let current: GatewayDescriptor = newer;
    const { logger, lines } = captureLogger();
    const d = new Directory(
      { peers: [`http://exit-a:8080#${newer.identity_key}`], topology: '', refreshSec: 0, ownIdentity: gatewayKeys.ed25519.publicKey, fetch: async () => new Response(JSON.stringify(current), { status: 200 }) },
      defaultSuite,
      logger,
    );
    await d.load();
    current = older;
    await d.load();
    assert.ok(warnings(lines).some((x) => /LPGW_ERR_DESCRIPTOR_ROLLBACK/.test(x)));
    assert.deepEqual(d.lookup(id(newer), '127.0.0.1:50001'), recordOf(newer));
  });
});
