/**
 * Two hops: an outer tunnel to wireguard-go A and, running over `outer.udpTransport(...)`, an inner tunnel to
 * wireguard-go B, which is reachable only behind A (namespace A forwards between its WireGuard interface and
 * a veth pair to namespace B). Pings to B's tunnel addresses cross both tunnels; B sees the inner tunnel's
 * datagrams come from the client's outer tunnel address. Root only; everything is torn down in `after`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { wgKeyPair, wgKeyToBase64 } from '../../../src/client/wireguard/index.js';
import { Driver, Netns, WG_SKIP, WgGo, b64, cleanup, uniqueName, type Json } from './helpers/wg-env.js';

after(() => cleanup());

const okOf = (r: Json): Json => {
  assert.equal(r.ok, true, JSON.stringify(r).slice(0, 600));
  return r;
};

test('ping through a tunnel inside a tunnel (wireguard-go A, then wireguard-go B behind it)', { skip: WG_SKIP }, async () => {
  const a = Netns.create();
  const b = Netns.create();
  const vA = uniqueName();
  const vB = uniqueName();
  a.ip(['link', 'add', vA, 'type', 'veth', 'peer', 'name', vB]);
  a.ip(['link', 'set', vB, 'netns', b.name]);
  a.ip(['address', 'add', '10.93.0.1/30', 'dev', vA]);
  a.ip(['link', 'set', vA, 'up']);
  b.ip(['address', 'add', '10.93.0.2/30', 'dev', vB]);
  b.ip(['link', 'set', vB, 'up']);
  a.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  b.ip(['route', 'add', '10.92.0.0/24', 'via', '10.93.0.1']);

  const gwA = wgKeyPair();
  const gwB = wgKeyPair();
  const outerKeys = wgKeyPair();
  const innerKeys = wgKeyPair();
  const pskA = new Uint8Array(randomBytes(32));
  const pskB = new Uint8Array(randomBytes(32));
  const wgA = await WgGo.start(a, { privateKey: gwA.privateKey, port: 51820, addr4: '10.92.0.1/24', addr6: 'fd92::1/64' });
  const wgB = await WgGo.start(b, { privateKey: gwB.privateKey, port: 51821, addr4: '10.94.0.1/24', addr6: 'fd94::1/64' });
  wgA.setPeer({ publicKey: outerKeys.publicKey, psk: pskA, allowedIps: '10.92.0.2/32,fd92::2/128' });
  wgB.setPeer({ publicKey: innerKeys.publicKey, psk: pskB, allowedIps: '10.94.0.2/32,fd94::2/128' });

  const d = Driver.start(a);
  okOf(
    await d.call('connect', {
      tid: 'outer',
      privateKey: b64(outerKeys.privateKey),
      peerPublicKey: b64(gwA.publicKey),
      presharedKey: b64(pskA),
      host: '127.0.0.1',
      port: 51820,
      localIpv4: '10.92.0.2',
      localIpv6: 'fd92::2',
    }),
  );
  const inner = okOf(
    await d.call('connect', {
      tid: 'inner',
      privateKey: b64(innerKeys.privateKey),
      peerPublicKey: b64(gwB.publicKey),
      presharedKey: b64(pskB),
      host: '10.93.0.2',
      port: 51821,
      localIpv4: '10.94.0.2',
      localIpv6: 'fd94::2',
      outer: { tid: 'outer', src: '10.92.0.2', srcPort: 40000, dst: '10.93.0.2', dstPort: 51821 },
    }),
  );
  assert.equal((inner.stats as Json).handshakes, 1);
  for (const dst of ['10.94.0.1', 'fd94::1']) {
    const p = okOf(await d.call('ping', { tid: 'inner', dst, count: 3 }));
    assert.equal(p.received, 3, `inner ping to ${dst}`);
  }
  // B saw the inner client at the outer tunnel address: its datagrams really crossed tunnel A
  const endpoints = b.exec('wg', ['show', wgB.ifname, 'endpoints']);
  assert.match(endpoints, new RegExp(`${wgKeyToBase64(innerKeys.publicKey).replace(/[+/]/g, '\\$&')}\\s+10\\.92\\.0\\.2:40000`));
  // and the outer tunnel carried them: A counted more than the inner pings' worth of bytes
  assert.ok(wgA.transfer(outerKeys.publicKey).rx > 6 * 84);
  const outer = okOf(await d.call('stats', { tid: 'outer' }));
  assert.equal((outer.stats as { dropped: number }).dropped, 0);
  d.kill();
});
