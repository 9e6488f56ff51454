/** `ewtune setup native [--gpu [--allow-no-gpu]] [--force]`: build and place the native TensorFlow backend (src/setup/native.ts). */
import { NativeSetupError, setupNative } from '../../setup/native.ts';
import { parseFlags, UsageError, type CliCommand } from '../args.ts';

export const setupCommand: CliCommand = {
  usage: 'ewtune setup native [--gpu [--allow-no-gpu]] [--force]   (cache: $EWTUNE_CACHE or ./.ewtune-cache; idempotent)\n' +
    '  --allow-no-gpu  with --gpu: build and verify tfjs-node-gpu without a visible GPU (TensorFlow then runs on the CPU)',
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      gpu: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      'allow-no-gpu': { type: 'boolean', default: false },
    }, true);
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    if (values['allow-no-gpu'] && !values.gpu) throw new UsageError('--allow-no-gpu needs --gpu');
    try {
      await setupNative({ gpu: values.gpu, allowNoGpu: values['allow-no-gpu'], force: values.force, log: (line) => io.out(line) });
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
