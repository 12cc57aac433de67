/** `lp-gateway` entry point: subcommands live in ./commands, one file each. */
import type { Command } from './command.js';
import { dispatch } from './dispatch.js';

export const commands: Command[] = [];

export async function main(argv: string[]): Promise<number> {
  return dispatch('lp-gateway', 'lp-gateway — LP (Lewes Protocol) registration gateway, entry and exit.', commands, argv);
}
