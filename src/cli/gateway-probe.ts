/** `gateway-probe` entry point: tests a gateway or a telescoped entry→exit pair. */
import type { Command } from './command.js';
import { dispatch } from './dispatch.js';
import { probeLoadCommand } from './commands/probe-load.js';
import { probeRunCommand } from './commands/probe-run.js';

export const commands: Command[] = [probeRunCommand, probeLoadCommand];

export async function main(argv: string[]): Promise<number> {
  return dispatch('gateway-probe', 'gateway-probe — checks an LP gateway, or an entry→exit pair, end to end.', commands, argv);
}
