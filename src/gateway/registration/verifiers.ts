/**
 * Credential verifiers (PRODUCT.md §2). Nym's zk-nym ecash is out of scope; a gateway runs one of:
 *
 * - `mock`: accepts any well-formed credential (a mock blob or a ticket, unchecked) and grants a fixed
 *   bandwidth, 1 GiB by default (upstream's mock-ecash figure), for a fixed time (30 days by default).
 *   Localnet and tests only.
 * - `ticket`: an Ed25519-signed BandwidthTicket from a configured issuer. Checks, in this order (so an
 *   unauthenticated ticket is never judged by its contents): well-formed, known issuer (key id = first
 *   8 bytes of BLAKE3(issuer pk)), signature over `ticketSigningBytes`, ticket type equals the request's,
 *   not expired (refused when now > expiry), and finally spends the serial exactly once through the
 *   `SerialLedger` it is given — the store transaction that persists the registration, so the spend commits
 *   with the registration or rolls back with it. On a PostgreSQL store the ledger is the fleet's: a serial
 *   spent at any gateway on the database is spent here.
 */
import { type BandwidthTicket, type Credential, MAX_MOCK_CREDENTIAL_LEN, type TicketType, ticketSigningBytes } from '../../core/codec/app.js';
import { toHex } from '../../core/bytes.js';
import type { Primitives } from '../../core/crypto/primitives.js';
import { sodiumPrimitives } from '../../core/crypto/sodium-backend.js';
import { GatewayErrorCode, gwFail } from '../errors.js';
import type { SerialLedger } from './store/types.js';
import { ISSUER_KEY_ID_LEN, MAX_TICKET_BANDWIDTH, TICKET_SERIAL_LEN, issuerKeyId, ticketTypeName } from './tickets.js';

/** 1 GiB, upstream's mock-ecash allocation. */
export const MOCK_BANDWIDTH_BYTES = 1n << 30n;
/** How long a mock grant lasts: 30 days. */
export const MOCK_VALIDITY_SEC = 30 * 86_400;

export type VerifierKind = 'mock' | 'ticket';

export interface VerifiedCredential {
  bandwidthBytes: bigint;
  /** Unix seconds at which the grant ends: the ticket's expiry, or now + the mock verifier's validity. */
  expiresAt: number;
  credential: 'mock' | 'ticket';
  /** Set for a ticket spent by the `ticket` verifier. */
  issuerKeyId: Uint8Array | null;
  serial: Uint8Array | null;
}

export interface CredentialVerifier {
  readonly kind: VerifierKind;
  /** Resolves to the bandwidth to grant or rejects with a GatewayError with an `LPGW_ERR_*` code; spends through `ledger`. */
  verify(credential: Credential, ticketType: TicketType, nowSec: number, ledger: SerialLedger): Promise<VerifiedCredential>;
}

export type { SerialLedger } from './store/types.js';

const TICKET_TYPE_COUNT = 4;

function checkTicketShape(t: BandwidthTicket): void {
  const bad = (what: string): never => gwFail(GatewayErrorCode.CREDENTIAL_MALFORMED, `malformed bandwidth ticket: ${what}`);
  if (t.issuerKeyId.length !== ISSUER_KEY_ID_LEN) bad(`issuer key id must be ${ISSUER_KEY_ID_LEN} bytes`);
  if (t.serial.length !== TICKET_SERIAL_LEN) bad(`serial must be ${TICKET_SERIAL_LEN} bytes`);
  if (t.signature.length !== 64) bad('signature must be 64 bytes');
  if (!Number.isInteger(t.ticketType) || t.ticketType < 0 || t.ticketType >= TICKET_TYPE_COUNT) bad(`unknown ticket type ${t.ticketType}`);
  if (t.bandwidthBytes < 1n || t.bandwidthBytes > MAX_TICKET_BANDWIDTH) bad(`bandwidth must be between 1 and ${MAX_TICKET_BANDWIDTH} bytes`);
  if (t.expiry < 0n || t.expiry > MAX_TICKET_BANDWIDTH) bad('expiry out of range');
}

/** Structural checks shared by both verifiers (the wire decoder already enforces most of them). */
export function checkWellFormed(credential: Credential): void {
  if (credential.kind === 'mock') {
    if (credential.blob.length > MAX_MOCK_CREDENTIAL_LEN) gwFail(GatewayErrorCode.CREDENTIAL_MALFORMED, `mock credential longer than ${MAX_MOCK_CREDENTIAL_LEN} bytes`);
    return;
  }
  checkTicketShape(credential.ticket);
}

