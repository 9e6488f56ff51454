/**
 * The generic labelled-text file: JSONL (one `{"text": …, "label": …[, "textPair": …]}` object a line) or CSV/TSV
 * with a header row naming the columns `text`, `label` and optionally `textPair` (other columns are ignored; the
 * names are configurable). A label is a class index 0..K−1 (JSON integer, or a CSV cell of digits) or, when label
 * names are given, one of those names. K comes from the caller (`labels` or `numClasses`), never from the data.
 */
import { extname } from 'node:path';
import { InvalidArgumentError } from '../errors.ts';
import { columnIndices, parseDelimited, readTextFile, type TextEncoding } from './delimited.ts';
import { DataError } from './errors.ts';
import { assertNonEmpty, type LabelledExample } from './labelled.ts';

/** Format of a labelled-text file: JSON lines, CSV (RFC 4180 quoting) or TSV. */
export type LabelledFileFormat = 'jsonl' | 'csv' | 'tsv';

/** How to read a labelled-text file: format, encoding, columns or fields, and the label names (defaults below). */
export interface LabelledFileOptions {
  /** Default: from the extension (.jsonl/.ndjson → jsonl, .csv → csv, .tsv → tsv). */
  readonly format?: LabelledFileFormat;
  /** Default `utf-8`. */
  readonly encoding?: TextEncoding;
  /** Label names (class i = labels[i]); a label may then be written as its name or its index. */
  readonly labels?: readonly string[];
  /** Number of classes K when there are no names (labels must be indices 0..K−1). */
  readonly numClasses?: number;
  /** Field / column names; defaults `text`, `label`, `textPair`. */
  readonly textField?: string;
  /** Field / column of the label (default `label`). */
  readonly labelField?: string;
  /** Field / column of a pair's second text (default `textPair`). */
  readonly textPairField?: string;
}

/** Format implied by a file name. @throws InvalidArgumentError naming `format` for an unknown extension. */
export function formatOf(file: string): LabelledFileFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.csv') return 'csv';
  if (ext === '.tsv') return 'tsv';
  throw new InvalidArgumentError('format', file, 'given, or implied by a .jsonl, .ndjson, .csv or .tsv file name');
}

function classCount(options: LabelledFileOptions): number {
  if (options.labels !== undefined) {
    if (options.labels.length < 2 || new Set(options.labels).size !== options.labels.length) {
      throw new InvalidArgumentError('labels', options.labels, 'at least two distinct label names');
    }
    if (options.numClasses !== undefined && options.numClasses !== options.labels.length) {
      throw new InvalidArgumentError('numClasses', options.numClasses, `equal to labels.length (${options.labels.length}) when both are given`);
    }
    return options.labels.length;
  }
  if (options.numClasses === undefined || !Number.isSafeInteger(options.numClasses) || options.numClasses < 2) {
    throw new InvalidArgumentError('numClasses', options.numClasses, 'an integer ≥ 2 (or give labels)');
  }
  return options.numClasses;
}

function labelOf(value: unknown, options: LabelledFileOptions, k: number, where: { file: string; line: number; field: string }): number {
  if (typeof value === 'string' && options.labels !== undefined) {
    const named = options.labels.indexOf(value.trim());
    if (named >= 0) return named;
  }
  const index = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (Number.isInteger(index) && index >= 0 && index < k) return index;
  const allowed = options.labels !== undefined ? `one of ${options.labels.map((l) => JSON.stringify(l)).join(', ')} or an index in [0, ${k})` : `an integer in [0, ${k})`;
  throw new DataError('ERR_DATA_LABEL', where.file, `label ${JSON.stringify(value)} must be ${allowed}`, { line: where.line, field: where.field });
}

function textOf(value: unknown, required: boolean, where: { file: string; line: number; field: string }): string | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string') {
    throw new DataError('ERR_DATA_FORMAT', where.file, `${value === undefined ? 'missing' : `${JSON.stringify(value)} is not a string`}`, { line: where.line, field: where.field });
  }
  if (value.trim() === '' && required) throw new DataError('ERR_DATA_FORMAT', where.file, 'empty text', { line: where.line, field: where.field });
  return value;
}

/**
 * Read a labelled-text file. Example ids are `file:line`.
 * @throws DataError (ERR_DATA_FILE, ERR_DATA_EMPTY, ERR_DATA_ENCODING, ERR_DATA_FORMAT, ERR_DATA_LABEL) naming the
 *   file, line and field; InvalidArgumentError for bad options.
 */
export function readLabelledFile(file: string, options: LabelledFileOptions = {}): LabelledExample[] {
  const k = classCount(options);
  const format = options.format ?? formatOf(file);
  const fields = { text: options.textField ?? 'text', label: options.labelField ?? 'label', textPair: options.textPairField ?? 'textPair' };
  const text = readTextFile(file, options.encoding ?? 'utf-8');
  const out: LabelledExample[] = [];
  if (format === 'jsonl') {
    text.split('\n').forEach((raw, i) => {
      const line = i + 1;
      if (raw.trim() === '') return;
      let row: unknown;
      try {
        row = JSON.parse(raw);
      } catch (cause) {
        throw new DataError('ERR_DATA_FORMAT', file, `not JSON (${(cause as Error).message})`, { line, cause });
      }
      if (row === null || typeof row !== 'object' || Array.isArray(row)) throw new DataError('ERR_DATA_FORMAT', file, 'not a JSON object', { line });
      const r = row as Record<string, unknown>;
      const t = textOf(r[fields.text], true, { file, line, field: fields.text }) as string;
      const pair = textOf(r[fields.textPair], false, { file, line, field: fields.textPair });
      const label = labelOf(r[fields.label], options, k, { file, line, field: fields.label });
      out.push(pair === undefined ? { id: `${file}:${line}`, text: t, label } : { id: `${file}:${line}`, text: t, textPair: pair, label });
    });
  } else {
    const records = parseDelimited(text, file, format === 'tsv' ? { delimiter: '\t', quoted: false } : {});
    const [header, ...rows] = records;
    const required = columnIndices(header, { text: fields.text, label: fields.label }, file);
    const pairColumn = header.fields.indexOf(fields.textPair);
    for (const row of rows) {
      const where = (field: string) => ({ file, line: row.line, field });
      const t = textOf(row.fields[required.text], true, where(fields.text)) as string;
      const label = labelOf(row.fields[required.label], options, k, where(fields.label));
      const id = `${file}:${row.line}`;
      out.push(pairColumn >= 0 ? { id, text: t, textPair: row.fields[pairColumn], label } : { id, text: t, label });
    }
  }
  assertNonEmpty(out, file);
  return out;
}
