// Whether dist/ (the compiled JavaScript the binaries run, built by scripts/build.mjs) is current: plain
// JavaScript, shared by bin/launch.js and scripts/build.mjs. About 3 ms for the ~160 source files.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Directories and files dist/ is compiled from (tsconfig.build.json). */
const SOURCE_DIRS = ['src', 'probe'];
const SOURCE_FILES = ['tsconfig.json', 'tsconfig.build.json'];

function mtimeMs(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

/**
 * Null when dist/ is current, else why not. dist/BUILD-STAMP carries the time the build started reading the
 * sources; a source file changed since then (edited, or rewritten by a checkout or pull) makes dist/ stale.
 * Without the sources (an install that ships dist/ alone, such as the Docker image) dist/ is what there is.
 */
export function distStale(root) {
  const stamp = mtimeMs(join(root, 'dist', 'BUILD-STAMP'));
  if (stamp === null) return 'dist/ is missing (it is built by `npm ci`, or `npm run build`)';
  for (const dir of SOURCE_DIRS) {
    let entries;
    try {
      entries = readdirSync(join(root, dir), { recursive: true, withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isFile() || !e.name.endsWith('.ts')) continue;
      const m = mtimeMs(join(e.parentPath ?? e.path, e.name));
      if (m !== null && m > stamp) return `dist/ is older than ${join(e.parentPath ?? e.path, e.name).slice(root.length).replace(/^\//, '')} (run \`npm run build\`)`;
    }
  }
  for (const f of SOURCE_FILES) {
    const m = mtimeMs(join(root, f));
    if (m !== null && m > stamp) return `dist/ is older than ${f} (run \`npm run build\`)`;
  }
  return null;
}
