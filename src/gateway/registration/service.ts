/**
 * Registration (PRODUCT.md §2): turns a decoded `RegisterRequest` from an authenticated LP session into a
 * `RegisterResponse`. It never throws for a bad request: every failure becomes `success: false` with a
 * coded `ErrorBody` (`LPGW_ERR_*`; unexpected failures are `LPGW_ERR_INTERNAL`, details only in the log).
 *
 * Order of work (deviation from upstream, which allocated and stored the peer before verifying):
 * 1. timestamp within ±tolerance (default 30 s), request shape, ticket type consistent with the mode and
 *    accepted by this gateway;
 * 2. one store transaction: verify the credential (a ticket's serial is spent here), then allocate and
 *    persist (dVPN) or record the client (mixnet), then record the bandwidth grant. Any failure rolls the
 *    whole transaction back: a refused credential leaves no trace and spends nothing. The response is built
 *    only after the commit returned, so a registration answered success is stored; a store that cannot be
 *    reached is `LPGW_ERR_STORE_UNAVAILABLE` with `retry_after_ms` (retryable);
 * 3. dVPN only, after commit: apply the peer to the WireGuard device. If that fails, a compensating
 *    transaction gives the ticket back, removes the grant and removes a new peer (a renewed one gets its
 *    previous PSK and grant back), and the client gets `LPGW_ERR_WG_APPLY`.
 *
 * Grants (DESIGN.md §7.3): a dVPN peer has one grant, bytes (received + sent through the tunnel) and an
 * expiry, enforced by the peer controller. Re-registering a WireGuard key returns its stored addresses
 * (idempotent, also across restarts) and replaces the PSK with the one derived from the new LP session
 * (the client library hands it to the client); usage so far is kept, never counted again. A ticket adds
 * its bandwidth (its serial is spent once, so it counts once) and extends the expiry to the later of the
 * two; the mock verifier's grant does not stack: the remaining bytes become at least its amount.
 * `allocated_bandwidth` in the response is what the peer may still transfer.
 *
 * Deregistration removes a peer at once; it needs proof of the WireGuard private key (DESIGN.md §7.4).
 */
import type { DeregisterRequest, GatewayData, RegisterRequest, RegisterResponse, SocketAddress, TicketType } from '../../core/codec/app.js';
import { TicketType as TT } from '../../core/codec/app.js';
import { equalBytes, isAllZero, toHex } from '../../core/bytes.js';
import type { Primitives } from '../../core/crypto/primitives.js';
import { sodiumPrimitives } from '../../core/crypto/sodium-backend.js';
import { wireguardDeregisterProof } from '../../core/handshake/key-schedule.js';
import type { Logger } from '../../log.js';
import { GatewayError, GatewayErrorCode, gwFail } from '../errors.js';
import { NullPeerApplier, type PeerApplier } from '../wireguard/peer-applier.js';
import { AddressAllocator } from './allocator.js';
import type { RegistrationModeName, RegistrationStore, StoredPeer } from './store/types.js';
import { ticketTypeName } from './tickets.js';
import type { CredentialVerifier, VerifiedCredential } from './verifiers.js';

export const DEFAULT_REGISTRATION_TIMESTAMP_TOLERANCE_SEC = 30;

export interface RegistrationContext {
  /** WireGuard PSK derived from the LP session (`wireguardPsk` in key-schedule.ts), 32 bytes. */
  wireguardPsk: Uint8Array;
  nowSec: number;
  /** Remote address, for logs only. */
  remote?: string;
}

export type RegistrationResult = 'success' | 'failure';

/** Called once per register() outcome (metrics); `code` is null on success. */
export type RegistrationResultListener = (mode: RegistrationModeName, result: RegistrationResult, code: string | null, bandwidthBytes: bigint) => void;

export interface RegistrationStats {
  success: Record<RegistrationModeName, number>;
  failure: Record<RegistrationModeName, number>;
  /** Failures by error code, both modes. */
  failuresByCode: Record<string, number>;
  /** Sum of bandwidth granted by successful registrations since start. */
  bandwidthGrantedBytes: bigint;
}

