/**
 * `ewtune` command line. `main(argv)` returns the exit code: 0 success, 1 failure, 2 bad arguments (the message
 * names the argument). Subcommands live in src/cli/commands/ and are listed in commands/index.ts; a command's
 * module is imported only when it runs, so `ewtune --help` loads no accountant, no tfjs and no backend.
 */
import { EwtuneError, InvalidArgumentError } from '../errors.ts';
import { UsageError, type CliCommandEntry, type CliIo } from './command.ts';
import { COMMANDS } from './commands/index.ts';

const stdio: CliIo = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

function help(commands: readonly CliCommandEntry[]): string {
  return [
    'ewtune: differentially private fine-tuning with the Edgeworth accountant and certified PLD/RDP accounting',
    '',
    'Usage: ewtune <command> [options]   (ewtune <command> --help for its options)',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(16)} ${c.summary}`),
    '',
    'Exit codes: 0 success, 1 failure, 2 bad arguments.',
  ].join('\n');
}

function findCommand(argv: readonly string[], commands: readonly CliCommandEntry[]): { entry: CliCommandEntry; rest: string[] } | undefined {
  // Longest match first so 'mlflow replay' wins over a hypothetical 'mlflow'.
  const sorted = [...commands].sort((a, b) => b.name.split(' ').length - a.name.split(' ').length);
  for (const command of sorted) {
    const words = command.name.split(' ');
    if (words.every((w, i) => argv[i] === w)) return { entry: command, rest: argv.slice(words.length) };
  }
  return undefined;
}

/** Run the CLI; returns the process exit code. */
export async function main(argv: string[], io: CliIo = stdio, commands: readonly CliCommandEntry[] = COMMANDS): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(help(commands));
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(argv, commands);
  if (!found) {
    io.err(`ewtune: unknown command ${JSON.stringify(argv[0])}\n\n${help(commands)}`);
    return 2;
  }
  const { entry, rest } = found;
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`${entry.summary}\n\nUsage: ${command.usage}`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError || err instanceof InvalidArgumentError) {
      io.err(`ewtune ${entry.name}: ${err.message}\nUsage: ${command.usage}`);
      return 2;
    }
    if (err instanceof EwtuneError) {
      io.err(`ewtune ${entry.name}: ${err.message}`);
      return 1;
    }
    io.err(`ewtune ${entry.name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  }
}
