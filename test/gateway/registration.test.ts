/**
 * Registration (PRODUCT.md §2): address allocation and idempotency, pool exhaustion, mixnet, both
 * credential verifiers (every ticket refusal), grants and deregistration, migrations, restart safety after
 * SIGKILL, the `wg` tool device against a fake `wg` (fault injection and what reaches its command line;
 * the real thing runs in test/wireguard), and the `tickets` CLI commands.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { SERIAL_PRUNE_MARGIN_SEC, pruneExpiredSerials, scheduleSerialPruning } from '../../src/gateway/registration/serial-pruning.js';
import {
  type BandwidthTicket,
  type Credential,
  type RegisterRequest,
  type RegisterResponse,
  TicketType,
  decodeAppMessage,
  encodeAppMessage,
} from '../../src/core/codec/app.js';
import { toHex } from '../../src/core/bytes.js';
import { defaultSuite } from '../../src/core/crypto/index.js';
import { wireguardPsk } from '../../src/core/handshake/key-schedule.js';
import { GatewayError } from '../../src/gateway/errors.js';
import { AddressAllocator, AddressPool, formatIp, parseIp } from '../../src/gateway/registration/allocator.js';
import { RegistrationService, type RegistrationServiceOptions } from '../../src/gateway/registration/service.js';
import { MIGRATIONS, SCHEMA_VERSION, SqliteStore, type RegistrationStore } from '../../src/gateway/registration/store.js';
import { storeBackends, type BackendUnderTest } from '../helpers/store-backends.js';
import {
  type IssuerKey,
  formatTicketLine,
  issuerKeyFromSeed,
  mintTicket,
  parseBandwidth,
  parseDuration,
  readIssuerKeyFile,
  readTicketFile,
} from '../../src/gateway/registration/tickets.js';
import { MOCK_BANDWIDTH_BYTES, MockVerifier, TicketVerifier, type CredentialVerifier } from '../../src/gateway/registration/verifiers.js';
import { DevicePeerApplier, type PeerApplier } from '../../src/gateway/wireguard/peer-applier.js';
import { PeerController } from '../../src/gateway/wireguard/peer-controller.js';
import { WgToolDevice } from '../../src/gateway/wireguard/wg-tool-device.js';
import { ticketsIssueCommand, ticketsIssuerInitCommand } from '../../src/cli/commands/tickets.js';
import { UsageError } from '../../src/cli/command.js';

const prims = defaultSuite.prims;
const NOW = 1_800_000_000;
const GiB = 1n << 30n;
const root = mkdtempSync(join(tmpdir(), 'lpgw-registration-'));
after(() => rmSync(root, { recursive: true, force: true }));

let dirCounter = 0;
const newDir = (): string => join(root, `d${dirCounter++}`);
const BACKENDS = storeBackends();
/** The backend of the suite running now (the suites run one after the other). */
let B: BackendUnderTest = BACKENDS[0] as BackendUnderTest;
const newLocation = (): Promise<string> => B.location();
const key = (n: number): Uint8Array => new Uint8Array(32).fill(n);
// A plain Uint8Array copy: the store returns Uint8Arrays, the BLAKE3 backend Buffers.
const psk = (n: number): Uint8Array => new Uint8Array(wireguardPsk(prims, new Uint8Array(32).fill(0xee), key(n)));
const ip = (s: string): Uint8Array => parseIp(s)?.bytes ?? assert.fail(`bad ip ${s}`);

const issuer: IssuerKey = issuerKeyFromSeed(new Uint8Array(32).fill(0x11), prims);
const otherIssuer: IssuerKey = issuerKeyFromSeed(new Uint8Array(32).fill(0x22), prims);
const gatewayWg = prims.x25519FromSecret(new Uint8Array(32).fill(0xab));
const WG = { publicKey: gatewayWg.publicKey, secretKey: gatewayWg.secretKey, endpoint: { family: 4 as const, address: new Uint8Array([192, 0, 2, 1]), port: 51820 } };
/** Always 0: every random draw hits the gateway's own offset, so the allocator falls back to its k-th-free walk with k = 0 — lowest free first, which makes addresses predictable in tests. */
const lowestFirst = (o: { ipv4Pool?: string; ipv6Pool?: string } = {}): AddressAllocator => new AddressAllocator({ ...o, randomBelow: () => 0 });

function ticket(opts: { type?: TicketType; bandwidth?: bigint; expiry?: number; by?: IssuerKey } = {}): BandwidthTicket {
  return mintTicket(opts.by ?? issuer, { ticketType: opts.type ?? TicketType.V1WireguardEntry, bandwidthBytes: opts.bandwidth ?? 5n * GiB, expiry: BigInt(opts.expiry ?? NOW + 3600) }, prims);
}
const asCredential = (t: BandwidthTicket): Credential => ({ kind: 'ticket', ticket: t });
const mock: Credential = { kind: 'mock', blob: new Uint8Array([1, 2, 3]) };

function dvpn(n: number, credential: Credential = mock, ticketType: TicketType = TicketType.V1WireguardEntry, timestamp = NOW): RegisterRequest {
  return { mode: { kind: 'dvpn', wgPublicKey: key(n) }, credential, ticketType, timestamp: BigInt(timestamp) };
}

interface Gw {
  store: RegistrationStore;
  service: RegistrationService;
  register(req: RegisterRequest, pskFor?: number): Promise<RegisterResponse>;
}

