/**
 * The classic clsact + cls_bpf path over rtnetlink (what `tc qdisc add dev X clsact; tc filter add dev X
 * ingress bpf da fd N name lpgw_collector` does), for kernels without TCX (< 6.6). Unlike a TCX link, a
 * filter survives the process, so the collector names its filters and removes stale ones at start.
 */
import { type BpfSys, BpfSyscallError } from './bpf-syscall.js';
import { CollectorError, CollectorErrorCode } from './errors.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;

const NLM_F_REQUEST = 0x1;
const NLM_F_MULTI = 0x2;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP = 0x300;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;

const RTM_NEWQDISC = 36;
const RTM_DELQDISC = 37;
const RTM_NEWTFILTER = 44;
const RTM_DELTFILTER = 45;
const RTM_GETTFILTER = 46;

const TCA_KIND = 1;
const TCA_OPTIONS = 2;
const TCA_BPF_FD = 6;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_FLAG_ACT_DIRECT = 1;

const TC_H_CLSACT = 0xfffffff1;
const CLSACT_HANDLE = 0xffff0000;
const ETH_P_ALL_BE = 0x0300; // htons(ETH_P_ALL)

export const TcHook = { INGRESS: 'ingress', EGRESS: 'egress' } as const;
export type TcHook = (typeof TcHook)[keyof typeof TcHook];

export function hookParent(hook: TcHook): number {
  return hook === TcHook.INGRESS ? 0xfffffff2 : 0xfffffff3;
}

export interface TcFilter {
  hook: TcHook;
  handle: number;
  prio: number;
  kind: string;
  /** cls_bpf name (TCA_BPF_NAME), '' for other classifiers */
  name: string;
}

function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

function str(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'latin1');
}

function tcmsg(ifindex: number, handle: number, parent: number, info: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeInt32LE(ifindex, 4);
  b.writeUInt32LE(handle >>> 0, 8);
  b.writeUInt32LE(parent >>> 0, 12);
  b.writeUInt32LE(info >>> 0, 16);
  return b;
}

function parseAttrs(b: Buffer, start: number, end: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let p = start;
  while (p + 4 <= end) {
    const len = b.readUInt16LE(p);
    const type = b.readUInt16LE(p + 2) & 0x3fff;
    if (len < 4 || p + len > end) break;
    out.set(type, b.subarray(p + 4, p + len));
    p += (len + 3) & ~3;
  }
  return out;
}

function cstr(b: Buffer | undefined): string {
  if (!b) return '';
  const z = b.indexOf(0);
  return b.toString('latin1', 0, z < 0 ? b.length : z);
}

/** A short-lived rtnetlink socket; every request waits for its ACK (or the end of its dump). */
export class RtNetlink {
  private readonly sys: BpfSys;
  private readonly fd: number;
  private seq = 1;
  private readonly rx = Buffer.alloc(1 << 16);

  constructor(sys: BpfSys) {
    this.sys = sys;
    this.fd = sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    try {
      const addr = Buffer.alloc(12);
      addr.writeUInt16LE(AF_NETLINK, 0);
      sys.bind(this.fd, addr);
      const tv = Buffer.alloc(16);
      tv.writeBigInt64LE(2n, 0); // 2 s receive timeout: the kernel answers synchronously; never hang
      sys.setsockopt(this.fd, SOL_SOCKET, SO_RCVTIMEO, tv);
    } catch (e) {
      sys.close(this.fd);
      throw e;
    }
  }

  close(): void {
    this.sys.close(this.fd);
  }

