/** Typed errors of the data loaders (src/data): every one names the file and, where it applies, the line and field. */
import { EwtuneError } from '../errors.ts';

/**
 * `code` is one of
 * - ERR_DATA_FILE: the file is missing or unreadable;
 * - ERR_DATA_NOT_FETCHED: a registry-backed corpus is not in the cache yet (run `ewtune data fetch <name>`);
 * - ERR_DATA_EMPTY: the file (or a split) has no examples;
 * - ERR_DATA_ENCODING: the bytes are not valid in the file's encoding (e.g. not UTF-8);
 * - ERR_DATA_FORMAT: a malformed CSV/TSV/JSONL record, a missing column or field;
 * - ERR_DATA_LABEL: a label outside the label list.
 */
export class DataError extends EwtuneError {
  /** The file concerned, as given. */
  readonly file: string;
  /** 1-based line of the record (its first line for multi-line CSV records), when there is one. */
  readonly line: number | undefined;
  /** The field (column) concerned, when there is one. */
  readonly field: string | undefined;
  constructor(code: string, file: string, message: string, options: { line?: number; field?: string; cause?: unknown } = {}) {
    const where = `${file}${options.line !== undefined ? `:${options.line}` : ''}${options.field !== undefined ? ` (field ${options.field})` : ''}`;
    super(code, `${where}: ${message}`, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.file = file;
    this.line = options.line;
    this.field = options.field;
  }
}
