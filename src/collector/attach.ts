/**
 * Attaching the counting program to an interface.
 *
 * TCX (kernel ≥ 6.6, default): one BPF link per hook. The attachment belongs to the link fd, so it goes away
 * when the fd is closed or the process dies, kill -9 included: nothing can be left behind.
 *
 * clsact fallback (BPF_LINK_CREATE → EINVAL on older kernels, or mode 'clsact'): a cls_bpf filter named
 * `lpgw_collector/<pid>` (handle = pid) per hook, added through rtnetlink. Filters outlive the process, so
 * every start (in either mode) first deletes our filters whose process is gone; a live collector's filters
 * (another process on the same device) are left alone. The clsact qdisc is deleted at stop only when this
 * run created it (or found only our stale filters in it) and no foreign filter remains.
 *
 * Hooks: on a loopback device every packet passes egress and then ingress, so only ingress is attached there
 * (each packet counted once); elsewhere both hooks (ingress = into this host, egress = out of it).
 */
import { BpfAttachType, Errno, type BpfSys } from './bpf-syscall.js';
import { CollectorError, CollectorErrorCode } from './errors.js';
import { RtNetlink, TcHook } from './netlink-tc.js';
import { readFileSync } from 'node:fs';
import { AttachMode } from './attach-mode.js';

export { TcHook };

export { AttachMode };

/** Name prefix and priority of our cls_bpf filters (fallback mode); the name ends in /<pid>, the handle is the pid. */
export const FILTER_NAME = 'lpgw_collector';
export const FILTER_PRIO = 0xc0de;

function filterName(pid: number): string {
  return `${FILTER_NAME}/${pid}`;
}

