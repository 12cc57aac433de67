/**
 * Ticket type names (re-exported by tickets.ts). Only the codec's type is imported, not its module, so
 * `lp-gateway tickets issue --help` loads no codec: the keys are TicketType's values (V1MixnetEntry 0,
 * V1MixnetExit 1, V1WireguardEntry 2, V1WireguardExit 3; the Record type makes the compiler check all four).
 */
import type { TicketType } from '../../core/codec/app.js';

const TYPE_NAMES: Readonly<Record<TicketType, string>> = {
  0: 'mixnet-entry',
  1: 'mixnet-exit',
  2: 'wireguard-entry',
  3: 'wireguard-exit',
};

export const TICKET_TYPE_NAMES: readonly string[] = Object.values(TYPE_NAMES);

export function ticketTypeName(t: number): string {
  return TYPE_NAMES[t as TicketType] ?? `unknown(${t})`;
}

/** `wireguard-entry` → TicketType.V1WireguardEntry; null for an unknown name. */
export function ticketTypeFromName(name: string): TicketType | null {
  for (const [k, v] of Object.entries(TYPE_NAMES)) if (v === name) return Number(k) as TicketType;
  return null;
}
