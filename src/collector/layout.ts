/**
 * Byte layouts of the collector's maps, mirroring the structs in bpf/collector.bpf.c. The loader compares
 * these sizes with the object's BTF map definitions, so a C change that is not mirrored here fails at load
 * (LPGW_BPF_ERR_LAYOUT) instead of producing garbage numbers.
 */
import { isIPv4 } from 'node:net';

export const MAP_FLOWS = 'lpgw_flows';
export const MAP_PORTS = 'lpgw_ports';
export const MAP_STATS = 'lpgw_stats';
export const MAP_CONFIG = 'lpgw_config';
export const PROGRAM_NAME = 'lpgw_collector';

/**
 * lpgw_flows holds one entry per (connection, receiver index), counting both directions: the key is the
 * connection (40 bytes: addresses, ports, protocol, kind, family) followed by the receiver index (u32 LE), the
 * value the request (in) and response (out) counters, the entry's creation time and, in a TCP connection's
 * ENTRY_CONN entry, the connection's receiver index and flags. User space sums a connection's entries into its
 * flow and the ENTRY_INDEX entries of one (index, protocol) into that index.
 */
export const FLOW_KEY_SIZE = 44;
export const FLOW_VAL_SIZE = 64;
/** The connection part of a key: every entry of one connection shares these bytes (kind at KEY_KIND excluded). */
export const CONN_KEY_SIZE = 40;
export const KEY_PROTO = 36;
export const KEY_KIND = 37;
export const KEY_FAMILY = 38;
export const KEY_RX = 40;
/** Entry kinds (ENTRY_* in the C source). */
export const EntryKind = { CONN: 0, INDEX: 1 } as const;
/** Offsets in a value: request (in) counters, response (out) counters, created_ns, receiver_index and flags. */
export const VAL_IN = 0;
export const VAL_OUT = 24;
export const FLOW_VAL_CREATED = 48;
export const FLOW_VAL_RX = 56;
export const FLOW_VAL_FLAGS = 60;
/** lpgw_ports is a bitmap: 2048 u32 words, word = port >> 5, bit = port & 31. */
export const PORT_KEY_SIZE = 4;
export const PORT_VAL_SIZE = 4;
export const PORT_WORDS = 2048;
export const STAT_VAL_SIZE = 8;

export const EXPECTED_MAPS: Readonly<Record<string, { keySize: number; valueSize: number }>> = {
  [MAP_FLOWS]: { keySize: FLOW_KEY_SIZE, valueSize: FLOW_VAL_SIZE },
  [MAP_PORTS]: { keySize: PORT_KEY_SIZE, valueSize: PORT_VAL_SIZE },
  [MAP_STATS]: { keySize: 4, valueSize: STAT_VAL_SIZE },
  [MAP_CONFIG]: { keySize: 4, valueSize: 4 },
};

/** lpgw_config slots (CFG_* in the C source). */
export const ConfigSlot = { L2_LEN: 0 } as const;

/** lpgw_stats slots (STAT_* in the C source). */
export const StatSlot = { MATCHED: 0, FLOW_FAIL: 1, INDEX_FAIL: 2, UNPARSED: 3 } as const;
export const STAT_SLOTS = 4;

export const FLOW_F_INDEX_KNOWN = 1;

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export interface Counters {
  packets: number;
  l3Bytes: number;
  payloadBytes: number;
}

/** Counters are u64 in the kernel; JS numbers stay exact up to 2^53 (9 PB), far beyond a process lifetime. */
function u64(b: Buffer, off: number): number {
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x1_0000_0000;
}

export function readCounters(b: Buffer, off: number): Counters {
  return { packets: u64(b, off), l3Bytes: u64(b, off + 8), payloadBytes: u64(b, off + 16) };
}

export interface FlowKey {
  family: 4 | 6;
  proto: number;
  local: string;
  localPort: number;
  remote: string;
  remotePort: number;
}

