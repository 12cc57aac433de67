/**
 * Prometheus metrics of the gateway (prom-client, own Registry per gateway so tests can run several).
 * Names follow Prometheus conventions: `lp_` prefix, `_total` counters, base units (bytes, seconds).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StoreHealth, StoreObserver } from './registration/store/types.js';
import { threadCpuSeconds } from './thread-cpu.js';

export type Transport = 'tcp' | 'udp';

/**
 * A listener's packet and byte counts: plain numbers on the per-packet path (a prom-client `inc()` hashes its
 * labels and validates its value on every call); the four counters below take them in when scraped.
 */
export interface TransportCounts {
  packetsIn: number;
  bytesIn: number;
  packetsOut: number;
  bytesOut: number;
}

const newCounts = (): TransportCounts => ({ packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0 });

export class GatewayMetrics {
  readonly registry = new Registry();

  readonly connections = new Counter({ name: 'lp_connections_total', help: 'TCP connections accepted', registers: [this.registry] });
  readonly connectionsRejected = new Counter({ name: 'lp_connections_rejected_total', help: 'TCP connections refused or closed by policy', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly connectionsPaused = new Counter({ name: 'lp_connections_paused_total', help: 'Times a TCP connection stopped being read because its queued requests or unread replies exceeded lp.max_pending_bytes_per_connection', registers: [this.registry] });
  readonly connectionsActive = new Gauge({ name: 'lp_connections_active', help: 'Open TCP connections', registers: [this.registry] });
  private readonly counts: Record<Transport, TransportCounts> = { tcp: newCounts(), udp: newCounts() };
  /** Moves what the listeners counted since the last scrape into the counter (collect hook). */
  private readonly drain = (counter: Counter<'transport'>, field: keyof TransportCounts): void => {
    for (const t of ['tcp', 'udp'] as const) {
      const n = this.counts[t][field];
      if (n === 0) continue;
      this.counts[t][field] = 0;
      counter.inc({ transport: t }, n);
    }
  };
  readonly packetsIn: Counter<'transport'> = new Counter({ name: 'lp_packets_received_total', help: 'LP packets received', labelNames: ['transport'] as const, registers: [this.registry], collect: () => this.drain(this.packetsIn, 'packetsIn') });
  readonly packetsOut: Counter<'transport'> = new Counter({ name: 'lp_packets_sent_total', help: 'LP packets sent', labelNames: ['transport'] as const, registers: [this.registry], collect: () => this.drain(this.packetsOut, 'packetsOut') });
  readonly bytesIn: Counter<'transport'> = new Counter({ name: 'lp_received_bytes_total', help: 'Bytes received on LP listeners (TCP including the 4-byte length prefixes)', labelNames: ['transport'] as const, registers: [this.registry], collect: () => this.drain(this.bytesIn, 'bytesIn') });
  readonly bytesOut: Counter<'transport'> = new Counter({ name: 'lp_sent_bytes_total', help: 'Bytes sent on LP listeners (TCP including the 4-byte length prefixes)', labelNames: ['transport'] as const, registers: [this.registry], collect: () => this.drain(this.bytesOut, 'bytesOut') });
  readonly handshakes = new Counter({ name: 'lp_handshakes_total', help: 'Handshake outcomes at the gateway', labelNames: ['result'] as const, registers: [this.registry] });
  readonly errors = new Counter({ name: 'lp_errors_total', help: 'Rejected inputs by error code', labelNames: ['code'] as const, registers: [this.registry] });
  readonly dropped = new Counter({ name: 'lp_dropped_packets_total', help: 'Packets dropped without a reply, by reason', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly evictions = new Counter({ name: 'lp_table_evictions_total', help: 'Entries pushed out of a full table', labelNames: ['table'] as const, registers: [this.registry] });
  readonly expirations = new Counter({ name: 'lp_table_expirations_total', help: 'Entries removed at their TTL', labelNames: ['table'] as const, registers: [this.registry] });
  readonly tableSize = new Gauge({ name: 'lp_table_entries', help: 'Entries per state table', labelNames: ['table'] as const, registers: [this.registry] });
  readonly retransmissions = new Counter({
    name: 'lp_retransmissions_total',
    help: 'Authenticated copies of a session\'s last request, answered from its cache, by source: bound_source (TCP, or the UDP address of its last new request), other_source (UDP; the reply may not exceed the copy), limit_reached (not answered: the reply was re-sent 8 times already)',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly subsessions = new Counter({ name: 'lp_subsessions_total', help: 'Rekey events', labelNames: ['result'] as const, registers: [this.registry] });
  readonly serialsPruned = new Counter({ name: 'lp_spent_serials_pruned_total', help: 'Spent ticket serials forgotten a day after their ticket expired', registers: [this.registry] });
  readonly registrations = new Counter({ name: 'lp_registrations_total', help: 'Registrations by mode and result', labelNames: ['mode', 'result'] as const, registers: [this.registry] });
  readonly bandwidthAllocated = new Counter({ name: 'lp_bandwidth_allocated_bytes_total', help: 'Bandwidth granted to registered clients', registers: [this.registry] });
  readonly forwards = new Counter({ name: 'lp_forwards_total', help: 'Telescoping forwards by result', labelNames: ['result'] as const, registers: [this.registry] });
  readonly forwardDuration = new Histogram({
    name: 'lp_forward_duration_seconds',
    help: 'Entry→exit forward round trip',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly forwardBreakerTrips = new Counter({
    name: 'lp_forward_breaker_trips_total',
    help: 'An exit\'s breaker opened (its backoff started or grew), by cause: connection (connect failed, reset, closed) or unanswered_clients (forwards of several client addresses went unanswered)',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });
  readonly forwardsInFlight = new Gauge({ name: 'lp_forwards_in_flight', help: 'Forwards currently waiting on an exit', registers: [this.registry] });
  /**
   * Live backoff state (set by the forwarder), read at every scrape: backoffs expire with time, not with
   * the next forward, so gauges set only when a forward finishes would report an expired backoff forever.
   */
  backoffState: (() => { exits: number; longestMs: number }) | null = null;
  readonly forwardBackoffExits: Gauge = new Gauge({
    name: 'lp_forward_backoff_exits',
    help: 'Exits currently in backoff after failures',
    registers: [this.registry],
    collect: () => {
      const s = this.backoffState?.();
      if (s) this.forwardBackoffExits.set(s.exits);
    },
  });
  readonly forwardBackoffSeconds: Gauge = new Gauge({
    name: 'lp_forward_backoff_seconds',
    help: 'Longest remaining backoff across exits',
    registers: [this.registry],
    collect: () => {
      const s = this.backoffState?.();
      if (s) this.forwardBackoffSeconds.set(s.longestMs / 1000);
    },
  });
  /** Kernel thread ids to account CPU for, by label (set by the node: the I/O thread and each shard worker). */
  threads: ReadonlyMap<string, number> = new Map();
  readonly threadCpu: Gauge = new Gauge({
    name: 'lp_thread_cpu_seconds',
    help: 'CPU seconds used so far by each gateway thread: io (listeners, dispatcher, and the shard when shards = 1) and shard-N workers (Linux)',
    labelNames: ['thread'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [label, tid] of this.threads) {
        const s = threadCpuSeconds(tid);
        if (s !== null) this.threadCpu.labels(label).set(s);
      }
    },
  });
  readonly rateLimited = new Counter({ name: 'lp_hello_rate_limited_total', help: 'ClientHellos refused by the per-source token bucket (TCP and UDP sources have separate buckets)', registers: [this.registry] });
  readonly wgPeers = new Gauge({ name: 'lp_wg_peers', help: 'Registered WireGuard peers (after the last poll)', registers: [this.registry] });
  readonly wgTransfer = new Counter({
    name: 'lp_wg_transfer_bytes_total',
    help: 'Bytes through the WireGuard interface counted against grants: rx = received from peers, tx = sent to peers',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly wgRemovals = new Counter({
    name: 'lp_wg_peer_removals_total',
    help: 'WireGuard peers removed, by reason: bandwidth (grant used up), expired, idle, deregistered, unknown (not in the registry)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly wgPolls = new Counter({ name: 'lp_wg_polls_total', help: 'Peer controller polls of the WireGuard device, by result', labelNames: ['result'] as const, registers: [this.registry] });
  readonly wgPollDuration = new Histogram({
    name: 'lp_wg_poll_duration_seconds',
    help: 'One peer controller poll: device read, accounting, removals',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly wgReapplied = new Counter({ name: 'lp_wg_peers_reapplied_total', help: 'Registered peers found missing from the device and applied again', registers: [this.registry] });

  readonly storeUp = new Gauge({ name: 'lp_store_up', help: 'Whether the registration store answers (1) or is unavailable (0; registrations are refused, retryable)', registers: [this.registry] });
  readonly storeDuration = new Histogram({
    name: 'lp_store_transaction_duration_seconds',
    help: 'Registration store transactions and statements by operation, including the wait for a pooled connection and the commit',
    labelNames: ['op'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly storeErrors = new Counter({
    name: 'lp_store_errors_total',
    help: 'Registration store failures by operation and kind: unavailable (unreachable, failing over or pool exhausted; retryable) or error',
    labelNames: ['op', 'kind'] as const,
    registers: [this.registry],
  });
  readonly storeRetries = new Counter({
    name: 'lp_store_retries_total',
    help: 'Transactions run again after losing a race (PostgreSQL: unique violation, serialization failure, deadlock), by SQLSTATE',
    labelNames: ['op', 'sqlstate'] as const,
    registers: [this.registry],
  });
  /** The store's health (set by the node), read at every scrape for the pool gauge. */
  storeHealth: (() => StoreHealth) | null = null;
  readonly storePool: Gauge = new Gauge({
    name: 'lp_store_pool_connections',
    help: 'PostgreSQL pool connections: total open, idle, and registrations waiting for one',
    labelNames: ['state'] as const,
    registers: [this.registry],
    collect: () => {
      const pool = this.storeHealth?.().pool;
      if (!pool) return;
      this.storePool.set({ state: 'total' }, pool.total);
      this.storePool.set({ state: 'idle' }, pool.idle);
      this.storePool.set({ state: 'waiting' }, pool.waiting);
    },
  });

  /** The store's metric hooks. */
  storeObserver(): StoreObserver {
    return {
      transaction: (op, seconds, outcome) => {
        this.storeDuration.observe({ op }, seconds);
        if (outcome !== 'ok') this.storeErrors.inc({ op, kind: outcome });
      },
      retried: (op, sqlstate) => this.storeRetries.inc({ op, sqlstate }),
      state: (available) => this.storeUp.set(available ? 1 : 0),
    };
  }

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'lp_' });
  }

  /** A listener's packet and byte counts (plain numbers, see TransportCounts), collected at each scrape. */
  transportCounters(transport: Transport): TransportCounts {
    return this.counts[transport];
  }

  error(code: string): void {
    this.errors.inc({ code });
  }
}
