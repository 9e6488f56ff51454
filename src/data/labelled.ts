/**
 * Labelled text examples and corpora: the common shape every loader returns. Labels are integers 0..K−1 indexing a
 * fixed, documented label list (`labels`), never one inferred from the (private) data.
 */
import { DataError } from './errors.ts';
import { splitByHash, type SplitFractions, type Splits } from './split.ts';

/** One labelled text. `id` names its source (`file:line`, or a corpus id). */
export interface LabelledText {
  /** Stable id of the example (the hash split is keyed by it). */
  readonly id: string;
  /** The text. */
  readonly text: string;
  /** Class index in [0, K). */
  readonly label: number;
}

/** A labelled text, optionally with a second text (sentence-pair tasks: NLI, paraphrase). */
export interface LabelledExample extends LabelledText {
  /** Second text of a sentence-pair example. */
  readonly textPair?: string;
}

/** A corpus split into train / validation / test, with its label list. */
export interface LabelledCorpus extends Splits<LabelledExample> {
  /** Corpus name, e.g. `polarity`. */
  readonly name: string;
  /** Label names; example label i means `labels[i]`. */
  readonly labels: readonly string[];
  /** The file(s) read. */
  readonly files: readonly string[];
}

/**
 * How raw label values in a file map to class indices: `raw[i]` (as written in the file) is class i, named
 * `names[i]`. For files whose labels are already 0..K−1, `raw` is `['0', '1', …]`.
 */
export interface LabelSpec {
  /** Class names: class i is `names[i]`. */
  readonly names: readonly string[];
  /** How class i is written in the source file: `raw[i]`. */
  readonly raw: readonly string[];
}

/** Label spec whose raw values are the names themselves. */
export function labelsByName(names: readonly string[]): LabelSpec {
  return { names, raw: names };
}

/** Class index of a raw label value. @throws DataError ERR_DATA_LABEL naming the file, line and field. */
export function labelIndex(spec: LabelSpec, value: string, where: { file: string; line: number; field: string }): number {
  const i = spec.raw.indexOf(value.trim());
  if (i < 0) {
    throw new DataError('ERR_DATA_LABEL', where.file, `label ${JSON.stringify(value)} is not one of ${spec.raw.map((r) => JSON.stringify(r)).join(', ')}`,
      { line: where.line, field: where.field });
  }
  return i;
}

/** The split key of an example: its text, and its pair after a NUL when there is one. */
export function exampleKey(example: LabelledExample): string {
  return example.textPair === undefined ? example.text : `${example.text}\u0000${example.textPair}`;
}

/** Split examples by the hash of their text (see split.ts). */
export function splitExamples(examples: readonly LabelledExample[], fractions: SplitFractions = {}): Splits<LabelledExample> {
  return splitByHash(examples, exampleKey, fractions);
}

/** Number of examples per class (index = class). */
export function classCounts(examples: readonly LabelledText[], numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const e of examples) counts[e.label] += 1;
  return counts;
}

/** One line per split: `train 2797 (negative 1400, positive 1397)`. */
export function describeCorpus(corpus: LabelledCorpus): string {
  const line = (name: string, items: readonly LabelledExample[]) =>
    `${name.padEnd(10)} ${String(items.length).padStart(6)}  (${classCounts(items, corpus.labels.length).map((c, i) => `${corpus.labels[i]} ${c}`).join(', ')})`;
  const all = [...corpus.train, ...corpus.validation, ...corpus.test];
  return [line('all', all), line('train', corpus.train), line('validation', corpus.validation), line('test', corpus.test)].join('\n');
}

/** @throws DataError ERR_DATA_EMPTY when `examples` is empty. */
export function assertNonEmpty(examples: readonly unknown[], file: string, what = 'examples'): void {
  if (examples.length === 0) throw new DataError('ERR_DATA_EMPTY', file, `has no ${what}`);
}