function addrToString(b: Buffer, off: number, family: 4 | 6): string {
  if (family === 4) return `${b[off + 12]}.${b[off + 13]}.${b[off + 14]}.${b[off + 15]}`;
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(off + i).toString(16));
  // compress the longest run of zero groups (RFC 5952)
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (parts[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return parts.join(':');
  return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
}

export interface EntryKey extends FlowKey {
  kind: (typeof EntryKind)[keyof typeof EntryKind];
  /** ENTRY_INDEX: the receiver index; ENTRY_CONN: 0 */
  receiverIndex: number;
}

/** True if the entry key at `off` is one a program of ours can have written (else: malformed). */
export function validEntryKey(b: Uint8Array, off: number): boolean {
  const family = b[off + KEY_FAMILY];
  const proto = b[off + KEY_PROTO];
  const kind = b[off + KEY_KIND];
  if ((family !== 4 && family !== 6) || (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) || b[off + 39] !== 0) return false;
  if (kind === EntryKind.INDEX) return true;
  return kind === EntryKind.CONN && b[off + KEY_RX] === 0 && b[off + KEY_RX + 1] === 0 && b[off + KEY_RX + 2] === 0 && b[off + KEY_RX + 3] === 0;
}

/** Decodes the connection part of a key at `off` (an entry key or a connection key); null if malformed. */
export function decodeFlowKey(b: Buffer, off: number): FlowKey | null {
  const family = b[off + KEY_FAMILY];
  const proto = b[off + KEY_PROTO] ?? 0;
  if ((family !== 4 && family !== 6) || (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP)) return null;
  return {
    family,
    proto,
    local: addrToString(b, off, family),
    remote: addrToString(b, off + 16, family),
    localPort: b.readUInt16LE(off + 32),
    remotePort: b.readUInt16LE(off + 34),
  };
}

/** Decodes an entry key at `off`; null if malformed. */
export function decodeEntryKey(b: Buffer, off: number): EntryKey | null {
  if (!validEntryKey(b, off)) return null;
  const k = decodeFlowKey(b, off);
  if (!k) return null;
  return { ...k, kind: b[off + KEY_KIND] === EntryKind.INDEX ? EntryKind.INDEX : EntryKind.CONN, receiverIndex: b.readUInt32LE(off + KEY_RX) };
}

export interface EntryValue {
  request: Counters;
  response: Counters;
  /** bpf_ktime_get_ns() when the kernel created the entry */
  createdNs: number;
  /** a TCP connection's receiver index (its ENTRY_CONN entry), null when unknown or another kind */
  receiverIndex: number | null;
}

export function decodeEntryValue(b: Buffer, off: number): EntryValue {
  const flags = b.readUInt32LE(off + FLOW_VAL_FLAGS);
  return {
    request: readCounters(b, off + VAL_IN),
    response: readCounters(b, off + VAL_OUT),
    createdNs: u64(b, off + FLOW_VAL_CREATED),
    receiverIndex: flags & FLOW_F_INDEX_KNOWN ? b.readUInt32LE(off + FLOW_VAL_RX) : null,
  };
}

/**
 * Encodes an entry key (bench and tests fill maps with it): the connection `k`, and with `receiverIndex` an
 * ENTRY_INDEX key for that index, else the connection's ENTRY_CONN key.
 */
export function encodeFlowKey(k: FlowKey, out: Buffer = Buffer.alloc(FLOW_KEY_SIZE), off = 0, receiverIndex?: number): Buffer {
  const put = (addr: string, at: number): void => {
    if (isIPv4(addr)) {
      out.fill(0, at, at + 10);
      out[at + 10] = 0xff;
      out[at + 11] = 0xff;
      addr.split('.').forEach((p, i) => (out[at + 12 + i] = Number(p)));
    } else {
      const [head = '', tail = ''] = addr.includes('::') ? addr.split('::') : [addr, ''];
      const h = head ? head.split(':') : [];
      const t = tail ? tail.split(':') : [];
      const groups = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
      groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16), at + i * 2));
    }
  };
  put(k.local, off);
  put(k.remote, off + 16);
  out.writeUInt16LE(k.localPort, off + 32);
  out.writeUInt16LE(k.remotePort, off + 34);
  out[off + KEY_PROTO] = k.proto;
  out[off + KEY_KIND] = receiverIndex === undefined ? EntryKind.CONN : EntryKind.INDEX;
  out[off + KEY_FAMILY] = k.family;
  out[off + 39] = 0;
  out.writeUInt32LE(receiverIndex ?? 0, off + KEY_RX);
  return out;
}

export function protoName(p: number): 'tcp' | 'udp' {
  return p === IPPROTO_TCP ? 'tcp' : 'udp';
}
