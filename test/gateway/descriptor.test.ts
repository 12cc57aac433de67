/**
 * Signed gateway descriptor: round trip, tamper detection (any field, the signature), strict shape, KEM key
 * hash = BLAKE3(ML-KEM public key), canonical form independent of key order, address normalisation.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { blake3 } from '@noble/hashes/blake3.js';
import { defaultSuite, toHex } from '../../src/core/index.js';
import { DEFAULT_CONFIG, type GatewayConfig } from '../../src/gateway/config.js';
import {
  DESCRIPTOR_SIGNING_CONTEXT,
  announcedAddresses,
  buildDescriptor,
  canonicalJson,
  descriptorParamsFromConfig,
  descriptorPin,
  descriptorSigningBytes,
  normalizeLpAddress,
  verifyDescriptor,
  type GatewayDescriptor,
} from '../../src/gateway/descriptor.js';
import { GatewayError } from '../../src/gateway/errors.js';
import { gatewayKeys, otherGatewayKeys, fill } from '../helpers/fixtures.js';

const wgPublic = defaultSuite.prims.x25519FromSecret(fill(9, 32)).publicKey;

/** Descriptors here are issued at T0 and checked a few seconds later. */
const T0 = 1_700_000_000;
const verify = (json: unknown, nowSec = T0 + 5): GatewayDescriptor => verifyDescriptor(json, defaultSuite, nowSec);

function sample(over: Partial<Parameters<typeof buildDescriptor>[0]> = {}): GatewayDescriptor {
  return buildDescriptor({ lpTcp: '192.0.2.10:41264', lpUdp: '192.0.2.10:51264', mode: 'both', wireguard: { publicKey: wgPublic, endpoint: '192.0.2.10:51820', tunnelIpv4: '10.1.0.1', tunnelIpv6: 'fd00:1::1' }, issuedAt: 1_700_000_000, ...over }, defaultSuite, gatewayKeys);
}

const clone = (d: GatewayDescriptor): Record<string, unknown> => JSON.parse(JSON.stringify(d)) as Record<string, unknown>;

function expectCode(fn: () => unknown, code: string, fragment = ''): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof GatewayError, String(e));
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.includes(fragment), `${e.message} lacks ${fragment}`);
    return true;
  });
}

describe('build and verify', () => {
  test('round trip through JSON text', () => {
    const d = sample();
    const back = verify(JSON.parse(JSON.stringify(d)) as unknown);
    assert.deepEqual(back, d);
    assert.equal(d.schema_version, 2);
    assert.equal(d.expires_at, 1_700_000_000 + 86_400, 'valid for a day by default');
    assert.equal(d.identity_key, toHex(gatewayKeys.ed25519.publicKey));
    assert.deepEqual(d.lp, { tcp: '192.0.2.10:41264', udp: '192.0.2.10:51264' });
    assert.deepEqual(d.roles, ['entry', 'exit']);
    assert.equal(d.wireguard?.public_key, Buffer.from(wgPublic).toString('base64'));
    assert.equal(d.issued_at, 1_700_000_000);
    assert.match(d.signature, /^[0-9a-f]{128}$/);
  });

  test('roles follow the mode; UDP and WireGuard may be absent', () => {
    assert.deepEqual(sample({ mode: 'entry' }).roles, ['entry']);
    assert.deepEqual(sample({ mode: 'exit' }).roles, ['exit']);
    const d = sample({ lpUdp: null, wireguard: null });
    assert.equal(d.lp.udp, null);
    assert.equal(d.wireguard, null);
    assert.deepEqual(verify(clone(d)), d);
  });

  test('kem.key_hash is BLAKE3-256 of the ML-KEM-768 public key', () => {
    const d = sample();
    assert.equal(gatewayKeys.kem.publicKey.length, 1184);
    assert.equal(d.kem.key_hash, toHex(blake3(gatewayKeys.kem.publicKey)));
    assert.deepEqual(d.kem, { algorithm: 'ML-KEM-768', kkt_code: 1, key_hash_algorithm: 'BLAKE3-256', key_hash: d.kem.key_hash });
    const pin = descriptorPin(d);
    assert.deepEqual(new Uint8Array(pin.ed25519Public), new Uint8Array(gatewayKeys.ed25519.publicKey));
    assert.deepEqual(new Uint8Array(pin.kemKeyHash), new Uint8Array(gatewayKeys.kemKeyHash));
  });

  test('the signature covers the context string and the canonical JSON of every other field', () => {
    const d = sample();
    const { signature, ...rest } = d;
    const message = new TextEncoder().encode(DESCRIPTOR_SIGNING_CONTEXT + canonicalJson(rest));
    assert.deepEqual(descriptorSigningBytes(d), message);
    assert.ok(defaultSuite.prims.ed25519Verify(gatewayKeys.ed25519.publicKey, message, Buffer.from(signature, 'hex')));
    assert.ok(canonicalJson(rest).startsWith('{"expires_at":1700086400,"identity_key":"'));
    assert.ok(!/\s/.test(canonicalJson(rest)));
  });
});

