/**
 * The run directory: a durable, server-independent record of one run, written before anything is sent.
 *
 * Layout (format `ewtune-run/1`):
 * ```
 * <run dir>/
 *   run.json      meta: format, created/start time, experiment and run name, and `remotes` — every server
 *                 run this directory was pushed to ({ trackingUri, experimentId, runId }), so a replay to the same
 *                 server resumes that run instead of creating a second one. Rewritten atomically (tmp + rename).
 *   spool.jsonl   write-ahead log, one JSON record per line, appended in record order:
 *                   {"t":"m","k":key,"v":value,"ts":ms,"s":step}   metric point (timestamp taken at record time)
 *                   {"t":"p","k":key,"v":"value"}                    param
 *                   {"t":"g","k":key,"v":"value"}                    tag
 *                   {"t":"e","status":"FINISHED"|"KILLED"|"FAILED","ts":ms}  run end
 *                 A torn last line (crash mid-write) is ignored by readers.
 *   sent.cursor   JSON { "<run id>": byteOffset } — for each server run, the offset in spool.jsonl up to which the
 *                 server acknowledged every record. Rewritten atomically after each acknowledged batch.
 *   artifacts/    files to upload as the run's artifacts, relative paths kept (e.g. privacy/ledger.jsonl,
 *                 privacy/epsilon.svg). Other modules write here; the sink uploads all of it at close, replay too.
 * ```
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EwtuneError } from '../errors.ts';
import type { Metric, RunStatus } from './mlflow-client.ts';

export const RUN_DIR_FORMAT = 'ewtune-run/1';
export const RUN_META_FILE = 'run.json';
export const SPOOL_FILE = 'spool.jsonl';
export const CURSOR_FILE = 'sent.cursor';
export const ARTIFACTS_DIR = 'artifacts';

/** One server run a run directory was pushed to. */
export interface RemoteRun {
  readonly trackingUri: string;
  readonly experimentId: string;
  readonly runId: string;
}

/** Contents of run.json. */
export interface RunMeta {
  readonly format: typeof RUN_DIR_FORMAT;
  /** ms since epoch; used as the server run's start_time. */
  readonly startTime: number;
  readonly experimentName?: string;
  readonly runName?: string;
  readonly remotes: RemoteRun[];
}

/** One spool line (see the module comment). */
export type SpoolRecord =
  | { readonly t: 'm'; readonly k: string; readonly v: number; readonly ts: number; readonly s: number }
  | { readonly t: 'p'; readonly k: string; readonly v: string }
  | { readonly t: 'g'; readonly k: string; readonly v: string }
  | { readonly t: 'e'; readonly status: Exclude<RunStatus, 'RUNNING' | 'SCHEDULED'>; readonly ts: number };

/** A corrupt or unreadable run directory. */
export class RunDirError extends EwtuneError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('ERR_RUN_DIR', `${path}: ${message}`);
    this.path = path;
  }
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** Creates the directory (and artifacts/) and writes run.json unless it exists; returns the meta. */
export function initRunDir(dir: string, init: { experimentName?: string; runName?: string; startTime?: number }): RunMeta {
  mkdirSync(join(dir, ARTIFACTS_DIR), { recursive: true });
  if (existsSync(join(dir, RUN_META_FILE))) return readRunMeta(dir);
  const meta: RunMeta = { format: RUN_DIR_FORMAT, startTime: init.startTime ?? Date.now(), experimentName: init.experimentName, runName: init.runName, remotes: [] };
  writeRunMeta(dir, meta);
  return meta;
}

export function readRunMeta(dir: string): RunMeta {
  const path = join(dir, RUN_META_FILE);
  let meta: RunMeta;
  try {
    meta = JSON.parse(readFileSync(path, 'utf8')) as RunMeta;
  } catch (e) {
    throw new RunDirError(path, `cannot read run meta (${(e as Error).message})`);
  }
  if (meta.format !== RUN_DIR_FORMAT) throw new RunDirError(path, `unknown format ${JSON.stringify(meta.format)} (expected ${RUN_DIR_FORMAT})`);
  return { ...meta, remotes: meta.remotes ?? [] };
}

