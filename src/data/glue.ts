/**
 * GLUE-format TSV files (Wang et al. 2019), for users who have them: GLUE / SST-2 is not shipped by any package
 * registry reachable from ewtune's CI, so no GLUE file is fetched or tested against the real data here; the format
 * is what the GLUE distribution (and the Hugging Face `glue` mirror's TSVs) use: tab-separated, a header row
 * (except CoLA), no quoting (quote characters are literal text). Test files of GLUE have no labels: use `dev.tsv`
 * as the held-out split. Each task's columns and label list:
 *
 * | task | text | textPair | label column | labels (raw → index) |
 * |---|---|---|---|---|
 * | sst2 | sentence | – | label | 0 negative, 1 positive |
 * | cola | column 4 | – | column 2 | 0 unacceptable, 1 acceptable (no header) |
 * | mrpc | #1 String | #2 String | Quality | 0 not_equivalent, 1 equivalent |
 * | qqp | question1 | question2 | is_duplicate | 0 not_duplicate, 1 duplicate |
 * | qnli | question | sentence | label | entailment, not_entailment |
 * | rte | sentence1 | sentence2 | label | entailment, not_entailment |
 * | wnli | sentence1 | sentence2 | label | 0 not_entailment, 1 entailment |
 * | mnli | sentence1 | sentence2 | gold_label | entailment, neutral, contradiction |
 *
 * Any other TSV: give `columns` (text / textPair / label column names, or 0-based indices for a file without header)
 * and `labels`.
 */
import { InvalidArgumentError } from '../errors.ts';
import { columnIndices, parseDelimited, readTextFile, type DelimitedRecord } from './delimited.ts';
import { DataError } from './errors.ts';
import { assertNonEmpty, labelIndex, labelsByName, splitExamples, type LabelledCorpus, type LabelledExample, type LabelSpec } from './labelled.ts';
import type { SplitFractions } from './split.ts';

/** Where a task's fields are: column names (file with a header) or 0-based indices (file without). */
export interface GlueColumns {
  readonly text: string | number;
  readonly textPair?: string | number;
  readonly label: string | number;
}

/** Where a GLUE task's text and label are in its TSV file, and the names of its classes. */
export interface GlueTaskSpec {
  readonly columns: GlueColumns;
  readonly labels: LabelSpec;
}

const binary = (negative: string, positive: string): LabelSpec => ({ names: [negative, positive], raw: ['0', '1'] });

/**
 * The GLUE tasks ewtune reads from their TSV files: for each task, the columns (header names or 0-based indices) of the
 * text, the second text of a pair task, and the label, and the label names.
 */
export const GLUE_TASKS = {
  sst2: { columns: { text: 'sentence', label: 'label' }, labels: binary('negative', 'positive') },
  cola: { columns: { text: 3, label: 1 }, labels: binary('unacceptable', 'acceptable') },
  mrpc: { columns: { text: '#1 String', textPair: '#2 String', label: 'Quality' }, labels: binary('not_equivalent', 'equivalent') },
  qqp: { columns: { text: 'question1', textPair: 'question2', label: 'is_duplicate' }, labels: binary('not_duplicate', 'duplicate') },
  qnli: { columns: { text: 'question', textPair: 'sentence', label: 'label' }, labels: labelsByName(['entailment', 'not_entailment']) },
  rte: { columns: { text: 'sentence1', textPair: 'sentence2', label: 'label' }, labels: labelsByName(['entailment', 'not_entailment']) },
  wnli: { columns: { text: 'sentence1', textPair: 'sentence2', label: 'label' }, labels: binary('not_entailment', 'entailment') },
  mnli: { columns: { text: 'sentence1', textPair: 'sentence2', label: 'gold_label' }, labels: labelsByName(['entailment', 'neutral', 'contradiction']) },
} as const satisfies Record<string, GlueTaskSpec>;

/** The name of a GLUE task (`sst2`, `cola`, `mrpc`, `qqp`, `qnli`, `rte`, `wnli`, `mnli`). */
export type GlueTask = keyof typeof GLUE_TASKS;
/** The names of {@link GLUE_TASKS}. */
export const GLUE_TASK_NAMES = Object.keys(GLUE_TASKS) as GlueTask[];

