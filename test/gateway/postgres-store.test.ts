/**
 * The PostgreSQL store as a fleet shares it (in-process, real PostgreSQL): spent serials are global and
 * spent exactly once under concurrency across gateways; peers, pools and grants are per gateway identity;
 * concurrent allocation never hands out an address twice; an unreachable database is a coded retryable error,
 * said once in the log, and the store reconnects by itself; the password never reaches a log line or an error;
 * PGPASSWORD and password files; migrations under concurrency and a newer schema refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { type Credential, type RegisterRequest, TicketType } from '../../src/core/codec/app.js';
import { defaultSuite } from '../../src/core/crypto/index.js';
import { GatewayError } from '../../src/gateway/errors.js';
import { AddressAllocator, formatIp } from '../../src/gateway/registration/allocator.js';
import { RegistrationService } from '../../src/gateway/registration/service.js';
import { PgStore, type StoreObserver } from '../../src/gateway/registration/store.js';
import { redactUrl } from '../../src/gateway/registration/store/postgres-target.js';
import { issuerKeyFromSeed, mintTicket } from '../../src/gateway/registration/tickets.js';
import { MockVerifier, TicketVerifier } from '../../src/gateway/registration/verifiers.js';
import { freePort, postgresSkipReason, startCluster, type PgCluster } from '../helpers/pg-cluster.js';

const prims = defaultSuite.prims;
const NOW = 1_800_000_000;
const GW_A = new Uint8Array(32).fill(0xa1);
const GW_B = new Uint8Array(32).fill(0xb2);
const WG = { publicKey: prims.x25519FromSecret(new Uint8Array(32).fill(0xab)).publicKey, endpoint: { family: 4 as const, address: new Uint8Array([192, 0, 2, 1]), port: 51820 } };
const issuer = issuerKeyFromSeed(new Uint8Array(32).fill(0x11), prims);
const ticket = (): Credential => ({ kind: 'ticket', ticket: mintTicket(issuer, { ticketType: TicketType.V1WireguardEntry, bandwidthBytes: 1n << 30n, expiry: BigInt(NOW + 3600) }, prims) });
const key = (n: number): Uint8Array => {
  const k = new Uint8Array(32);
  new DataView(k.buffer).setUint32(0, n + 1);
  return k;
};
const dvpn = (k: Uint8Array, credential: Credential): RegisterRequest => ({ mode: { kind: 'dvpn', wgPublicKey: k }, credential, ticketType: TicketType.V1WireguardEntry, timestamp: BigInt(NOW) });
const ctx = { wireguardPsk: new Uint8Array(32).fill(7), nowSec: NOW };

/** A logger whose lines the test reads. */
function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) }), lines };
}

function service(store: PgStore, verifier: 'ticket' | 'mock' = 'ticket', allocator = new AddressAllocator({ randomBelow: () => 0 })): RegistrationService {
  return new RegistrationService({ store, verifier: verifier === 'ticket' ? new TicketVerifier({ issuers: [issuer.publicKey], prims }) : new MockVerifier(), wireguard: WG, allocator });
}