export interface RegistrationServiceOptions {
  store: RegistrationStore;
  verifier: CredentialVerifier;
  /** Default pools 10.1.0.0/16 and fd00:1::/112. */
  allocator?: AddressAllocator;
  /** Default NullPeerApplier (registry only). */
  applier?: PeerApplier;
  /**
   * What dVPN clients get in `GatewayData`: the gateway's WireGuard X25519 public key and endpoint; the
   * secret key checks deregistration proofs (without it, deregistration is refused).
   */
  wireguard: { publicKey: Uint8Array; secretKey?: Uint8Array; endpoint: SocketAddress };
  /** ± seconds between the request timestamp and the gateway clock; default 30. */
  timestampToleranceSec?: number;
  /** Ticket types this gateway accepts (e.g. only `*-entry` on an entry-only gateway); default all. */
  acceptedTicketTypes?: readonly TicketType[];
  logger?: Logger;
  onResult?: RegistrationResultListener;
  /** Called when a deregistration removed a peer (metrics). */
  onDeregistered?: () => void;
  prims?: Primitives;
}

/** ErrorBody.message bound of the wire decoder (src/core/codec/app.ts). */
const MAX_ERROR_MESSAGE_LEN = 1024;
const DVPN_TYPES: readonly number[] = [TT.V1WireguardEntry, TT.V1WireguardExit];
const MIXNET_TYPES: readonly number[] = [TT.V1MixnetEntry, TT.V1MixnetExit];
const ALL_TYPES: readonly TicketType[] = [TT.V1MixnetEntry, TT.V1MixnetExit, TT.V1WireguardEntry, TT.V1WireguardExit];

/**
 * Ticket types a gateway accepts by its role (DESIGN.md §7): an entry the entry types, an exit the exit types, a
 * gateway that is both all four. A ticket bought for one hop cannot be spent at the other.
 */
export function ticketTypesForMode(mode: 'entry' | 'exit' | 'both'): readonly TicketType[] {
  if (mode === 'entry') return [TT.V1MixnetEntry, TT.V1WireguardEntry];
  if (mode === 'exit') return [TT.V1MixnetExit, TT.V1WireguardExit];
  return ALL_TYPES;
}

interface DvpnCommit {
  verified: VerifiedCredential;
  previous: StoredPeer | null;
  ipv4: Uint8Array;
  ipv6: Uint8Array;
  grantId: number;
  /** Bytes the peer may still transfer under its grant after this registration. */
  remaining: bigint;
}

const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);

export class RegistrationService {
  readonly store: RegistrationStore;
  readonly verifier: CredentialVerifier;
  readonly allocator: AddressAllocator;
  readonly applier: PeerApplier;
  private readonly wgPublicKey: Uint8Array;
  private readonly wgSecretKey: Uint8Array | null;
  private readonly wgEndpoint: SocketAddress;
  private readonly prims: Primitives;
  private readonly onDeregistered: (() => void) | undefined;
  private readonly tolerance: bigint;
  private readonly accepted: ReadonlySet<number>;
  private readonly logger: Logger | undefined;
  private readonly onResult: RegistrationResultListener | undefined;
  private readonly counters: RegistrationStats = { success: { dvpn: 0, mixnet: 0 }, failure: { dvpn: 0, mixnet: 0 }, failuresByCode: {}, bandwidthGrantedBytes: 0n };

  constructor(opts: RegistrationServiceOptions) {
    this.store = opts.store;
    this.verifier = opts.verifier;
    this.allocator = opts.allocator ?? new AddressAllocator();
    this.applier = opts.applier ?? new NullPeerApplier();
    if (opts.wireguard.publicKey.length !== 32) throw new TypeError('gateway WireGuard public key must be 32 bytes');
    this.wgPublicKey = new Uint8Array(opts.wireguard.publicKey);
    this.wgSecretKey = opts.wireguard.secretKey ? new Uint8Array(opts.wireguard.secretKey) : null;
    this.wgEndpoint = opts.wireguard.endpoint;
    this.prims = opts.prims ?? sodiumPrimitives;
    this.onDeregistered = opts.onDeregistered;
    this.tolerance = BigInt(opts.timestampToleranceSec ?? DEFAULT_REGISTRATION_TIMESTAMP_TOLERANCE_SEC);
    this.accepted = new Set(opts.acceptedTicketTypes ?? ALL_TYPES);
    this.logger = opts.logger;
    this.onResult = opts.onResult;
  }

