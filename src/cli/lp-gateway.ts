/** `lp-gateway` entry point: subcommands live in ./commands, one file each. */
import type { Command } from './command.js';
import { dispatch } from './dispatch.js';
import { collectCommand } from './commands/collect.js';
import { descriptorCommand } from './commands/descriptor.js';
import { initCommand } from './commands/init.js';
import { runCommand } from './commands/run.js';
import { ticketsIssueCommand, ticketsIssuerInitCommand } from './commands/tickets.js';
import { wgKeyCommand, wgShowCommand } from './commands/wg.js';
import { directoryKeyInitCommand, directorySignCommand } from './commands/directory.js';

export const commands: Command[] = [initCommand, runCommand, descriptorCommand, ticketsIssuerInitCommand, ticketsIssueCommand, collectCommand, wgShowCommand, wgKeyCommand, directoryKeyInitCommand, directorySignCommand];

export async function main(argv: string[]): Promise<number> {
  return dispatch('lp-gateway', 'lp-gateway — LP (Lewes Protocol) registration gateway, entry and exit.', commands, argv);
}