describe('validity', () => {
  test('expired or issued in the future → coded errors; the clock skew tolerated is 5 minutes', () => {
    const d = clone(sample({ validitySec: 3600 }));
    assert.equal(verify(d, T0 + 3599).expires_at, T0 + 3600);
    expectCode(() => verify(d, T0 + 3600), 'LPGW_ERR_DESCRIPTOR_EXPIRED', 'expired at');
    assert.equal(verify(d, T0 - 300).issued_at, T0, 'issued up to 300 s ahead of our clock is fine');
    expectCode(() => verify(d, T0 - 301), 'LPGW_ERR_DESCRIPTOR_NOT_YET_VALID', 'in the future');
  });
});

describe('tampering', () => {
  const mutations: Array<[string, (o: Record<string, unknown>) => void]> = [
    ['lp.tcp', (o) => ((o.lp as Record<string, unknown>).tcp = '192.0.2.11:41264')],
    ['lp.udp', (o) => ((o.lp as Record<string, unknown>).udp = null)],
    ['kem.key_hash', (o) => ((o.kem as Record<string, unknown>).key_hash = toHex(otherGatewayKeys.kemKeyHash))],
    ['roles', (o) => (o.roles = ['exit'])],
    ['wireguard', (o) => (o.wireguard = null)],
    ['software_version', (o) => (o.software_version = '9.9.9')],
    ['issued_at', (o) => (o.issued_at = 1_700_000_001)],
    ['expires_at', (o) => (o.expires_at = 1_800_000_000)],
    ['identity_key', (o) => (o.identity_key = toHex(otherGatewayKeys.ed25519.publicKey))],
  ];
  for (const [field, mutate] of mutations) {
    test(`changed ${field} → LPGW_ERR_DESCRIPTOR_SIGNATURE`, () => {
      const o = clone(sample());
      mutate(o);
      expectCode(() => verify(o), 'LPGW_ERR_DESCRIPTOR_SIGNATURE', 'signature does not verify');
    });
  }

  test('flipped signature bit, or a signature by another key → LPGW_ERR_DESCRIPTOR_SIGNATURE', () => {
    const o = clone(sample());
    const sig = o.signature as string;
    o.signature = `${sig.slice(0, 10)}${sig[10] === '0' ? '1' : '0'}${sig.slice(11)}`;
    expectCode(() => verify(o), 'LPGW_ERR_DESCRIPTOR_SIGNATURE');
    const other = buildDescriptor({ lpTcp: '192.0.2.10:41264', lpUdp: null, mode: 'both', wireguard: null, issuedAt: T0 }, defaultSuite, otherGatewayKeys);
    const forged = { ...clone(other), identity_key: toHex(gatewayKeys.ed25519.publicKey) };
    expectCode(() => verify(forged), 'LPGW_ERR_DESCRIPTOR_SIGNATURE');
  });

  test('malformed shapes → LPGW_ERR_DESCRIPTOR_MALFORMED', () => {
    const cases: Array<[string, unknown]> = [
      ['not an object', 'hello'],
      ['array', []],
      ['null', null],
      ['missing field', (() => { const o = clone(sample()); delete o.kem; return o; })()],
      ['extra field', { ...clone(sample()), extra: 1 }],
      ['extra nested field', (() => { const o = clone(sample()); (o.lp as Record<string, unknown>).quic = null; return o; })()],
      ['schema_version 1', { ...clone(sample()), schema_version: 1 }],
      ['no expires_at', (() => {
        const o = clone(sample());
        delete o.expires_at;
        return o;
      })()],
      ['expires_at not after issued_at', { ...clone(sample()), expires_at: 1_700_000_000 }],
      ['upper-case hex identity', { ...clone(sample()), identity_key: toHex(gatewayKeys.ed25519.publicKey).toUpperCase() }],
      ['short identity', { ...clone(sample()), identity_key: 'ab' }],
      ['bad lp.tcp', { ...clone(sample()), lp: { tcp: 'nowhere', udp: null } }],
      ['unnormalised lp.tcp', { ...clone(sample()), lp: { tcp: '[FD00:0::1]:041264', udp: null } }],
      ['classical KEM', { ...clone(sample()), kem: { algorithm: 'X25519', kkt_code: 255, key_hash_algorithm: 'BLAKE3-256', key_hash: 'ab'.repeat(32) } }],
      ['bad roles', { ...clone(sample()), roles: ['relay'] }],
      ['empty roles', { ...clone(sample()), roles: [] }],
      ['duplicate roles', { ...clone(sample()), roles: ['exit', 'exit'] }],
      ['bad wireguard key', { ...clone(sample()), wireguard: { public_key: 'abc', endpoint: '192.0.2.10:51820', tunnel_ipv4: '10.1.0.1', tunnel_ipv6: 'fd00:1::1' } }],
      ['wireguard without tunnel addresses', { ...clone(sample()), wireguard: { public_key: sample().wireguard?.public_key, endpoint: '192.0.2.10:51820' } }],
      ['IPv6 as tunnel_ipv4', { ...clone(sample()), wireguard: { ...sample().wireguard, tunnel_ipv4: 'fd00:1::1' } }],
      ['uncanonical tunnel_ipv6', { ...clone(sample()), wireguard: { ...sample().wireguard, tunnel_ipv6: 'FD00:1:0::1' } }],
      ['float issued_at', { ...clone(sample()), issued_at: 1.5 }],
      ['string issued_at', { ...clone(sample()), issued_at: '1700000000' }],
      ['short signature', { ...clone(sample()), signature: 'ab' }],
      ['non-ASCII version', { ...clone(sample()), software_version: 'vé' }],
    ];
    for (const [name, value] of cases) {
      assert.throws(() => verify(value), (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_DESCRIPTOR_MALFORMED', name);
    }
  });
});

describe('canonical form', () => {
  test('independent of key order, recursively', () => {
    const d = sample();
    const reordered = {
      signature: d.signature,
      wireguard: d.wireguard ? { tunnel_ipv6: d.wireguard.tunnel_ipv6, endpoint: d.wireguard.endpoint, tunnel_ipv4: d.wireguard.tunnel_ipv4, public_key: d.wireguard.public_key } : null,
      software_version: d.software_version,
      roles: d.roles,
      lp: { udp: d.lp.udp, tcp: d.lp.tcp },
      kem: { key_hash: d.kem.key_hash, key_hash_algorithm: d.kem.key_hash_algorithm, kkt_code: d.kem.kkt_code, algorithm: d.kem.algorithm },
      issued_at: d.issued_at,
      expires_at: d.expires_at,
      identity_key: d.identity_key,
      schema_version: d.schema_version,
    };
    assert.notEqual(JSON.stringify(reordered), JSON.stringify(d));
    assert.equal(canonicalJson(reordered), canonicalJson(d));
    assert.deepEqual(verify(reordered), d);
  });

  test('canonicalJson basics', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: null, c: true }, 'x"y'] }), '{"a":[{"c":true,"d":null},"x\\"y"],"b":1}');
    assert.throws(() => canonicalJson({ a: 1.5 }), TypeError);
  });
});

