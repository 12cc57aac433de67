/** `gateway-probe` entry point: tests a gateway or a telescoped entry→exit pair. */
import type { Command } from './command.js';
import { dispatch } from './dispatch.js';

export const commands: Command[] = [];

export async function main(argv: string[]): Promise<number> {
  return dispatch('gateway-probe', 'gateway-probe — checks an LP gateway, or an entry→exit pair, end to end.', commands, argv);
}
