/**
 * Serves the application messages a session delivers: registration and deregistration (both roles),
 * telescoping forwards (entry role), ping. Everything else gets a coded Error reply; nothing is answered
 * silently.
 */
import { type AppMessage, type DeregisterRequest, type RegisterRequest, type RegisterResponse, errorMessage } from '../core/index.js';
import { GatewayError, GatewayErrorCode } from './errors.js';
import type { Forwarder } from './forwarder.js';
import { ForwardErrorCode } from './forwarder.js';
import type { GatewayMetrics } from './metrics.js';
import type { AppContext, AppHandler } from './shard.js';

export interface Registrar {
  register(request: RegisterRequest, ctx: { wireguardPsk: Uint8Array; nowSec: number; remote?: string }): RegisterResponse | Promise<RegisterResponse>;
  /** Throws GatewayError with the refusal's code. */
  deregister?(request: DeregisterRequest, ctx: { remote?: string }): Promise<void>;
}

export class GatewayAppHandler implements AppHandler {
  constructor(
    private readonly registrar: Registrar,
    private readonly forwarder: Forwarder | null,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** Synchronous for a Ping (the per-packet path allocates no promise for it); registrations are asynchronous. */
  handle(msg: AppMessage, ctx: AppContext): AppMessage | null | Promise<AppMessage | null> {
    switch (msg.kind) {
      case 'ping':
        return { kind: 'pong', payload: msg.payload };
      case 'register':
      case 'deregister':
        return this.handleStore(msg, ctx);
      case 'forward':
        if (!this.forwarder) {
          this.metrics.forwards.inc({ result: 'refused_not_entry' });
          return errorMessage(ForwardErrorCode.NOT_ENTRY, 'this gateway does not run the entry role and forwards nothing');
        }
        return this.forwarder.forward(msg.forward, { address: ctx.src.address, session: ctx.session });
      default:
        this.metrics.error('LPGW_ERR_UNEXPECTED_APP_MESSAGE');
        return errorMessage('LPGW_ERR_UNEXPECTED_APP_MESSAGE', `a gateway does not accept '${msg.kind}' messages`);
    }
  }

  private async handleStore(msg: AppMessage, ctx: AppContext): Promise<AppMessage | null> {
    switch (msg.kind) {
      case 'register': {
        const req = msg.request;
        // Only a dVPN registration has a WireGuard peer (a worker shard precomputes the PSK for those alone).
        const psk = req.mode.kind === 'dvpn' ? ctx.wireguardPsk(req.mode.wgPublicKey) : new Uint8Array(0);
        let response: RegisterResponse;
        try {
          response = await this.registrar.register(req, { wireguardPsk: psk, nowSec: Math.floor(Date.now() / 1000), remote: `${ctx.src.address}:${ctx.src.port}` });
        } finally {
          // The registrar keeps its own copy as long as it needs one (DESIGN.md §10.6).
          psk.fill(0);
        }
        this.metrics.registrations.inc({ mode: req.mode.kind, result: response.success ? 'success' : (response.error?.code ?? 'failed') });
        if (response.success && response.allocatedBandwidth > 0n) this.metrics.bandwidthAllocated.inc(Number(response.allocatedBandwidth));
        return { kind: 'registerResponse', response };
      }
      case 'deregister': {
        if (!this.registrar.deregister) return errorMessage(GatewayErrorCode.PEER_UNKNOWN, 'this gateway keeps no WireGuard peers');
        try {
          await this.registrar.deregister(msg.request, { remote: `${ctx.src.address}:${ctx.src.port}` });
        } catch (e) {
          // an internal store error's details stay in the log (they name the database)
          const known = e instanceof GatewayError && e.code !== GatewayErrorCode.INTERNAL;
          const code = known ? e.code : GatewayErrorCode.INTERNAL;
          this.metrics.error(code);
          return errorMessage(code, known ? e.message : 'internal error while deregistering', known ? e.retryAfterMs : null);
        }
        return { kind: 'deregistered', wgPublicKey: msg.request.wgPublicKey };
      }
      default:
        return null;
    }
  }
}
