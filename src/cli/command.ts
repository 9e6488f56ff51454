/**
 * The CLI's command types and its usage error. Imported by main.ts and the command table, so it imports nothing:
 * `ewtune --help` loads this, the table and main.ts only.
 */

/** A bad command line: the CLI prints the message and the command's usage, and exits with code 2. */
export class UsageError extends Error {}

/** Where a command writes; injectable for tests. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** A subcommand's implementation, loaded only when that command runs (or its `--help` is asked for). */
export interface CliCommand {
  /** The synopsis printed by `ewtune <command> --help` and after a usage error. */
  readonly usage: string;
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  run(argv: string[], io: CliIo): Promise<number>;
}

/** One row of the command table (src/cli/commands/index.ts): enough to list the command without loading it. */
export interface CliCommandEntry {
  /** The words that select it, e.g. `'epsilon'` or `'mlflow replay'` (matched against the first arguments). */
  readonly name: string;
  /** One line for `ewtune --help`. */
  readonly summary: string;
  /** Imports the command's module (and with it tfjs, the accountants, … as that command needs). */
  load(): Promise<CliCommand>;
}
