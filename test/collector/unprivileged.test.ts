/**
 * Without privileges (uid 65534, no capabilities, via setpriv from util-linux) the library logs exactly one
 * clear line and returns null, and `lp-gateway collect` exits non-zero with that same single line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { NOT_PERMITTED_MESSAGE } from '../../src/collector/collector.js';
import { isRoot, LP_GATEWAY, NODE_TSX, ROOT, which } from './helpers/env.js';

const SETPRIV = which('setpriv');
const CHILD = fileURLToPath(new URL('./helpers/start-collector.ts', import.meta.url));
const DROP = ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];

function reachableByNobody(): boolean {
  if (!SETPRIV) return false;
  return spawnSync(SETPRIV, [...DROP, 'test', '-r', CHILD]).status === 0;
}

const skip = !isRoot ? 'needs root to switch to uid 65534' : !SETPRIV ? 'setpriv (util-linux) not installed' : !reachableByNobody() ? `the checkout (${ROOT}) is not readable by uid 65534` : false;

function runAsNobody(argv: readonly string[]): { status: number | null; lines: string[] } {
  const r = spawnSync(SETPRIV as string, [...DROP, ...argv], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, HOME: '/tmp', LPGW_LOG_LEVEL: 'info' },
    timeout: 20_000,
  });
  const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
  return { status: r.status, lines };
}

test('library: startCollector logs one clear line and returns null', { skip }, () => {
  const r = runAsNobody([...NODE_TSX, CHILD]);
  assert.equal(r.status, 0, r.lines.join('\n'));
  const logs = r.lines.filter((l) => !l.startsWith('RESULT'));
  assert.equal(logs.length, 1, `exactly one log line, got:\n${logs.join('\n')}`);
  const line = JSON.parse(logs[0] as string) as { msg: string; code: string; level: number };
  assert.equal(line.msg, NOT_PERMITTED_MESSAGE);
  assert.equal(line.code, 'LPGW_BPF_ERR_NOT_PERMITTED');
  assert.ok(r.lines.includes('RESULT null'));
});

test('lp-gateway collect: exits non-zero with that one line', { skip }, () => {
  const r = runAsNobody([process.execPath, LP_GATEWAY, 'collect', '-p', '45123', '--out-dir', '']);
  assert.equal(r.status, 1);
  assert.equal(r.lines.length, 1, `exactly one line, got:\n${r.lines.join('\n')}`);
  assert.match(r.lines[0] as string, /flow collector disabled: bpf\(\) not permitted \(run as root or with CAP_BPF\+CAP_NET_ADMIN\)/);
});
