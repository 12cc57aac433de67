/**
 * Raw bpf(2) and the few libc calls the collector needs, through koffi (no libbpf, no native build).
 *
 * Every `union bpf_attr` is built in a zeroed Node Buffer; pointers inside it are the addresses of other
 * Buffers (koffi.address), which stay valid because the caller keeps those Buffers referenced for the
 * duration of the synchronous call. Offsets are those of include/uapi/linux/bpf.h (stable ABI).
 */
import { CollectorError, CollectorErrorCode } from './errors.js';

export const BpfCmd = {
  MAP_CREATE: 0,
  MAP_LOOKUP_ELEM: 1,
  MAP_UPDATE_ELEM: 2,
  MAP_DELETE_ELEM: 3,
  MAP_GET_NEXT_KEY: 4,
  PROG_LOAD: 5,
  PROG_GET_FD_BY_ID: 13,
  OBJ_GET_INFO_BY_FD: 15,
  MAP_LOOKUP_BATCH: 24,
  MAP_UPDATE_BATCH: 26,
  LINK_CREATE: 28,
  LINK_GET_FD_BY_ID: 30,
  LINK_GET_NEXT_ID: 31,
} as const;

export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  EOPNOTSUPP: 95,
  ENOTSUPP: 524,
} as const;

/** Map flags / update flags. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;

/** Attach types used by the collector (kernel ≥ 6.6 for TCX). */
export const BpfAttachType = { TCX_INGRESS: 46, TCX_EGRESS: 47 } as const;
export const BpfProgType = { SCHED_CLS: 3 } as const;
export const BpfLinkType = { TCX: 11 } as const;

const ATTR_SIZE = 128; // larger than every command's attr we use; the tail stays zero as the kernel requires

const SYS_BPF: Partial<Record<string, number>> = { x64: 321, arm64: 280 };

export class BpfSyscallError extends CollectorError {
  readonly cmd: number;
  constructor(cmd: number, errno: number, what: string) {
    const code = errno === Errno.EPERM || errno === Errno.EACCES ? CollectorErrorCode.NOT_PERMITTED : CollectorErrorCode.SYSCALL;
    super(code, `${what} failed: errno ${errno} (${errnoName(errno)})`, errno);
    this.name = 'BpfSyscallError';
    this.cmd = cmd;
  }
}

export function errnoName(errno: number): string {
  for (const [k, v] of Object.entries(Errno)) if (v === errno) return k;
  return `E${errno}`;
}

export function isErrno(e: unknown, errno: number): boolean {
  return e instanceof CollectorError && e.errno === errno;
}

interface Libc {
  syscall: (nr: number, cmd: number, attr: bigint, size: number) => number | bigint;
  close: (fd: number) => number;
  ifNameToIndex: (name: string) => number;
  socket: (domain: number, type: number, proto: number) => number;
  bind: (fd: number, addr: bigint, len: number) => number;
  sendto: (fd: number, buf: bigint, len: number, flags: number, addr: bigint, alen: number) => number | bigint;
  recv: (fd: number, buf: bigint, len: number, flags: number) => number | bigint;
  setsockopt: (fd: number, level: number, name: number, val: bigint, len: number) => number;
  errno: () => number;
  address: (b: Buffer) => bigint;
}

export interface MapCreateSpec {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** ≤ 15 chars of [A-Za-z0-9_.] (the kernel's object-name rule). */
  name: string;
}

export interface ProgLoadSpec {
  type: number;
  insns: Buffer;
  license: string;
  name: string;
  expectedAttachType?: number;
  /** When set, the verifier log goes here (log_level 1). */
  log?: Buffer;
}

export interface BatchResult {
  count: number;
  /** True when the kernel reported the end of the map (ENOENT). */
  done: boolean;
}

function u64(b: Buffer, off: number, v: bigint): void {
  b.writeBigUInt64LE(v, off);
}

function objName(name: string): Buffer {
  const out = Buffer.alloc(16);
  out.write(name.replace(/[^A-Za-z0-9_.]/g, '_').slice(0, 15), 'latin1');
  return out;
}

/** A handle on the bpf() syscall and the libc functions around it. Open once per process. */
export class BpfSys {
  private readonly libc: Libc;
  private readonly nr: number;

  private constructor(libc: Libc, nr: number) {
    this.libc = libc;
    this.nr = nr;
  }

