/**
 * Restart safety and graceful shutdown of real `lp-gateway run` processes:
 *  - kill -9 and restart on the same data directory: a WireGuard key keeps its addresses, and a ticket
 *    serial spent before the kill stays spent (ticket verifier);
 *  - SIGTERM: exit 0 within the grace period, the in-flight telescoped request to a slow exit still gets
 *    its reply, and the SQLite database was closed cleanly (integrity_check ok, WAL checkpointed away).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MessageType, TicketType, parseClear, toHex } from '../../src/core/index.js';
import { ForwardTransport, LpConnection, TcpStreamTransport, UdpTransport, fetchDescriptor } from '../../src/client/index.js';
import { STORE_FILE_NAME } from '../../src/gateway/registration/store.js';
import { generateIssuerKey, mintTicket } from '../../src/gateway/registration/tickets.js';
import { scrape, startGatewayProcess, stopAll, tempDataDir } from '../helpers/gateway-process.js';
import { assertRegistered, clientHelloPacket, closeTracked, getStats, metric, mockDvpnRequest, nowSec, randomWgKey, startExitStandIn, ticketDvpnRequest, tracked, type ExitStandIn } from '../helpers/lp-e2e.js';

after(async () => {
  closeTracked();
  await stopAll();
});

describe('restart safety (kill -9, same data directory)', () => {
  test('a WireGuard key keeps its addresses and a spent ticket serial stays spent', async () => {
    const issuer = generateIssuerKey();
    const env = { LPGW_REGISTRATION_CREDENTIAL_VERIFIER: 'ticket', LPGW_REGISTRATION_TICKET_ISSUERS: toHex(issuer.publicKey) };
    const mint = (): ReturnType<typeof mintTicket> => mintTicket(issuer, { ticketType: TicketType.V1WireguardEntry, bandwidthBytes: 5_000_000n, expiry: BigInt(nowSec() + 3600) });
    const dataDir = tempDataDir();
    const wgKey = randomWgKey();
    const spent = mint();

    const first = await startGatewayProcess([], { dataDir, env });
    const d1 = await fetchDescriptor(first.http);
    const c1 = await LpConnection.connect({ transport: tracked(new TcpStreamTransport(first.lpTcp)), gateway: d1.pin });
    const r1 = await c1.register(ticketDvpnRequest(spent, wgKey));
    const addrs = assertRegistered(r1);
    assert.equal(r1.allocatedBandwidth, 5_000_000n, 'the ticket verifier grants the ticket bandwidth');
    // The same serial is refused while the gateway runs, too.
    const replay = await c1.register(ticketDvpnRequest(spent, randomWgKey()));
    assert.equal(replay.success, false);
    assert.equal(replay.error?.code, 'LPGW_ERR_TICKET_SPENT');
    c1.close();

    assert.equal(await first.stop('SIGKILL'), null, 'killed by the signal, no graceful close');
    assert.ok(existsSync(join(dataDir, `${STORE_FILE_NAME}-wal`)), 'after kill -9 the WAL was not checkpointed (no clean close)');

    const second = await startGatewayProcess([], { dataDir, env });
    const d2 = await fetchDescriptor(second.http);
    assert.equal(d2.descriptor.identity_key, d1.descriptor.identity_key, 'same keys after the restart');
    assert.equal(d2.descriptor.kem.key_hash, d1.descriptor.kem.key_hash);
    const c2 = await LpConnection.connect({ transport: tracked(new UdpTransport(second.lpUdp ?? '')), gateway: d2.pin });
    // Same WireGuard key, fresh ticket → the same addresses as before the kill.
    const again = await c2.register(ticketDvpnRequest(mint(), wgKey));
    assert.deepEqual(assertRegistered(again), addrs);
    // Another key gets other addresses (the allocation table survived too).
    const other = assertRegistered(await c2.register(ticketDvpnRequest(mint(), randomWgKey())));
    assert.notEqual(other.ipv4, addrs.ipv4);
    assert.notEqual(other.ipv6, addrs.ipv6);
    // The serial spent before the kill is refused after it.
    const stale = await c2.register(ticketDvpnRequest(spent, randomWgKey()));
    assert.equal(stale.success, false);
    assert.equal(stale.error?.code, 'LPGW_ERR_TICKET_SPENT');
    c2.close();
    const m = await scrape(second.http);
    assert.equal(metric(m, 'lp_registrations_total{mode="dvpn",result="LPGW_ERR_TICKET_SPENT"}'), 1);
    assert.equal(metric(m, 'lp_registrations_total{mode="dvpn",result="success"}'), 2);
  });
});

describe('graceful shutdown (SIGTERM)', () => {
  let standIn: ExitStandIn | null = null;
  after(async () => standIn?.close());

  test('exits 0 within the grace period, finishes the in-flight telescoped request, closes the database', async () => {
    const EXIT_DELAY_MS = 1200;
    const GRACE_SEC = 5;
    standIn = await startExitStandIn({ delayMs: EXIT_DELAY_MS });
    const entry = await startGatewayProcess(['--mock-ecash', '--mode', 'entry', '--peer', standIn.pinned], { env: { LPGW_SHUTDOWN_GRACE_SEC: String(GRACE_SEC) } });
    assert.equal((await getStats(entry.http)).directory?.peers, 1);
    const { pin } = await fetchDescriptor(entry.http);
    const conn = await LpConnection.connect({ transport: tracked(new TcpStreamTransport(entry.lpTcp)), gateway: pin });
    // Something for the database to hold.
    assertRegistered(await conn.register(mockDvpnRequest()));

    // A telescoped ClientHello to the slow exit; SIGTERM while the entry waits on it.
    const forward = new ForwardTransport(conn, standIn.pin.ed25519Public, standIn.lpTcp);
    const arrived = standIn.nextFrame();
    const reply = forward.request(clientHelloPacket(), 10_000);
    await arrived;
    assert.equal((await getStats(entry.http)).forwards?.in_flight, 1, 'the forward is in flight');
    const t0 = performance.now();
    // Not entry.stop(): a second SIGTERM during the graceful stop would kill the process outright.
    const exited = new Promise<number | null>((resolve) => entry.proc.once('exit', (c) => resolve(c)));
    entry.proc.kill('SIGTERM');
    const ack = await reply;
    assert.equal(parseClear(ack).type, MessageType.Ack, 'the in-flight request got the exit reply');
    const code = await exited;
    const elapsed = performance.now() - t0;
    assert.equal(code, 0);
    assert.ok(elapsed < GRACE_SEC * 1000, `exited after ${Math.round(elapsed)} ms (grace ${GRACE_SEC} s)`);
    assert.ok(elapsed > EXIT_DELAY_MS - 400, `waited for the in-flight forward (${Math.round(elapsed)} ms)`);
    conn.close();
    const msgs = entry.logs.map((l) => l.msg);
    assert.ok(msgs.includes('gateway stopped'), 'logged a clean stop');
    assert.ok(!entry.logs.some((l) => typeof l.level === 'number' && l.level >= 50), 'no error logs');

    // The database was closed: SQLite checkpointed and removed the WAL, and the file is intact.
    const dbPath = join(entry.dataDir, STORE_FILE_NAME);
    assert.ok(!existsSync(`${dbPath}-wal`), 'no WAL left behind (the last connection closed cleanly)');
    const db = new Database(dbPath, { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      assert.equal((db.prepare('SELECT count(*) AS n FROM dvpn_peers').get() as { n: number }).n, 1);
    } finally {
      db.close();
    }
  });
});