  async register(request: RegisterRequest, ctx: RegistrationContext): Promise<RegisterResponse> {
    const mode: RegistrationModeName = request.mode.kind === 'dvpn' ? 'dvpn' : 'mixnet';
    let response: RegisterResponse;
    try {
      this.precheck(request, ctx);
      response = request.mode.kind === 'dvpn' ? await this.registerDvpn(request, request.mode.wgPublicKey, ctx) : await this.registerMixnet(request, request.mode.clientId, ctx);
    } catch (e) {
      const error = this.errorBody(e, mode, ctx);
      this.record(mode, 'failure', error.code, 0n);
      return { success: false, error, gatewayData: null, allocatedBandwidth: 0n };
    }
    this.record(mode, 'success', null, response.allocatedBandwidth);
    return response;
  }

  /** A snapshot of the counters (plain numbers; the caller exports them as metrics). */
  stats(): RegistrationStats {
    return {
      success: { ...this.counters.success },
      failure: { ...this.counters.failure },
      failuresByCode: { ...this.counters.failuresByCode },
      bandwidthGrantedBytes: this.counters.bandwidthGrantedBytes,
    };
  }

  private precheck(request: RegisterRequest, ctx: RegistrationContext): void {
    const now = BigInt(Math.floor(ctx.nowSec));
    const skew = request.timestamp > now ? request.timestamp - now : now - request.timestamp;
    if (skew > this.tolerance) {
      gwFail(GatewayErrorCode.REGISTRATION_TIMESTAMP, `registration timestamp ${request.timestamp} is ${skew} s away from the gateway clock (tolerance ±${this.tolerance} s)`);
    }
    const key = request.mode.kind === 'dvpn' ? request.mode.wgPublicKey : request.mode.clientId;
    if (key.length !== 32) gwFail(GatewayErrorCode.REGISTRATION_MALFORMED, `${request.mode.kind === 'dvpn' ? 'WireGuard public key' : 'client_id'} must be 32 bytes`);
    if (request.mode.kind === 'dvpn' && isAllZero(key)) gwFail(GatewayErrorCode.REGISTRATION_MALFORMED, 'the all-zero WireGuard public key is invalid');
    const allowed = request.mode.kind === 'dvpn' ? DVPN_TYPES : MIXNET_TYPES;
    if (!allowed.includes(request.ticketType)) {
      gwFail(GatewayErrorCode.TICKET_WRONG_TYPE, `a ${request.mode.kind === 'dvpn' ? 'dVPN' : 'mixnet'} registration cannot use a ${ticketTypeName(request.ticketType)} ticket`);
    }
    if (!this.accepted.has(request.ticketType)) gwFail(GatewayErrorCode.TICKET_WRONG_TYPE, `this gateway does not accept ${ticketTypeName(request.ticketType)} tickets`);
  }

