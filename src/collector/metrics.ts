/**
 * Prometheus metrics of the collector (prom-client), registered into the caller's Registry so the gateway's
 * GET /metrics serves them next to its own. Counters advance by each window's deltas, so rate() over them
 * gives traffic rates; names follow the conventions (lp_ prefix, _total counters, bytes and seconds).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DirectionTotals, WindowSnapshot } from './schema.js';

export type CollectorErrorKind = 'read' | 'decode' | 'write' | 'listener';

export class CollectorMetrics {
  private readonly packets: Counter<'direction' | 'proto'>;
  private readonly l3Bytes: Counter<'direction' | 'proto'>;
  private readonly payloadBytes: Counter<'direction' | 'proto'>;
  private readonly windows: Counter;
  private readonly errors: Counter<'kind'>;
  private readonly kernel: Counter<'event'>;
  private readonly up: Gauge;
  private readonly flows: Gauge;
  private readonly flowsCapacity: Gauge;
  private readonly indexes: Gauge;
  private readonly amplification: Gauge;
  private readonly maxIndexAmplification: Gauge;
  private readonly readSeconds: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.packets = new Counter({ name: 'lp_collector_packets_total', help: 'IP packets on watched ports seen by the eBPF collector', labelNames: ['direction', 'proto'], registers });
    this.l3Bytes = new Counter({ name: 'lp_collector_l3_bytes_total', help: 'IP datagram bytes (IP header + transport header + payload) on watched ports', labelNames: ['direction', 'proto'], registers });
    this.payloadBytes = new Counter({ name: 'lp_collector_payload_bytes_total', help: 'TCP/UDP payload bytes on watched ports', labelNames: ['direction', 'proto'], registers });
    this.windows = new Counter({ name: 'lp_collector_windows_total', help: 'Collector windows completed', registers });
    this.errors = new Counter({ name: 'lp_collector_errors_total', help: 'Collector errors by kind (the loop keeps running)', labelNames: ['kind'], registers });
    this.kernel = new Counter({ name: 'lp_collector_kernel_events_total', help: 'Kernel-side collector events (map insert failures, unparsed packets)', labelNames: ['event'], registers });
    this.up = new Gauge({ name: 'lp_collector_up', help: '1 while the collector is attached and running', registers });
    this.flows = new Gauge({ name: 'lp_collector_flows', help: 'Connections with an entry in the kernel flow map at the last window', registers });
    this.flowsCapacity = new Gauge({ name: 'lp_collector_flows_capacity', help: 'Capacity of the kernel flow map (LRU), in entries: one per connection and receiver index', registers });
    this.indexes = new Gauge({ name: 'lp_collector_receiver_indexes', help: 'Receiver indexes with an entry in the kernel flow map at the last window', registers });
    this.amplification = new Gauge({ name: 'lp_collector_amplification_ratio', help: 'Response/request payload byte ratio over the last window (all flows)', registers });
    this.maxIndexAmplification = new Gauge({ name: 'lp_collector_max_index_amplification_ratio', help: 'Largest response/request payload byte ratio of one receiver_index in the last window', registers });
    this.readSeconds = new Gauge({ name: 'lp_collector_last_read_duration_seconds', help: 'Time spent reading the kernel maps for the last window', registers });
    for (const kind of ['read', 'decode', 'write', 'listener'] as const) this.errors.inc({ kind }, 0);
  }

  setUp(up: boolean): void {
    this.up.set(up ? 1 : 0);
  }

  error(kind: CollectorErrorKind, n = 1): void {
    if (n > 0) this.errors.inc({ kind }, n);
  }

  observe(w: WindowSnapshot, readSeconds: number): void {
    this.windows.inc();
    const add = (proto: 'tcp' | 'udp', t: DirectionTotals): void => {
      for (const direction of ['request', 'response'] as const) {
        const c = t[direction];
        this.packets.inc({ direction, proto }, c.packets);
        this.l3Bytes.inc({ direction, proto }, c.l3_bytes);
        this.payloadBytes.inc({ direction, proto }, c.payload_bytes);
      }
    };
    add('tcp', w.totals.by_proto.tcp);
    add('udp', w.totals.by_proto.udp);
    this.error('read', w.errors.read);
    this.error('decode', w.errors.decode);
    this.kernel.inc({ event: 'flow_insert_failure' }, w.kernel.flow_insert_failures);
    this.kernel.inc({ event: 'index_insert_failure' }, w.kernel.index_insert_failures);
    this.kernel.inc({ event: 'unparsed_packet' }, w.kernel.unparsed_packets);
    this.flows.set(w.map.flows_entries);
    this.flowsCapacity.set(w.map.flows_capacity);
    this.indexes.set(w.map.indexes_entries);
    this.amplification.set(w.totals.amplification ?? 0);
    let max = 0;
    for (const i of w.indexes) if (i.amplification !== null && i.amplification > max) max = i.amplification;
    this.maxIndexAmplification.set(max);
    this.readSeconds.set(readSeconds);
  }
}