/** A registration service on a store of the current backend (at `dir`, a new location by default), or on `store`. */
async function gateway(verifier: 'mock' | 'ticket', opts: Partial<RegistrationServiceOptions> & { dir?: string; applier?: PeerApplier } = {}): Promise<Gw> {
  const store = opts.store ?? (await B.open(opts.dir ?? (await newLocation())));
  const v: CredentialVerifier = verifier === 'mock' ? new MockVerifier() : new TicketVerifier({ issuers: [issuer.publicKey], prims });
  const service = new RegistrationService({ store, verifier: v, wireguard: WG, allocator: lowestFirst(), ...opts });
  return {
    store,
    service,
    register: (req, pskFor) => {
      const n = req.mode.kind === 'dvpn' ? (req.mode.wgPublicKey[0] ?? 0) : 0;
      return service.register(req, { wireguardPsk: psk(pskFor ?? n), nowSec: NOW });
    },
  };
}

function assertRefused(res: RegisterResponse, code: string, messagePart?: RegExp): void {
  assert.equal(res.success, false, `expected ${code}`);
  assert.equal(res.error?.code, code);
  if (messagePart) assert.match(res.error?.message ?? '', messagePart);
  assert.equal(res.gatewayData, null);
  assert.equal(res.allocatedBandwidth, 0n);
}

function assertAddresses(res: RegisterResponse, v4: string, v6: string): void {
  assert.equal(res.success, true, JSON.stringify(res.error));
  assert.ok(res.gatewayData);
  assert.equal(formatIp(res.gatewayData.privateIpv4), v4);
  assert.equal(formatIp(res.gatewayData.privateIpv6), v6);
}

