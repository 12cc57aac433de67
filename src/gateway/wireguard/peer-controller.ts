/**
 * The peer lifecycle (PRODUCT.md §7): every `wireguard.poll_sec` one read of the device gives every peer's
 * transfer counters and last handshake; usage is persisted; a peer whose grant is used up (received + sent
 * bytes ≥ granted) or expired, or that stayed idle longer than `wireguard.idle_timeout_sec`, is removed from
 * the device and the registry, and its addresses return to the pool.
 *
 * Counting never double-counts and survives restarts: the store keeps, per peer, the usage so far and the
 * device counters last seen. A reading below the last one means the counters restarted (the interface was
 * re-created, or the peer re-added), so the whole reading is new traffic; a peer missing from the device has
 * its last-seen counters reset and is applied again (an interface re-created under a running gateway heals at
 * the next poll). At start the same reconciliation runs before every stored peer is re-applied in batches.
 *
 * Ownership: the gateway owns the peers of its interface whose allowed IPs lie inside its pools; such a peer
 * that the registry does not know (left by a crash between the two removals) is removed. Other peers an
 * operator added are left alone.
 *
 * Without a device (no interface configured) only grant expiry is enforced. While the registration store
 * cannot be reached (PostgreSQL down or failing over) a poll persists nothing and removes nothing; the peers
 * on the device keep working, and the next poll after the store is back catches up (counters are cumulative).
 */
import type { Logger } from '../../log.js';
import { formatIp, parseIp, type AddressPool } from '../registration/allocator.js';
import type { PeerUsageRow, PeerUsageUpdate, RegistrationStore, StoredPeer } from '../registration/store/types.js';
import type { WgInterfaceState, WgPeerState } from './device.js';
import type { PeerApplier } from './peer-applier.js';

export type RemovalReason = 'bandwidth' | 'expired' | 'idle' | 'deregistered' | 'unknown';

export interface PeerControllerMetrics {
  peers(n: number): void;
  transfer(rx: bigint, tx: bigint): void;
  removed(reason: RemovalReason, n: number): void;
  poll(ok: boolean, seconds: number): void;
  reapplied(n: number): void;
}

export interface PeerControllerOptions {
  store: RegistrationStore;
  applier: PeerApplier;
  pools: { ipv4: AddressPool; ipv6: AddressPool };
  pollSec: number;
  /** Remove a peer without a handshake for this long (since its last handshake or registration); 0 = never. */
  idleTimeoutSec: number;
  metrics: PeerControllerMetrics;
  logger: Logger;
  /** Unix seconds (tests). */
  now?: () => number;
}

export interface PollReport {
  ok: boolean;
  peers: number;
  removed: Partial<Record<RemovalReason, number>>;
  reapplied: number;
  ms: number;
}

export interface StartReport {
  reapplied: number;
  missing: number;
  skippedWithoutPsk: number;
  removedUnknown: number;
  ms: number;
}

/** A Map key for a public key (latin1 of the bytes: cheaper than hex, and the poll makes 2 per peer). */
const key = (k: Uint8Array): string => Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('latin1');

export class PeerController {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<PollReport> | null = null;
  private failing = false;
  private storeFailing = false;
  private readonly now: () => number;
  /** When the last successful poll read the device (unix seconds), for the operator view. */
  lastPollSec = 0;

