/** NDJSON snapshot files: rotation by window count and by file age, retention by count and by age, failures. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FILE_PREFIX, SnapshotWriter } from '../../src/collector/snapshot-writer.js';
import type { WindowSnapshot } from '../../src/collector/schema.js';
import { WindowComputer } from '../../src/collector/windows.js';

const base = mkdtempSync(join(tmpdir(), 'lpgwt-writer-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(base, `d${n++}`);

function snap(seq: number): WindowSnapshot {
  const w = new WindowComputer();
  w.begin();
  return w.finish({
    seq,
    startedAt: 0,
    endedAt: 1000,
    final: false,
    source: { iface: 'lo', ifindex: 1, hooks: ['ingress'], attach_mode: 'tcx', watched_ports: [1], pid: 1 },
    flowsCapacity: 1,
    kernelStats: null,
    errors: { read: 0, write: 0 },
    complete: true,
  });
}

const files = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith(FILE_PREFIX)).sort();
const T0 = Date.now();

test('rotates after windowsPerFile windows; every line is one snapshot', () => {
  const dir = fresh();
  const w = new SnapshotWriter({ dir, windowsPerFile: 2, maxFiles: 10 });
  for (let i = 1; i <= 5; i++) assert.equal(w.write(snap(i), T0 + i * 1000), true);
  const fs = files(dir);
  assert.equal(fs.length, 3);
  const seqs = fs.flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as WindowSnapshot).seq));
  assert.deepEqual(seqs, [1, 2, 3, 4, 5]);
});

test('rotates when the file is older than fileAgeSec', () => {
  const dir = fresh();
  const w = new SnapshotWriter({ dir, windowsPerFile: 100, fileAgeSec: 10, maxFiles: 10 });
  w.write(snap(1), T0);
  w.write(snap(2), T0 + 5_000);
  w.write(snap(3), T0 + 11_000);
  assert.equal(files(dir).length, 2);
});

test('keeps only the newest maxFiles files (the current one included)', () => {
  const dir = fresh();
  const w = new SnapshotWriter({ dir, windowsPerFile: 1, maxFiles: 2 });
  for (let i = 1; i <= 5; i++) {
    w.write(snap(i), T0 + i * 1000);
    // make mtimes follow the writes, as in real time
    for (const f of files(dir)) {
      const seq = (JSON.parse(readFileSync(join(dir, f), 'utf8').trim()) as WindowSnapshot).seq;
      utimesSync(join(dir, f), (T0 + seq * 1000) / 1000, (T0 + seq * 1000) / 1000);
    }
  }
  const left = files(dir).map((f) => (JSON.parse(readFileSync(join(dir, f), 'utf8').trim()) as WindowSnapshot).seq);
  assert.deepEqual(left.sort(), [4, 5]);
});

test('deletes files older than maxAgeSec', () => {
  const dir = fresh();
  mkdirSync(dir, { recursive: true });
  const old = join(dir, `${FILE_PREFIX}20000101T000000000Z-1.ndjson`);
  writeFileSync(old, '{}\n');
  const twoDaysAgo = (Date.now() - 2 * 86_400_000) / 1000;
  utimesSync(old, twoDaysAgo, twoDaysAgo);
  const unrelated = join(dir, 'notes.txt');
  writeFileSync(unrelated, 'x');
  const w = new SnapshotWriter({ dir, maxAgeSec: 86_400 });
  w.write(snap(1));
  assert.equal(files(dir).length, 1);
  assert.ok(!files(dir).includes(`${FILE_PREFIX}20000101T000000000Z-1.ndjson`));
  assert.ok(readdirSync(dir).includes('notes.txt'), 'foreign files are untouched');
});

test('write failures return false, are counted, and recover', () => {
  const dir = fresh();
  writeFileSync(dir, 'a file where the directory should be');
  const w = new SnapshotWriter({ dir });
  assert.equal(w.write(snap(1)), false);
  assert.equal(w.write(snap(2)), false);
  assert.equal(w.takeErrors(), 2);
  assert.equal(w.takeErrors(), 0);
  rmSync(dir);
  assert.equal(w.write(snap(3)), true);
  assert.equal(w.stats.written, 1);
  w.close();
  assert.equal(w.write(snap(4)), false, 'closed writer writes nothing');
});
