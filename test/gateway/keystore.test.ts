/**
 * Keystore: key files created 0600 in a 0700 data directory, stable across reloads, corrupt files refused
 * and left untouched, wide permissions narrowed with one warning, init refuses to overwrite without force.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { defaultSuite, toHex } from '../../src/core/index.js';
import { GatewayError } from '../../src/gateway/errors.js';
import { KEY_FILES, initKeys, loadOrCreateKeys } from '../../src/gateway/keystore.js';

let root: string;
let n = 0;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'lpgw-keystore-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

const freshDir = (): string => join(root, `d${n++}`, 'data');
const mode = (f: string): number => statSync(f).mode & 0o777;
const files = (dir: string): string[] => Object.values(KEY_FILES).map((f) => join(dir, f));

function captureLogger(): { logger: Logger; lines: () => Array<{ level: number; msg: string } & Record<string, unknown>> } {
  const out: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (s: string) => void out.push(s) });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as { level: number; msg: string } & Record<string, unknown>) };
}

function assertKeystoreError(fn: () => unknown, code: string, fragment: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof GatewayError, String(e));
    assert.equal(e.code, code);
    assert.ok(e.message.includes(fragment), `${e.message} lacks ${fragment}`);
    return true;
  });
}

describe('loadOrCreateKeys', () => {
  test('first run creates three key files, mode 0600, in a 0700 directory', () => {
    const dir = freshDir();
    const r = loadOrCreateKeys(dir, defaultSuite);
    assert.equal(r.created, true);
    assert.equal(mode(dir), 0o700);
    const [identity, kem, wg] = files(dir) as [string, string, string];
    for (const f of [identity, kem, wg]) assert.equal(mode(f), 0o600, f);
    assert.equal(readFileSync(identity).length, 32);
    assert.equal(readFileSync(kem).length, 64);
    assert.equal(readFileSync(wg).length, 32);
    // no temp files left behind
    assert.deepEqual(readdirSync(dir).sort(), ['identity.key', 'kem.key', 'wireguard.key']);
    // the files are the seeds of the returned keys
    assert.deepEqual(new Uint8Array(defaultSuite.prims.ed25519FromSeed(readFileSync(identity)).publicKey), new Uint8Array(r.keys.ed25519.publicKey));
    assert.deepEqual(new Uint8Array(defaultSuite.kem.keygen(readFileSync(kem)).publicKey), new Uint8Array(r.keys.kem.publicKey));
    assert.deepEqual(new Uint8Array(defaultSuite.prims.x25519FromSecret(readFileSync(wg)).publicKey), new Uint8Array(r.wireguard.publicKey));
    // X25519 conversion, KEM hash, clamped WireGuard secret
    assert.deepEqual(new Uint8Array(r.keys.x25519.publicKey), new Uint8Array(defaultSuite.prims.ed25519PkToX25519(r.keys.ed25519.publicKey)));
    assert.deepEqual(new Uint8Array(r.keys.kemKeyHash), new Uint8Array(defaultSuite.prims.blake3(r.keys.kem.publicKey)));
    const wgSecret = readFileSync(wg);
    assert.equal((wgSecret[0] ?? 0) & 7, 0);
    assert.equal((wgSecret[31] ?? 0) & 0xc0, 0x40);
  });

  test('reload gives the same keys and creates nothing', () => {
    const dir = freshDir();
    const a = loadOrCreateKeys(dir, defaultSuite);
    const before = files(dir).map((f) => readFileSync(f));
    const b = loadOrCreateKeys(dir, defaultSuite);
    assert.equal(b.created, false);
    assert.equal(toHex(b.keys.ed25519.publicKey), toHex(a.keys.ed25519.publicKey));
    assert.equal(toHex(b.keys.ed25519.secretKey), toHex(a.keys.ed25519.secretKey));
    assert.equal(toHex(b.keys.kemKeyHash), toHex(a.keys.kemKeyHash));
    assert.equal(toHex(b.keys.kem.secretKey), toHex(a.keys.kem.secretKey));
    assert.equal(toHex(b.wireguard.publicKey), toHex(a.wireguard.publicKey));
    assert.deepEqual(files(dir).map((f) => readFileSync(f)), before);
  });

  test('a missing key file is created; the others are kept', () => {
    const dir = freshDir();
    const a = loadOrCreateKeys(dir, defaultSuite);
    unlinkSync(join(dir, KEY_FILES.wireguard));
    const b = loadOrCreateKeys(dir, defaultSuite);
    assert.equal(b.created, true);
    assert.equal(toHex(b.keys.ed25519.publicKey), toHex(a.keys.ed25519.publicKey));
    assert.notEqual(toHex(b.wireguard.publicKey), toHex(a.wireguard.publicKey));
    assert.equal(mode(join(dir, KEY_FILES.wireguard)), 0o600);
  });

  for (const [name, content] of [
    ['short identity.key', Buffer.alloc(31, 7)],
    ['long identity.key', Buffer.alloc(33, 7)],
    ['empty identity.key', Buffer.alloc(0)],
    ['all-zero identity.key', Buffer.alloc(32)],
  ] as const) {
    test(`corrupt file (${name}) → LPGW_ERR_KEYSTORE naming it; nothing is touched`, () => {
      const dir = freshDir();
      loadOrCreateKeys(dir, defaultSuite);
      const identity = join(dir, KEY_FILES.identity);
      writeFileSync(identity, content);
      const mtime = statSync(identity).mtimeMs;
      const others = files(dir).slice(1).map((f) => readFileSync(f));
      assertKeystoreError(() => loadOrCreateKeys(dir, defaultSuite), 'LPGW_ERR_KEYSTORE', identity);
      assert.deepEqual(readFileSync(identity), content);
      assert.equal(statSync(identity).mtimeMs, mtime);
      assert.deepEqual(files(dir).slice(1).map((f) => readFileSync(f)), others);
    });
  }

  test('corrupt kem.key → LPGW_ERR_KEYSTORE naming kem.key', () => {
    const dir = freshDir();
    loadOrCreateKeys(dir, defaultSuite);
    writeFileSync(join(dir, KEY_FILES.kem), Buffer.alloc(32, 1));
    assertKeystoreError(() => loadOrCreateKeys(dir, defaultSuite), 'LPGW_ERR_KEYSTORE', 'kem.key');
    assert.equal(readFileSync(join(dir, KEY_FILES.kem)).length, 32);
  });

  test('a key path that is a directory → LPGW_ERR_KEYSTORE', () => {
    const dir = freshDir();
    loadOrCreateKeys(dir, defaultSuite);
    const kemPath = join(dir, KEY_FILES.kem);
    unlinkSync(kemPath);
    mkdirSync(kemPath);
    assertKeystoreError(() => loadOrCreateKeys(dir, defaultSuite), 'LPGW_ERR_KEYSTORE', 'not a regular file');
  });

  test('key files readable by others are narrowed to 0600 with one warning that carries no secret', () => {
    const dir = freshDir();
    loadOrCreateKeys(dir, defaultSuite);
    for (const f of files(dir)) chmodSync(f, 0o644);
    const secrets = files(dir).map((f) => readFileSync(f).toString('hex'));
    const { logger, lines } = captureLogger();
    loadOrCreateKeys(dir, defaultSuite, logger);
    for (const f of files(dir)) assert.equal(mode(f), 0o600);
    const warns = lines().filter((l) => l.level === 40);
    assert.equal(warns.length, 1);
    assert.match(warns[0]?.msg ?? '', /0600/);
    const all = JSON.stringify(lines());
    for (const s of secrets) assert.ok(!all.includes(s), 'a secret reached the log');
    // second load: nothing to fix, no warning
    const again = captureLogger();
    loadOrCreateKeys(dir, defaultSuite, again.logger);
    assert.equal(again.lines().filter((l) => l.level >= 40).length, 0);
  });

  test('nothing secret is logged on creation', () => {
    const dir = freshDir();
    const { logger, lines } = captureLogger();
    loadOrCreateKeys(dir, defaultSuite, logger);
    const all = JSON.stringify(lines());
    for (const f of files(dir)) assert.ok(!all.includes(readFileSync(f).toString('hex')));
  });
});

describe('initKeys', () => {
  test('creates keys in an empty directory', () => {
    const dir = freshDir();
    const r = initKeys(dir, defaultSuite);
    assert.equal(r.created, true);
    for (const f of files(dir)) assert.equal(mode(f), 0o600);
    assert.equal(toHex(loadOrCreateKeys(dir, defaultSuite).keys.ed25519.publicKey), toHex(r.keys.ed25519.publicKey));
  });

  test('refuses to overwrite existing keys without force; force replaces them', () => {
    const dir = freshDir();
    const a = loadOrCreateKeys(dir, defaultSuite);
    const before = files(dir).map((f) => readFileSync(f));
    assertKeystoreError(() => initKeys(dir, defaultSuite), 'LPGW_ERR_KEYSTORE_EXISTS', 'identity.key');
    assertKeystoreError(() => initKeys(dir, defaultSuite, { force: false }), 'LPGW_ERR_KEYSTORE_EXISTS', '--force');
    assert.deepEqual(files(dir).map((f) => readFileSync(f)), before);
    const b = initKeys(dir, defaultSuite, { force: true });
    assert.notEqual(toHex(b.keys.ed25519.publicKey), toHex(a.keys.ed25519.publicKey));
    for (const f of files(dir)) assert.equal(mode(f), 0o600);
    assert.deepEqual(readdirSync(dir).sort(), ['identity.key', 'kem.key', 'wireguard.key']);
    assert.equal(toHex(loadOrCreateKeys(dir, defaultSuite).keys.ed25519.publicKey), toHex(b.keys.ed25519.publicKey));
  });

  test('a single existing file is enough to refuse', () => {
    const dir = freshDir();
    loadOrCreateKeys(dir, defaultSuite);
    unlinkSync(join(dir, KEY_FILES.identity));
    unlinkSync(join(dir, KEY_FILES.kem));
    assertKeystoreError(() => initKeys(dir, defaultSuite), 'LPGW_ERR_KEYSTORE_EXISTS', 'wireguard.key');
    assert.deepEqual(readdirSync(dir), ['wireguard.key']);
  });
});
