/**
 * CPU time per thread of this process, from /proc (Linux). Node 20 has no per-thread CPU clock, and
 * `process.cpuUsage()` sums every thread, so a shard worker records its kernel thread id at start and the
 * I/O thread reads each thread's utime + stime. Elsewhere (no /proc) everything returns null.
 */
import { readFileSync, readlinkSync } from 'node:fs';

const CLK_TCK = 100; // USER_HZ: fixed at 100 on every Linux architecture Node supports

/** Kernel thread id of the calling thread, or null without /proc. */
export function currentThreadId(): number | null {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : null;
  } catch {
    return null;
  }
}

/** CPU seconds (utime + stime) from a /proc stat file (`/proc/<pid>/stat`, `/proc/<pid>/task/<tid>/stat`), or null. */
export function statCpuSeconds(path: string): number | null {
  try {
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // comm may contain spaces and ')'
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** CPU seconds a thread of this process has used so far, or null if it cannot be read. */
export function threadCpuSeconds(tid: number): number | null {
  return statCpuSeconds(`/proc/self/task/${tid}/stat`);
}
