/**
 * Trust anchors (PRODUCT.md §8, DESIGN.md §7.6): gateway-probe trusts a gateway only through a pinned
 * identity, a signed directory document, or an explicit --trust-on-first-use, and refuses — with a coded
 * error, before any LP packet reaches the gateway — a wrong pinned identity, a directory signed by another
 * key, an expired directory, a gateway the directory does not list, and (with --state) a descriptor or
 * directory older than one it has seen. An entry does the same for its exits.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultSuite, toHex } from '../../src/core/index.js';
import { recordOf, verifyDescriptor } from '../../src/gateway/descriptor.js';
import { signDirectory } from '../../src/gateway/directory-document.js';
import { type GatewayProcess, scrape, startGatewayProcess, stopAll, tempDataDir } from '../helpers/gateway-process.js';
import { fill } from '../helpers/fixtures.js';
import { type StaticServer, descriptorOf, probeRun, probeRunExact, resignedDescriptor, serveDescriptor } from './probe-helpers.js';

const dirKey = defaultSuite.prims.ed25519FromSeed(fill(0x41, 32));
const otherKey = defaultSuite.prims.ed25519FromSeed(fill(0x42, 32));

/** LP packets the gateway received so far (TCP and UDP). */
async function lpPackets(g: GatewayProcess): Promise<number> {
  const m = await scrape(g.http);
  return (m.get('lp_packets_received_total{transport="tcp"}') ?? 0) + (m.get('lp_packets_received_total{transport="udp"}') ?? 0);
}

