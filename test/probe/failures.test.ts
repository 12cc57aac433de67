/**
 * gateway-probe run failure paths: each gives a report with the right error code and exit status 1.
 *
 * KEM pin mismatch construction: a small local HTTP server serves a descriptor for gateway A that is
 * signed with A's real identity key (read from A's data directory) and points at A's real LP address, but
 * whose kem.key_hash is random. The signature verifies, so the only thing wrong is the pinned hash: the
 * KKT response A sends carries its real ML-KEM key, whose BLAKE3 does not match → LP_ERR_KKT_KEY_HASH_MISMATCH.
 * The same construction with the LP address of a silent TCP listener checks that --timeout bounds the run.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultSuite, toHex } from '../../src/core/index.js';
import { verifyDescriptor } from '../../src/gateway/descriptor.js';
import { formatTicketLine, generateIssuerKey, mintTicket, writeTicketFile } from '../../src/gateway/registration/tickets.js';
import { TicketType } from '../../src/core/codec/app.js';
import { type GatewayProcess, startGatewayProcess, stopAll, tempDataDir } from '../helpers/gateway-process.js';
import { type StaticServer, descriptorOf, freePort, probeRun, resignedDescriptor, serveDescriptor } from './probe-helpers.js';

describe('gateway-probe run failures (real gateways)', () => {
  let a: GatewayProcess; // mock verifier, no directory peers
  let b: GatewayProcess; // a second gateway, unknown to A, LP UDP off
  let t: GatewayProcess; // ticket verifier
  const issuer = generateIssuerKey();
  const servers: StaticServer[] = [];
  const sockets = new Set<net.Socket>();
  let silent: net.Server | null = null;

  before(async () => {
    [a, b, t] = await Promise.all([
      startGatewayProcess(['--mock-ecash']),
      startGatewayProcess(['--mock-ecash', '--lp-udp', 'off']),
      startGatewayProcess([], { env: { LPGW_REGISTRATION_CREDENTIAL_VERIFIER: 'ticket', LPGW_REGISTRATION_TICKET_ISSUERS: toHex(issuer.publicKey) } }),
    ]);
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (silent ? silent.close(() => r()) : r()));
    await Promise.all(servers.map((s) => s.close()));
    await stopAll();
  });

  test('gateway down, KEM key hash mismatch, exit unknown to the entry, --timeout, exit down, no UDP', async () => {
    const real = await descriptorOf(a.http);
    const doctored = resignedDescriptor(a.dataDir, real, { kemKeyHash: defaultSuite.prims.randomBytes(32) });
    assert.doesNotThrow(() => verifyDescriptor(doctored, defaultSuite), 'the doctored descriptor carries a valid signature');
    assert.equal(doctored.lp.tcp, real.lp.tcp);
    assert.notEqual(doctored.kem.key_hash, real.kem.key_hash);
    const wrongKem = await serveDescriptor(doctored);
    servers.push(wrongKem);

    // an LP address that accepts connections and never answers
    silent = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent?.listen(0, '127.0.0.1', () => r()));
    const silentAddr = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const mute = await serveDescriptor(resignedDescriptor(a.dataDir, real, { lpTcp: silentAddr }));
    servers.push(mute);

    const port = await freePort();
    const [down, kem, unknownExit, timeout, exitDown, noUdp] = await Promise.all([
      probeRun(['--entry', `http://127.0.0.1:${port}`]),
      probeRun(['--entry', wrongKem.url]),
      probeRun(['--entry', a.http, '--exit', b.http, '--rekey']),
      probeRun(['--entry', mute.url, '--timeout', '1.5']),
      probeRun(['--entry', a.http, '--exit', `http://127.0.0.1:${port}`]),
      probeRun(['--entry', b.http, '--transport', 'udp']),
    ]);

    assert.equal(down.code, 1);
    assert.equal(down.report.outcome.lp.error?.code, 'LPC_ERR_DESCRIPTOR_UNREACHABLE');
    assert.equal(down.report.outcome.lp.can_connect, false);
    assert.equal(down.report.entry.identity, null);
    assert.equal(down.report.passed, false);
    assert.match(down.stderr, /FAIL/);

    assert.equal(kem.code, 1);
    assert.equal(kem.report.outcome.lp.can_connect, true);
    assert.equal(kem.report.outcome.lp.can_handshake, false);
    assert.equal(kem.report.outcome.lp.error?.code, 'LP_ERR_KKT_KEY_HASH_MISMATCH');
    assert.equal(kem.report.outcome.lp.can_register, false);

    // the exit is a real gateway, but not in the entry's directory: direct checks pass, telescoping fails
    assert.equal(unknownExit.code, 1);
    const o = unknownExit.report.outcome;
    assert.ok(o.lp.can_connect && o.lp.can_handshake && o.lp.can_register);
    assert.equal(o.telescoping?.can_handshake, false);
    assert.equal(o.telescoping?.can_register, false);
    assert.equal(o.telescoping?.error?.code, 'LPGW_ERR_FORWARD_TARGET_UNKNOWN');
    assert.equal(o.rekey?.can_rekey, true, 'the direct rekey is still checked');
    assert.equal(o.telescoping_rekey?.error?.code, 'LPC_ERR_SKIPPED');
    assert.match(unknownExit.stderr, /LPGW_ERR_FORWARD_TARGET_UNKNOWN/);

    // --timeout bounds the whole run, whatever the per-step defaults (handshake 15 s)
    assert.equal(timeout.code, 1);
    assert.equal(timeout.report.outcome.lp.can_connect, true);
    assert.equal(timeout.report.outcome.lp.can_handshake, false);
    assert.match(timeout.report.outcome.lp.error?.code ?? '', /^LPC_ERR_(HANDSHAKE_TIMEOUT|TIMEOUT|RUN_TIMEOUT)$/);
    assert.ok(timeout.report.timings_ms.total < 2500, `total ${timeout.report.timings_ms.total} ms`);

    // the exit's descriptor is unreachable: the entry is still checked, telescoping carries the error
    assert.equal(exitDown.code, 1);
    assert.ok(exitDown.report.outcome.lp.can_register);
    assert.equal(exitDown.report.exit?.identity, null);
    assert.equal(exitDown.report.outcome.telescoping?.error?.code, 'LPC_ERR_DESCRIPTOR_UNREACHABLE');
    assert.match(exitDown.stderr, /descriptor +FAIL .*exit: LPC_ERR_DESCRIPTOR_UNREACHABLE/);

    // --transport udp against a gateway that announces no UDP address
    assert.equal(noUdp.code, 1);
    assert.equal(noUdp.report.entry.lp_udp, null);
    assert.equal(noUdp.report.outcome.lp.can_connect, false);
    assert.equal(noUdp.report.outcome.lp.error?.code, 'LPC_ERR_TRANSPORT_UNAVAILABLE');
  });

  test('tickets: unknown issuer, bad signature, spent, no ticket of the needed type, mock refused', async () => {
    const dir = tempDataDir('lpgw-probe-tickets-');
    const expiry = BigInt(Math.floor(Date.now() / 1000) + 3600);
    const mint = (key = issuer, ticketType: TicketType = TicketType.V1WireguardEntry) => mintTicket(key, { ticketType, bandwidthBytes: 1n << 20n, expiry });
    const file = (name: string, tickets: ReturnType<typeof mint>[]): string => {
      const p = join(dir, name);
      writeTicketFile(p, tickets, { comment: name });
      return p;
    };
    const unknownIssuer = file('unknown-issuer.txt', [mint(generateIssuerKey())]);
    const forged = mint();
    const sig = new Uint8Array(forged.signature);
    sig[0] = (sig[0] ?? 0) ^ 0x01;
    const badSignature = file('bad-signature.txt', [{ ...forged, signature: sig }]);
    const single = file('single.txt', [mint()]);
    const exitOnly = file('exit-only.txt', [mint(issuer, TicketType.V1WireguardExit)]);
    // a file with an exit ticket first: the run picks the first ticket *of the matching type*
    const mixed = join(dir, 'mixed.txt');
    writeFileSync(mixed, `# comment\n\n${formatTicketLine(mint(issuer, TicketType.V1WireguardExit))}\n${formatTicketLine(mint())}\n`, { mode: 0o600 });

    const [unknown, bad, first, noMatch, mock, mixedRun] = await Promise.all([
      probeRun(['--entry', t.http, '--ticket', unknownIssuer]),
      probeRun(['--entry', t.http, '--ticket', badSignature]),
      probeRun(['--entry', t.http, '--ticket', single]),
      probeRun(['--entry', t.http, '--ticket', exitOnly]),
      probeRun(['--entry', t.http, '--mock-ecash']),
      probeRun(['--entry', t.http, '--ticket', mixed]),
    ]);
    const second = await probeRun(['--entry', t.http, '--ticket', single]);

    const expectRefused = (r: typeof unknown, code: string): void => {
      assert.equal(r.code, 1, `${code}: ${r.stderr}`);
      const lp = r.report.outcome.lp;
      assert.ok(lp.can_connect && lp.can_handshake, `${code}: the handshake itself succeeds`);
      assert.equal(lp.can_register, false);
      assert.equal(lp.error?.code, code, r.stderr);
    };
    expectRefused(unknown, 'LPGW_ERR_TICKET_UNKNOWN_ISSUER');
    expectRefused(bad, 'LPGW_ERR_TICKET_BAD_SIGNATURE');
    expectRefused(noMatch, 'LPC_ERR_NO_MATCHING_TICKET');
    expectRefused(mock, 'LPGW_ERR_CREDENTIAL_REJECTED');
    expectRefused(second, 'LPGW_ERR_TICKET_SPENT');

    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.report.credential, 'ticket');
    assert.equal(first.report.outcome.lp.registration?.allocated_bandwidth_bytes, String(1n << 20n));
    assert.match(first.stderr, /credential: tickets from .*single\.txt/);
    assert.equal(mixedRun.code, 0, mixedRun.stderr);
  });
});
