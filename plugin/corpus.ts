/**
 * The configured data as a labelled corpus (train / validation / test, label names), for the pre-trained encoder path
 * and the GloVe baseline alike. Wires `data` to the loaders of src/data; it reads files and splits them, nothing else.
 *
 * Splits are fixed and documented: polarity, tweets, GLUE without a test file and the generic labelled file split by
 * a hash of the text (src/data/split.ts: test = testFraction, validation = validationFraction carved from training);
 * SpamAssassin and the original `jsonl` kind split by a hash of the message id / file:line, with no validation split.
 */
import { loadGlue, type GlueTask } from '../src/data/glue.ts';
import { readLabelledFile } from '../src/data/labelled-file.ts';
import { splitExamples, type LabelledCorpus } from '../src/data/labelled.ts';
import { loadPolarity } from '../src/data/polarity.ts';
import { loadTweets } from '../src/data/tweets.ts';
import { ConfigError, type TrainingConfig } from './config.ts';
import { loadTrainingTexts } from './data.ts';

/** Label names of the SpamAssassin corpus (0 = ham, 1 = spam). */
const SPAM_ASSASSIN_LABELS = ['ham', 'spam'] as const;

/** The data kinds read by the registry corpora and generic loaders (the others go through plugin/data.ts). */
export const CORPUS_KINDS = ['polarity', 'tweets', 'glue', 'labelled-file'] as const;

/** Classes of the head when the data names none (jsonl, labelled-file without labels): model.numClasses, default 2. */
function numClassesOf(config: TrainingConfig): number {
  return config.model.numClasses ?? 2;
}

function cut<T>(items: T[], max: number | undefined): T[] {
  return max === undefined ? items : items.slice(0, max);
}

/**
 * Loads and splits the configured corpus (`maxExamples` cuts the training split).
 * @throws DataError naming the file, line and field; ConfigError naming the config field (an empty training split).
 */
export function loadCorpus(config: TrainingConfig): LabelledCorpus {
  const d = config.data;
  const fractions = { testFraction: d.testFraction, validationFraction: d.validationFraction };
  let corpus: LabelledCorpus;
  switch (d.kind) {
    case 'polarity':
      corpus = loadPolarity({ ...fractions, ...(d.path !== undefined ? { path: d.path } : {}) });
      break;
    case 'tweets':
      corpus = loadTweets({ ...fractions, ...(d.path !== undefined ? { path: d.path } : {}) });
      break;
    case 'glue':
      corpus = loadGlue({ ...fractions, task: d.task as GlueTask, trainPath: d.path as string, ...(d.testPath !== undefined ? { testPath: d.testPath } : {}) });
      break;
    case 'labelled-file': {
      const options = d.labels !== undefined ? { labels: d.labels } : { numClasses: numClassesOf(config) };
      const all = readLabelledFile(d.path as string, options);
      const labels = d.labels ?? Array.from({ length: numClassesOf(config) }, (_, i) => String(i));
      if (d.testPath !== undefined) {
        const split = splitExamples(all, { testFraction: 0, validationFraction: d.validationFraction });
        corpus = { name: 'labelled-file', labels, files: [d.path as string, d.testPath], ...split, test: readLabelledFile(d.testPath, options) };
      } else {
        corpus = { name: 'labelled-file', labels, files: [d.path as string], ...splitExamples(all, fractions) };
      }
      break;
    }
    default: {
      // spam-assassin and jsonl: the splits of plugin/data.ts (no validation split).
      const texts = loadTrainingTexts(config);
      const labels = d.kind === 'spam-assassin' ? [...SPAM_ASSASSIN_LABELS] : Array.from({ length: numClassesOf(config) }, (_, i) => String(i));
      return { name: d.kind, labels, files: d.path !== undefined ? [d.path] : [], train: [...texts.train], validation: [], test: [...texts.test] };
    }
  }
  const train = cut(corpus.train, d.maxExamples);
  if (train.length === 0) throw new ConfigError('/data', [`the training split of ${corpus.name} is empty`]);
  return { ...corpus, train };
}
