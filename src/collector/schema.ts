/**
 * Window snapshot schema, version 1 (docs/COLLECTOR.md has an example line). One snapshot = the deltas of
 * one window; NDJSON files, the WebSocket stream and GET /v1/collector/windows/latest carry the same object.
 * Additive changes keep schema_version 1; renames or removals bump it.
 */
export const SCHEMA_VERSION = 1;
export const WINDOW_KIND = 'lp_collector_window';

/** Deltas over the window. l3_bytes = IP datagram bytes; payload_bytes = TCP/UDP payload bytes. */
export interface CountersJson {
  packets: number;
  l3_bytes: number;
  payload_bytes: number;
}

export interface FlowWindow {
  proto: 'tcp' | 'udp';
  family: 4 | 6;
  /** the gateway side (watched port) */
  local: string;
  local_port: number;
  remote: string;
  remote_port: number;
  /** TCP: from the first inbound payload segment; UDP: the last datagram's; null when unknown */
  receiver_index: number | null;
  /** inbound, to the watched port */
  request: CountersJson;
  /** outbound, from the watched port */
  response: CountersJson;
  /** response.payload_bytes / request.payload_bytes (null when no request bytes) */
  amplification: number | null;
  /** response.l3_bytes / request.l3_bytes */
  amplification_l3: number | null;
}

export interface IndexWindow {
  receiver_index: number;
  proto: 'tcp' | 'udp';
  request: CountersJson;
  response: CountersJson;
  amplification: number | null;
  amplification_l3: number | null;
}

export interface DirectionTotals {
  request: CountersJson;
  response: CountersJson;
  amplification: number | null;
  amplification_l3: number | null;
}

export interface SourceInfo {
  iface: string;
  ifindex: number;
  hooks: string[];
  attach_mode: 'tcx' | 'clsact';
  watched_ports: number[];
  pid: number;
}

export interface WindowSnapshot {
  schema_version: typeof SCHEMA_VERSION;
  kind: typeof WINDOW_KIND;
  /** 1-based, per collector run */
  seq: number;
  started_at: string;
  ended_at: string;
  duration_ms: number;
  /** true for the window written at shutdown */
  final: boolean;
  source: SourceInfo;
  totals: DirectionTotals & {
    by_proto: { tcp: DirectionTotals; udp: DirectionTotals };
    flows_active: number;
    indexes_active: number;
  };
  /** active flows (non-zero delta), largest first, at most max_flows_per_window */
  flows: FlowWindow[];
  flows_truncated: number;
  indexes: IndexWindow[];
  indexes_truncated: number;
  /** kernel-side counter deltas (lpgw_stats) */
  kernel: { matched_packets: number; flow_insert_failures: number; index_insert_failures: number; unparsed_packets: number };
  /**
   * At the read: connections (flows_entries) and receiver indexes (indexes_entries) with an entry in lpgw_flows,
   * its entries (one per connection and receiver index) and its capacity in entries, which flows and indexes
   * share (flows_capacity = indexes_capacity).
   */
  map: { flows_entries: number; flows_capacity: number; indexes_entries: number; indexes_capacity: number; entries: number };
  /** problems during this window; the loop carries on regardless */
  errors: { read: number; decode: number; write: number };
}
