/**
 * IP/ICMP/UDP packets and the replay window, offline: checksums against RFC 1071's worked example and
 * against packets the Linux kernel produced (the echo replies recorded in the wireguard-go vector), the
 * replay window against wireguard-go's replay_test.go sequence, address parsing/formatting.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  IPPROTO_UDP,
  REPLAY_WINDOW_SIZE,
  ReplayWindow,
  WgErrorCode,
  buildEcho,
  buildIpPacket,
  buildUdpPacket,
  formatIp,
  internetChecksum,
  parseEcho,
  parseIp,
  parseIpPacket,
  parseUdp,
  paddingFor,
  trimIpPacket,
} from '../../../src/client/wireguard/index.js';

const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const H = JSON.parse(readFileSync(new URL('../../vectors/wireguard-handshake.json', import.meta.url), 'utf8')) as {
  echoes: { src: string; dst: string; requestPacket: string; replyPacket: string }[];
  inputs: { echoId: number; echoData: string };
};

test('internet checksum: RFC 1071 §3 example', () => {
  // words 0001 f203 f4f5 f6f7 sum to ddf2 (with end-around carry); the checksum is its complement
  assert.equal(internetChecksum(unhex('0001f203f4f5f6f7')), 0xffff - 0xddf2);
  assert.equal(internetChecksum(unhex('0001f203f4f5f6f7'), unhex('220d')), 0);
  assert.equal(internetChecksum(unhex('01')), 0xfeff, 'odd length: padded with a zero byte');
});

test('echo replies the kernel sent through wireguard-go parse with valid checksums (IPv4 and ICMPv6)', () => {
  for (const e of H.echoes) {
    const ip = parseIpPacket(unhex(e.replyPacket));
    assert.equal(formatIp(ip.src), e.dst);
    assert.equal(formatIp(ip.dst), e.src);
    const echo = parseEcho(ip);
    assert.ok(echo);
    assert.equal(echo.kind, 'reply');
    assert.equal(echo.id, H.inputs.echoId);
    assert.equal(echo.seq, 1);
    assert.deepEqual(echo.data, unhex(H.inputs.echoData));
    // and ours for the request
    const req = parseEcho(parseIpPacket(unhex(e.requestPacket)));
    assert.equal(req?.kind, 'request');
  }
});

test('a damaged checksum or length is a coded error', () => {
  const e = H.echoes[0] as { replyPacket: string };
  const p = unhex(e.replyPacket);
  p[30] = (p[30] ?? 0) ^ 1; // ICMP data
  assert.throws(() => parseEcho(parseIpPacket(p)), { code: WgErrorCode.BAD_CHECKSUM });
  const h = unhex(e.replyPacket);
  h[8] = (h[8] ?? 0) ^ 1; // TTL: header checksum
  assert.throws(() => parseIpPacket(h), { code: WgErrorCode.BAD_CHECKSUM });
  assert.throws(() => parseIpPacket(unhex('4500')), { code: WgErrorCode.BAD_IP_PACKET });
  assert.throws(() => parseIpPacket(unhex('00')), { code: WgErrorCode.BAD_IP_PACKET });
  assert.throws(() => trimIpPacket(new Uint8Array(32)), { code: WgErrorCode.BAD_IP_PACKET });
});

test('UDP in IPv4 and IPv6: checksums over the pseudo-header, round trip, corruption detected', () => {
  for (const [s, d] of [
    ['10.1.2.3', '192.0.2.9'],
    ['fd00::1', '2001:db8::42'],
  ] as const) {
    for (const len of [0, 1, 7, 148, 1400]) {
      const payload = new Uint8Array(len).map((_, i) => i * 7);
      const pkt = buildUdpPacket(parseIp(s), 40000, parseIp(d), 51820, payload);
      const ip = parseIpPacket(pkt);
      assert.equal(ip.protocol, IPPROTO_UDP);
      const u = parseUdp(ip);
      assert.deepEqual(u, { srcPort: 40000, dstPort: 51820, payload });
      if (len > 0) {
        const bad = new Uint8Array(pkt);
        bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0x10;
        assert.throws(() => parseUdp(parseIpPacket(bad)), { code: WgErrorCode.BAD_CHECKSUM });
      }
    }
  }
});

test('echo packets: odd data lengths, IPv6 pseudo-header', () => {
  for (const [s, d] of [
    ['10.0.0.2', '10.0.0.1'],
    ['fd00::2', 'fd00::1'],
  ] as const) {
    for (const size of [0, 1, 3, 56, 1001]) {
      const pkt = buildEcho('request', parseIp(s), parseIp(d), 0xbeef, 77, new Uint8Array(size).fill(0xa5));
      const e = parseEcho(parseIpPacket(pkt));
      assert.equal(e?.kind, 'request');
      assert.equal(e?.seq, 77);
      assert.equal(e?.data.length, size);
    }
  }
  assert.throws(() => buildIpPacket(parseIp('10.0.0.1'), parseIp('fd00::1'), 1, new Uint8Array(0)), { code: WgErrorCode.BAD_ARGUMENT });
});

test('addresses: parse and RFC 5952 format', () => {
  for (const [text, norm] of [
    ['10.0.0.1', '10.0.0.1'],
    ['fd00::1', 'fd00::1'],
    ['fd00:0:0:0:0:0:0:1', 'fd00::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::ffff:10.1.2.3', '::ffff:a01:203'],
  ] as const) {
    assert.equal(formatIp(parseIp(text)), norm, text);
  }
  assert.throws(() => parseIp('10.0.0'), { code: WgErrorCode.BAD_ARGUMENT });
});

test('padding: multiples of 16, capped at the MTU (wireguard-go calculatePaddingSize)', () => {
  assert.equal(paddingFor(0, 1420), 0);
  assert.equal(paddingFor(1, 1420), 15);
  assert.equal(paddingFor(84, 1420), 12);
  assert.equal(paddingFor(1419, 1420), 1);
  assert.equal(paddingFor(1420, 1420), 0);
  assert.equal(paddingFor(1421, 1420), 15, 'beyond the MTU: the last unit is padded');
  assert.equal(paddingFor(5, 0), 11);
});

test('replay window: wireguard-go replay_test.go sequence', () => {
  const L = Number.MAX_SAFE_INTEGER;
  const f = new ReplayWindow();
  const T_LIM = REPLAY_WINDOW_SIZE + 1;
  let n = 0;
  const T = (c: number, expected: boolean): void => {
    n++;
    assert.equal(f.check(c, L), expected, `case ${n}: counter ${c}`);
  };
  T(0, true);
  T(1, true);
  T(1, false);
  T(9, true);
  T(8, true);
  T(7, true);
  T(7, false);
  T(T_LIM, true);
  T(T_LIM - 1, true);
  T(T_LIM - 1, false);
  T(T_LIM - 2, true);
  T(2, true);
  T(2, false);
  T(T_LIM + 16, true);
  T(3, false);
  T(T_LIM + 16, false);
  T(T_LIM * 4, true);
  T(T_LIM * 4 - (T_LIM - 1), true);
  T(10, false);
  T(T_LIM * 4 - T_LIM, false);
  T(T_LIM * 4 - (T_LIM + 1), false);
  T(T_LIM * 4 - (T_LIM - 2), true);
  T(T_LIM * 4 + 1 - T_LIM, false);
  T(0, false);
  T(L, false);
  T(L - 1, true);
  T(L, false);
  T(L - 1, false);
  T(L - 2, true);
  T(L + 1, false);
  T(L + 2, false);
  T(L - 2, false);
  T(L - 3, true);
  T(0, false);

  const bulk = (seq: number[], then: [number, boolean][]): void => {
    f.reset();
    for (const c of seq) assert.equal(f.check(c, L), true, `bulk ${c}`);
    for (const [c, e] of then) assert.equal(f.check(c, L), e, `after bulk: ${c}`);
  };
  const range = (a: number, b: number): number[] => (a <= b ? Array.from({ length: b - a + 1 }, (_, i) => a + i) : Array.from({ length: a - b + 1 }, (_, i) => a - i));
  bulk(range(1, REPLAY_WINDOW_SIZE), [
    [0, true],
    [0, false],
  ]);
  bulk(range(2, REPLAY_WINDOW_SIZE + 1), [
    [1, true],
    [0, false],
  ]);
  bulk(range(REPLAY_WINDOW_SIZE + 1, 1), []);
  bulk(range(REPLAY_WINDOW_SIZE + 2, 2), [[0, false]]);
  bulk(range(REPLAY_WINDOW_SIZE, 1), [
    [REPLAY_WINDOW_SIZE + 1, true],
    [0, false],
  ]);
  bulk(range(REPLAY_WINDOW_SIZE, 1), [
    [0, true],
    [REPLAY_WINDOW_SIZE + 1, true],
  ]);
});
