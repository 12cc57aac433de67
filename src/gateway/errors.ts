/**
 * Coded errors of the gateway's I/O edges (registration, storage, WireGuard, tickets), in the same
 * fastify `FST_ERR_*` style as LpError (src/core/errors.ts) and CollectorError. The set of codes is open:
 * `code` is a plain string so other components can add their own `LPGW_ERR_*` codes next to these, and
 * every rejected input reaches the client as `ErrorBody { code, message }` and the metrics by `code`.
 */

export const GatewayErrorCode = {
  /** Unexpected failure (database, I/O); details go to the log, never to the client. */
  INTERNAL: 'LPGW_ERR_INTERNAL',
  // registration
  REGISTRATION_TIMESTAMP: 'LPGW_ERR_REGISTRATION_TIMESTAMP',
  REGISTRATION_MALFORMED: 'LPGW_ERR_REGISTRATION_MALFORMED',
  POOL_EXHAUSTED: 'LPGW_ERR_POOL_EXHAUSTED',
  POOL_INVALID: 'LPGW_ERR_POOL_INVALID',
  WG_APPLY: 'LPGW_ERR_WG_APPLY',
  /** A deregistration's proof of the WireGuard private key does not verify. */
  DEREGISTER_PROOF: 'LPGW_ERR_DEREGISTER_PROOF',
  /** A deregistration names a WireGuard key the gateway has no peer for. */
  PEER_UNKNOWN: 'LPGW_ERR_PEER_UNKNOWN',
  // WireGuard interface
  /** Reading or configuring the WireGuard interface failed (UAPI socket or `wg`). */
  WG_CONTROL: 'LPGW_ERR_WG_CONTROL',
  /** Creating or configuring the managed interface failed (addresses, link state, forwarding policy). */
  WG_INTERFACE: 'LPGW_ERR_WG_INTERFACE',
  /** Neither kernel WireGuard nor wireguard-go is available for a managed interface. */
  WG_UNAVAILABLE: 'LPGW_ERR_WG_UNAVAILABLE',
  /** The interface's key or listen port differs from what the gateway announces. */
  WG_MISMATCH: 'LPGW_ERR_WG_MISMATCH',
  // credentials
  CREDENTIAL_MALFORMED: 'LPGW_ERR_CREDENTIAL_MALFORMED',
  CREDENTIAL_REJECTED: 'LPGW_ERR_CREDENTIAL_REJECTED',
  TICKET_SPENT: 'LPGW_ERR_TICKET_SPENT',
  TICKET_UNKNOWN_ISSUER: 'LPGW_ERR_TICKET_UNKNOWN_ISSUER',
  TICKET_BAD_SIGNATURE: 'LPGW_ERR_TICKET_BAD_SIGNATURE',
  TICKET_EXPIRED: 'LPGW_ERR_TICKET_EXPIRED',
  TICKET_WRONG_TYPE: 'LPGW_ERR_TICKET_WRONG_TYPE',
  // storage and operator files
  STORE_SCHEMA: 'LPGW_ERR_STORE_SCHEMA',
  /**
   * The registration store (PostgreSQL) cannot be reached or is failing over: retryable, the error carries
   * `retry_after_ms`. Handshakes and established sessions are unaffected.
   */
  STORE_UNAVAILABLE: 'LPGW_ERR_STORE_UNAVAILABLE',
  /** Another live gateway process holds this gateway identity on the same PostgreSQL database. */
  STORE_IDENTITY_IN_USE: 'LPGW_ERR_STORE_IDENTITY_IN_USE',
  ISSUER_KEY: 'LPGW_ERR_ISSUER_KEY',
  TICKET_FILE: 'LPGW_ERR_TICKET_FILE',
  // configuration, keys, descriptors
  /** Invalid configuration (TOML, LPGW_* environment or flags); the message names the key and the source. */
  CONFIG: 'LPGW_ERR_CONFIG',
  /** A key file in the data directory is unreadable, short or corrupt (never overwritten). */
  KEYSTORE: 'LPGW_ERR_KEYSTORE',
  /** `lp-gateway init` found existing keys and --force was not given. */
  KEYSTORE_EXISTS: 'LPGW_ERR_KEYSTORE_EXISTS',
  /** A gateway descriptor does not have the v1 shape. */
  DESCRIPTOR_MALFORMED: 'LPGW_ERR_DESCRIPTOR_MALFORMED',
  /** A gateway descriptor's Ed25519 signature does not verify. */
  DESCRIPTOR_SIGNATURE: 'LPGW_ERR_DESCRIPTOR_SIGNATURE',
  /** A gateway descriptor's validity ended. */
  DESCRIPTOR_EXPIRED: 'LPGW_ERR_DESCRIPTOR_EXPIRED',
  /** A gateway descriptor is issued in the future (beyond the clock skew tolerated). */
  DESCRIPTOR_NOT_YET_VALID: 'LPGW_ERR_DESCRIPTOR_NOT_YET_VALID',
  /** A descriptor older than one already seen for that identity (a rollback). */
  DESCRIPTOR_ROLLBACK: 'LPGW_ERR_DESCRIPTOR_ROLLBACK',
  /** A gateway descriptor without a trust anchor: not pinned, in no trusted directory, and TOFU is off. */
  DESCRIPTOR_UNTRUSTED: 'LPGW_ERR_DESCRIPTOR_UNTRUSTED',
  /** A directory document does not have the v1 shape. */
  DIRECTORY_MALFORMED: 'LPGW_ERR_DIRECTORY_MALFORMED',
  /** A directory document is signed by no trusted directory key, or its signature does not verify. */
  DIRECTORY_SIGNATURE: 'LPGW_ERR_DIRECTORY_SIGNATURE',
  /** A directory document's validity ended. */
  DIRECTORY_EXPIRED: 'LPGW_ERR_DIRECTORY_EXPIRED',
  /** A directory document is issued in the future. */
  DIRECTORY_NOT_YET_VALID: 'LPGW_ERR_DIRECTORY_NOT_YET_VALID',
  /** A directory document whose version is lower than one already seen (a rollback). */
  DIRECTORY_ROLLBACK: 'LPGW_ERR_DIRECTORY_ROLLBACK',
  /** An LP address (HOST:PORT) does not parse. */
  BAD_ADDRESS: 'LPGW_ERR_BAD_ADDRESS',
} as const;

export type GatewayErrorCode = (typeof GatewayErrorCode)[keyof typeof GatewayErrorCode];

export class GatewayError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** Set on retryable errors: the client may try again after this many milliseconds (`ErrorBody.retry_after_ms`). */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
    this.name = 'GatewayError';
  }
}

export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError;
}

/** Throw helper that keeps call sites on one line. */
export function gwFail(code: string, message: string): never {
  throw new GatewayError(code, message);
}