  /** Loads koffi and libc. Throws CollectorError(UNAVAILABLE) where that is impossible (not Linux, no koffi). */
  static async open(): Promise<BpfSys> {
    const nr = SYS_BPF[process.arch];
    if (process.platform !== 'linux' || nr === undefined) {
      throw new CollectorError(CollectorErrorCode.UNAVAILABLE, `eBPF needs Linux on x64/arm64 (this is ${process.platform}/${process.arch})`);
    }
    try {
      const koffi = (await import('koffi')).default;
      const lib = koffi.load('libc.so.6');
      // glibc's syscall() is an assembly stub reading its arguments from registers, so a fixed
      // (non-variadic) prototype is ABI-compatible on x86-64 and arm64 and avoids koffi's slower variadic path.
      const syscall = lib.func('long syscall(long nr, long cmd, uintptr_t attr, long size)');
      const close = lib.func('int close(int fd)');
      const ifNameToIndex = lib.func('unsigned int if_nametoindex(const char *name)');
      const socket = lib.func('int socket(int domain, int type, int protocol)');
      // Pointers are passed as integers (koffi.address of a live Buffer) so koffi never copies: the kernel
      // reads and writes the Buffers' own memory.
      const bind = lib.func('int bind(int fd, uintptr_t addr, uint32_t len)');
      const sendto = lib.func('long sendto(int fd, uintptr_t buf, size_t len, int flags, uintptr_t addr, uint32_t alen)');
      const recv = lib.func('long recv(int fd, uintptr_t buf, size_t len, int flags)');
      const setsockopt = lib.func('int setsockopt(int fd, int level, int name, uintptr_t val, uint32_t len)');
      const libc: Libc = {
        syscall: (n, c, a, s) => syscall(n, c, a, s) as number | bigint,
        close: (fd) => close(fd) as number,
        ifNameToIndex: (name) => ifNameToIndex(name) as number,
        socket: (d, t, p) => socket(d, t, p) as number,
        bind: (fd, addr, len) => bind(fd, addr, len) as number,
        sendto: (fd, buf, len, flags, addr, alen) => sendto(fd, buf, len, flags, addr, alen) as number | bigint,
        recv: (fd, buf, len, flags) => recv(fd, buf, len, flags) as number | bigint,
        setsockopt: (fd, level, name, val, len) => setsockopt(fd, level, name, val, len) as number,
        errno: () => koffi.errno(),
        address: (b) => koffi.address(b),
      };
      return new BpfSys(libc, nr);
    } catch (e) {
      if (e instanceof CollectorError) throw e;
      throw new CollectorError(CollectorErrorCode.UNAVAILABLE, `cannot load koffi/libc for bpf(): ${(e as Error).message}`);
    }
  }

  /** Address of a Buffer's memory, for pointer fields of bpf_attr. */
  addr(b: Buffer | null): bigint {
    return b === null || b.length === 0 ? 0n : this.libc.address(b);
  }

  /** bpf(cmd, attr): returns the non-negative result or throws BpfSyscallError. Retries EINTR/EAGAIN a few times. */
  bpf(cmd: number, attr: Buffer, what: string): number {
    for (let attempt = 0; ; attempt++) {
      const r = Number(this.libc.syscall(this.nr, cmd, this.libc.address(attr), attr.length));
      if (r >= 0) return r;
      const errno = this.libc.errno();
      // PROG_LOAD may return EAGAIN when the verifier log is too small; callers handle it themselves.
      if ((errno === Errno.EINTR || (errno === Errno.EAGAIN && cmd !== BpfCmd.PROG_LOAD)) && attempt < 5) continue;
      throw new BpfSyscallError(cmd, errno, what);
    }
  }

  close(fd: number): void {
    if (fd >= 0) this.libc.close(fd);
  }

  mapCreate(spec: MapCreateSpec): number {
    const a = Buffer.alloc(ATTR_SIZE);
    a.writeUInt32LE(spec.type, 0);
    a.writeUInt32LE(spec.keySize, 4);
    a.writeUInt32LE(spec.valueSize, 8);
    a.writeUInt32LE(spec.maxEntries, 12);
    a.writeUInt32LE(spec.flags, 16);
    objName(spec.name).copy(a, 28);
    return this.bpf(BpfCmd.MAP_CREATE, a, `BPF_MAP_CREATE(${spec.name})`);
  }