/** Owner pid of one of our filters; null when the name is not ours. */
export function filterOwner(name: string): number | null {
  if (name === FILTER_NAME) return 0; // unknown owner (older naming): treat as stale
  const m = /^lpgw_collector\/(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface AttachOptions {
  iface: string;
  /** default: ['ingress'] on loopback, ['ingress', 'egress'] elsewhere */
  hooks?: readonly TcHook[];
  mode?: AttachMode;
}

export interface Attachment {
  readonly iface: string;
  readonly ifindex: number;
  readonly mode: 'tcx' | 'clsact';
  readonly hooks: readonly TcHook[];
  /** kernel link ids (tcx) — lets tests and operators verify cleanup */
  readonly linkIds: readonly number[];
  /** stale filters of ours removed before attaching */
  readonly staleRemoved: number;
  detach(): void;
}

/** IFF_LOOPBACK from /sys/class/net/<iface>/flags (the iface name must exist in this netns's sysfs view). */
export function isLoopback(iface: string): boolean {
  try {
    return (parseInt(readFileSync(`/sys/class/net/${iface}/flags`, 'utf8').trim(), 16) & 0x8) !== 0;
  } catch {
    return iface === 'lo';
  }
}

/**
 * Bytes between skb->data and the IP header at the tc hook, from the device type (ARPHRD_*): Ethernet-like
 * devices (lo and veth included) carry a 14-byte header there, L3 devices (WireGuard, tun, IP tunnels) none.
 * null when the type is unknown (the caller assumes Ethernet and says so).
 */
export function l2HeaderLen(iface: string): number | null {
  let type: number;
  try {
    type = Number(readFileSync(`/sys/class/net/${iface}/type`, 'utf8').trim());
  } catch {
    return null;
  }
  if (type === 1 || type === 772) return 14; // ARPHRD_ETHER, ARPHRD_LOOPBACK
  if ([65534, 768, 769, 776, 778, 823, 512].includes(type)) return 0; // NONE, TUNNEL, TUNNEL6, SIT, IPGRE, IP6GRE, PPP
  return null;
}

export function defaultHooks(iface: string): TcHook[] {
  return isLoopback(iface) ? [TcHook.INGRESS] : [TcHook.INGRESS, TcHook.EGRESS];
}

/**
 * Removes our cls_bpf filters whose owner process is gone (and, with `ownPid`, this process's own) on both
 * hooks. Returns how many were removed and how many other filters remain (live collectors count as others).
 */
export function removeStaleFilters(nl: RtNetlink, ifindex: number, ownPid: number | null = null): { removed: number; foreign: number } {
  let removed = 0;
  let foreign = 0;
  for (const hook of [TcHook.INGRESS, TcHook.EGRESS]) {
    for (const f of nl.listFilters(ifindex, hook)) {
      const owner = f.kind === 'bpf' ? filterOwner(f.name) : null;
      if (owner !== null && (owner === ownPid || !alive(owner))) {
        nl.delFilter(ifindex, f);
        removed++;
      } else {
        foreign++;
      }
    }
  }
  return { removed, foreign };
}

function linkId(sys: BpfSys, fd: number): number {
  return sys.objInfo(fd, 64).readUInt32LE(4); // bpf_link_info.id
}

export function attachProgram(sys: BpfSys, progFd: number, opts: AttachOptions): Attachment {
  const ifindex = sys.ifNameToIndex(opts.iface);
  if (ifindex === 0) throw new CollectorError(CollectorErrorCode.NO_SUCH_IFACE, `no interface '${opts.iface}' in this network namespace`);
  const hooks = opts.hooks && opts.hooks.length > 0 ? [...new Set(opts.hooks)] : defaultHooks(opts.iface);
  const mode = opts.mode ?? AttachMode.AUTO;

  // Stale cleanup first, whatever the mode: a crashed clsact-mode run leaves filters behind.
  let stale = { removed: 0, foreign: 0 };
  try {
    const nl = new RtNetlink(sys);
    try {
      stale = removeStaleFilters(nl, ifindex);
      // In TCX mode a clsact qdisc that held only our stale filters is a leftover of ours: remove it too.
      if (mode !== AttachMode.CLSACT && stale.removed > 0 && stale.foreign === 0) nl.delClsact(ifindex);
    } finally {
      nl.close();
    }
  } catch (e) {
    if (mode === AttachMode.CLSACT) throw new CollectorError(CollectorErrorCode.NETLINK, `stale filter cleanup failed: ${(e as Error).message}`, (e as CollectorError).errno);
  }

  if (mode !== AttachMode.CLSACT) {
    const fds: number[] = [];
    try {
      for (const hook of hooks) {
        fds.push(sys.linkCreate(progFd, ifindex, hook === TcHook.INGRESS ? BpfAttachType.TCX_INGRESS : BpfAttachType.TCX_EGRESS));
      }
      const linkIds = fds.map((fd) => linkId(sys, fd));
      let detached = false;
      return {
        iface: opts.iface,
        ifindex,
        mode: 'tcx',
        hooks,
        linkIds,
        staleRemoved: stale.removed,
        detach: () => {
          if (detached) return;
          detached = true;
          for (const fd of fds) sys.close(fd); // closing the only fd destroys the link
        },
      };
    } catch (e) {
      for (const fd of fds) sys.close(fd);
      const unsupported = e instanceof CollectorError && (e.errno === Errno.EINVAL || e.errno === Errno.EOPNOTSUPP || e.errno === Errno.ENOTSUPP);
      if (mode === AttachMode.TCX || !unsupported) {
        if (e instanceof CollectorError && e.code === CollectorErrorCode.NOT_PERMITTED) throw e;
        throw new CollectorError(CollectorErrorCode.ATTACH, `TCX attach to ${opts.iface} failed: ${(e as Error).message}`, (e as CollectorError).errno);
      }
      // kernel without TCX: fall through to clsact
    }
  }

  const nl = new RtNetlink(sys);
  const added: TcHook[] = [];
  let created = false;
  try {
    created = nl.addClsact(ifindex);
    for (const hook of hooks) {
      nl.addBpfFilter(ifindex, hook, progFd, filterName(process.pid), process.pid, FILTER_PRIO);
      added.push(hook);
    }
  } catch (e) {
    for (const hook of added) {
      try {
        nl.delFilter(ifindex, { hook, handle: process.pid, prio: FILTER_PRIO, kind: 'bpf', name: filterName(process.pid) });
      } catch {
        // best effort
      }
    }
    nl.close();
    const errno = (e as CollectorError).errno;
    throw new CollectorError(errno === Errno.EPERM ? CollectorErrorCode.NOT_PERMITTED : CollectorErrorCode.ATTACH, `clsact attach to ${opts.iface} failed: ${(e as Error).message}`, errno);
  }
  nl.close();
  // The qdisc is ours to remove if we created it, or if it held only our stale filters (a crashed run of ours).
  const ownsQdisc = created || (stale.removed > 0 && stale.foreign === 0);
  let detached = false;
  return {
    iface: opts.iface,
    ifindex,
    mode: 'clsact',
    hooks,
    linkIds: [],
    staleRemoved: stale.removed,
    detach: () => {
      if (detached) return;
      detached = true;
      const n = new RtNetlink(sys);
      try {
        const left = removeStaleFilters(n, ifindex, process.pid);
        if (ownsQdisc && left.foreign === 0) {
          try {
            n.delClsact(ifindex);
          } catch {
            // already gone (interface deleted)
          }
        }
      } finally {
        n.close();
      }
    },
  };
}
