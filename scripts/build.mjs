#!/usr/bin/env node
/**
 * Compiles src/ and probe/ to JavaScript in dist/ (`tsc -p tsconfig.build.json`): what bin/lp-gateway.js and
 * bin/gateway-probe.js run. `npm ci` runs it through the package's `prepare` script, so a clean clone is set
 * up by `npm ci` alone; `npm run build` runs it by hand. Plain JavaScript: it must run before anything is
 * compiled, and without tsx.
 *
 *   node scripts/build.mjs            build dist/ (into a temporary directory, then swapped in)
 *   node scripts/build.mjs --if-stale build only when dist/ is missing or older than a source file
 *
 * dist/BUILD-STAMP's mtime is the moment the build started reading the sources; bin/launch.js compares it
 * with the sources' mtimes to tell whether dist/ is current (see there).
 *
 * Without TypeScript installed (a production install: `npm ci --omit=dev`, as in the Docker image's build
 * stage) there is nothing to compile with: it says so and exits 0, and the binaries need a dist/ built
 * elsewhere (the Docker image copies the checkout's).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');

if (process.argv.includes('--if-stale')) {
  // Imported only here: the Docker image's build stage runs this file (npm ci's `prepare`) without bin/.
  const { distStale } = await import('../bin/dist-state.js');
  if (distStale(root) === null) process.exit(0);
}

let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  process.stderr.write('lp-gateway build: TypeScript is not installed (a production install): dist/ not built here; the binaries need a dist/ built by a full `npm ci` or `npm run build`\n');
  process.exit(0);
}

const started = new Date();
const tmp = join(root, `dist.tmp-${process.pid}`);
rmSync(tmp, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', tmp], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  rmSync(tmp, { recursive: true, force: true });
  process.stderr.write(`lp-gateway build: tsc failed (${r.status ?? r.signal})\n`);
  process.exit(1);
}
const stamp = join(tmp, 'BUILD-STAMP');
writeFileSync(stamp, `built by scripts/build.mjs; sources as of ${started.toISOString()}\n`);
utimesSync(stamp, started, started);
if (existsSync(dist)) rmSync(dist, { recursive: true, force: true });
renameSync(tmp, dist);
