/**
 * `ewtune` command line. `main(argv)` returns the exit code: 0 success, 1 failure, 2 bad arguments (the message
 * names the argument). Subcommands live in src/cli/commands/ and are registered in commands/index.ts.
 */
import { EwtuneError, InvalidArgumentError } from '../errors.ts';
import { UsageError, type CliCommand, type CliIo } from './args.ts';
import { COMMANDS } from './commands/index.ts';

const stdio: CliIo = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

function help(commands: readonly CliCommand[]): string {
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

function findCommand(argv: readonly string[], commands: readonly CliCommand[]): { command: CliCommand; rest: string[] } | undefined {
  // Longest match first so 'mlflow replay' wins over a hypothetical 'mlflow'.
  const sorted = [...commands].sort((a, b) => b.name.split(' ').length - a.name.split(' ').length);
  for (const command of sorted) {
    const words = command.name.split(' ');
    if (words.every((w, i) => argv[i] === w)) return { command, rest: argv.slice(words.length) };
  }
  return undefined;
}

/** Run the CLI; returns the process exit code. */
export async function main(argv: string[], io: CliIo = stdio, commands: readonly CliCommand[] = COMMANDS): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(help(commands));
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(argv, commands);
  if (!found) {
    io.err(`ewtune: unknown command ${JSON.stringify(argv[0])}\n\n${help(commands)}`);
    return 2;
  }
  const { command, rest } = found;
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`${command.summary}\n\nUsage: ${command.usage}`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError || err instanceof InvalidArgumentError) {
      io.err(`ewtune ${command.name}: ${err.message}\nUsage: ${command.usage}`);
      return 2;
    }
    if (err instanceof EwtuneError) {
      io.err(`ewtune ${command.name}: ${err.message}`);
      return 1;
    }
    io.err(`ewtune ${command.name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  }
}
