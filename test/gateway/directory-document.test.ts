/**
 * Signed directory documents (DESIGN.md §7.6): sign/verify, tampering, trust, validity and rollback; the
 * operator commands `lp-gateway directory key-init` and `directory sign` against a running gateway; and the
 * gateway serving the document at GET /v1/directory.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { defaultSuite, toHex } from '../../src/core/index.js';
import { buildDescriptor, recordOf } from '../../src/gateway/descriptor.js';
import { type DirectoryDocument, signDirectory, verifyDirectory } from '../../src/gateway/directory-document.js';
import { GatewayError } from '../../src/gateway/errors.js';
import { fill, gatewayKeys, otherGatewayKeys } from '../helpers/fixtures.js';
import { type GatewayProcess, startGatewayProcess, stopAll, tempDataDir } from '../helpers/gateway-process.js';

const T0 = 1_800_000_000;
const key = defaultSuite.prims.ed25519FromSeed(fill(0x51, 32));
const a = recordOf(buildDescriptor({ lpTcp: '192.0.2.1:41264', lpUdp: null, mode: 'exit', wireguard: null, issuedAt: T0 }, defaultSuite, gatewayKeys));
const b = recordOf(buildDescriptor({ lpTcp: '192.0.2.2:41264', lpUdp: null, mode: 'entry', wireguard: null, issuedAt: T0 }, defaultSuite, otherGatewayKeys));
const clone = (d: DirectoryDocument): Record<string, unknown> => JSON.parse(JSON.stringify(d)) as Record<string, unknown>;
const code = (fn: () => unknown, c: string): void => assert.throws(fn, (e: unknown) => e instanceof GatewayError && e.code === c, c);

describe('directory documents', () => {
  const doc = signDirectory({ key, version: 3, gateways: [a, b], validitySec: 3600, issuedAt: T0 }, defaultSuite);

  test('verify: trusted key, signature, validity, version', () => {
    assert.deepEqual(verifyDirectory(clone(doc), [key.publicKey], defaultSuite, { nowSec: T0 + 10 }), doc);
    code(() => verifyDirectory(clone(doc), [defaultSuite.prims.ed25519FromSeed(fill(0x52, 32)).publicKey], defaultSuite, { nowSec: T0 }), 'LPGW_ERR_DIRECTORY_SIGNATURE');
    code(() => verifyDirectory(clone(doc), [key.publicKey], defaultSuite, { nowSec: T0 + 3600 }), 'LPGW_ERR_DIRECTORY_EXPIRED');
    code(() => verifyDirectory(clone(doc), [key.publicKey], defaultSuite, { nowSec: T0 - 301 }), 'LPGW_ERR_DIRECTORY_NOT_YET_VALID');
    code(() => verifyDirectory(clone(doc), [key.publicKey], defaultSuite, { nowSec: T0, minVersion: 4 }), 'LPGW_ERR_DIRECTORY_ROLLBACK');
    assert.equal(verifyDirectory(clone(doc), [key.publicKey], defaultSuite, { nowSec: T0, minVersion: 3 }).version, 3, 'the same version again is fine');
  });

  test('any change breaks the signature; malformed documents are coded', () => {
    for (const mutate of [
      (o: Record<string, unknown>) => (o.version = 4),
      (o: Record<string, unknown>) => (o.expires_at = T0 + 99_999),
      (o: Record<string, unknown>) => ((o.gateways as Record<string, unknown>[]).pop()),
      (o: Record<string, unknown>) => (((o.gateways as Record<string, { tcp: string }>[])[0] as { lp: { tcp: string } }).lp.tcp = '192.0.2.9:41264'),
    ]) {
      const o = clone(doc);
      mutate(o);
      code(() => verifyDirectory(o, [key.publicKey], defaultSuite, { nowSec: T0 }), 'LPGW_ERR_DIRECTORY_SIGNATURE');
    }
    for (const o of [{ ...clone(doc), extra: 1 }, { ...clone(doc), schema_version: 2 }, { ...clone(doc), gateways: [a, a] }, { ...clone(doc), gateways: [{ ...a, software_version: 'x' }] }, { ...clone(doc), version: 0 }, 'nope']) {
      code(() => verifyDirectory(o, [key.publicKey], defaultSuite, { nowSec: T0 }), 'LPGW_ERR_DIRECTORY_MALFORMED');
    }
  });
});

describe('lp-gateway directory key-init / sign, and GET /v1/directory', () => {
  let gw: GatewayProcess;
  let files: string;
  const cli = (args: string[]): { code: number | null; out: string; err: string } => {
    const r = spawnSync(process.execPath, [new URL('../../bin/lp-gateway.js', import.meta.url).pathname, ...args], { encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  before(async () => {
    gw = await startGatewayProcess(['--mock-ecash']);
    files = tempDataDir('lpgw-dirdoc-');
  });
  after(() => stopAll());

  test('key-init writes a 0600 key; sign lists pinned URLs and descriptor files; the gateway serves the document', async () => {
    const keyFile = join(files, 'dir.key');
    const init = cli(['directory', 'key-init', '--out', keyFile]);
    assert.equal(init.code, 0, init.err);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const publicKey = /public key: ([0-9a-f]{64})/.exec(init.out)?.[1] ?? assert.fail(init.out);
    const descFile = join(files, 'b.json');
    writeFileSync(descFile, JSON.stringify(buildDescriptor({ lpTcp: '192.0.2.2:41264', lpUdp: null, mode: 'entry', wireguard: null }, defaultSuite, otherGatewayKeys)));
    const out = join(files, 'directory.json');
    const unpinned = cli(['directory', 'sign', '--key', keyFile, '--gateway', gw.http, '--version', '1', '--valid-for', '1d', '--out', out]);
    assert.equal(unpinned.code, 2, 'an unpinned URL is a usage error');
    assert.match(unpinned.err, /pin the gateway's identity/);
    const wrong = cli(['directory', 'sign', '--key', keyFile, '--gateway', `${gw.http}#${toHex(otherGatewayKeys.ed25519.publicKey)}`, '--version', '1', '--valid-for', '1d', '--out', out]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /LPC_ERR_IDENTITY_MISMATCH/);
    const ok = cli(['directory', 'sign', '--key', keyFile, '--gateway', gw.pinned, '--gateway', descFile, '--version', '1', '--valid-for', '1d', '--out', out]);
    assert.equal(ok.code, 0, ok.err);
    const doc = verifyDirectory(JSON.parse(readFileSync(out, 'utf8')) as unknown, [Buffer.from(publicKey, 'hex')], defaultSuite);
    assert.deepEqual(doc.gateways.map((g) => g.identity_key), [gw.identity, toHex(otherGatewayKeys.ed25519.publicKey)]);

    const server = await startGatewayProcess(['--mock-ecash'], { env: { LPGW_HTTP_DIRECTORY_FILE: out } });
    const res = await fetch(`${server.http}/v1/directory`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), doc);
    assert.equal((await fetch(`${gw.http}/v1/directory`)).status, 404, 'not served unless configured');
  });
});