export function writeRunMeta(dir: string, meta: RunMeta): void {
  writeAtomic(join(dir, RUN_META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
}

/** Records (or replaces) the server run for `remote.trackingUri` in run.json. */
export function recordRemote(dir: string, remote: RemoteRun): RunMeta {
  const meta = readRunMeta(dir);
  const next: RunMeta = { ...meta, remotes: [...meta.remotes.filter((r) => r.trackingUri !== remote.trackingUri), remote] };
  writeRunMeta(dir, next);
  return next;
}

/** Acknowledged spool offset per server run id (0 when none). */
export function readCursor(dir: string, runId: string): number {
  const path = join(dir, CURSOR_FILE);
  if (!existsSync(path)) return 0;
  try {
    const offsets = JSON.parse(readFileSync(path, 'utf8')) as Record<string, number>;
    const v = offsets[runId];
    return Number.isSafeInteger(v) && v >= 0 ? v : 0;
  } catch {
    return 0; // a torn cursor only means resending, which the server de-duplicates
  }
}

export function writeCursor(dir: string, runId: string, offset: number): void {
  const path = join(dir, CURSOR_FILE);
  let offsets: Record<string, number> = {};
  try {
    if (existsSync(path)) offsets = JSON.parse(readFileSync(path, 'utf8')) as Record<string, number>;
  } catch {
    offsets = {};
  }
  offsets[runId] = offset;
  writeAtomic(path, `${JSON.stringify(offsets)}\n`);
}

/**
 * Appends records to spool.jsonl with one synchronous `write(2)` each (no fsync): a record survives a crash of
 * the process as soon as `append` returns; {@link sync} makes it survive an OS crash too.
 */
export class SpoolWriter {
  readonly path: string;
  private fd: number | undefined;
  private end: number;

  constructor(dir: string) {
    this.path = join(dir, SPOOL_FILE);
    this.fd = openSync(this.path, 'a');
    this.end = statSync(this.path).size;
  }

  /** Byte offset just past the last appended record. */
  get offset(): number {
    return this.end;
  }

  /** Appends one record; returns the new end offset. */
  append(record: SpoolRecord): number {
    if (this.fd === undefined) throw new RunDirError(this.path, 'spool is closed');
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    writeSync(this.fd, line);
    this.end += line.length;
    return this.end;
  }

  sync(): void {
    if (this.fd !== undefined) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === undefined) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Records read from a spool, each with the offset just past it. */
export interface SpoolChunk {
  readonly records: Array<{ readonly record: SpoolRecord; readonly end: number }>;
  /** Offset after the last complete line read (= `from` if nothing was read). */
  readonly next: number;
  /** Lines that were complete but not valid records (skipped). */
  readonly invalidLines: number;
}

/**
 * Reads complete lines of spool.jsonl from byte `from`, up to about `maxBytes` (at least one line) and not past
 * `until`. A trailing line without newline is left for later (it may still be being written, or be torn).
 */
export function readSpool(dir: string, from: number, options: { maxBytes?: number; until?: number } = {}): SpoolChunk {
  const path = join(dir, SPOOL_FILE);
  if (!existsSync(path)) return { records: [], next: from, invalidLines: 0 };
  const size = Math.min(statSync(path).size, options.until ?? Infinity);
  if (size <= from) return { records: [], next: from, invalidLines: 0 };
  let want = Math.min(size - from, options.maxBytes ?? 4_000_000);
  const fd = openSync(path, 'r');
  try {
    let buf = Buffer.alloc(want);
    let got = readSync(fd, buf, 0, want, from);
    // Make sure at least one complete line is in the buffer.
    while (buf.subarray(0, got).lastIndexOf(10) < 0 && from + got < size) {
      want = Math.min(size - from, want * 2);
      buf = Buffer.alloc(want);
      got = readSync(fd, buf, 0, want, from);
    }
    const lastNewline = buf.subarray(0, got).lastIndexOf(10);
    if (lastNewline < 0) return { records: [], next: from, invalidLines: 0 };
    const records: Array<{ record: SpoolRecord; end: number }> = [];
    let invalidLines = 0;
    let start = 0;
    while (start <= lastNewline) {
      const nl = buf.indexOf(10, start);
      const line = buf.subarray(start, nl).toString('utf8');
      start = nl + 1;
      if (!line.trim()) continue;
      try {
        const record = JSON.parse(line) as SpoolRecord;
        if (isSpoolRecord(record)) records.push({ record, end: from + start });
        else invalidLines++;
      } catch {
        invalidLines++;
      }
    }
    return { records, next: from + lastNewline + 1, invalidLines };
  } finally {
    closeSync(fd);
  }
}

function isSpoolRecord(r: unknown): r is SpoolRecord {
  if (typeof r !== 'object' || r === null) return false;
  const o = r as Record<string, unknown>;
  switch (o.t) {
    case 'm':
      return typeof o.k === 'string' && typeof o.v === 'number' && typeof o.ts === 'number' && typeof o.s === 'number';
    case 'p':
    case 'g':
      return typeof o.k === 'string' && typeof o.v === 'string';
    case 'e':
      return typeof o.status === 'string' && typeof o.ts === 'number';
    default:
      return false;
  }
}

/** A metric spool record as a client Metric. */
export function toMetric(r: Extract<SpoolRecord, { t: 'm' }>): Metric {
  return { key: r.k, value: r.v, timestamp: r.ts, step: r.s };
}
