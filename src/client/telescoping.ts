/**
 * Telescoping: a Transport whose packets travel to an exit inside `Forward` messages of an entry
 * session. The nested LpConnection over it is end-to-end with the exit; the entry sees only sealed inner
 * packets (and the cleartext of ClientHello, KKT and msg1, as in upstream §10).
 */
import { ClientError } from './errors.js';
import type { LpConnection } from './lp-client.js';
import type { Transport } from './transports.js';

export class ForwardTransport implements Transport {
  readonly kind = 'forward' as const;

  constructor(
    private readonly entry: LpConnection,
    private readonly exitIdentity: Uint8Array,
    /** The exit's LP TCP address exactly as in its descriptor (the entry checks it against its directory). */
    private readonly exitLpAddress: string,
  ) {}

  async request(packet: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const reply = await this.entry.request({ kind: 'forward', forward: { targetGatewayIdentity: this.exitIdentity, targetLpAddress: this.exitLpAddress, innerPacketBytes: packet } }, timeoutMs);
    if (reply.kind !== 'forwardResponse') throw new ClientError('LPC_ERR_UNEXPECTED_REPLY', `expected a forward response, got ${reply.kind}`);
    return reply.innerPacketBytes;
  }

  close(): void {}
}