/** The spec of a named task. @throws InvalidArgumentError naming `task`. */
export function glueTask(task: string): GlueTaskSpec {
  if (!Object.prototype.hasOwnProperty.call(GLUE_TASKS, task)) throw new InvalidArgumentError('task', task, `one of ${GLUE_TASK_NAMES.join(', ')}`);
  return GLUE_TASKS[task as GlueTask];
}

function resolveColumns(spec: GlueTaskSpec, records: readonly DelimitedRecord[], file: string): { rows: readonly DelimitedRecord[]; text: number; textPair?: number; label: number } {
  const { text, textPair, label } = spec.columns;
  const named = [text, textPair, label].filter((c) => c !== undefined);
  if (named.every((c) => typeof c === 'number')) {
    const width = records[0].fields.length;
    for (const [field, c] of Object.entries(spec.columns) as [string, number][]) {
      if (c >= width) throw new DataError('ERR_DATA_FORMAT', file, `column index ${c} (${field}) is beyond the ${width} columns`, { line: records[0].line, field });
    }
    return { rows: records, text: text as number, label: label as number, ...(textPair !== undefined ? { textPair: textPair as number } : {}) };
  }
  if (!named.every((c) => typeof c === 'string')) throw new InvalidArgumentError('columns', spec.columns, 'all column names or all column indices');
  const [header, ...rows] = records;
  const names: Record<string, string> = { text: text as string, label: label as string };
  if (textPair !== undefined) names.textPair = textPair as string;
  const idx = columnIndices(header, names, file);
  return { rows, text: idx.text, label: idx.label, ...(idx.textPair !== undefined ? { textPair: idx.textPair } : {}) };
}

/**
 * Read one GLUE TSV file (`task` names the layout, or pass a spec). Ids are `file:line`.
 * @throws DataError naming the file, line and field: ERR_DATA_FILE, ERR_DATA_EMPTY, ERR_DATA_ENCODING (not UTF-8),
 *   ERR_DATA_FORMAT (missing column — e.g. an unlabelled GLUE test.tsv —, wrong number of fields, empty text),
 *   ERR_DATA_LABEL.
 */
export function readGlueFile(file: string, task: GlueTask | GlueTaskSpec): LabelledExample[] {
  const spec = typeof task === 'string' ? glueTask(task) : task;
  const records = parseDelimited(readTextFile(file, 'utf-8'), file, { delimiter: '\t', quoted: false });
  const columns = resolveColumns(spec, records, file);
  const field = (c: string | number | undefined) => (typeof c === 'number' ? `column ${c}` : String(c));
  const out = columns.rows.map(({ fields, line }): LabelledExample => {
    const text = fields[columns.text];
    if (text.trim() === '') throw new DataError('ERR_DATA_FORMAT', file, 'empty text', { line, field: field(spec.columns.text) });
    const label = labelIndex(spec.labels, fields[columns.label], { file, line, field: field(spec.columns.label) });
    const id = `${file}:${line}`;
    return columns.textPair !== undefined ? { id, text, textPair: fields[columns.textPair], label } : { id, text, label };
  });
  assertNonEmpty(out, file);
  return out;
}

/**
 * A GLUE task from its files: `trainPath` (train.tsv) is split into train / validation by the hash of the text
 * (`validationFraction` of it, default 0.1); `testPath` (GLUE's dev.tsv, whose labels are public) is the test split.
 * Without `testPath`, the test split is carved from `trainPath` too (`testFraction`, default 0.2).
 * @throws see readGlueFile; InvalidArgumentError for a bad task or fractions.
 */
export function loadGlue(options: SplitFractions & { task: GlueTask | GlueTaskSpec; trainPath: string; testPath?: string }): LabelledCorpus {
  const spec = typeof options.task === 'string' ? glueTask(options.task) : options.task;
  const name = typeof options.task === 'string' ? `glue-${options.task}` : 'glue';
  const train = readGlueFile(options.trainPath, spec);
  if (options.testPath === undefined) {
    return { name, labels: spec.labels.names, files: [options.trainPath], ...splitExamples(train, options) };
  }
  const splits = splitExamples(train, { testFraction: 0, validationFraction: options.validationFraction ?? 0.1 });
  return { name, labels: spec.labels.names, files: [options.trainPath, options.testPath], train: splits.train, validation: splits.validation, test: readGlueFile(options.testPath, spec) };
}
