/**
 * The managed interface's forwarding policy (DESIGN.md §10.9): an exit forwards clients anywhere out of its
 * uplink, an entry only to its directory's exits' WireGuard endpoints, without an uplink nothing is forwarded;
 * the rulesets are valid nftables (checked with `nft -c` in a throwaway namespace, as root).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AddressAllocator } from '../../src/gateway/registration/allocator.js';
import { enableSysctl, exitEndpoints, forwardingRuleset, nftTableName } from '../../src/gateway/wireguard/interface.js';
import { Netns, isRoot, which } from '../collector/helpers/env.js';

const pools = (() => {
  const a = new AddressAllocator();
  return { ipv4: a.ipv4, ipv6: a.ipv6 };
})();
const dir = mkdtempSync(join(tmpdir(), 'lpgw-nft-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('forwarding policy', () => {
  test('exit: anything out of the uplink, masqueraded; replies back; everything else from or to the tunnel dropped', () => {
    const r = forwardingRuleset('wg0', 'eth0', pools, { role: 'exit' });
    assert.match(r, /iifname "wg0" oifname "eth0" accept/);
    assert.match(r, /iifname "eth0" oifname "wg0" ct state established,related accept/);
    assert.match(r, /oifname "eth0" ip saddr 10\.1\.0\.0\/16 masquerade/);
    assert.match(r, /oifname "eth0" ip6 saddr fd00:1::\/112 masquerade/);
    assert.ok(r.indexOf('iifname "wg0" drop') > r.indexOf('oifname "eth0" accept'), 'the drop comes after the accepts');
  });

  test('entry: only UDP to the exits’ WireGuard endpoints, per family; none listed → nothing forwarded', () => {
    const { exits, skipped } = exitEndpoints(['10.77.0.3:51820', '[FD77::3]:51821', 'exit.example:51820', 'garbage']);
    assert.deepEqual(exits, [
      { address: '10.77.0.3', family: 4, port: 51820 },
      { address: 'fd77::3', family: 6, port: 51821 },
    ]);
    assert.deepEqual(skipped, ['exit.example:51820', 'garbage']);
    const r = forwardingRuleset('wg0', 'eth0', pools, { role: 'entry', exits });
    assert.match(r, /iifname "wg0" oifname "eth0" ip daddr \. udp dport \{ 10\.77\.0\.3 \. 51820 \} accept/);
    assert.match(r, /iifname "wg0" oifname "eth0" ip6 daddr \. udp dport \{ fd77::3 \. 51821 \} accept/);
    assert.doesNotMatch(r, /oifname "eth0" accept/, 'no blanket accept');
    const none = forwardingRuleset('wg0', 'eth0', pools, { role: 'entry', exits: [] });
    assert.doesNotMatch(none, /daddr/);
    assert.match(none, /iifname "wg0" drop/);
  });

  test('IP forwarding: a sysctl already 1 is not written (read-only /proc/sys in a container), else it is set to 1', () => {
    const on = join(dir, 'already-on');
    writeFileSync(on, '1');
    enableSysctl(on);
    assert.equal(readFileSync(on, 'utf8'), '1', 'left alone');
    const off = join(dir, 'off');
    writeFileSync(off, '0\n');
    enableSysctl(off);
    assert.equal(readFileSync(off, 'utf8'), '1\n');
    assert.throws(() => enableSysctl(join(dir, 'no-such-dir', 'x')), /ENOENT/);
  });

  test('no uplink: clients reach only the gateway (no forward accept, no NAT)', () => {
    const r = forwardingRuleset('wg0', '', pools, { role: 'exit' });
    assert.doesNotMatch(r, / accept\n|masquerade/, 'no rule accepts (only the chain policy says accept)');
    assert.match(r, /iifname "wg0" drop/);
    assert.match(r, /oifname "wg0" drop/);
    assert.equal(nftTableName('wg-0.x'), 'lp_gateway_wg_0_x');
  });

  test('every ruleset is valid nftables (nft -c in a throwaway namespace)', { skip: !isRoot || which('nft') === null ? 'needs root and nft' : false }, () => {
    const ns = Netns.create('nft');
    try {
      const cases = [
        forwardingRuleset('wg0', 'eth0', pools, { role: 'exit' }),
        forwardingRuleset('wg0', 'eth0', pools, { role: 'entry', exits: exitEndpoints(['10.77.0.3:51820', '[fd77::3]:51820', '10.77.0.9:1']).exits }),
        forwardingRuleset('wg0', 'eth0', pools, { role: 'entry', exits: [] }),
        forwardingRuleset('wg0', '', pools, { role: 'exit' }),
      ];
      cases.forEach((text, i) => {
        const file = join(dir, `r${i}.nft`);
        writeFileSync(file, text);
        const r = spawnSync('ip', ['netns', 'exec', ns.name, 'nft', '-c', '-f', file], { encoding: 'utf8' });
        assert.equal(r.status, 0, `case ${i}: ${r.stderr}\n${text}`);
      });
    } finally {
      ns.delete();
    }
  });
});
