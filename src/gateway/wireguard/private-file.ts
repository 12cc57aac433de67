/**
 * Hands a secret to a command-line tool through a file only the gateway's user can read, removed as soon
 * as the tool has run. Used for `wg` (kernel WireGuard), which reads keys from files: Node gives a child a
 * UNIX socket, not a pipe, as stdin, and `wg` cannot open("/dev/stdin") on a socket (ENXIO), and a key on
 * the command line would be visible to every user in /proc/<pid>/cmdline.
 *
 * The file is created with O_EXCL and mode 0600 in a 0700 directory (inside the data directory, next to
 * the keys and the database, which hold the same secrets); its content is overwritten with zeros before
 * it is unlinked, and the caller's buffer is zeroed.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/** Creates `dir` 0700 (or narrows it to 0700) and returns it. */
export function ensurePrivateDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
  return dir;
}

/**
 * Writes `content` to a new private file in `dir`, runs `use(path)`, then wipes and removes the file —
 * also when `use` throws. `content` is zeroed afterwards.
 */
export async function withPrivateFile<T>(dir: string, content: Uint8Array, use: (path: string) => Promise<T>): Promise<T> {
  ensurePrivateDir(dir);
  const path = join(dir, `.wg-${process.pid}-${randomBytes(8).toString('hex')}`);
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeAll(fd, content);
  } finally {
    closeSync(fd);
  }
  try {
    return await use(path);
  } finally {
    try {
      const wipe = openSync(path, 'r+');
      try {
        writeAll(wipe, new Uint8Array(content.length));
        fsyncSync(wipe);
      } finally {
        closeSync(wipe);
      }
      unlinkSync(path);
    } catch {
      // already gone
    }
    content.fill(0);
  }
}