  constructor(private readonly o: PeerControllerOptions) {
    this.now = o.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Start-up: reconcile with the device, re-apply every stored peer, remove unknown ones, poll, then every poll_sec. */
  async start(): Promise<StartReport> {
    const report = await this.reconcile();
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.o.pollSec * 1000);
    this.timer.unref();
    return report;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Waits for a poll in progress (shutdown). */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  /** Start-up reconciliation: account what the device counted, re-apply every stored peer, remove unknown ones. */
  async reconcile(): Promise<StartReport> {
    const t0 = performance.now();
    const { store, applier, logger } = this.o;
    const stored = await store.listPeers();
    const state = await applier.read();
    let missing = 0;
    let removedUnknown = 0;
    const withPsk = stored.filter((p) => p.psk !== null);
    if (state) {
      const onDevice = new Map(state.peers.map((d) => [key(d.publicKey), d]));
      const updates: PeerUsageUpdate[] = [];
      for (const p of stored) {
        const d = onDevice.get(key(p.wgPublicKey));
        if (!d) missing++;
        const u = this.usage(p, d);
        if (u) updates.push(u);
      }
      await store.recordUsage(updates);
      await applier.applyMany(withPsk.map((p) => ({ publicKey: p.wgPublicKey, psk: p.psk, ipv4: p.ipv4, ipv6: p.ipv6 })));
      removedUnknown = await this.removeUnknown(state, new Set(stored.map((p) => key(p.wgPublicKey))));
    }
    for (const p of withPsk) p.psk?.fill(0);
    const skipped = stored.length - withPsk.length;
    const ms = Math.round(performance.now() - t0);
    if (state) {
      if (skipped > 0) logger.warn({ skipped }, 'stored WireGuard peers without a preshared key were not re-applied; those clients must register again');
      logger.info({ peers: withPsk.length, missingFromDevice: missing, removedUnknown, ms }, 're-applied stored WireGuard peers');
    }
    return { reapplied: state ? withPsk.length : 0, missing, skippedWithoutPsk: skipped, removedUnknown, ms };
  }

  /** One poll (concurrent calls share the one in progress). */
  poll(): Promise<PollReport> {
    this.running ??= this.pollOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pollOnce(): Promise<PollReport> {
    const t0 = performance.now();
    const { applier, metrics, logger } = this.o;
    const report: PollReport = { ok: true, peers: 0, removed: {}, reapplied: 0, ms: 0 };
    let state: WgInterfaceState | null;
    try {
      state = await applier.read();
    } catch (e) {
      metrics.poll(false, (performance.now() - t0) / 1000);
      if (!this.failing) logger.error({ code: (e as { code?: string }).code, err: e }, 'reading the WireGuard device failed; peers are not enforced until it can be read again');
      this.failing = true;
      return { ...report, ok: false, ms: Math.round(performance.now() - t0) };
    }
    if (this.failing) logger.info('the WireGuard device can be read again');
    this.failing = false;
    try {
      const r = await this.enforce(state, report, t0);
      if (this.storeFailing) logger.info('the registration store answers the peer controller again; usage and removals are caught up');
      this.storeFailing = false;
      return r;
    } catch (e) {
      metrics.poll(false, (performance.now() - t0) / 1000);
      if (!this.storeFailing) logger.error({ code: (e as { code?: string }).code, err: e }, 'the peer controller cannot reach the registration store; usage is not persisted and no peer is removed until it can');
      this.storeFailing = true;
      return { ...report, ok: false, ms: Math.round(performance.now() - t0) };
    }
  }

  /** The store half of a poll: accounting, removals, re-applies (throws when the store fails). */
  private async enforce(state: WgInterfaceState | null, report: PollReport, t0: number): Promise<PollReport> {
    const { store, applier, metrics, logger } = this.o;
    const now = this.now();
    const stored = await store.peerUsage();
    const onDevice = state ? new Map(state.peers.map((d) => [key(d.publicKey), d])) : null;
    const updates: PeerUsageUpdate[] = [];
    const remove: { peer: PeerUsageRow; reason: RemovalReason }[] = [];
    const missing: Uint8Array[] = [];
    let addRx = 0n;
    let addTx = 0n;
    for (const p of stored) {
      const d = onDevice?.get(key(p.wgPublicKey));
      const u = onDevice ? this.usage(p, d) : null;
      if (u) {
        updates.push(u);
        addRx += u.addRx;
        addTx += u.addTx;
      }
      const used = p.rxBytes + p.txBytes + (u ? u.addRx + u.addTx : 0n);
      const lastHandshake = Math.max(p.lastHandshake, d?.lastHandshakeSec ?? 0);
      let reason: RemovalReason | null = null;
      if (now >= p.expiresAt) reason = 'expired';
      else if (onDevice && used >= p.grantedBytes) reason = 'bandwidth';
      else if (onDevice && this.o.idleTimeoutSec > 0 && now - Math.max(lastHandshake, p.updatedAt) > this.o.idleTimeoutSec) reason = 'idle';
      if (reason) remove.push({ peer: p, reason });
      else if (onDevice && !d && p.hasPsk) missing.push(p.wgPublicKey);
    }
    await store.recordUsage(updates);
    metrics.transfer(addRx, addTx);

    // Removals: the registry first (only if not registered again meanwhile), then the device, queued in the
    // same turn as the commit's continuation (no I/O in between), so a later registration's apply cannot
    // overtake the removal.
    let deleted: { peer: StoredPeer; reason: RemovalReason }[] = [];
    if (remove.length > 0) {
      deleted = await store.transaction('remove_peers', async (tx) => {
        const out: { peer: StoredPeer; reason: RemovalReason }[] = [];
        for (const r of remove) {
          const peer = await tx.getPeer(r.peer.wgPublicKey, { forUpdate: true });
          if (peer && (await tx.deletePeerIfUnchanged(r.peer.wgPublicKey, r.peer.updatedAt))) out.push({ peer, reason: r.reason });
          peer?.psk?.fill(0);
        }
        return out;
      });
    }
    const removal = applier.remove(deleted.map((r) => r.peer.wgPublicKey));
    const toApply: StoredPeer[] = [];
    for (const k of missing) {
      const p = await store.getPeer(k);
      if (p !== null && p.psk !== null) toApply.push(p);
    }
    const reapply = applier.applyMany(toApply.map((p) => ({ publicKey: p.wgPublicKey, psk: p.psk, ipv4: p.ipv4, ipv6: p.ipv6 })));
    for (const r of deleted) {
      report.removed[r.reason] = (report.removed[r.reason] ?? 0) + 1;
      const used = r.peer.rxBytes + r.peer.txBytes;
      logger.info(
        { reason: r.reason, ipv4: formatIp(r.peer.ipv4), ipv6: formatIp(r.peer.ipv6), usedBytes: used.toString(), grantedBytes: r.peer.grantedBytes.toString(), expiresAt: r.peer.expiresAt },
        'WireGuard peer removed; its addresses are free again',
      );
    }
    for (const [reason, n] of Object.entries(report.removed)) metrics.removed(reason as RemovalReason, n);
    try {
      await removal;
    } catch (e) {
      logger.error({ err: e }, 'removing WireGuard peers from the device failed; the next poll removes them (unknown peers in the pools)');
    }
    try {
      await reapply;
      report.reapplied = toApply.length;
      if (toApply.length > 0) {
        metrics.reapplied(toApply.length);
        logger.warn({ peers: toApply.length }, 'registered WireGuard peers were missing from the device (interface re-created?); re-applied');
      }
    } catch (e) {
      logger.error({ err: e }, 're-applying WireGuard peers missing from the device failed; retrying at the next poll');
    }
    for (const p of toApply) p.psk?.fill(0);
    if (state) await this.removeUnknown(state, new Set(stored.map((p) => key(p.wgPublicKey))));
    report.peers = stored.length - deleted.length;
    metrics.peers(report.peers);
    this.lastPollSec = now;
    report.ms = Math.round(performance.now() - t0);
    metrics.poll(true, (performance.now() - t0) / 1000);
    return report;
  }

  /** Usage since the last reading (counters that went down restarted from zero), or null when unchanged. */
  private usage(p: PeerUsageRow | StoredPeer, d: WgPeerState | undefined): PeerUsageUpdate | null {
    if (!d) {
      // not on the device: its counters start at zero when it is applied again
      return p.seenRx === 0n && p.seenTx === 0n ? null : { wgPublicKey: p.wgPublicKey, addRx: 0n, addTx: 0n, seenRx: 0n, seenTx: 0n, lastHandshake: p.lastHandshake };
    }
    const addRx = d.rxBytes >= p.seenRx ? d.rxBytes - p.seenRx : d.rxBytes;
    const addTx = d.txBytes >= p.seenTx ? d.txBytes - p.seenTx : d.txBytes;
    const lastHandshake = Math.max(p.lastHandshake, d.lastHandshakeSec);
    if (addRx === 0n && addTx === 0n && d.rxBytes === p.seenRx && d.txBytes === p.seenTx && lastHandshake === p.lastHandshake) return null;
    return { wgPublicKey: p.wgPublicKey, addRx, addTx, seenRx: d.rxBytes, seenTx: d.txBytes, lastHandshake };
  }

  /** Removes device peers the registry does not know whose allowed IPs all lie in the gateway's pools. */
  private async removeUnknown(state: WgInterfaceState, known: Set<string>): Promise<number> {
    const unknown = state.peers.filter((d) => !known.has(key(d.publicKey)) && d.allowedIps.length > 0 && d.allowedIps.every((a) => this.inPools(a)));
    if (unknown.length === 0) return 0;
    // a registration may have committed since the snapshot: keep what the registry knows now
    const gone: typeof unknown = [];
    for (const d of unknown) {
      const p = await this.o.store.getPeer(d.publicKey);
      p?.psk?.fill(0);
      if (p === null) gone.push(d);
    }
    if (gone.length === 0) return 0;
    try {
      await this.o.applier.remove(gone.map((d) => d.publicKey));
      this.o.metrics.removed('unknown', gone.length);
      this.o.logger.warn({ peers: gone.length }, 'removed WireGuard peers in the gateway pools that the registry does not know');
    } catch (e) {
      this.o.logger.error({ err: e }, 'removing unknown WireGuard peers failed');
      return 0;
    }
    return gone.length;
  }

  private inPools(allowedIp: string): boolean {
    const ip = parseIp(allowedIp.split('/')[0] ?? '');
    return ip !== null && (this.o.pools.ipv4.contains(ip.bytes) || this.o.pools.ipv6.contains(ip.bytes));
  }
}
