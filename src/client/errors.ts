/**
 * Client-side coded errors (`LPC_ERR_*`), plus the gateway's coded Error replies (`LPGW_ERR_*`), the
 * WireGuard client's errors (`LPWG_ERR_*`) and core protocol errors (`LP_ERR_*`) passed through with their
 * own codes, so a report always carries one code.
 */
import { LpError } from '../core/index.js';

export class ClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** Retry hint from a gateway's Busy or Error, if any. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
    this.name = 'ClientError';
  }

  static from(e: unknown): ClientError {
    if (e instanceof ClientError) return e;
    if (e instanceof LpError) return new ClientError(e.code, e.message);
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^(LPGW|LPWG|LPC|LP)_ERR_/.test(code)) {
      const mapped = code.replace(/^LPGW_ERR_(CONNECT_TIMEOUT|CONNECT_FAILED|IO_TIMEOUT|CLOSED_WITHOUT_REPLY|BAD_REPLY_FRAME)$/, 'LPC_ERR_$1');
      return new ClientError(mapped === 'LPC_ERR_IO_TIMEOUT' ? 'LPC_ERR_TIMEOUT' : mapped, (e as Error).message);
    }
    return new ClientError('LPC_ERR_INTERNAL', e instanceof Error ? e.message : String(e));
  }
}
