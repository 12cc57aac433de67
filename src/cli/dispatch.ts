/** Subcommand dispatch shared by both binaries: longest matching command path wins. */
import { type Command, UsageError } from './command.js';

export async function dispatch(program: string, about: string, commands: readonly Command[], argv: string[]): Promise<number> {
  const overview = (): string => {
    const width = Math.max(...commands.map((c) => c.path.join(' ').length));
    const lines = commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`);
    return `${about}\n\nUsage: ${program} <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun '${program} <command> --help' for a command's options.\n`;
  };
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(overview());
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === '--version' || argv[0] === '-V') {
    const { version } = await import('../version.js');
    process.stdout.write(`${program} ${version}\n`);
    return 0;
  }
  const match = [...commands]
    .sort((a, b) => b.path.length - a.path.length)
    .find((c) => c.path.every((w, i) => argv[i] === w));
  if (!match) {
    process.stderr.write(`${program}: unknown command '${argv.join(' ')}'\n\n${overview()}`);
    return 2;
  }
  const rest = argv.slice(match.path.length);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(match.help.endsWith('\n') ? match.help : `${match.help}\n`);
    return 0;
  }
  try {
    return await match.run(rest);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (e as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      process.stderr.write(`${program} ${match.path.join(' ')}: ${(e as Error).message}\nRun '${program} ${match.path.join(' ')} --help' for usage.\n`);
      return 2;
    }
    throw e;
  }
}
