/**
 * Reading text files and parsing CSV / TSV records with their line numbers. Decoding is strict: UTF-8 files with an
 * invalid byte are refused (naming the line), a UTF-8 BOM is dropped; `latin1` is ISO-8859-1 exactly as Python's
 * 'latin-1' (byte b → U+00bb; not windows-1252). CSV follows RFC 4180 via `csv-parse` (quoted fields with commas,
 * `""` and newlines, CRLF or LF); GLUE-style TSV has no quoting at all (quote characters are literal).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { DataError } from './errors.ts';

/** Encodings the loaders read. */
export type TextEncoding = 'utf-8' | 'latin1';

/** 1-based line of byte `offset` (number of LF bytes before it, plus one). */
function lineAt(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < bytes.length; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

const isContinuation = (b: number) => (b & 0xc0) === 0x80;

/**
 * Byte offset where the first invalid UTF-8 sequence starts: bisection for the shortest prefix that fails to decode
 * in streaming mode (an incomplete sequence at the end of a prefix is not yet an error), then back to the lead byte
 * of the sequence its last byte broke off, if any.
 */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let lo = 0; // prefix bytes[0, lo) decodes
  let hi = bytes.length; // prefix bytes[0, hi) fails
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, mid), { stream: true });
      lo = mid;
    } catch {
      hi = mid;
    }
  }
  const last = hi - 1;
  let j = last - 1;
  while (j >= 0 && j > last - 4 && isContinuation(bytes[j])) j--;
  return j >= 0 && j > last - 4 && bytes[j] >= 0xc0 && !isContinuation(bytes[last]) ? j : last;
}

/**
 * The decoded text of `file`, without a leading BOM.
 * @throws DataError ERR_DATA_FILE (missing, unreadable, a directory), ERR_DATA_EMPTY (no bytes, or only a BOM and
 *   white space), ERR_DATA_ENCODING (not valid UTF-8, naming the line of the first bad byte).
 */
export function readTextFile(file: string, encoding: TextEncoding = 'utf-8'): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new DataError('ERR_DATA_FILE', file, code === 'ENOENT' ? 'no such file' : `cannot be read (${(cause as Error).message})`, { cause });
  }
  let text: string;
  if (encoding === 'latin1') {
    text = bytes.toString('latin1');
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes); // drops a leading BOM
    } catch (cause) {
      const offset = firstInvalidUtf8(bytes);
      throw new DataError('ERR_DATA_ENCODING', file,
        `is not valid UTF-8: byte 0x${bytes[offset].toString(16).padStart(2, '0')} at offset ${offset} (wrong encoding? latin-1 files need encoding "latin1")`,
        { line: lineAt(bytes, offset), cause });
    }
  }
  if (text.trim() === '') throw new DataError('ERR_DATA_EMPTY', file, 'is empty');
  return text;
}

/** One parsed record with the 1-based line it starts on. */
export interface DelimitedRecord {
  /** The record's fields, unquoted. */
  readonly fields: readonly string[];
  /** 1-based line where the record starts. */
  readonly line: number;
}

/** How a delimited text file (CSV or TSV) is split into fields. */
export interface DelimitedOptions {
  /** Field delimiter; default `,`. */
  readonly delimiter?: ',' | '\t';
  /** Whether `"` quotes fields (RFC 4180); default true. GLUE TSV files need false. */
  readonly quoted?: boolean;
}

/**
 * Parse CSV / TSV text into records (empty lines skipped); every record must have as many fields as the first.
 * @throws DataError ERR_DATA_FORMAT naming the file and line (unclosed quote, stray quote, wrong number of fields).
 */
export function parseDelimited(text: string, file: string, options: DelimitedOptions = {}): DelimitedRecord[] {
  const bytes = Buffer.from(text, 'utf8');
  let parsed: { record: string[]; info: { bytes: number } }[];
  try {
    parsed = parse(bytes, {
      delimiter: options.delimiter ?? ',',
      quote: options.quoted === false ? false : '"',
      info: true,
      skip_empty_lines: true,
    }) as unknown as typeof parsed;
  } catch (cause) {
    const e = cause as { lines?: number; message: string };
    throw new DataError('ERR_DATA_FORMAT', file, `malformed ${options.delimiter === '\t' ? 'TSV' : 'CSV'}: ${e.message}`,
      e.lines !== undefined ? { line: e.lines, cause } : { cause });
  }
  // Record k starts after record k−1's end (info.bytes, in UTF-8 bytes) and any skipped empty lines.
  const out: DelimitedRecord[] = [];
  let start = 0;
  let line = 1;
  let counted = 0; // bytes [0, counted) have been scanned for line feeds
  for (const { record, info } of parsed) {
    while (start < bytes.length && (bytes[start] === 0x0a || bytes[start] === 0x0d)) start++;
    for (; counted < start; counted++) if (bytes[counted] === 0x0a) line++;
    out.push({ fields: record, line });
    start = info.bytes;
  }
  return out;
}

/**
 * Index of each named column in a header record.
 * @throws DataError ERR_DATA_FORMAT naming the missing column and listing the header's.
 */
export function columnIndices<K extends string>(header: DelimitedRecord, names: Readonly<Record<K, string>>, file: string): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const key of Object.keys(names) as K[]) {
    const i = header.fields.indexOf(names[key]);
    if (i < 0) {
      throw new DataError('ERR_DATA_FORMAT', file, `header has no column ${JSON.stringify(names[key])} (columns: ${header.fields.map((f) => JSON.stringify(f)).join(', ')})`,
        { line: header.line, field: names[key] });
    }
    out[key] = i;
  }
  return out;
}