describe('PostgreSQL store', { skip: postgresSkipReason() }, () => {
  let cluster: PgCluster;
  const stores: PgStore[] = [];
  const open = async (db: string, gatewayId: Uint8Array, o: { logger?: Logger; observer?: StoreObserver; probeIntervalMs?: number; poolMax?: number } = {}): Promise<PgStore> => {
    const s = await PgStore.open({ url: cluster.url(db), sslmode: 'disable', gatewayId, ...o });
    stores.push(s);
    return s;
  };
  before(async () => {
    cluster = await startCluster({ fsync: false });
  });
  after(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    cluster?.destroy();
  });

  test('fleet semantics: a serial spent at one gateway is spent at every other; each gateway has its own peers, pools and grants', async () => {
    const db = await cluster.createDatabase('fleet');
    const a = await open(db, GW_A);
    const b = await open(db, GW_B);
    const [sa, sb] = [service(a), service(b)];
    const t = ticket();
    const first = await sa.register(dvpn(key(1), t), ctx);
    assert.equal(first.success, true, JSON.stringify(first.error));
    const again = await sb.register(dvpn(key(2), t), ctx);
    assert.equal(again.error?.code, 'LPGW_ERR_TICKET_SPENT');
    // the same WireGuard key at both gateways: two peers, each from its own pool (both lowest-free)
    const atB = await sb.register(dvpn(key(1), ticket()), ctx);
    assert.equal(atB.success, true);
    assert.equal(formatIp(atB.gatewayData?.privateIpv4 ?? new Uint8Array(4)), formatIp(first.gatewayData?.privateIpv4 ?? new Uint8Array(4)));
    assert.deepEqual(await a.counts(), { dvpnPeers: 1, mixnetClients: 0, allocations: 2, spentSerials: 2, bandwidthGrants: 1 });
    assert.deepEqual(await b.counts(), { dvpnPeers: 1, mixnetClients: 0, allocations: 2, spentSerials: 2, bandwidthGrants: 1 });
    // a deregistration at one gateway leaves the other's peer alone
    assert.ok(await a.transaction('test', (tx) => tx.deletePeer(key(1))));
    assert.equal(await a.getPeer(key(1)), null);
    assert.ok(await b.getPeer(key(1)));
    // pruning is fleet-wide: one ledger
    assert.equal(await b.pruneSpentSerials(NOW + 7200), 2);
    assert.equal((await a.counts()).spentSerials, 0);
  });

  test('100 concurrent registrations with one serial across two gateways: exactly one succeeds, nothing else is left behind', async () => {
    const db = await cluster.createDatabase('race');
    const a = await open(db, GW_A, { poolMax: 10 });
    const b = await open(db, GW_B, { poolMax: 10 });
    const [sa, sb] = [service(a, 'ticket', new AddressAllocator()), service(b, 'ticket', new AddressAllocator())];
    const t = ticket();
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? sa : sb).register(dvpn(key(i), t), ctx)));
    const ok = results.filter((r) => r.success);
    assert.equal(ok.length, 1);
    assert.deepEqual([...new Set(results.filter((r) => !r.success).map((r) => r.error?.code))], ['LPGW_ERR_TICKET_SPENT']);
    const total = (await a.counts()).dvpnPeers + (await b.counts()).dvpnPeers;
    assert.equal(total, 1);
    assert.equal((await a.counts()).spentSerials, 1);
    assert.equal((await a.counts()).bandwidthGrants + (await b.counts()).bandwidthGrants, 1);
  });

  test('concurrent registrations at one gateway: random allocation never hands out an address twice; one key registered 10 times at once is one peer', async () => {
    const db = await cluster.createDatabase('alloc');
    const retries: string[] = [];
    const observer: StoreObserver = { transaction: () => undefined, retried: (_op, code) => void retries.push(code), state: () => undefined };
    const store = await open(db, GW_A, { observer });
    // a /26: 61 client addresses for 50 concurrent first registrations, so draws collide often
    const svc = service(store, 'mock', new AddressAllocator({ ipv4Pool: '10.9.0.0/26', ipv6Pool: 'fd00:9::/122' }));
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => svc.register(dvpn(key(1000 + i), { kind: 'mock', blob: new Uint8Array(1) }), ctx)));
    assert.ok(results.every((r) => r.success), JSON.stringify(results.find((r) => !r.success)?.error));
    const v4 = results.map((r) => formatIp(r.gatewayData?.privateIpv4 ?? new Uint8Array(4)));
    const v6 = results.map((r) => formatIp(r.gatewayData?.privateIpv6 ?? new Uint8Array(16)));
    assert.equal(new Set(v4).size, 50, 'distinct IPv4');
    assert.equal(new Set(v6).size, 50, 'distinct IPv6');
    assert.ok(!v4.includes('10.9.0.1') && !v4.includes('10.9.0.63'), 'neither the gateway nor the broadcast address');

    const same = await Promise.all(Array.from({ length: 10 }, () => svc.register(dvpn(key(7), { kind: 'mock', blob: new Uint8Array(1) }), ctx)));
    assert.ok(same.every((r) => r.success));
    assert.equal(new Set(same.map((r) => formatIp(r.gatewayData?.privateIpv4 ?? new Uint8Array(4)))).size, 1, 'one peer, one address');
    assert.equal((await store.getPeer(key(7)))?.registrations, 10);
    assert.equal((await store.counts()).allocations, 2 * 51);
    assert.ok(retries.every((c) => c === '23505' || c === '40P01'), `retried on lost races only: ${retries.join(',')}`);
  });

  test('the password never appears in a log line or an error; a bad address fails to open with a coded error', async () => {
    const { logger, lines } = capture();
    const port = await freePort();
    const url = `postgres://lpgw:${encodeURIComponent(cluster.password)}@127.0.0.1:${port}/nothing`;
    await assert.rejects(PgStore.open({ url, sslmode: 'disable', gatewayId: GW_A, logger, connectTimeoutMs: 1000 }), (e: unknown) => {
      assert.ok(e instanceof GatewayError);
      assert.equal(e.code, 'LPGW_ERR_STORE_UNAVAILABLE');
      assert.ok(!e.message.includes(cluster.password), e.message);
      assert.match(e.message, /\*\*\*/);
      return true;
    });
    assert.equal(redactUrl(url).includes(cluster.password), false);
    assert.ok(lines.every((l) => !l.includes(cluster.password)));
  });

  test('PGPASSWORD and a 0600 password file stand in for a password in the URL; a readable file is ignored', async () => {
    const db = await cluster.createDatabase('pw');
    const dir = mkdtempSync(join(tmpdir(), 'lpgw-pgpass-'));
    try {
      const passfile = join(dir, 'pgpass');
      writeFileSync(passfile, `# comment\nother:1:*:*:nope\n127.0.0.1:${cluster.port}:*:lpgw:${cluster.password.replace(/:/g, '\\:')}\n`, { mode: 0o600 });
      const url = cluster.urlWithoutPassword(db);
      const viaFile = await PgStore.open({ url, sslmode: 'disable', gatewayId: GW_A, env: { PGPASSFILE: passfile } });
      assert.equal(await viaFile.peerCount(), 0);
      await viaFile.close();
      const viaEnv = await PgStore.open({ url, sslmode: 'disable', gatewayId: GW_A, env: { PGPASSWORD: cluster.password } });
      assert.equal(await viaEnv.peerCount(), 0);
      await viaEnv.close();
      chmodSync(passfile, 0o644);
      await assert.rejects(PgStore.open({ url, sslmode: 'disable', gatewayId: GW_A, env: { PGPASSFILE: passfile } }), (e: unknown) => e instanceof GatewayError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('gateways migrating one database at once; a schema from a newer build is refused', async () => {
    const db = await cluster.createDatabase('mig');
    const opened = await Promise.all([GW_A, GW_B, new Uint8Array(32).fill(3)].map((g) => open(db, g)));
    for (const s of opened) assert.equal(await s.schemaVersion(), 3);
    await cluster.query("INSERT INTO lpgw_schema_migrations (version, description) VALUES (99, 'future')", [], db);
    await assert.rejects(PgStore.open({ url: cluster.url(db), sslmode: 'disable', gatewayId: GW_A }), (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_STORE_SCHEMA' && /newer/.test(e.message));
  });

  test('one identity, one process: a second store for a held identity is refused, and opens once the first is closed', async () => {
    const db = await cluster.createDatabase('ident');
    const first = await PgStore.open({ url: cluster.url(db), sslmode: 'disable', gatewayId: GW_A });
    const other = await open(db, GW_B); // another identity on the same database is fine
    assert.equal(await other.peerCount(), 0);
    const { logger, lines } = capture();
    await assert.rejects(PgStore.open({ url: cluster.url(db), sslmode: 'disable', gatewayId: GW_A, identityLockWaitMs: 600, logger }), (e: unknown) => {
      assert.ok(e instanceof GatewayError);
      assert.equal(e.code, 'LPGW_ERR_STORE_IDENTITY_IN_USE');
      assert.match(e.message, /one identity on several hosts is not supported/);
      return true;
    });
    assert.equal(lines.filter((l) => /waiting for it to go/.test(l)).length, 1);
    await first.close();
    const second = await open(db, GW_A, {});
    assert.equal(await second.peerCount(), 0);
  });

  // Last: it stops and restarts the cluster.
  test('database down: LPGW_ERR_STORE_UNAVAILABLE with a retry hint, said once; back: it reconnects by itself and says so once', async () => {
    const db = await cluster.createDatabase('down');
    const { logger, lines } = capture();
    const states: boolean[] = [];
    const observer: StoreObserver = { transaction: () => undefined, retried: () => undefined, state: (up) => void states.push(up) };
    const store = await open(db, GW_A, { logger, observer, probeIntervalMs: 200 });
    const svc = service(store);
    assert.equal((await svc.register(dvpn(key(1), ticket()), ctx)).success, true);
    cluster.stop('immediate');
    for (let i = 0; i < 5; i++) {
      const r = await svc.register(dvpn(key(10 + i), ticket()), ctx);
      assert.equal(r.error?.code, 'LPGW_ERR_STORE_UNAVAILABLE');
      assert.equal(r.error?.retryAfterMs, 200);
    }
    assert.equal(store.health().state, 'unavailable');
    await assert.rejects(store.peerUsage(), (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_STORE_UNAVAILABLE');
    cluster.start();
    const deadline = Date.now() + 15_000;
    while (store.health().state !== 'available' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(store.health().state, 'available', 'the probe found the database again');
    const back = await svc.register(dvpn(key(20), ticket()), ctx);
    assert.equal(back.success, true, JSON.stringify(back.error));
    assert.ok(await store.getPeer(key(1)), 'what was committed before the outage is there');
    const said = (re: RegExp): number => lines.filter((l) => re.test((JSON.parse(l) as { msg: string }).msg)).length;
    assert.equal(said(/registration store unreachable/), 1);
    assert.equal(said(/registration store reachable again/), 1);
    assert.deepEqual(states, [true, false, true]);
    assert.ok(lines.every((l) => !l.includes(cluster.password)), 'no log line holds the password');
    // the identity lock was taken again on the new server
    const lockDeadline = Date.now() + 10_000;
    let refused = false;
    while (!refused && Date.now() < lockDeadline) {
      refused = await PgStore.open({ url: cluster.url(db), sslmode: 'disable', gatewayId: GW_A, identityLockWaitMs: 0 }).then(
        async (s) => {
          await s.close();
          await new Promise((r) => setTimeout(r, 200));
          return false;
        },
        (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_STORE_IDENTITY_IN_USE',
      );
    }
    assert.ok(refused, 'the identity is held again after the restart');
  });
});