describe('addresses', () => {
  test('normalizeLpAddress', () => {
    assert.equal(normalizeLpAddress('10.0.0.1:041264'), '10.0.0.1:41264');
    assert.equal(normalizeLpAddress('[FD00:0:0::0001]:80'), '[fd00::1]:80');
    assert.equal(normalizeLpAddress('[::ffff:192.0.2.1]:1'), '[::ffff:c000:201]:1');
    assert.equal(normalizeLpAddress('Gateway.Example.ORG.:8080'), 'gateway.example.org:8080');
    assert.throws(() => normalizeLpAddress('fd00::1:80'), (e: unknown) => e instanceof GatewayError && e.code === 'LPGW_ERR_BAD_ADDRESS');
  });

  test('build normalises addresses before signing', () => {
    const d = sample({ lpTcp: '[FD00::0:1]:041264', lpUdp: null });
    assert.equal(d.lp.tcp, '[fd00::1]:41264');
    assert.deepEqual(verify(clone(d)), d);
  });

  test('announced addresses from the configuration', () => {
    const cfg = (lp: Partial<GatewayConfig['lp']>, wireguard: Partial<GatewayConfig['wireguard']> = {}): GatewayConfig => ({ ...DEFAULT_CONFIG, lp: { ...DEFAULT_CONFIG.lp, ...lp }, wireguard: { ...DEFAULT_CONFIG.wireguard, ...wireguard } });
    assert.deepEqual(announcedAddresses(DEFAULT_CONFIG), { lpTcp: '127.0.0.1:41264', lpUdp: '127.0.0.1:51264', wireguardEndpoint: '127.0.0.1:51820' });
    assert.deepEqual(announcedAddresses(cfg({ announceHost: '198.51.100.7', udp: '' })), { lpTcp: '198.51.100.7:41264', lpUdp: null, wireguardEndpoint: '198.51.100.7:51820' });
    assert.deepEqual(announcedAddresses(cfg({ tcp: '[fd00::2]:0', udp: '[fd00::2]:0' }), { tcpPort: 40001, udpPort: 40002 }), { lpTcp: '[fd00::2]:40001', lpUdp: '[fd00::2]:40002', wireguardEndpoint: '[fd00::2]:51820' });
    assert.equal(announcedAddresses(cfg({}, { endpoint: '203.0.113.1:443' })).wireguardEndpoint, '203.0.113.1:443');
    assert.equal(descriptorParamsFromConfig(cfg({ announceHost: '198.51.100.7' }), wgPublic).wireguard, null, 'no WireGuard interface: no tunnel announced');
    const params = descriptorParamsFromConfig(cfg({ announceHost: '198.51.100.7' }, { interface: 'wg0' }), wgPublic);
    const d = buildDescriptor(params, defaultSuite, gatewayKeys);
    assert.equal(d.lp.tcp, '198.51.100.7:41264');
    assert.deepEqual(d.wireguard, { public_key: Buffer.from(wgPublic).toString('base64'), endpoint: '198.51.100.7:51820', tunnel_ipv4: '10.1.0.1', tunnel_ipv6: 'fd00:1::1' });
    // the endpoint's port is the interface's listen port unless an endpoint is configured
    assert.equal(announcedAddresses(cfg({}, { listenPort: 51999 })).wireguardEndpoint, '127.0.0.1:51999');
    const own = buildDescriptor(descriptorParamsFromConfig({ ...cfg({}), wireguard: { ...DEFAULT_CONFIG.wireguard, interface: 'wg0', tunnelIpv4: '10.1.0.9', tunnelIpv6: 'fd00:1::abcd' } }, wgPublic), defaultSuite, gatewayKeys);
    assert.equal(own.wireguard?.tunnel_ipv4, '10.1.0.9');
    assert.equal(own.wireguard?.tunnel_ipv6, 'fd00:1::abcd');
    assert.deepEqual(verifyDescriptor(clone(d), defaultSuite), d);
  });
});