  private async registerDvpn(request: RegisterRequest, key: Uint8Array, ctx: RegistrationContext): Promise<RegisterResponse> {
    if (ctx.wireguardPsk.length !== 32) throw new Error('internal: WireGuard PSK must be 32 bytes');
    const psk = new Uint8Array(ctx.wireguardPsk); // the caller may zeroize its copy once we return
    const nowSec = Math.floor(ctx.nowSec);
    const storedPsk = this.applier.needsPsk ? psk : null;
    let c: DvpnCommit;
    try {
      // may run more than once (a lost race on PostgreSQL): everything it decides comes from `tx`
      c = await this.store.transaction('register_dvpn', async (tx): Promise<DvpnCommit> => {
        const verified = await this.verifier.verify(request.credential, request.ticketType, nowSec, tx);
        const previous = await tx.getPeer(key, { forUpdate: true });
        let ipv4: Uint8Array;
        let ipv6: Uint8Array;
        let remaining: bigint;
        if (previous) {
          const used = previous.rxBytes + previous.txBytes;
          // a ticket adds what it was bought for; the mock grant only tops the remainder up to its amount
          const grantedBytes = verified.credential === 'ticket' ? previous.grantedBytes + verified.bandwidthBytes : maxBig(previous.grantedBytes, used + verified.bandwidthBytes);
          const expiresAt = Math.max(previous.expiresAt, verified.expiresAt);
          await tx.renewPeer(key, { psk: storedPsk, grantedBytes, expiresAt, nowSec });
          ({ ipv4, ipv6 } = previous);
          remaining = maxBig(0n, grantedBytes - used);
        } else {
          ({ ipv4, ipv6 } = await this.allocator.allocate(tx, key, nowSec));
          await tx.insertPeer({ wgPublicKey: key, ipv4, ipv6, psk: storedPsk, grantedBytes: verified.bandwidthBytes, expiresAt: verified.expiresAt, nowSec });
          remaining = verified.bandwidthBytes;
        }
        const grantId = await tx.addGrant({
          mode: 'dvpn',
          subject: key,
          ticketType: request.ticketType,
          credential: verified.credential,
          issuerKeyId: verified.issuerKeyId,
          serial: verified.serial,
          bandwidthBytes: verified.bandwidthBytes,
          expiresAt: verified.expiresAt,
          nowSec,
        });
        return { verified, previous, ipv4, ipv6, grantId, remaining };
      });
    } catch (e) {
      psk.fill(0);
      throw e;
    }

    try {
      await this.applier.apply({ publicKey: key, psk, ipv4: c.ipv4, ipv6: c.ipv6 });
    } catch (e) {
      this.logger?.warn({ err: e, wgPublicKey: toHex(key), remote: ctx.remote }, 'applying the WireGuard peer failed; registration undone');
      await this.undoDvpn(key, c);
      throw new GatewayError(GatewayErrorCode.WG_APPLY, 'the gateway could not apply the WireGuard peer; try again later');
    } finally {
      psk.fill(0);
      c.previous?.psk?.fill(0);
    }
    const gatewayData: GatewayData = { publicKey: this.wgPublicKey, endpoint: this.wgEndpoint, privateIpv4: new Uint8Array(c.ipv4), privateIpv6: new Uint8Array(c.ipv6) };
    this.logger?.debug({ wgPublicKey: toHex(key), renewed: c.previous !== null, remote: ctx.remote }, 'dVPN peer registered');
    return { success: true, error: null, gatewayData, allocatedBandwidth: c.remaining };
  }

  /**
   * Removes the peer of `request.wgPublicKey` at once (device and registry; its addresses are free again).
   * The proof is checked before the registry is consulted, so nobody learns whether a key is registered
   * without holding its private key. Throws GatewayError LPGW_ERR_DEREGISTER_PROOF / LPGW_ERR_PEER_UNKNOWN.
   */
  async deregister(request: DeregisterRequest, ctx: { remote?: string } = {}): Promise<void> {
    if (request.wgPublicKey.length !== 32 || request.proof.length !== 32) gwFail(GatewayErrorCode.REGISTRATION_MALFORMED, 'a deregistration carries a 32-byte key and a 32-byte proof');
    if (!this.wgSecretKey) gwFail(GatewayErrorCode.DEREGISTER_PROOF, 'this gateway cannot check deregistration proofs');
    let dh: Uint8Array;
    try {
      dh = this.prims.x25519(this.wgSecretKey, request.wgPublicKey);
    } catch {
      return gwFail(GatewayErrorCode.DEREGISTER_PROOF, 'the deregistration proof does not verify');
    }
    const expected = wireguardDeregisterProof(this.prims, dh, request.wgPublicKey, this.wgPublicKey);
    this.prims.zeroize(dh);
    const ok = equalBytes(expected, request.proof);
    this.prims.zeroize(expected);
    if (!ok) gwFail(GatewayErrorCode.DEREGISTER_PROOF, 'the deregistration proof does not verify');
    let removed: boolean;
    try {
      removed = await this.store.transaction('deregister', (tx) => tx.deletePeer(request.wgPublicKey));
    } catch (e) {
      if (!(e instanceof GatewayError) || e.code === GatewayErrorCode.INTERNAL) this.logger?.error({ err: e, remote: ctx.remote }, 'deregistration failed with an internal error');
      throw e;
    }
    if (!removed) gwFail(GatewayErrorCode.PEER_UNKNOWN, 'no WireGuard peer is registered with this key');
    this.onDeregistered?.();
    this.logger?.debug({ wgPublicKey: toHex(request.wgPublicKey), remote: ctx.remote }, 'dVPN peer deregistered');
    try {
      await this.applier.remove([request.wgPublicKey]);
    } catch (e) {
      // the registry no longer has it: the peer controller removes it from the device at its next poll
      this.logger?.warn({ err: e }, 'removing a deregistered peer from the device failed; the next poll retries');
    }
  }