describe('gateway-probe trust anchors (real gateways)', () => {
  let gw: GatewayProcess;
  let exit: GatewayProcess;
  let files: string;
  const servers: StaticServer[] = [];

  before(async () => {
    [gw, exit] = await Promise.all([startGatewayProcess(['--mock-ecash']), startGatewayProcess(['--mock-ecash', '--mode', 'exit'])]);
    files = tempDataDir('lpgw-trust-');
  });
  after(async () => {
    for (const s of servers) await s.close();
    await stopAll();
  });

  const writeDoc = (name: string, o: { key?: typeof dirKey; version?: number; validitySec?: number; issuedAt?: number; gateways: Parameters<typeof recordOf>[0][] }): string => {
    const path = join(files, name);
    const doc = signDirectory({ key: o.key ?? dirKey, version: o.version ?? 1, gateways: o.gateways.map(recordOf), validitySec: o.validitySec ?? 3600, ...(o.issuedAt !== undefined ? { issuedAt: o.issuedAt } : {}) }, defaultSuite);
    writeFileSync(path, JSON.stringify(doc));
    return path;
  };

  test('each anchor works, and the report says which one vouched', async () => {
    const d = await descriptorOf(gw.http);
    const pinned = await probeRun(['--entry', gw.http, '--entry-identity', gw.identity, '--mode', 'mixnet']);
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.equal(pinned.report.entry.trusted_by, 'pinned');
    const listed = await probeRun(['--entry', gw.http, '--directory', writeDoc('ok.json', { gateways: [verifyDescriptor(d, defaultSuite)] }), '--directory-key', toHex(dirKey.publicKey), '--mode', 'mixnet']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.report.entry.trusted_by, 'directory');
    const tofu = await probeRun(['--entry', gw.http, '--trust-on-first-use', '--mode', 'mixnet']);
    assert.equal(tofu.report.entry.trusted_by, 'trust-on-first-use');
  });

  test('refusals are coded and no LP packet reaches the gateway', async () => {
    const d = verifyDescriptor(await descriptorOf(gw.http), defaultSuite);
    const x = verifyDescriptor(await descriptorOf(exit.http), defaultSuite);
    const before = await lpPackets(gw);
    const cases: [string, string[], string][] = [
      ['no anchor at all', ['--entry', gw.http], 'LPC_ERR_NO_TRUST_ANCHOR'],
      ['a wrong pinned identity', ['--entry', gw.http, '--entry-identity', exit.identity], 'LPC_ERR_IDENTITY_MISMATCH'],
      ['a directory signed by another key', ['--entry', gw.http, '--directory', writeDoc('other.json', { key: otherKey, gateways: [d] }), '--directory-key', toHex(dirKey.publicKey)], 'LPGW_ERR_DIRECTORY_SIGNATURE'],
      ['an expired directory', ['--entry', gw.http, '--directory', writeDoc('old.json', { gateways: [d], issuedAt: Math.floor(Date.now() / 1000) - 7200, validitySec: 3600 }), '--directory-key', toHex(dirKey.publicKey)], 'LPGW_ERR_DIRECTORY_EXPIRED'],
      ['a directory that does not list the gateway', ['--entry', gw.http, '--directory', writeDoc('other-gw.json', { gateways: [x] }), '--directory-key', toHex(dirKey.publicKey)], 'LPC_ERR_NOT_IN_DIRECTORY'],
      ['a directory whose record differs (another LP address)', ['--entry', gw.http, '--directory', writeDoc('moved.json', { gateways: [{ ...d, lp: { tcp: '127.0.0.1:1', udp: null } }] }), '--directory-key', toHex(dirKey.publicKey)], 'LPC_ERR_DIRECTORY_MISMATCH'],
    ];
    for (const [what, args, code] of cases) {
      const r = await probeRunExact([...args, '--mode', 'mixnet']);
      assert.equal(r.code, 1, what);
      assert.equal(r.report.outcome.lp.error?.code, code, `${what}: ${JSON.stringify(r.report.outcome.lp.error)}`);
      assert.equal(r.report.outcome.lp.can_handshake, false);
    }
    assert.equal(await lpPackets(gw), before, 'no LP packet was sent to a gateway nothing vouched for');
  });

  test('with --state, a descriptor or a directory older than one already seen is refused (rollback)', async () => {
    const state = join(files, 'probe-state.json');
    const real = await descriptorOf(gw.http);
    const ok = await probeRun(['--entry', gw.http, '--entry-identity', gw.identity, '--state', state, '--mode', 'mixnet']);
    assert.equal(ok.code, 0, ok.stderr);
    // the same gateway's genuine (validly signed, unexpired) but older descriptor, replayed by someone on the path
    const older = resignedDescriptor(gw.dataDir, verifyDescriptor(real, defaultSuite), { issuedAt: real.issued_at - 600 });
    const replay = await serveDescriptor(older);
    servers.push(replay);
    const before = await lpPackets(gw);
    const r = await probeRun(['--entry', replay.url, '--entry-identity', gw.identity, '--state', state, '--mode', 'mixnet']);
    assert.equal(r.code, 1);
    assert.equal(r.report.outcome.lp.error?.code, 'LPGW_ERR_DESCRIPTOR_ROLLBACK');
    assert.equal(await lpPackets(gw), before);
    // directories: version 5 seen, then version 4 offered
    const d = verifyDescriptor(real, defaultSuite);
    const v5 = await probeRun(['--entry', gw.http, '--directory', writeDoc('v5.json', { version: 5, gateways: [d] }), '--directory-key', toHex(dirKey.publicKey), '--state', state, '--mode', 'mixnet']);
    assert.equal(v5.code, 0, v5.stderr);
    const v4 = await probeRun(['--entry', gw.http, '--directory', writeDoc('v4.json', { version: 4, gateways: [d] }), '--directory-key', toHex(dirKey.publicKey), '--state', state, '--mode', 'mixnet']);
    assert.equal(v4.report.outcome.lp.error?.code, 'LPGW_ERR_DIRECTORY_ROLLBACK');
  });

  test('an entry refuses an exit nothing vouches for: telescoping is refused and the exit sees nothing', async () => {
    const entry = await startGatewayProcess(['--mock-ecash', '--mode', 'entry', '--peer', exit.http]);
    const before = await lpPackets(exit);
    const r = await probeRun(['--entry', entry.http, '--entry-identity', entry.identity, '--exit', exit.http, '--exit-identity', exit.identity, '--mode', 'mixnet']);
    assert.equal(r.code, 1);
    assert.equal(r.report.outcome.lp.can_register, true, 'the entry itself works');
    assert.equal(r.report.outcome.telescoping?.error?.code, 'LPGW_ERR_FORWARD_TARGET_UNKNOWN');
    assert.equal(await lpPackets(exit), before, 'the entry never forwarded to the unanchored exit');
    assert.ok(entry.logs.some((l) => /has no trust anchor/.test(String(l.msg))), 'and its log says why');
  });
});
