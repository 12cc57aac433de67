/**
 * NDJSON snapshot files: one window per line, `lpgw-collector-<UTC time>-<pid>.ndjson` in the output
 * directory. A file is closed after `windowsPerFile` windows or `fileAgeSec` seconds, whichever comes first;
 * after each rotation (and at start) files are pruned: only the newest `maxFiles` are kept and files older
 * than `maxAgeSec` are deleted. Writes are synchronous appends of whole lines, so a crash loses at most the
 * window being written and never leaves half a line followed by more data.
 *
 * Failures (full disk, permissions, a deleted directory) are returned as false and counted; they never
 * throw into the collector loop.
 */
import { appendFileSync, mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { WindowSnapshot } from './schema.js';

export const FILE_PREFIX = 'lpgw-collector-';
export const FILE_SUFFIX = '.ndjson';

export interface SnapshotWriterOptions {
  dir: string;
  /** newest files kept (retention by count). Default 48. */
  maxFiles?: number;
  /** files older than this are deleted (retention by age). Default 86,400 s. */
  maxAgeSec?: number;
  /** windows per file before rotating. Default 360 (one hour of 10 s windows). */
  windowsPerFile?: number;
  /** seconds before rotating a file regardless of its window count. Default 3,600. */
  fileAgeSec?: number;
}

export const WriterState = { OPEN: 'open', CLOSED: 'closed' } as const;
export type WriterState = (typeof WriterState)[keyof typeof WriterState];

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace('.', '');
}

export class SnapshotWriter {
  readonly dir: string;
  private readonly maxFiles: number;
  private readonly maxAgeMs: number;
  private readonly windowsPerFile: number;
  private readonly fileAgeMs: number;
  private readonly log: Logger | undefined;
  private current: string | null = null;
  private currentLines = 0;
  private currentOpenedAt = 0;
  private failing = false;
  private state: WriterState = WriterState.OPEN;
  /** failed writes since the last call to takeErrors() */
  private errors = 0;
  private totalErrors = 0;
  private written = 0;

  constructor(opts: SnapshotWriterOptions, log?: Logger) {
    this.dir = opts.dir;
    this.maxFiles = Math.max(1, opts.maxFiles ?? 48);
    this.maxAgeMs = Math.max(1, opts.maxAgeSec ?? 86_400) * 1000;
    this.windowsPerFile = Math.max(1, opts.windowsPerFile ?? 360);
    this.fileAgeMs = Math.max(1, opts.fileAgeSec ?? 3_600) * 1000;
    this.log = log;
  }

  get currentFile(): string | null {
    return this.current;
  }

  get stats(): { written: number; errors: number } {
    return { written: this.written, errors: this.totalErrors };
  }

  /** Failed writes since the previous call (reported in the next window's `errors.write`). */
  takeErrors(): number {
    const e = this.errors;
    this.errors = 0;
    return e;
  }

  /** Appends one snapshot line; false (logged once per failure streak) when it could not be written. */
  write(snap: WindowSnapshot, now: number = Date.now()): boolean {
    if (this.state === WriterState.CLOSED) return false;
    try {
      if (this.current === null || this.currentLines >= this.windowsPerFile || now - this.currentOpenedAt >= this.fileAgeMs) {
        this.rotate(now);
      }
      appendFileSync(this.current as string, `${JSON.stringify(snap)}\n`);
      this.currentLines++;
      this.written++;
      if (this.failing) {
        this.failing = false;
        this.log?.info({ file: this.current }, 'collector snapshot writes recovered');
      }
      return true;
    } catch (e) {
      this.errors++;
      this.totalErrors++;
      if (!this.failing) {
        this.failing = true;
        this.log?.warn({ err: (e as Error).message, dir: this.dir, code: 'LPGW_COLLECTOR_WRITE_FAILED' }, 'collector snapshot write failed; the collector keeps running');
      }
      // next attempt starts a fresh file (the directory may have been recreated)
      this.current = null;
      return false;
    }
  }

  private rotate(now: number): void {
    mkdirSync(this.dir, { recursive: true });
    let name = `${FILE_PREFIX}${stamp(now)}-${process.pid}${FILE_SUFFIX}`;
    if (this.current !== null && join(this.dir, name) === this.current) name = `${FILE_PREFIX}${stamp(now + 1)}-${process.pid}${FILE_SUFFIX}`;
    this.current = join(this.dir, name);
    this.currentLines = 0;
    this.currentOpenedAt = now;
    this.prune(now);
  }

  /** Applies retention (count and age); never deletes the current file. Errors are ignored (best effort). */
  prune(now: number = Date.now()): void {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n.startsWith(FILE_PREFIX) && n.endsWith(FILE_SUFFIX));
    } catch {
      return;
    }
    const files = names
      .map((n) => {
        const path = join(this.dir, n);
        try {
          return { path, mtime: statSync(path).mtimeMs };
        } catch {
          return null;
        }
      })
      .filter((f): f is { path: string; mtime: number } => f !== null && f.path !== this.current)
      .sort((a, b) => b.mtime - a.mtime || (a.path < b.path ? 1 : -1));
    // the current file counts towards maxFiles
    const keep = this.maxFiles - (this.current !== null ? 1 : 0);
    files.forEach((f, i) => {
      if (i >= keep || now - f.mtime > this.maxAgeMs) {
        try {
          unlinkSync(f.path);
        } catch {
          // already gone
        }
      }
    });
  }

  close(): void {
    this.state = WriterState.CLOSED;
    this.current = null;
  }
}
