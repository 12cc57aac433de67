/**
 * Attach/cleanup behaviour of `lp-gateway collect` (run inside a namespace this test creates, on its lo):
 *  - TCX: after SIGTERM and after kill -9, no link of ours remains and the program is freed.
 *  - clsact fallback: SIGTERM removes our filters and the qdisc we created; kill -9 cannot (a tc filter
 *    outlives its process), so the next start removes the stale filter (and our leftover qdisc) first.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { BpfSys } from '../../src/collector/bpf-syscall.js';
import { jsonLines, killQuietly, LP_GATEWAY, Netns, poll, ROOT_SKIP } from './helpers/env.js';

const children: ChildProcess[] = [];
let ns: Netns | null = null;
let sys: BpfSys | null = null;

before(async () => {
  if (ROOT_SKIP) return;
  ns = Netns.create('life');
  sys = await BpfSys.open();
});

after(() => {
  for (const c of children) killQuietly(c);
  ns?.delete();
});

function startCollect(extra: string[] = []): { child: ChildProcess; out: ReturnType<typeof jsonLines> } {
  if (!ns) throw new Error('no netns');
  const child = ns.spawn([process.execPath, LP_GATEWAY, 'collect', '-i', 'lo', '-p', '45111', '--out-dir', '', '--window-sec', '60', ...extra]);
  children.push(child);
  return { child, out: jsonLines(child) };
}

function linkExists(id: number): boolean {
  const fd = sys?.fdById('link', id) ?? null;
  if (fd === null) return false;
  sys?.close(fd);
  return true;
}

function progExists(id: number): boolean {
  const fd = sys?.fdById('prog', id) ?? null;
  if (fd === null) return false;
  sys?.close(fd);
  return true;
}

function filters(): string {
  return ns ? ns.exec('tc', ['filter', 'show', 'dev', 'lo', 'ingress']) : '';
}

function hasClsact(): boolean {
  return ns ? ns.exec('tc', ['qdisc', 'show', 'dev', 'lo']).includes('clsact') : false;
}

for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
  test(`tcx: no link or program of ours remains after ${signal}`, { skip: ROOT_SKIP, timeout: 20_000 }, async () => {
    const { child, out } = startCollect();
    const attached = await out.waitFor((l) => l.msg === 'collector attached');
    assert.equal(attached.attach_mode, 'tcx');
    const linkIds = attached.link_ids as number[];
    const progId = attached.prog_id as number;
    assert.equal(linkIds.length, 1);
    assert.ok(linkIds.every(linkExists) && progExists(progId), 'attached while running');
    child.kill(signal);
    const ex = await out.exited;
    if (signal === 'SIGTERM') assert.equal(ex.code, 0);
    assert.ok(await poll(() => !linkIds.some(linkExists), 3000), 'links gone');
    assert.ok(await poll(() => !progExists(progId), 3000), 'program freed');
    assert.equal(filters().trim(), '');
    assert.ok(!hasClsact());
  });
}

test('clsact: SIGTERM removes our filter and qdisc', { skip: ROOT_SKIP, timeout: 20_000 }, async () => {
  const { child, out } = startCollect(['--attach', 'clsact']);
  const attached = await out.waitFor((l) => l.msg === 'collector attached');
  assert.equal(attached.attach_mode, 'clsact');
  assert.match(filters(), /lpgw_collector/);
  assert.ok(hasClsact());
  child.kill('SIGTERM');
  assert.equal((await out.exited).code, 0);
  assert.equal(filters().trim(), '');
  assert.ok(!hasClsact(), 'qdisc we created is removed');
});

test('clsact: a filter left by kill -9 is removed by the next start', { skip: ROOT_SKIP, timeout: 20_000 }, async () => {
  const first = startCollect(['--attach', 'clsact']);
  await first.out.waitFor((l) => l.msg === 'collector attached');
  first.child.kill('SIGKILL');
  await first.out.exited;
  assert.match(filters(), /lpgw_collector/, 'kill -9 leaves a tc filter (why TCX is the default)');

  const second = startCollect(); // auto → TCX; the stale clsact filter and our leftover qdisc go first
  const attached = await second.out.waitFor((l) => l.msg === 'collector attached');
  assert.equal(attached.stale_filters_removed, 1);
  assert.equal(attached.attach_mode, 'tcx');
  assert.equal(filters().trim(), '');
  assert.ok(!hasClsact());
  second.child.kill('SIGTERM');
  assert.equal((await second.out.exited).code, 0);
  assert.ok(await poll(() => !(attached.link_ids as number[]).some(linkExists), 3000));
});