describe('address pools', () => {
  test('parse, canonical form and reserved addresses', () => {
    const a = new AddressAllocator();
    assert.equal(a.ipv4.cidr, '10.1.0.0/16');
    assert.equal(a.ipv6.cidr, 'fd00:1::/112');
    assert.equal(formatIp(a.ipv4.gatewayAddress), '10.1.0.1');
    assert.equal(formatIp(a.ipv6.gatewayAddress), 'fd00:1::1');
    assert.equal(a.ipv4.capacity, 65533); // .0 network, .1 gateway, .255.255 broadcast
    assert.equal(a.ipv6.capacity, 65534); // ::0 and ::1 reserved, no broadcast
    assert.equal(formatIp(AddressPool.parse('10.1.0.0/16', 4, '10.1.200.7').gatewayAddress), '10.1.200.7');
    for (const [cidr, fam, gw] of [['10.1.0.0/16', 4, '10.2.0.1'], ['10.1.0.0/16', 4, '10.1.0.0'], ['10.1.0.0/16', 4, '10.1.255.255'], ['10.1.0.0/16', 4, 'fd00::1'], ['fd00:1::/112', 6, 'fd00:2::1']] as const) {
      assert.throws(() => AddressPool.parse(cidr, fam, gw), (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_POOL_INVALID', `${cidr} ${gw}`);
    }
    assert.equal(AddressPool.parse('fd00:0001:0000::/64', 6).cidr, 'fd00:1::/64');
    assert.equal(AddressPool.parse('fd00::/64', 6).lastOffset, 2 ** 32 - 1);
    for (const [cidr, fam] of [['10.1.0.5/16', 4], ['10.1.0.0/31', 4], ['10.1.0.0', 4], ['fd00::/112', 4], ['10.0.0.0/8', 6], ['fd00::/127', 6], ['nonsense/8', 4]] as const) {
      assert.throws(() => AddressPool.parse(cidr, fam), (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_POOL_INVALID', cidr);
    }
  });

  test('IP text round trips', () => {
    for (const s of ['::', '::1', 'fd00:1::2', '2001:db8::1:0:0:1', '2001:db8:0:1:1:1:1:1', 'fe80::1:2:3:4', '1::', '10.1.0.2', '0.0.0.0']) {
      assert.equal(formatIp(ip(s)), s);
    }
    assert.equal(formatIp(ip('::ffff:192.0.2.1')), '::ffff:c000:201');
    assert.equal(formatIp(ip('2001:0db8:0000:0000:0000:0000:0000:0001')), '2001:db8::1');
    assert.equal(parseIp('fe80::1%eth0'), null);
    assert.equal(parseIp('1:2:3:4:5:6:7:8:9'), null);
  });
});

describe('store (SQLite file)', () => {
  test('WAL + synchronous=FULL, schema version, file mode 0600', async () => {
    const dir = newDir();
    const store = SqliteStore.open(dir);
    assert.deepEqual(store.durability(), { journalMode: 'wal', synchronous: 2 });
    assert.equal(await store.schemaVersion(), SCHEMA_VERSION);
    assert.equal(statSync(store.path).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    await store.close();
    // a database from a newer build is refused, not silently used
    const raw = new Database(join(dir, 'gateway.sqlite'));
    raw.pragma('user_version = 99');
    raw.close();
    assert.throws(() => SqliteStore.open(dir), (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_STORE_SCHEMA' && /newer/.test(e.message));
  });

  test('migration v2 → v3: peers get their grants (sum of grants, latest ticket expiry) and random allocation takes over', async () => {
    const dir = newDir();
    mkdirSync(dir, { recursive: true });
    const raw = new Database(join(dir, 'gateway.sqlite'));
    for (const [i, sql] of MIGRATIONS.slice(0, 2).entries()) {
      raw.exec(sql);
      raw.pragma(`user_version = ${i + 1}`);
    }
    const blob = (u: Uint8Array): Buffer => Buffer.from(u);
    const t = ticket({ expiry: NOW + 7 * 86_400 });
    raw.prepare('INSERT INTO dvpn_peers (wg_public_key, ipv4, ipv6, psk, registered_at, updated_at, registrations) VALUES (?, ?, ?, NULL, ?, ?, 2)').run(blob(key(1)), blob(ip('10.1.0.2')), blob(ip('fd00:1::2')), NOW - 100, NOW - 50);
    raw.prepare('INSERT INTO dvpn_peers (wg_public_key, ipv4, ipv6, psk, registered_at, updated_at, registrations) VALUES (?, ?, ?, NULL, ?, ?, 1)').run(blob(key(2)), blob(ip('10.1.0.3')), blob(ip('fd00:1::3')), NOW - 100, NOW - 100);
    raw.prepare("INSERT INTO spent_serials VALUES (?, ?, ?, ?, ?, ?)").run(blob(t.issuerKeyId), blob(t.serial), t.ticketType, t.bandwidthBytes, t.expiry, NOW - 50);
    const grant = raw.prepare("INSERT INTO bandwidth_grants (mode, subject, ticket_type, credential, issuer_key_id, serial, bandwidth_bytes, granted_at) VALUES ('dvpn', ?, 2, ?, ?, ?, ?, ?)");
    grant.run(blob(key(1)), 'mock', null, null, GiB, NOW - 100);
    grant.run(blob(key(1)), 'ticket', blob(t.issuerKeyId), blob(t.serial), t.bandwidthBytes, NOW - 50);
    grant.run(blob(key(2)), 'mock', null, null, GiB, NOW - 100);
    raw.prepare('INSERT INTO address_allocations VALUES (?, ?, 4, ?, ?, ?)').run('10.1.0.0/16', 2, blob(ip('10.1.0.2')), blob(key(1)), NOW);
    raw.prepare('INSERT INTO address_allocations VALUES (?, ?, 6, ?, ?, ?)').run('fd00:1::/112', 2, blob(ip('fd00:1::2')), blob(key(1)), NOW);
    raw.prepare('INSERT INTO address_allocations VALUES (?, ?, 4, ?, ?, ?)').run('10.1.0.0/16', 3, blob(ip('10.1.0.3')), blob(key(2)), NOW);
    raw.prepare('INSERT INTO address_allocations VALUES (?, ?, 6, ?, ?, ?)').run('fd00:1::/112', 3, blob(ip('fd00:1::3')), blob(key(2)), NOW);
    raw.close();

    const gw = await gateway('mock', { store: SqliteStore.open(dir) });
    assert.equal(await gw.store.schemaVersion(), SCHEMA_VERSION);
    const p1 = await gw.store.getPeer(key(1));
    assert.equal(p1?.grantedBytes, GiB + t.bandwidthBytes);
    assert.equal(p1?.expiresAt, NOW + 7 * 86_400, "the ticket's expiry");
    assert.equal(p1?.rxBytes, 0n);
    assert.equal((await gw.store.getPeer(key(2)))?.expiresAt, NOW - 100 + 30 * 86_400, 'mock grants: 30 days after the last registration');
    // the v2 bookkeeping is gone; allocation skips the migrated peers' addresses
    assertAddresses(await gw.register(dvpn(3)), '10.1.0.4', 'fd00:1::4');
    assertAddresses(await gw.register(dvpn(1)), '10.1.0.2', 'fd00:1::2');
    const tables = new Database(join(dir, 'gateway.sqlite'), { readonly: true });
    assert.deepEqual(tables.prepare("SELECT name FROM sqlite_master WHERE name IN ('pool_state', 'released_offsets')").all(), []);
    tables.close();
    await gw.store.close();
  });
});

for (const backend of BACKENDS) {
  describe(`registration on ${backend.name}`, { skip: backend.skip }, () => {
    before(async () => {
      B = backend;
      await backend.start();
    });
    after(() => backend.stop());
    describe('dVPN and mixnet registration (mock verifier)', () => {
      test('allocation (lowest-free under injected randomness), idempotent re-registration, GatewayData and bandwidth', async () => {
        const gw = await gateway('mock');
        assertAddresses(await gw.register(dvpn(1)), '10.1.0.2', 'fd00:1::2');
        const r2 = await gw.register(dvpn(2));
        assertAddresses(r2, '10.1.0.3', 'fd00:1::3');
        assert.deepEqual(r2.gatewayData?.publicKey, new Uint8Array(WG.publicKey));
        assert.deepEqual(r2.gatewayData?.endpoint, WG.endpoint);
        assert.equal(r2.allocatedBandwidth, MOCK_BANDWIDTH_BYTES);

        const again = await gw.register(dvpn(1), 99); // new LP session, new PSK, same key
        assertAddresses(again, '10.1.0.2', 'fd00:1::2');
        assert.equal((await gw.store.getPeer(key(1)))?.registrations, 2);
        assert.equal((await gw.store.getPeer(key(1)))?.psk, null, 'no WireGuard interface: the PSK is not stored');
        assert.equal(await gw.store.totalBandwidth('dvpn', key(1)), 2n * MOCK_BANDWIDTH_BYTES, 'the credential history has both');
        assert.equal((await gw.store.getPeer(key(1)))?.grantedBytes, MOCK_BANDWIDTH_BYTES, 'a mock grant does not stack');
        assert.equal(again.allocatedBandwidth, MOCK_BANDWIDTH_BYTES);
        assert.deepEqual(await gw.store.counts(), { dvpnPeers: 2, mixnetClients: 0, allocations: 4, spentSerials: 0, bandwidthGrants: 3 });

        // a freed address is the lowest free one again
        assert.ok(await gw.store.transaction('test', (tx) => tx.deletePeer(key(1))));
        assertAddresses(await gw.register(dvpn(3)), '10.1.0.2', 'fd00:1::2');
        assertAddresses(await gw.register(dvpn(4)), '10.1.0.4', 'fd00:1::4');
        await gw.store.transaction('test', async (tx) => [await tx.deletePeer(key(4)), await tx.deletePeer(key(3))]); // frees .4, then .2
        assertAddresses(await gw.register(dvpn(5)), '10.1.0.2', 'fd00:1::2');
        assertAddresses(await gw.register(dvpn(6)), '10.1.0.4', 'fd00:1::4');
        assertAddresses(await gw.register(dvpn(7)), '10.1.0.5', 'fd00:1::5');

        // the response encodes on the wire
        const wire = decodeAppMessage(encodeAppMessage({ kind: 'registerResponse', response: again }));
        assert.equal(wire.kind, 'registerResponse');
        assert.deepEqual(wire.kind === 'registerResponse' && wire.response.gatewayData?.privateIpv4, ip('10.1.0.2'));

        assert.deepEqual(gw.service.stats().success, { dvpn: 8, mixnet: 0 });
        assert.equal(gw.service.stats().bandwidthGrantedBytes, 8n * MOCK_BANDWIDTH_BYTES);
        await gw.store.close();
      });

      test('pool exhaustion is LPGW_ERR_POOL_EXHAUSTED and leaves no trace; known keys still work', async () => {
        const results: [string, string | null][] = [];
        const gw = await gateway('ticket', {
          allocator: lowestFirst({ ipv4Pool: '10.9.0.0/29', ipv6Pool: 'fd00:9::/125' }), // 5 IPv4 clients, 6 IPv6
          onResult: (mode, result, code) => results.push([`${mode}:${result}`, code]),
        });
        for (let n = 1; n <= 5; n++) assertAddresses(await gw.register(dvpn(n, asCredential(ticket()))), `10.9.0.${n + 1}`, `fd00:9::${n + 1}`);
        const t6 = ticket();
        const before = await gw.store.counts();
        assertRefused(await gw.register(dvpn(6, asCredential(t6))), 'LPGW_ERR_POOL_EXHAUSTED', /10\.9\.0\.0\/29 is exhausted/);
        assert.deepEqual(await gw.store.counts(), before);
        assert.equal(await gw.store.isSerialSpent(t6.issuerKeyId, t6.serial), false, 'the ticket was not spent');
        assert.equal(await gw.store.getPeer(key(6)), null);
        assertAddresses(await gw.register(dvpn(3, asCredential(ticket()))), '10.9.0.4', 'fd00:9::4');
        assert.deepEqual(results.at(-2), ['dvpn:failure', 'LPGW_ERR_POOL_EXHAUSTED']);
        assert.deepEqual(results.at(-1), ['dvpn:success', null]);
        assert.equal(gw.service.stats().failuresByCode.LPGW_ERR_POOL_EXHAUSTED, 1);
        await gw.store.close();
      });

      test('a reconfigured, overlapping pool skips addresses still held by existing peers', async () => {
        const dir = await newLocation();
        const gw = await gateway('mock', { dir });
        assertAddresses(await gw.register(dvpn(1)), '10.1.0.2', 'fd00:1::2');
        await gw.store.close();
        const gw2 = await gateway('mock', { dir, allocator: lowestFirst({ ipv4Pool: '10.1.0.0/24', ipv6Pool: 'fd00:1::/120' }) });
        assertAddresses(await gw2.register(dvpn(2)), '10.1.0.3', 'fd00:1::3');
        assertAddresses(await gw2.register(dvpn(1)), '10.1.0.2', 'fd00:1::2'); // known keys keep their addresses
        await gw2.store.close();
      });

      test('mixnet records client_id and returns no gateway data', async () => {
        const gw = await gateway('mock');
        const clientId = new Uint8Array(32).fill(0x42);
        const req: RegisterRequest = { mode: { kind: 'mixnet', clientId }, credential: mock, ticketType: TicketType.V1MixnetEntry, timestamp: BigInt(NOW) };
        for (let i = 1; i <= 2; i++) {
          const res = await gw.register(req);
          assert.deepEqual(res, { success: true, error: null, gatewayData: null, allocatedBandwidth: MOCK_BANDWIDTH_BYTES });
          assert.equal((await gw.store.getMixnetClient(clientId))?.registrations, i);
        }
        assert.equal((await gw.store.counts()).dvpnPeers, 0);
        assertRefused(await gw.register({ ...req, ticketType: TicketType.V1WireguardEntry }), 'LPGW_ERR_TICKET_WRONG_TYPE', /mixnet registration cannot use a wireguard-entry ticket/);
        assert.deepEqual(gw.service.stats().success, { dvpn: 0, mixnet: 2 });
        assert.deepEqual(gw.service.stats().failure, { dvpn: 0, mixnet: 1 });
        await gw.store.close();
      });

      test('timestamp tolerance, malformed requests and gateway ticket types', async () => {
        const gw = await gateway('mock', { acceptedTicketTypes: [TicketType.V1WireguardEntry, TicketType.V1MixnetEntry] });
        assert.equal((await gw.register(dvpn(1, mock, TicketType.V1WireguardEntry, NOW - 30))).success, true);
        assert.equal((await gw.register(dvpn(1, mock, TicketType.V1WireguardEntry, NOW + 30))).success, true);
        assertRefused(await gw.register(dvpn(2, mock, TicketType.V1WireguardEntry, NOW + 31)), 'LPGW_ERR_REGISTRATION_TIMESTAMP', /31 s away/);
        assertRefused(await gw.register(dvpn(2, mock, TicketType.V1WireguardEntry, NOW - 3600)), 'LPGW_ERR_REGISTRATION_TIMESTAMP');
        assertRefused(await gw.register(dvpn(0)), 'LPGW_ERR_REGISTRATION_MALFORMED');
        assertRefused(await gw.register(dvpn(2, mock, TicketType.V1MixnetEntry)), 'LPGW_ERR_TICKET_WRONG_TYPE');
        assertRefused(await gw.register(dvpn(2, mock, TicketType.V1WireguardExit)), 'LPGW_ERR_TICKET_WRONG_TYPE', /does not accept wireguard-exit/);
        assertRefused(await gw.register(dvpn(2, { kind: 'mock', blob: new Uint8Array(5000) })), 'LPGW_ERR_CREDENTIAL_MALFORMED');
        assert.equal(await gw.store.getPeer(key(2)), null);
        await gw.store.close();
      });

      test('internal errors become LPGW_ERR_INTERNAL, never a throw', async () => {
        const gw = await gateway('mock');
        await gw.store.close();
        assertRefused(await gw.register(dvpn(1)), 'LPGW_ERR_INTERNAL', /^internal error/);
      });
    });

    describe('ticket verifier', () => {
      test('a valid ticket registers and grants its bandwidth; a replay is LPGW_ERR_TICKET_SPENT', async () => {
        const gw = await gateway('ticket');
        const t = ticket({ bandwidth: 3n * GiB });
        const ok = await gw.register(dvpn(1, asCredential(t)));
        assertAddresses(ok, '10.1.0.2', 'fd00:1::2');
        assert.equal(ok.allocatedBandwidth, 3n * GiB);
        assert.equal(await gw.store.isSerialSpent(t.issuerKeyId, t.serial), true);

        const before = await gw.store.counts();
        const replay = await gw.register(dvpn(2, asCredential(t)));
        assertRefused(replay, 'LPGW_ERR_TICKET_SPENT', new RegExp(`ticket serial ${toHex(t.serial)} from issuer ${toHex(issuer.keyId)} has already been spent`));
        assertRefused(await gw.register(dvpn(1, asCredential(t))), 'LPGW_ERR_TICKET_SPENT');
        assert.equal(await gw.store.getPeer(key(2)), null, 'a refused registration allocates nothing');
        assert.deepEqual(await gw.store.counts(), before);

        // the same ticket bytes after a trip through the wire codec are still the same serial
        const wire = decodeAppMessage(encodeAppMessage({ kind: 'register', request: dvpn(3, asCredential(t)) }));
        assert.ok(wire.kind === 'register');
        assertRefused(await gw.register(wire.request), 'LPGW_ERR_TICKET_SPENT');

        // mixnet tickets spend serials the same way
        const mt = ticket({ type: TicketType.V1MixnetExit });
        const mreq: RegisterRequest = { mode: { kind: 'mixnet', clientId: key(7) }, credential: asCredential(mt), ticketType: TicketType.V1MixnetExit, timestamp: BigInt(NOW) };
        assert.equal((await gw.register(mreq)).allocatedBandwidth, 5n * GiB);
        assertRefused(await gw.register(mreq), 'LPGW_ERR_TICKET_SPENT');
        await gw.store.close();
      });

      test('forged, foreign, expired, mistyped and mock credentials are refused without a trace', async () => {
        const gw = await gateway('ticket');
        const good = ticket();
        const sig = new Uint8Array(good.signature);
        sig[0] = (sig[0] ?? 0) ^ 1;
        const cases: [string, Credential, TicketType, string, RegExp][] = [
          ['flipped signature bit', asCredential({ ...good, signature: sig }), TicketType.V1WireguardEntry, 'LPGW_ERR_TICKET_BAD_SIGNATURE', /does not verify/],
          ['inflated bandwidth', asCredential({ ...good, bandwidthBytes: 500n * GiB }), TicketType.V1WireguardEntry, 'LPGW_ERR_TICKET_BAD_SIGNATURE', /does not verify/],
          ['extended expiry', asCredential({ ...good, expiry: good.expiry + 86400n }), TicketType.V1WireguardEntry, 'LPGW_ERR_TICKET_BAD_SIGNATURE', /does not verify/],
          ['retyped ticket', asCredential({ ...good, ticketType: TicketType.V1WireguardExit }), TicketType.V1WireguardExit, 'LPGW_ERR_TICKET_BAD_SIGNATURE', /does not verify/],
          ['unknown issuer', asCredential(ticket({ by: otherIssuer })), TicketType.V1WireguardEntry, 'LPGW_ERR_TICKET_UNKNOWN_ISSUER', new RegExp(`issuer ${toHex(otherIssuer.keyId)} is not trusted`)],
          ['expired', asCredential(ticket({ expiry: NOW - 1 })), TicketType.V1WireguardEntry, 'LPGW_ERR_TICKET_EXPIRED', /expired at/],
          ['wrong type', asCredential(ticket({ type: TicketType.V1WireguardExit })), TicketType.V1WireguardEntry, 'LPGW_ERR_TICKET_WRONG_TYPE', /wireguard-exit ticket but the registration asks for wireguard-entry/],
          ['mock credential', mock, TicketType.V1WireguardEntry, 'LPGW_ERR_CREDENTIAL_REJECTED', /mock credentials are refused/],
          ['short serial', asCredential({ ...good, serial: new Uint8Array(8) }), TicketType.V1WireguardEntry, 'LPGW_ERR_CREDENTIAL_MALFORMED', /serial/],
        ];
        for (const [name, credential, type, code, msg] of cases) {
          const res = await gw.register(dvpn(1, credential, type));
          assert.equal(res.error?.code, code, name);
          assertRefused(res, code, msg);
        }
        assert.deepEqual(await gw.store.counts(), { dvpnPeers: 0, mixnetClients: 0, allocations: 0, spentSerials: 0, bandwidthGrants: 0 });
        // an expiry exactly now is still valid; the untouched ticket still works after all that
        assertAddresses(await gw.register(dvpn(1, asCredential(ticket({ expiry: NOW })))), '10.1.0.2', 'fd00:1::2');
        assert.equal((await gw.register(dvpn(1, asCredential(good)))).success, true);
        await gw.store.close();
      });

      test('mock verifier accepts a well-formed ticket without checking it', async () => {
        const gw = await gateway('mock');
        const res = await gw.register(dvpn(1, asCredential(ticket({ by: otherIssuer, expiry: NOW - 100 }))));
        assert.equal(res.success, true);
        assert.equal(res.allocatedBandwidth, MOCK_BANDWIDTH_BYTES);
        await gw.store.close();
      });
    });

    describe('store', () => {
      test('restart safety: a registration committed before SIGKILL survives', async () => {
        const dir = await newLocation();
        const t = ticket();
        // the location (for PostgreSQL a URL with a password) goes in a 0600 file, not on the command line
        const child = spawn(process.execPath, ['--import', 'tsx', join(dirname(fileURLToPath(import.meta.url)), '../helpers/registration-child.ts'), B.specFile(dir), toHex(issuer.publicKey), formatTicketLine(t), toHex(key(5)), toHex(psk(5)), String(NOW)], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
        let committed: { ipv4: string; ipv6: string } | null = null;
        for await (const line of createInterface({ input: child.stdout })) {
          if (line.startsWith('committed ')) {
            child.kill('SIGKILL'); // right after the line: no graceful close
            committed = JSON.parse(line.slice('committed '.length)) as { ipv4: string; ipv6: string };
            break;
          }
          assert.fail(`unexpected child output: ${line}`);
        }
        assert.equal(await exited, 'SIGKILL');
        assert.ok(committed, 'the child committed a registration');
        const addr = { ipv4: formatIp(Buffer.from(committed.ipv4, 'hex')), ipv6: formatIp(Buffer.from(committed.ipv6, 'hex')) };
        if (B.name === 'sqlite') assert.ok(existsSync(join(dir, 'gateway.sqlite-wal')), 'the commit sits in the WAL, not yet checkpointed');

        const gw = await gateway('ticket', { dir });
        assert.deepEqual((await gw.store.getPeer(key(5)))?.psk, psk(5), 'the PSK was kept for re-applying the peer');
        assertAddresses(await gw.register(dvpn(5, asCredential(ticket()))), addr.ipv4, addr.ipv6);
        assertRefused(await gw.register(dvpn(6, asCredential(t))), 'LPGW_ERR_TICKET_SPENT');
        const other = await gw.register(dvpn(6, asCredential(ticket())));
        assert.equal(other.success, true);
        assert.notEqual(formatIp(other.gatewayData?.privateIpv4 ?? new Uint8Array(4)), addr.ipv4, 'the committed address stays taken');
        await gw.store.close();
      });
    });

    describe('wg tool device (fake wg on PATH: fault injection and what reaches the command line)', () => {
      const bin = join(root, 'fake-bin');
      const log = join(root, 'fake-wg.log');
      const failFlag = join(root, 'fake-wg.fail');
      const privateDir = join(root, 'wg-private');
      mkdirSync(bin, { recursive: true });
      // records argv, and the mode and content of any argument that is a file at call time; `show … dump`
      // prints an interface with no peers; fails while failFlag exists
      writeFileSync(
        join(bin, 'wg'),
        `#!/bin/sh
    { echo "=== argv"; for a in "$@"; do echo "$a"; done
      for a in "$@"; do if [ -f "$a" ]; then echo "=== file $(stat -c %a "$a")"; cat "$a"; fi; done; echo "=== end"; } >> '${log}'
    [ -e '${failFlag}' ] && { echo "Unable to modify interface: Operation not permitted" >&2; exit 1; }
    [ "$1" = show ] && printf '(none)\\t${Buffer.from(gatewayWg.publicKey).toString('base64')}\\t51820\\toff\\n'
    exit 0
    `,
      );
      chmodSync(join(bin, 'wg'), 0o755);

      interface Call {
        argv: string[];
        fileMode: string | null;
        file: string;
      }
      const calls = (): Call[] =>
        existsSync(log)
          ? readFileSync(log, 'utf8')
              .split('=== argv\n')
              .slice(1)
              .map((chunk) => {
                const [argv = '', rest = ''] = chunk.split(/=== (?:file|end)/);
                const mode = /^ (\d+)\n/.exec(rest);
                return { argv: argv.split('\n').filter((a) => a !== ''), fileMode: mode?.[1] ?? null, file: mode ? rest.slice(mode[0].length) : '' };
              })
          : [];

      async function withFakeWg(fn: () => Promise<void>): Promise<void> {
        const saved = process.env.PATH;
        process.env.PATH = `${bin}:${saved ?? ''}`;
        rmSync(log, { force: true });
        try {
          await fn();
        } finally {
          process.env.PATH = saved;
          rmSync(failFlag, { force: true });
        }
      }
      const device = (): WgToolDevice => new WgToolDevice('wgtest0', { privateDir });
      const silent = pino({ level: 'silent' });

      test('registration applies the peer with its PSK in a 0600 file, removed at once; start re-applies stored peers in one addconf', () =>
        withFakeWg(async () => {
          const dir = await newLocation();
          const gw = await gateway('mock', { dir, applier: new DevicePeerApplier(device()) });
          assertAddresses(await gw.register(dvpn(1)), '10.1.0.2', 'fd00:1::2');
          const pskB64 = Buffer.from(psk(1)).toString('base64');
          const set = calls().at(-1);
          assert.equal(set?.argv[0], 'addconf');
          assert.equal(set?.argv[1], 'wgtest0');
          assert.equal(set?.fileMode, '600', 'the PSK file is private');
          assert.equal(set?.file.trim(), `[Peer]\nPublicKey = ${Buffer.from(key(1)).toString('base64')}\nPresharedKey = ${pskB64}\nAllowedIPs = 10.1.0.2/32, fd00:1::2/128\nPersistentKeepalive = off`);
          assert.equal(existsSync(set?.argv[2] ?? ''), false, 'the file is gone once wg returned');
          assert.deepEqual(readdirSync(privateDir), []);
          assert.deepEqual((await gw.store.getPeer(key(1)))?.psk, psk(1), 'with a WireGuard interface the PSK is stored');
          assertAddresses(await gw.register(dvpn(2)), '10.1.0.3', 'fd00:1::3');
          await gw.store.close();

          // restart: the controller reads the device, then every stored peer goes back in one `wg addconf`
          const store = await B.open(dir);
          const applier = new DevicePeerApplier(device());
          const pools = lowestFirst();
          const noop = { peers: () => undefined, transfer: () => undefined, removed: () => undefined, poll: () => undefined, reapplied: () => undefined };
          const controller = new PeerController({ store, applier, pools: { ipv4: pools.ipv4, ipv6: pools.ipv6 }, pollSec: 3600, idleTimeoutSec: 0, metrics: noop, logger: silent, now: () => NOW });
          rmSync(log, { force: true });
          const started = await controller.start();
          controller.stop();
          assert.equal(started.reapplied, 2);
          assert.equal(started.missing, 2);
          const argvs = calls().map((c) => c.argv.slice(0, 2).join(' '));
          assert.deepEqual(argvs.slice(0, 2), ['show wgtest0', 'addconf wgtest0']);
          const addconf = calls()[1];
          assert.match(addconf?.file ?? '', /AllowedIPs = 10\.1\.0\.2\/32, fd00:1::2\/128/);
          assert.match(addconf?.file ?? '', /AllowedIPs = 10\.1\.0\.3\/32, fd00:1::3\/128/);
          assert.equal((addconf?.file.match(/\[Peer\]/g) ?? []).length, 2);

          for (const c of calls()) {
            for (const n of [1, 2]) {
              const secret = psk(n);
              assert.ok(!c.argv.some((a) => a.includes(Buffer.from(secret).toString('base64')) || a.includes(toHex(secret))), 'PSK never on the command line');
            }
          }
          await store.close();
        }));

      test('a failing `wg` undoes the registration and gives the ticket back', () =>
        withFakeWg(async () => {
          const gw = await gateway('ticket', { applier: new DevicePeerApplier(device()) });
          const t = ticket();
          writeFileSync(failFlag, '');
          assertRefused(await gw.register(dvpn(1, asCredential(t))), 'LPGW_ERR_WG_APPLY');
          assert.deepEqual(calls().map((c) => `${c.argv[0]} ${c.argv.at(-1)}`), [`addconf ${calls()[0]?.argv[2]}`, 'set remove']);
          assert.equal(await gw.store.getPeer(key(1)), null);
          assert.equal(await gw.store.isSerialSpent(t.issuerKeyId, t.serial), false);
          assert.deepEqual(await gw.store.counts(), { dvpnPeers: 0, mixnetClients: 0, allocations: 0, spentSerials: 0, bandwidthGrants: 0 });
          assert.deepEqual(readdirSync(privateDir), [], 'no PSK file left behind after a failure');
          rmSync(failFlag);
          assertAddresses(await gw.register(dvpn(1, asCredential(t))), '10.1.0.2', 'fd00:1::2');
          await gw.store.close();
        }));

      test('a missing or hanging `wg` is a coded error; bad interface names are refused', async () => {
        const missing = new WgToolDevice('wg0', { privateDir, wgPath: join(root, 'no-such-wg') });
        await assert.rejects(missing.upsertPeers([{ publicKey: key(1), psk: psk(1), ipv4: ip('10.1.0.2'), ipv6: ip('fd00:1::2') }], { keepaliveSec: 0 }), (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_WG_APPLY' && /cannot run/.test(e.message));
        await assert.rejects(missing.read(), (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_WG_CONTROL');
        const slow = join(root, 'slow-wg');
        writeFileSync(slow, '#!/bin/sh\nexec sleep 10\n');
        chmodSync(slow, 0o755);
        const hung = new WgToolDevice('wg0', { privateDir, wgPath: slow, timeoutMs: 150 });
        await assert.rejects(hung.removePeers([key(1)]), (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_WG_APPLY' && /timed out/.test(e.message));
        assert.throws(() => new WgToolDevice('-rf', { privateDir }), GatewayError);
        assert.throws(() => new WgToolDevice('a-very-long-interface-name', { privateDir }), GatewayError);
      });
    });

    describe('tickets CLI', () => {
      const LP_GATEWAY_BIN = fileURLToPath(new URL('../../bin/lp-gateway.js', import.meta.url));
      /**
       * Runs `lp-gateway …` as a process and collects its output. Not by swapping process.stdout.write in this
       * process: the test runner reports results on this process's stdout, and a report written during the swap
       * was swallowed — a test vanished from the count now and then (a failure would have vanished too).
       */
      function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
        return new Promise((resolve, reject) => {
          execFile(process.execPath, [LP_GATEWAY_BIN, ...args], { timeout: 60_000 }, (e, out, err) => {
            const code = e === null ? 0 : typeof e.code === 'number' ? e.code : null;
            if (code === null) reject(e ?? new Error('no exit status'));
            else resolve({ code, out, err });
          });
        });
      }

      test('issuer-init + issue produce tickets the ticket verifier accepts', async () => {
        const dir = newDir();
        mkdirSync(dir, { recursive: true });
        const keyFile = join(dir, 'issuer.key');
        const ticketFile = join(dir, 'tickets.txt');

        const init = await cli(['tickets', 'issuer-init', '--out', keyFile]);
        assert.equal(init.code, 0);
        const issuerKey = readIssuerKeyFile(keyFile);
        assert.match(init.out, new RegExp(`public key: ${toHex(issuerKey.publicKey)}\\nkey id: +${toHex(issuerKey.keyId)}\\n`));
        assert.equal(statSync(keyFile).mode & 0o777, 0o600);
        const again = await cli(['tickets', 'issuer-init', '--out', keyFile]);
        assert.equal(again.code, 1);
        assert.match(again.err, /already exists/);

        const issue = await cli(['tickets', 'issue', '--issuer-key', keyFile, '--type', 'wireguard-entry', '--bandwidth', '1GiB', '--valid-for', '30d', '--out', ticketFile, '--count', '3']);
        assert.equal(issue.code, 0, issue.err);
        assert.match(issue.out, /wrote 3 wireguard-entry tickets, 1 GiB each/);
        assert.equal(statSync(ticketFile).mode & 0o777, 0o600);
        const exists = await cli(['tickets', 'issue', '--issuer-key', keyFile, '--type', 'wireguard-exit', '--bandwidth', '1000', '--valid-for', '1h', '--out', ticketFile]);
        assert.equal(exists.code, 1);
        assert.match(exists.err, /--append/);
        const appended = await cli(['tickets', 'issue', '--issuer-key', keyFile, '--type', 'wireguard-exit', '--bandwidth', '1000', '--valid-for', '1h', '--out', ticketFile, '--append']);
        assert.equal(appended.code, 0, appended.err);

        const tickets = readTicketFile(ticketFile);
        assert.equal(tickets.length, 4);
        assert.equal(new Set(tickets.map((t) => toHex(t.serial))).size, 4, 'random serials');
        const now = Math.floor(Date.now() / 1000);
        const store = await B.open(await newLocation());
        const verifier = new TicketVerifier({ issuers: [issuerKey.publicKey] });
        const [t0, t1, t2, t3] = tickets;
        assert.ok(t0 && t1 && t2 && t3);
        assert.ok(Math.abs(Number(t0.expiry) - (now + 30 * 86400)) <= 5);
        for (const t of [t0, t1, t2]) assert.equal((await verifier.verify({ kind: 'ticket', ticket: t }, TicketType.V1WireguardEntry, now, store)).bandwidthBytes, GiB);
        assert.equal((await verifier.verify({ kind: 'ticket', ticket: t3 }, TicketType.V1WireguardExit, now, store)).bandwidthBytes, 1000n);
        await assert.rejects(verifier.verify({ kind: 'ticket', ticket: t0 }, TicketType.V1WireguardEntry, now, store), (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_TICKET_SPENT');
        await store.close();
      });

      test('usage errors and help texts', async () => {
        await assert.rejects(ticketsIssuerInitCommand.run([]), UsageError);
        const base = ['--issuer-key', 'k', '--type', 'wireguard-entry', '--bandwidth', '1GiB', '--valid-for', '30d', '--out', 'o'];
        await assert.rejects(ticketsIssueCommand.run(base.slice(2)), /--issuer-key FILE is required|--issuer-key is required/);
        await assert.rejects(ticketsIssueCommand.run([...base.slice(0, 3), 'wireguard', ...base.slice(4)]), /--type must be one of mixnet-entry, mixnet-exit, wireguard-entry, wireguard-exit/);
        await assert.rejects(ticketsIssueCommand.run([...base.slice(0, 5), 'lots', ...base.slice(6)]), UsageError);
        await assert.rejects(ticketsIssueCommand.run([...base, '--count', '0']), UsageError);
        await assert.rejects(ticketsIssueCommand.run([...base, '--bogus']), (e: unknown) => (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION');
        assert.deepEqual(ticketsIssuerInitCommand.path, ['tickets', 'issuer-init']);
        assert.deepEqual(ticketsIssueCommand.path, ['tickets', 'issue']);
        assert.match(ticketsIssueCommand.help, /--valid-for DURATION/);
        assert.equal(parseBandwidth('1GiB'), GiB);
        assert.equal(parseBandwidth('500 MB'), 500_000_000n);
        assert.equal(parseBandwidth('0'), null);
        assert.equal(parseBandwidth('9223372036854775808'), null);
        assert.equal(parseDuration('30d'), 30 * 86400);
        assert.equal(parseDuration('90'), 90);
        assert.equal(parseDuration('1y'), null);
      });
    });

    describe('spent serial pruning', () => {
      test('serials are forgotten a day after their ticket expired, at start and on schedule; counted and logged', async () => {
        const store = await B.open(await newLocation());
        const now = 2_000_000_000;
        const issuer = new Uint8Array(8).fill(1);
        const serial = (n: number): Uint8Array => new Uint8Array(16).fill(n);
        const spend = (n: number, expiry: number): Promise<boolean> =>
          store.spendSerial({ issuerKeyId: issuer, serial: serial(n), ticketType: TicketType.V1WireguardEntry, bandwidthBytes: 1n, expiry: BigInt(expiry), nowSec: now - 100 });
        assert.ok(await spend(1, now - 3 * 86400)); // long expired: forgotten
        assert.ok(await spend(2, now - SERIAL_PRUNE_MARGIN_SEC - 1)); // just past the margin: forgotten
        assert.ok(await spend(3, now - 3600)); // expired an hour ago: kept (clock could be stepped back)
        assert.ok(await spend(4, now + 86400)); // still valid: kept
        const lines: string[] = [];
        const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
        const pruned: number[] = [];
        const pruning = scheduleSerialPruning(store, logger, (n) => pruned.push(n), () => now);
        await pruning.first;
        await pruning.stop();
        assert.deepEqual(pruned, [2]);
        assert.equal((await store.counts()).spentSerials, 2);
        assert.ok(!await store.isSerialSpent(issuer, serial(1)) && !await store.isSerialSpent(issuer, serial(2)));
        assert.ok(await store.isSerialSpent(issuer, serial(3)) && await store.isSerialSpent(issuer, serial(4)));
        assert.ok(lines.some((l) => (JSON.parse(l) as { msg: string; pruned: number }).pruned === 2));
        // Nothing left to forget: no log line, zero counted.
        assert.equal(await pruneExpiredSerials(store, now, logger), 0);
        assert.equal(lines.length, 1);
        await store.close();
      });

      test('a failing pass is logged, never thrown', async () => {
        const lines: string[] = [];
        const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
        const pruning = scheduleSerialPruning({ pruneSpentSerials: () => Promise.reject(new Error('disk I/O error')) }, logger);
        await pruning.stop();
        assert.ok(lines.some((l) => /pruning spent ticket serials failed/.test(l)));
      });
    });

  });
}