  private elemAttr(fd: number, key: Buffer | null, value: Buffer | null, flags: number): Buffer {
    const a = Buffer.alloc(ATTR_SIZE);
    a.writeUInt32LE(fd, 0);
    u64(a, 8, this.addr(key));
    u64(a, 16, this.addr(value));
    u64(a, 24, BigInt(flags));
    return a;
  }

  mapUpdate(fd: number, key: Buffer, value: Buffer, flags: number = BPF_ANY): void {
    this.bpf(BpfCmd.MAP_UPDATE_ELEM, this.elemAttr(fd, key, value, flags), 'BPF_MAP_UPDATE_ELEM');
  }

  /** False when the key is absent. */
  mapLookup(fd: number, key: Buffer, value: Buffer): boolean {
    try {
      this.bpf(BpfCmd.MAP_LOOKUP_ELEM, this.elemAttr(fd, key, value, 0), 'BPF_MAP_LOOKUP_ELEM');
      return true;
    } catch (e) {
      if (isErrno(e, Errno.ENOENT)) return false;
      throw e;
    }
  }

  mapDelete(fd: number, key: Buffer): boolean {
    try {
      this.bpf(BpfCmd.MAP_DELETE_ELEM, this.elemAttr(fd, key, null, 0), 'BPF_MAP_DELETE_ELEM');
      return true;
    } catch (e) {
      if (isErrno(e, Errno.ENOENT)) return false;
      throw e;
    }
  }

  /** Writes the key after `key` (or the first key for null) into `next`; false at the end. */
  mapGetNextKey(fd: number, key: Buffer | null, next: Buffer): boolean {
    const a = Buffer.alloc(ATTR_SIZE);
    a.writeUInt32LE(fd, 0);
    u64(a, 8, this.addr(key));
    u64(a, 16, this.addr(next));
    try {
      this.bpf(BpfCmd.MAP_GET_NEXT_KEY, a, 'BPF_MAP_GET_NEXT_KEY');
      return true;
    } catch (e) {
      if (isErrno(e, Errno.ENOENT)) return false;
      throw e;
    }
  }

  /**
   * One BPF_MAP_LOOKUP_BATCH call: up to `max` entries into keys/values. `inBatch` null starts at the
   * beginning; `outBatch` receives the cursor to pass as the next `inBatch` (hash maps: a u32 bucket).
   */
  mapLookupBatch(fd: number, inBatch: Buffer | null, outBatch: Buffer, keys: Buffer, values: Buffer, max: number): BatchResult {
    const a = Buffer.alloc(ATTR_SIZE);
    u64(a, 0, this.addr(inBatch));
    u64(a, 8, this.addr(outBatch));
    u64(a, 16, this.addr(keys));
    u64(a, 24, this.addr(values));
    a.writeUInt32LE(max, 32);
    a.writeUInt32LE(fd, 36);
    try {
      this.bpf(BpfCmd.MAP_LOOKUP_BATCH, a, 'BPF_MAP_LOOKUP_BATCH');
      return { count: a.readUInt32LE(32), done: false };
    } catch (e) {
      // ENOENT = end of map; `count` still holds the entries copied by this last call.
      if (isErrno(e, Errno.ENOENT)) return { count: a.readUInt32LE(32), done: true };
      throw e;
    }
  }

  /** BPF_MAP_UPDATE_BATCH (used by the bench to fill a map quickly). Returns the number written. */
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, count: number, flags: number = BPF_ANY): number {
    const a = Buffer.alloc(ATTR_SIZE);
    u64(a, 16, this.addr(keys));
    u64(a, 24, this.addr(values));
    a.writeUInt32LE(count, 32);
    a.writeUInt32LE(fd, 36);
    u64(a, 40, BigInt(flags));
    this.bpf(BpfCmd.MAP_UPDATE_BATCH, a, 'BPF_MAP_UPDATE_BATCH');
    return a.readUInt32LE(32);
  }

