/** Files the package ships next to its code (the BPF object), found the same from src/ (tsx) and dist/src/. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's root: the nearest directory above this module that holds package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** `rel` (a path inside the package, e.g. bpf/collector.bpf.o) as an absolute path. */
export function packagePath(rel: string): string {
  return join(packageRoot(), rel);
}
