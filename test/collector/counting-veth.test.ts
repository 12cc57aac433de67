/**
 * Known LP traffic across a veth pair between two network namespaces this test creates: the collector
 * (`lp-gateway collect`, a child process inside namespace A) attaches TCX ingress+egress to A's veth end;
 * the LP server runs in A, the client in B. The NDJSON windows written by the CLI must add up to exactly the
 * expected counters (same rules as the loopback test). SIGTERM must write a final window and leave no
 * link or filter behind. Namespaces are deleted in after(), whatever happened.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { BpfSys } from '../../src/collector/bpf-syscall.js';
import type { WindowSnapshot } from '../../src/collector/schema.js';
import { jsonLines, killQuietly, LP_GATEWAY, LP_PEER, Netns, NODE_TSX, ROOT_SKIP } from './helpers/env.js';
import { compare, standardPlan, sumWindows, type SocketReport } from './helpers/lp-traffic.js';

const children: ChildProcess[] = [];
const namespaces: Netns[] = [];
const dirs: string[] = [];

after(() => {
  for (const c of children) killQuietly(c);
  for (const ns of namespaces) ns.delete();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const A4 = '198.18.0.1';
const B4 = '198.18.0.2';
const A6 = 'fd00:6c70:6777::1';
const B6 = 'fd00:6c70:6777::2';

test('veth between two namespaces: per-flow and per-index counts equal what was sent', { skip: ROOT_SKIP, timeout: 45_000 }, async () => {
  const a = Netns.create('a');
  namespaces.push(a);
  const b = Netns.create('b');
  namespaces.push(b);
  a.ip(['link', 'add', 'veth-a', 'type', 'veth', 'peer', 'name', 'veth-b', 'netns', b.name]);
  a.ip(['addr', 'add', `${A4}/30`, 'dev', 'veth-a']);
  a.ip(['-6', 'addr', 'add', `${A6}/64`, 'dev', 'veth-a', 'nodad']);
  a.ip(['link', 'set', 'veth-a', 'up']);
  b.ip(['addr', 'add', `${B4}/30`, 'dev', 'veth-b']);
  b.ip(['-6', 'addr', 'add', `${B6}/64`, 'dev', 'veth-b', 'nodad']);
  b.ip(['link', 'set', 'veth-b', 'up']);

  const out = mkdtempSync(join(tmpdir(), 'lpgwt-veth-'));
  dirs.push(out);

  const server = a.spawn([...NODE_TSX, LP_PEER, 'server', '--host', '::']);
  children.push(server);
  const serverOut = jsonLines(server);
  const ports = (await serverOut.waitFor((l) => typeof l.tcpPort === 'number')) as { tcpPort: number; udpPort: number };

  const collector = a.spawn([process.execPath, LP_GATEWAY, 'collect', '-i', 'veth-a', '-p', String(ports.tcpPort), '-p', String(ports.udpPort), '--window-sec', '1', '--out-dir', out]);
  children.push(collector);
  const col = jsonLines(collector);
  const attached = await col.waitFor((l) => l.msg === 'collector attached');
  assert.equal(attached.attach_mode, 'tcx');
  assert.deepEqual(attached.hooks, ['ingress', 'egress']);
  const linkIds = attached.link_ids as number[];
  const progId = attached.prog_id as number;
  assert.equal(linkIds.length, 2);

  const client = b.spawn([...NODE_TSX, LP_PEER, 'client', '--v4', A4, '--v6', A6, '--tcp-port', String(ports.tcpPort), '--udp-port', String(ports.udpPort)]);
  children.push(client);
  const cl = jsonLines(client);
  const report = (await cl.waitFor((l) => Array.isArray(l), 30_000)) as unknown as SocketReport[];
  assert.equal((await cl.exited).code, 0, cl.stderr.join('\n'));
  await new Promise((r) => setTimeout(r, 100));

  collector.kill('SIGTERM');
  const ex = await col.exited;
  assert.equal(ex.code, 0, `collect exits 0 after SIGTERM; stderr: ${col.stderr.join('\n')}`);
  killQuietly(server, 'SIGTERM');

  const files = readdirSync(out).filter((f) => f.endsWith('.ndjson'));
  assert.equal(files.length, 1);
  const windows = readFileSync(join(out, files[0] as string), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as WindowSnapshot);
  assert.ok(windows.length >= 1);
  assert.equal(windows.at(-1)?.final, true, 'shutdown writes a final window');
  assert.ok(windows.every((w, i) => w.schema_version === 1 && w.seq === i + 1));
  assert.deepEqual(compare(standardPlan(), report, sumWindows(windows)), []);

  // nothing of ours left in the kernel or on the device
  const sys = await BpfSys.open();
  for (const id of linkIds) assert.equal(sys.fdById('link', id), null, `link ${id} removed`);
  assert.equal(a.exec('tc', ['filter', 'show', 'dev', 'veth-a', 'ingress']).trim(), '');
  assert.ok(!a.exec('tc', ['qdisc', 'show', 'dev', 'veth-a']).includes('clsact'));
  // the program is freed once its links and fds are gone (RCU: allow a moment)
  let progGone = false;
  for (let i = 0; i < 40 && !progGone; i++) {
    const fd = sys.fdById('prog', progId);
    if (fd === null) progGone = true;
    else {
      sys.close(fd);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert.ok(progGone, `program ${progId} freed`);
});