export class MockVerifier implements CredentialVerifier {
  readonly kind = 'mock';
  readonly bandwidthBytes: bigint;
  readonly validitySec: number;

  constructor(opts: { bandwidthBytes?: bigint; validitySec?: number } = {}) {
    this.bandwidthBytes = opts.bandwidthBytes ?? MOCK_BANDWIDTH_BYTES;
    this.validitySec = opts.validitySec ?? MOCK_VALIDITY_SEC;
  }

  async verify(credential: Credential, _ticketType: TicketType, nowSec: number, _ledger?: SerialLedger): Promise<VerifiedCredential> {
    checkWellFormed(credential);
    return { bandwidthBytes: this.bandwidthBytes, expiresAt: Math.floor(nowSec) + this.validitySec, credential: 'mock', issuerKeyId: null, serial: null };
  }
}

export interface TicketVerifierOptions {
  /** Ed25519 public keys (32 bytes) of the issuers whose tickets this gateway accepts. */
  issuers: readonly Uint8Array[];
  prims?: Primitives;
}

export class TicketVerifier implements CredentialVerifier {
  readonly kind = 'ticket';
  private readonly issuers = new Map<string, Uint8Array>();
  private readonly prims: Primitives;

  constructor(opts: TicketVerifierOptions) {
    this.prims = opts.prims ?? sodiumPrimitives;
    for (const pk of opts.issuers) {
      if (pk.length !== 32) gwFail(GatewayErrorCode.ISSUER_KEY, `ticket issuer public key must be 32 bytes, got ${pk.length}`);
      const id = toHex(issuerKeyId(pk, this.prims));
      const known = this.issuers.get(id);
      if (known && toHex(known) !== toHex(pk)) gwFail(GatewayErrorCode.ISSUER_KEY, `two ticket issuer keys share the key id ${id}`);
      this.issuers.set(id, new Uint8Array(pk));
    }
  }

  /** Hex key ids of the configured issuers (for the startup log and the descriptor). */
  get issuerKeyIds(): string[] {
    return [...this.issuers.keys()];
  }

  async verify(credential: Credential, ticketType: TicketType, nowSec: number, ledger: SerialLedger): Promise<VerifiedCredential> {
    if (credential.kind !== 'ticket') {
      gwFail(GatewayErrorCode.CREDENTIAL_REJECTED, 'this gateway accepts only signed bandwidth tickets; mock credentials are refused');
    }
    const t = credential.ticket;
    checkTicketShape(t);
    const keyId = toHex(t.issuerKeyId);
    const issuer = this.issuers.get(keyId);
    if (!issuer) gwFail(GatewayErrorCode.TICKET_UNKNOWN_ISSUER, `ticket issuer ${keyId} is not trusted by this gateway`);
    const { signature, ...unsigned } = t;
    if (!this.prims.ed25519Verify(issuer, ticketSigningBytes(unsigned), signature)) {
      gwFail(GatewayErrorCode.TICKET_BAD_SIGNATURE, `ticket signature does not verify under issuer ${keyId}`);
    }
    if (t.ticketType !== ticketType) {
      gwFail(GatewayErrorCode.TICKET_WRONG_TYPE, `ticket is a ${ticketTypeName(t.ticketType)} ticket but the registration asks for ${ticketTypeName(ticketType)}`);
    }
    if (BigInt(Math.floor(nowSec)) > t.expiry) {
      gwFail(GatewayErrorCode.TICKET_EXPIRED, `ticket expired at ${new Date(Number(t.expiry) * 1000).toISOString()}`);
    }
    const spent = await ledger.spendSerial({
      issuerKeyId: t.issuerKeyId,
      serial: t.serial,
      ticketType: t.ticketType,
      bandwidthBytes: t.bandwidthBytes,
      expiry: t.expiry,
      nowSec: Math.floor(nowSec),
    });
    if (!spent) gwFail(GatewayErrorCode.TICKET_SPENT, `ticket serial ${toHex(t.serial)} from issuer ${keyId} has already been spent`);
    const expiresAt = t.expiry > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(t.expiry);
    return { bandwidthBytes: t.bandwidthBytes, expiresAt, credential: 'ticket', issuerKeyId: t.issuerKeyId, serial: t.serial };
  }
}
