/** Ticket type names (re-exported by tickets.ts); only the codec's constants, so `lp-gateway tickets issue --help` stays light. */
import { TicketType } from '../../core/codec/app.js';

const TYPE_NAMES: Readonly<Record<TicketType, string>> = {
  [TicketType.V1MixnetEntry]: 'mixnet-entry',
  [TicketType.V1MixnetExit]: 'mixnet-exit',
  [TicketType.V1WireguardEntry]: 'wireguard-entry',
  [TicketType.V1WireguardExit]: 'wireguard-exit',
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
