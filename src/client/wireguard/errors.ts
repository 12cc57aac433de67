/**
 * One flat, coded error table for everything the WireGuard client rejects or gives up on (fastify's
 * FST_ERR_* style, boringtun's single WireGuardError enum). The sans-I/O core reports rejected datagrams as
 * a WgError in its output instead of throwing, so a flood of junk costs no exceptions; the I/O edge counts
 * them by `code` and drops them.
 */

export const WgErrorCode = {
  // wire format (unauthenticated input)
  BAD_LENGTH: 'LPWG_ERR_BAD_LENGTH',
  UNKNOWN_TYPE: 'LPWG_ERR_UNKNOWN_TYPE',
  BAD_MAC1: 'LPWG_ERR_BAD_MAC1',
  UNKNOWN_INDEX: 'LPWG_ERR_UNKNOWN_INDEX',
  UNEXPECTED_INITIATION: 'LPWG_ERR_UNEXPECTED_INITIATION',
  // handshake
  BAD_DH: 'LPWG_ERR_BAD_DH',
  DECRYPT: 'LPWG_ERR_DECRYPT',
  HANDSHAKE_TIMEOUT: 'LPWG_ERR_HANDSHAKE_TIMEOUT',
  // cookies (mac2)
  BAD_COOKIE_REPLY: 'LPWG_ERR_BAD_COOKIE_REPLY',
  STALE_COOKIE: 'LPWG_ERR_STALE_COOKIE',
  // transport
  REPLAY: 'LPWG_ERR_REPLAY',
  KEYS_EXPIRED: 'LPWG_ERR_KEYS_EXPIRED',
  COUNTER_EXHAUSTED: 'LPWG_ERR_COUNTER_EXHAUSTED',
  STAGED_DROPPED: 'LPWG_ERR_STAGED_DROPPED',
  // tunnelled IP payloads (authenticated, but not something we can use)
  BAD_IP_PACKET: 'LPWG_ERR_BAD_IP_PACKET',
  BAD_CHECKSUM: 'LPWG_ERR_BAD_CHECKSUM',
  // API use and the I/O edge
  BAD_KEY: 'LPWG_ERR_BAD_KEY',
  BAD_ARGUMENT: 'LPWG_ERR_BAD_ARGUMENT',
  CLOSED: 'LPWG_ERR_CLOSED',
  SOCKET: 'LPWG_ERR_SOCKET',
} as const;

export type WgErrorCodeValue = (typeof WgErrorCode)[keyof typeof WgErrorCode];

export class WgError extends Error {
  constructor(
    readonly code: WgErrorCodeValue,
    message: string,
    /** Machine-readable context (never key material). */
    readonly detail: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = 'WgError';
  }
}

export function isWgError(e: unknown): e is WgError {
  return e instanceof WgError;
}
