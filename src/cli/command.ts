/** A CLI subcommand: one file per command under ./commands, dispatched by ./dispatch.ts. */
export interface Command {
  /** Words after the program name, e.g. ['tickets', 'issue']. */
  readonly path: readonly string[];
  readonly summary: string;
  /** Full --help text for this command. */
  readonly help: string;
  /** Returns the process exit status. */
  run(argv: string[]): Promise<number>;
}

/** Thrown for bad command-line usage; printed without a stack and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
