/** `ewtune setup native [--gpu] [--force]`: build and place the native TensorFlow backend (src/setup/native.ts). */
import { NativeSetupError, setupNative } from '../../setup/native.ts';
import { parseFlags, UsageError, type CliCommand } from '../args.ts';

export const setupCommand: CliCommand = {
  name: 'setup native',
  summary: 'build @tensorflow/tfjs-node(-gpu) from the PyPI TensorFlow wheel into .ewtune-cache and node_modules',
  usage: 'ewtune setup native [--gpu] [--force]   (cache: $EWTUNE_CACHE or ./.ewtune-cache; idempotent)',
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      gpu: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
    }, true);
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    try {
      await setupNative({ gpu: values.gpu, force: values.force, log: (line) => io.out(line) });
      return 0;
    } catch (err) {
      if (err instanceof NativeSetupError) {
        io.err(`ewtune setup native: ${err.message}`);
        return 1;
      }
      throw err;
    }
  },
};