  /** Compensation for a committed registration whose WireGuard apply failed. */
  private async undoDvpn(key: Uint8Array, c: DvpnCommit): Promise<void> {
    try {
      await this.store.transaction('undo_register_dvpn', async (tx) => {
        await tx.deleteGrant(c.grantId);
        if (c.verified.issuerKeyId && c.verified.serial) await tx.unspendSerial(c.verified.issuerKeyId, c.verified.serial);
        if (c.previous) await tx.restorePeer(c.previous);
        else await tx.deletePeer(key);
      });
      if (!c.previous) await this.applier.remove([key]).catch(() => undefined);
    } catch (e) {
      this.logger?.error({ err: e, wgPublicKey: toHex(key) }, 'undoing a failed dVPN registration failed');
    }
  }

  private async registerMixnet(request: RegisterRequest, clientId: Uint8Array, ctx: RegistrationContext): Promise<RegisterResponse> {
    const nowSec = Math.floor(ctx.nowSec);
    const verified = await this.store.transaction('register_mixnet', async (tx) => {
      const v = await this.verifier.verify(request.credential, request.ticketType, nowSec, tx);
      await tx.recordMixnetClient(clientId, nowSec);
      await tx.addGrant({
        mode: 'mixnet',
        subject: clientId,
        ticketType: request.ticketType,
        credential: v.credential,
        issuerKeyId: v.issuerKeyId,
        serial: v.serial,
        bandwidthBytes: v.bandwidthBytes,
        expiresAt: v.expiresAt,
        nowSec,
      });
      return v;
    });
    this.logger?.debug({ clientId: toHex(clientId), remote: ctx.remote }, 'mixnet client registered');
    return { success: true, error: null, gatewayData: null, allocatedBandwidth: verified.bandwidthBytes };
  }

  private errorBody(e: unknown, mode: RegistrationModeName, ctx: RegistrationContext): { code: string; message: string; retryAfterMs: number | null } {
    if (e instanceof GatewayError && e.code === GatewayErrorCode.INTERNAL) {
      // a store error with details (already redacted): the log has them, the client does not
      this.logger?.error({ code: e.code, mode, remote: ctx.remote, reason: e.message }, 'registration failed with an internal error');
      return { code: GatewayErrorCode.INTERNAL, message: 'internal error while registering', retryAfterMs: null };
    }
    if (e instanceof GatewayError) {
      this.logger?.debug({ code: e.code, mode, remote: ctx.remote }, `registration refused: ${e.message}`);
      return { code: e.code, message: e.message.slice(0, MAX_ERROR_MESSAGE_LEN), retryAfterMs: e.retryAfterMs };
    }
    this.logger?.error({ err: e, mode, remote: ctx.remote }, 'registration failed with an internal error');
    return { code: GatewayErrorCode.INTERNAL, message: 'internal error while registering', retryAfterMs: null };
  }

  private record(mode: RegistrationModeName, result: RegistrationResult, code: string | null, bandwidth: bigint): void {
    this.counters[result][mode]++;
    if (code !== null) this.counters.failuresByCode[code] = (this.counters.failuresByCode[code] ?? 0) + 1;
    else this.counters.bandwidthGrantedBytes += bandwidth;
    try {
      this.onResult?.(mode, result, code, bandwidth);
    } catch (e) {
      this.logger?.error({ err: e }, 'registration result listener threw');
    }
  }
}
