/** `lp-gateway collect` argument handling: --help, usage errors (exit 2), start failures (exit 1). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { collectCommand, parseDuration } from '../../src/cli/commands/collect.js';
import { UsageError } from '../../src/cli/command.js';
import { LP_GATEWAY, ROOT, ROOT_SKIP } from './helpers/env.js';

function run(args: readonly string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [LP_GATEWAY, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

test('--help documents every option', () => {
  const r = run(['collect', '--help']);
  assert.equal(r.status, 0);
  for (const opt of ['--port', '--iface', '--out-dir', '--window-sec', '--max-flows', '--max-files', '--max-age', '--duration-sec', '--http', '--verbose', '41264', '51264']) {
    assert.ok(r.out.includes(opt), `help mentions ${opt}`);
  }
  assert.match(run(['--help']).out, /collect/);
});

test('usage errors are rejected before anything starts', async () => {
  for (const args of [['--bogus'], ['--window-sec', '0'], ['-p', '70000'], ['--max-age', 'soon'], ['--http', 'nope'], ['--attach', 'xdp'], ['extra'], ['--max-flows', '1.5']]) {
    await assert.rejects(collectCommand.run(args), (e: unknown) => e instanceof UsageError || /^ERR_PARSE_ARGS_/.test((e as { code?: string }).code ?? ''), args.join(' '));
  }
  // and the binary turns them into exit status 2 with a pointer to --help
  const r = run(['collect', '--window-sec', '-3']);
  assert.equal(r.status, 2, r.err);
  assert.match(r.err, /--help/);
});

test('durations', () => {
  assert.equal(parseDuration('90'), 90);
  assert.equal(parseDuration('30m'), 1800);
  assert.equal(parseDuration('12h'), 43_200);
  assert.equal(parseDuration('7d'), 604_800);
  assert.throws(() => parseDuration('-1'));
});

test('an unknown interface exits 1 with a coded line', { skip: ROOT_SKIP }, () => {
  const r = run(['collect', '-i', 'lpgwt-nope0', '--out-dir', '']);
  assert.equal(r.status, 1, r.out + r.err);
  const lines = r.out.trim().split('\n');
  assert.equal(lines.length, 1);
  assert.match(lines[0] as string, /LPGW_BPF_ERR_NO_SUCH_IFACE/);
});
