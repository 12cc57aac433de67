/**
 * Byte layouts of the collector's maps, mirroring the structs in bpf/collector.bpf.c. The loader compares
 * these sizes with the object's BTF map definitions, so a C change that is not mirrored here fails at load
 * (LPGW_BPF_ERR_LAYOUT) instead of producing garbage numbers.
 */
import { isIPv4 } from 'node:net';

export const MAP_FLOWS = 'lpgw_flows';
export const MAP_INDEXES = 'lpgw_indexes';
export const MAP_PORTS = 'lpgw_ports';
export const MAP_STATS = 'lpgw_stats';
export const MAP_CONFIG = 'lpgw_config';
export const PROGRAM_NAME = 'lpgw_collector';

/** One entry per connection (flows) and per receiver index (indexes): the value counts both directions. */
export const FLOW_KEY_SIZE = 40;
export const FLOW_VAL_SIZE = 56;
export const INDEX_KEY_SIZE = 8;
export const INDEX_VAL_SIZE = 48;
/** Offsets in a value: request (in) counters, response (out) counters; flows add receiver_index and flags. */
export const VAL_IN = 0;
export const VAL_OUT = 24;
export const FLOW_VAL_RX = 48;
export const FLOW_VAL_FLAGS = 52;
/** lpgw_ports is a bitmap: 2048 u32 words, word = port >> 5, bit = port & 31. */
export const PORT_KEY_SIZE = 4;
export const PORT_VAL_SIZE = 4;
export const PORT_WORDS = 2048;
export const STAT_VAL_SIZE = 8;

export const EXPECTED_MAPS: Readonly<Record<string, { keySize: number; valueSize: number }>> = {
  [MAP_FLOWS]: { keySize: FLOW_KEY_SIZE, valueSize: FLOW_VAL_SIZE },
  [MAP_INDEXES]: { keySize: INDEX_KEY_SIZE, valueSize: INDEX_VAL_SIZE },
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

/** Decodes a flow key at `off`; null for data no program of ours can have written (malformed). */
export function decodeFlowKey(b: Buffer, off: number): FlowKey | null {
  const family = b[off + 38];
  const proto = b[off + 36] ?? 0;
  if ((family !== 4 && family !== 6) || (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) || b[off + 37] !== 0) return null;
  return {
    family,
    proto,
    local: addrToString(b, off, family),
    remote: addrToString(b, off + 16, family),
    localPort: b.readUInt16LE(off + 32),
    remotePort: b.readUInt16LE(off + 34),
  };
}

export interface FlowValue {
  request: Counters;
  response: Counters;
  receiverIndex: number | null;
}

export function decodeFlowValue(b: Buffer, off: number): FlowValue {
  const flags = b.readUInt32LE(off + FLOW_VAL_FLAGS);
  return { request: readCounters(b, off + VAL_IN), response: readCounters(b, off + VAL_OUT), receiverIndex: flags & FLOW_F_INDEX_KNOWN ? b.readUInt32LE(off + FLOW_VAL_RX) : null };
}

export interface IndexKey {
  receiverIndex: number;
  proto: number;
}

export function decodeIndexKey(b: Buffer, off: number): IndexKey | null {
  const proto = b[off + 5] ?? 0;
  if (b[off + 4] !== 0 || (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP)) return null;
  return { receiverIndex: b.readUInt32LE(off), proto };
}

/** Encodes a flow key (bench and tests fill maps with it). */
export function encodeFlowKey(k: FlowKey, out: Buffer = Buffer.alloc(FLOW_KEY_SIZE), off = 0): Buffer {
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
  out[off + 36] = k.proto;
  out[off + 37] = 0;
  out[off + 38] = k.family;
  out[off + 39] = 0;
  return out;
}

export function protoName(p: number): 'tcp' | 'udp' {
  return p === IPPROTO_TCP ? 'tcp' : 'udp';
}