  /** Sends one message; returns the response messages (type, payload) up to ACK/DONE. Throws on NLMSG_ERROR ≠ 0. */
  request(type: number, flags: number, body: Buffer): { type: number; payload: Buffer }[] {
    const seq = this.seq++;
    const msg = Buffer.alloc(16 + body.length);
    msg.writeUInt32LE(msg.length, 0);
    msg.writeUInt16LE(type, 4);
    msg.writeUInt16LE(flags | NLM_F_REQUEST, 6);
    msg.writeUInt32LE(seq, 8);
    body.copy(msg, 16);
    const kernel = Buffer.alloc(12);
    kernel.writeUInt16LE(AF_NETLINK, 0);
    this.sys.sendto(this.fd, msg, kernel);
    const out: { type: number; payload: Buffer }[] = [];
    for (;;) {
      const n = this.sys.recv(this.fd, this.rx);
      let p = 0;
      while (p + 16 <= n) {
        const len = this.rx.readUInt32LE(p);
        const mtype = this.rx.readUInt16LE(p + 4);
        const mflags = this.rx.readUInt16LE(p + 6);
        const mseq = this.rx.readUInt32LE(p + 8);
        if (len < 16 || p + len > n) throw new CollectorError(CollectorErrorCode.NETLINK, 'truncated netlink message');
        const payload = Buffer.from(this.rx.subarray(p + 16, p + len));
        p += (len + 3) & ~3;
        if (mseq !== seq) continue;
        if (mtype === NLMSG_ERROR) {
          const err = payload.readInt32LE(0);
          if (err !== 0) throw new BpfSyscallError(-1, -err, `rtnetlink request ${type}`);
          return out;
        }
        if (mtype === NLMSG_DONE) return out;
        out.push({ type: mtype, payload });
        if (!(mflags & NLM_F_MULTI) && !(flags & NLM_F_ACK)) return out;
      }
    }
  }

  /** Creates clsact on ifindex; false when one already exists. */
  addClsact(ifindex: number): boolean {
    try {
      this.request(RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, Buffer.concat([tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0), attr(TCA_KIND, str('clsact'))]));
      return true;
    } catch (e) {
      if (e instanceof CollectorError && e.errno === 17 /* EEXIST */) return false;
      throw e;
    }
  }

  delClsact(ifindex: number): void {
    this.request(RTM_DELQDISC, NLM_F_ACK, Buffer.concat([tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0), attr(TCA_KIND, str('clsact'))]));
  }

  addBpfFilter(ifindex: number, hook: TcHook, progFd: number, name: string, handle: number, prio: number): void {
    const opts = Buffer.concat([attr(TCA_BPF_FD, u32(progFd)), attr(TCA_BPF_NAME, str(name)), attr(TCA_BPF_FLAGS, u32(TCA_BPF_FLAG_ACT_DIRECT))]);
    this.request(
      RTM_NEWTFILTER,
      NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
      Buffer.concat([tcmsg(ifindex, handle, hookParent(hook), (prio << 16) | ETH_P_ALL_BE), attr(TCA_KIND, str('bpf')), attr(TCA_OPTIONS, opts)]),
    );
  }

  delFilter(ifindex: number, f: TcFilter): void {
    this.request(RTM_DELTFILTER, NLM_F_ACK, Buffer.concat([tcmsg(ifindex, f.handle, hookParent(f.hook), (f.prio << 16) | ETH_P_ALL_BE), attr(TCA_KIND, str(f.kind))]));
  }

  /** Lists the filters on one clsact hook ([] when there is no clsact qdisc). */
  listFilters(ifindex: number, hook: TcHook): TcFilter[] {
    let msgs: { type: number; payload: Buffer }[];
    try {
      msgs = this.request(RTM_GETTFILTER, NLM_F_DUMP, tcmsg(ifindex, 0, hookParent(hook), 0));
    } catch (e) {
      if (e instanceof CollectorError && (e.errno === 22 || e.errno === 2)) return []; // no clsact: EINVAL/ENOENT
      throw e;
    }
    const out: TcFilter[] = [];
    for (const m of msgs) {
      if (m.type !== RTM_NEWTFILTER || m.payload.length < 20) continue;
      const handle = m.payload.readUInt32LE(8);
      const info = m.payload.readUInt32LE(16);
      const attrs = parseAttrs(m.payload, 20, m.payload.length);
      const kind = cstr(attrs.get(TCA_KIND));
      let name = '';
      const opts = attrs.get(TCA_OPTIONS);
      if (kind === 'bpf' && opts) name = cstr(parseAttrs(opts, 0, opts.length).get(TCA_BPF_NAME));
      // the dump also lists the chain's per-priority head (handle 0); only real filters have a handle
      if (handle === 0) continue;
      out.push({ hook, handle, prio: info >>> 16, kind, name });
    }
    return out;
  }
}