  progLoad(spec: ProgLoadSpec): number {
    const license = Buffer.from(`${spec.license}\0`, 'latin1');
    const a = Buffer.alloc(ATTR_SIZE);
    a.writeUInt32LE(spec.type, 0);
    a.writeUInt32LE(spec.insns.length / 8, 4);
    u64(a, 8, this.addr(spec.insns));
    u64(a, 16, this.addr(license));
    if (spec.log) {
      spec.log.fill(0);
      a.writeUInt32LE(1, 24);
      a.writeUInt32LE(spec.log.length, 28);
      u64(a, 32, this.addr(spec.log));
    }
    objName(spec.name).copy(a, 48);
    a.writeUInt32LE(spec.expectedAttachType ?? 0, 68);
    const fd = this.bpf(BpfCmd.PROG_LOAD, a, `BPF_PROG_LOAD(${spec.name})`);
    // keep `license` alive until after the call (the kernel read it through its address)
    void license.length;
    return fd;
  }

  /** BPF_LINK_CREATE for TCX: attaches prog to ifindex at the given hook (appended after existing programs). */
  linkCreate(progFd: number, ifindex: number, attachType: number): number {
    const a = Buffer.alloc(ATTR_SIZE);
    a.writeUInt32LE(progFd, 0);
    a.writeUInt32LE(ifindex, 4);
    a.writeUInt32LE(attachType, 8);
    return this.bpf(BpfCmd.LINK_CREATE, a, 'BPF_LINK_CREATE');
  }

  /** BPF_OBJ_GET_INFO_BY_FD into a buffer of `size` bytes. */
  objInfo(fd: number, size: number): Buffer {
    const info = Buffer.alloc(size);
    const a = Buffer.alloc(ATTR_SIZE);
    a.writeUInt32LE(fd, 0);
    a.writeUInt32LE(size, 4);
    u64(a, 8, this.addr(info));
    this.bpf(BpfCmd.OBJ_GET_INFO_BY_FD, a, 'BPF_OBJ_GET_INFO_BY_FD');
    return info;
  }

  /** Next link id after `start`, or null at the end. */
  linkGetNextId(start: number): number | null {
    const a = Buffer.alloc(ATTR_SIZE);
    a.writeUInt32LE(start, 0);
    try {
      this.bpf(BpfCmd.LINK_GET_NEXT_ID, a, 'BPF_LINK_GET_NEXT_ID');
      return a.readUInt32LE(4);
    } catch (e) {
      if (isErrno(e, Errno.ENOENT)) return null;
      throw e;
    }
  }

  /** An fd for an object id, or null when it no longer exists. */
  fdById(kind: 'link' | 'prog', id: number): number | null {
    const a = Buffer.alloc(ATTR_SIZE);
    a.writeUInt32LE(id, 0);
    try {
      return this.bpf(kind === 'link' ? BpfCmd.LINK_GET_FD_BY_ID : BpfCmd.PROG_GET_FD_BY_ID, a, `BPF_${kind.toUpperCase()}_GET_FD_BY_ID`);
    } catch (e) {
      if (isErrno(e, Errno.ENOENT)) return null;
      throw e;
    }
  }

  /** if_nametoindex(3) in the calling thread's network namespace; 0 when there is no such interface. */
  ifNameToIndex(name: string): number {
    return this.libc.ifNameToIndex(name);
  }

  // --- sockets (rtnetlink for the clsact fallback) ---

  socket(domain: number, type: number, proto: number): number {
    const fd = this.libc.socket(domain, type, proto);
    if (fd < 0) throw new BpfSyscallError(-1, this.libc.errno(), 'socket');
    return fd;
  }

  bind(fd: number, addr: Buffer): void {
    if (this.libc.bind(fd, this.addr(addr), addr.length) < 0) throw new BpfSyscallError(-1, this.libc.errno(), 'bind');
  }

  setsockopt(fd: number, level: number, name: number, val: Buffer): void {
    if (this.libc.setsockopt(fd, level, name, this.addr(val), val.length) < 0) throw new BpfSyscallError(-1, this.libc.errno(), 'setsockopt');
  }

  sendto(fd: number, buf: Buffer, addr: Buffer): number {
    const r = Number(this.libc.sendto(fd, this.addr(buf), buf.length, 0, this.addr(addr), addr.length));
    if (r < 0) throw new BpfSyscallError(-1, this.libc.errno(), 'sendto');
    return r;
  }

  recv(fd: number, buf: Buffer): number {
    const r = Number(this.libc.recv(fd, this.addr(buf), buf.length, 0));
    if (r < 0) throw new BpfSyscallError(-1, this.libc.errno(), 'recv');
    return r;
  }
}
