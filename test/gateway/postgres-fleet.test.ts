/**
 * Acceptance (issue 15): two `lp-gateway run` processes on one PostgreSQL database, clients over real LP
 * sessions with signed tickets.
 * - a ticket spent at A is refused at B (LPGW_ERR_TICKET_SPENT); 100 concurrent registrations with one serial,
 *   split between A and B, give exactly one success;
 * - PostgreSQL stopped in the middle of a stream of registrations: both gateways stay up, clients get the
 *   retryable LPGW_ERR_STORE_UNAVAILABLE with a retry hint, sessions and new handshakes keep working, /health
 *   says degraded; once PostgreSQL is back registrations succeed again without a restart, each gateway said
 *   so once each way, and every registration answered success is in the database.
 * A reads the database URL (with its password) from a 0600 config file, B from the environment without a
 * password plus a password file; no log line of either holds the password.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LpConnection, TcpStreamTransport, fetchDescriptor } from '../../src/client/index.js';
import { type GatewayPin, type RegisterResponse, TicketType, toHex } from '../../src/core/index.js';
import { issuerKeyFromSeed, mintTicket } from '../../src/gateway/registration/tickets.js';
import { type GatewayProcess, startGatewayProcess, stopAll } from '../helpers/gateway-process.js';
import { closeTracked, nowSec, prims, randomWgKey, sleep, ticketDvpnRequest, tracked } from '../helpers/lp-e2e.js';
import { postgresSkipReason, startCluster, type PgCluster } from '../helpers/pg-cluster.js';

const issuer = issuerKeyFromSeed(prims.randomBytes(32), prims);
const freshTicket = () => mintTicket(issuer, { ticketType: TicketType.V1WireguardEntry, bandwidthBytes: 1n << 30n, expiry: BigInt(nowSec() + 3600) }, prims);

interface Gw {
  name: 'A' | 'B';
  proc: GatewayProcess;
  pin: GatewayPin;
  lpTcp: string;
  identity: string;
}

async function connect(g: Gw): Promise<LpConnection> {
  return tracked(await LpConnection.connect({ transport: new TcpStreamTransport(g.lpTcp), gateway: g.pin }));
}

describe('a fleet of two gateway processes on one PostgreSQL', { skip: postgresSkipReason() }, () => {
  let cluster: PgCluster;
  let dir: string;
  let db: string;
  let a: Gw;
  let b: Gw;

  before(async () => {
    cluster = await startCluster({ fsync: false });
    db = await cluster.createDatabase('fleet');
    dir = mkdtempSync(join(tmpdir(), 'lpgw-fleet-'));
    const common = `[lp]\nhello_rate_per_sec = 100000\nhello_burst = 100000\n`;
    const configA = join(dir, 'a.toml');
    writeFileSync(
      configA,
      `${common}[registration]\ncredential_verifier = "ticket"\nticket_issuers = ["${toHex(issuer.publicKey)}"]\nstore = "postgres"\npostgres_url = "${cluster.url(db)}"\npostgres_sslmode = "disable"\n`,
      { mode: 0o600 },
    );
    const passfile = join(dir, 'pgpass');
    writeFileSync(passfile, `127.0.0.1:${cluster.port}:${db}:lpgw:${cluster.password}\n`, { mode: 0o600 });
    const start = async (name: 'A' | 'B', args: string[], env: NodeJS.ProcessEnv): Promise<Gw> => {
      const proc = await startGatewayProcess(args, { env });
      const { descriptor, pin } = await fetchDescriptor(proc.http);
      return { name, proc, pin, lpTcp: proc.lpTcp, identity: descriptor.identity_key };
    };
    [a, b] = await Promise.all([
      start('A', ['--config', configA], {}),
      start('B', [], {
        LPGW_REGISTRATION_CREDENTIAL_VERIFIER: 'ticket',
        LPGW_REGISTRATION_TICKET_ISSUERS: toHex(issuer.publicKey),
        LPGW_REGISTRATION_STORE: 'postgres',
        LPGW_REGISTRATION_POSTGRES_URL: cluster.urlWithoutPassword(db),
        LPGW_REGISTRATION_POSTGRES_SSLMODE: 'disable',
        LPGW_LP_HELLO_RATE_PER_SEC: '100000',
        LPGW_LP_HELLO_BURST: '100000',
        PGPASSFILE: passfile,
      }),
    ]);
  });

  after(async () => {
    closeTracked();
    await stopAll();
    cluster?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a ticket spent at A is refused at B', async () => {
    const t = freshTicket();
    const ca = await connect(a);
    const cb = await connect(b);
    const first = await ca.register(ticketDvpnRequest(t, randomWgKey()));
    assert.equal(first.success, true, JSON.stringify(first.error));
    const again = await cb.register(ticketDvpnRequest(t, randomWgKey()));
    assert.equal(again.success, false);
    assert.equal(again.error?.code, 'LPGW_ERR_TICKET_SPENT');
    ca.close();
    cb.close();
  });

  test('100 concurrent registrations with one serial, split between A and B: exactly one success', async () => {
    const conns = await Promise.all(Array.from({ length: 100 }, (_, i) => connect(i % 2 === 0 ? a : b)));
    const t = freshTicket();
    const results = await Promise.all(conns.map((c) => c.register(ticketDvpnRequest(t, randomWgKey()))));
    assert.equal(results.filter((r) => r.success).length, 1);
    assert.deepEqual([...new Set(results.filter((r) => !r.success).map((r) => r.error?.code))], ['LPGW_ERR_TICKET_SPENT']);
    for (const c of conns) c.close();
    const rows = await cluster.query<{ n: string }>('SELECT COUNT(*) AS n FROM spent_serials WHERE serial = $1', [Buffer.from(t.serial)], db);
    assert.equal(Number(rows[0]?.n), 1);
  });

  test('PostgreSQL stopped mid-stream: retryable errors, sessions unaffected, recovery without a restart, no answered registration lost', async () => {
    interface Outcome {
      gw: Gw;
      key: Uint8Array;
      at: number;
      res: RegisterResponse;
    }
    const outcomes: Outcome[] = [];
    let running = true;
    let stoppedAt = Infinity;
    let restartedAt = Infinity;
    // 4 clients, 2 per gateway, each registering fresh keys with fresh tickets back to back on one session
    const workers = [a, b, a, b].map(async (g) => {
      const c = await connect(g);
      for (let i = 0; running && i < 10_000; i++) {
        const key = randomWgKey();
        const res = await c.register(ticketDvpnRequest(freshTicket(), key));
        outcomes.push({ gw: g, key, at: Date.now(), res });
        if (!res.success) await sleep(Math.min(res.error?.retryAfterMs ?? 100, 200));
      }
      c.close();
    });
    const waitFor = async (what: string, cond: () => boolean, ms: number): Promise<void> => {
      const deadline = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
        await sleep(20);
      }
    };
    try {
      await waitFor('registrations before the outage', () => outcomes.filter((o) => o.res.success).length >= 20, 20_000);
      cluster.stop('immediate');
      stoppedAt = Date.now();
      await waitFor('retryable errors at both gateways', () => [a, b].every((g) => outcomes.some((o) => o.gw === g && o.res.error?.code === 'LPGW_ERR_STORE_UNAVAILABLE')), 20_000);

      // the outage, seen from outside: health degraded, sessions and handshakes fine
      for (const g of [a, b]) {
        const health = await fetch(`${g.proc.http}/health`);
        assert.equal(health.status, 200);
        const body = (await health.json()) as { status: string; store: { backend: string; state: string } };
        assert.equal(body.status, 'degraded');
        assert.deepEqual({ backend: body.store.backend, state: body.store.state }, { backend: 'postgres', state: 'unavailable' });
        const fresh = await connect(g); // a new handshake
        await fresh.ping(); // and its session answers
        fresh.close();
      }

      cluster.start();
      restartedAt = Date.now();
      await waitFor('registrations at both gateways after the restart', () => [a, b].every((g) => outcomes.filter((o) => o.gw === g && o.at > restartedAt && o.res.success).length >= 5), 30_000);
    } finally {
      running = false;
      await Promise.all(workers);
    }

    const failures = outcomes.filter((o) => !o.res.success);
    assert.ok(failures.length > 0);
    for (const f of failures) {
      assert.equal(f.res.error?.code, 'LPGW_ERR_STORE_UNAVAILABLE', JSON.stringify(f.res.error));
      assert.ok((f.res.error?.retryAfterMs ?? 0) > 0, 'a retry hint');
    }
    assert.ok(failures.every((f) => f.at >= stoppedAt), 'no failure before the outage');
    // every registration answered success is in the database, under the gateway that answered it
    const rows = await cluster.query<{ gateway_id: Buffer; wg_public_key: Buffer }>('SELECT gateway_id, wg_public_key FROM dvpn_peers', [], db);
    const stored = new Set(rows.map((r) => `${r.gateway_id.toString('hex')}/${r.wg_public_key.toString('hex')}`));
    const successes = outcomes.filter((o) => o.res.success);
    for (const o of successes) assert.ok(stored.has(`${o.gw.identity}/${toHex(o.key)}`), `registration at ${o.gw.name} answered success is stored`);

    for (const g of [a, b]) {
      assert.equal(g.proc.proc.exitCode, null, `${g.name} is still running`);
      const said = (re: RegExp): number => g.proc.logs.filter((l) => re.test(String(l.msg))).length;
      assert.equal(said(/^registration store unreachable/), 1, `${g.name} said the outage once`);
      assert.equal(said(/^registration store reachable again/), 1, `${g.name} said the recovery once`);
      assert.ok(g.proc.logs.every((l) => !JSON.stringify(l).includes(cluster.password)), `no log line of ${g.name} holds the password`);
      const health = (await (await fetch(`${g.proc.http}/health`)).json()) as { status: string };
      assert.equal(health.status, 'ok');
    }
  });
});

