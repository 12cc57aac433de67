/**
 * Protocol constants of WireGuard (whitepaper §5, §6; the same values as wireguard-go's device/constants.go
 * and noise-protocol.go). Times are milliseconds.
 */

export const MSG_INITIATION = 1;
export const MSG_RESPONSE = 2;
export const MSG_COOKIE_REPLY = 3;
export const MSG_TRANSPORT = 4;

export const KEY_SIZE = 32;
export const TAG_SIZE = 16;
export const MAC_SIZE = 16;
export const TIMESTAMP_SIZE = 12;
export const XNONCE_SIZE = 24;

export const INITIATION_SIZE = 148;
export const RESPONSE_SIZE = 92;
export const COOKIE_REPLY_SIZE = 64;
export const TRANSPORT_HEADER_SIZE = 16;
/** A keepalive: header + the tag of an empty plaintext. */
export const KEEPALIVE_SIZE = TRANSPORT_HEADER_SIZE + TAG_SIZE;
export const PADDING_MULTIPLE = 16;

export const REKEY_AFTER_MESSAGES = 2 ** 60;
/**
 * 2^64 − 2^13 − 1 in the protocol. Counters here are JS numbers, exact up to 2^53 − 1, so that is the limit
 * actually enforced (a peer would need centuries at line rate to reach either).
 */
export const REJECT_AFTER_MESSAGES = Number.MAX_SAFE_INTEGER;
export const REKEY_AFTER_TIME = 120_000;
export const REJECT_AFTER_TIME = 180_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
/** Retransmissions before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT (wireguard-go's MaxTimerHandshakes). */
export const MAX_TIMER_HANDSHAKES = 18;
export const REKEY_TIMEOUT_JITTER_MAX = 334;
export const KEEPALIVE_TIMEOUT = 10_000;
export const COOKIE_REFRESH_TIME = 120_000;
/** Packets kept while no session exists (wireguard-go's MaxStagedPackets). */
export const MAX_STAGED_PACKETS = 128;
/** wireguard-go's default interface MTU; padding never grows a packet beyond it. */
export const DEFAULT_MTU = 1420;

/** The limits the core runs with; tests shorten them to reach expiry paths in milliseconds. */
export interface WgLimits {
  rekeyAfterMessages: number;
  rejectAfterMessages: number;
  rekeyAfterTime: number;
  rejectAfterTime: number;
  rekeyTimeout: number;
  maxTimerHandshakes: number;
  keepaliveTimeout: number;
  cookieRefreshTime: number;
}

export const DEFAULT_LIMITS: Readonly<WgLimits> = Object.freeze({
  rekeyAfterMessages: REKEY_AFTER_MESSAGES,
  rejectAfterMessages: REJECT_AFTER_MESSAGES,
  rekeyAfterTime: REKEY_AFTER_TIME,
  rejectAfterTime: REJECT_AFTER_TIME,
  rekeyTimeout: REKEY_TIMEOUT,
  maxTimerHandshakes: MAX_TIMER_HANDSHAKES,
  keepaliveTimeout: KEEPALIVE_TIMEOUT,
  cookieRefreshTime: COOKIE_REFRESH_TIME,
});
