/**
 * The durable privacy ledger: an append-only JSONL file, one record per line.
 *
 * Line 1: a header `{type:'header', version:1, ledgerId, createdAt, config, configHash}` where `config` is the
 * training configuration that must not change (datasetSize, l2NormClip, sampler, adjacency, noiseMode,
 * accountant, ...) and `configHash` the SHA-256 of its canonical JSON. Then step records
 * `{type:'step', seq, sampleRate, noiseMultiplier, count, sampler, adjacency, noiseMode, time}` with seq
 * 1, 2, 3, ... consecutive (one record may stand for `count` identical steps), and optional `note` / `stop`
 * records. Every line is checked against schemas/ledger.schema.json.
 *
 * Durability: `appendStep` writes the line and fsyncs the file BEFORE it resolves; callers must apply the step
 * (release the noisy gradient) only after it resolves. A crash can therefore at worst leave a record of a step
 * that never ran (over-counting, the safe side), never a step without a record.
 *
 * Crash recovery on `open`: a last line without a trailing newline that does not parse is a write cut short; it
 * is reported in `recovered` and truncated away, earlier records are kept. A last line without a newline that
 * parses and validates is kept (safe side) and its newline restored. Any other bad line, a seq gap, a header
 * whose hash does not match its config, or a config different from `expectedConfig` is a LedgerError naming
 * path:line.
 *
 * The accountants model Poisson sampling under add/remove adjacency; `replayEpsilon` composes the recorded
 * (sampleRate, noiseMultiplier, count) with whichever accountant is asked for.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { LedgerError } from '../errors.ts';
import { compileSchemaFile, type CompiledSchema } from '../schema/validate.ts';
import { assertNoiseMultiplier, assertSampleRate, assertSteps, deltaWarning } from '../validate.ts';
import { assertAccountantName, createAccountant, type AccountantFactoryOptions } from './factory.ts';
import { appendSegment } from './segments.ts';
import type { AccountantName, EpsilonResult, PrivacyAccountant, StepSegment } from './types.ts';

export type LedgerSampler = 'poisson' | 'shuffle' | 'fixed-size';
export type LedgerAdjacency = 'add-remove' | 'replace-one';
export type LedgerNoiseMode = 'gaussian' | 'hardened' | 'insecure-seeded';

/** The configuration fixed for the life of a ledger. Extra JSON fields are allowed and are part of the hash. */
export interface LedgerConfig {
  /** Number of private training examples N (the sample rate is q = expected batch size / N). */
  readonly datasetSize?: number;
  /** Per-example clipping bound C. */
  readonly l2NormClip?: number;
  /** Default batch sampler of the steps ('poisson' unless recorded otherwise). */
  readonly sampler?: LedgerSampler;
  /** Default neighbouring relation of the steps ('add-remove'). */
  readonly adjacency?: LedgerAdjacency;
  /** Default noise mode of the steps ('gaussian'). */
  readonly noiseMode?: LedgerNoiseMode;
  /** The accountant the run's guarantee is stated with (e.g. 'pld'). */
  readonly accountant?: AccountantName;
  readonly [key: string]: unknown;
}

export interface LedgerHeader {
  readonly type: 'header';
  readonly version: 1;
  readonly ledgerId: string;
  readonly createdAt: string;
  readonly config: LedgerConfig;
  readonly configHash: string;
}

/**
 * One step line of the ledger: `count` identical DP steps with sample rate q and noise multiplier σ (the accounted
 * one), how the batch was sampled, the adjacency and the noise mode, numbered by `seq` (1, 2, 3, … without gaps).
 */
export interface LedgerStepRecord {
  /** Record type. */
  readonly type: 'step';
  /** Sequence number of the record (1, 2, 3, … without gaps). */
  readonly seq: number;
  /** Poisson sample rate q of the steps. */
  readonly sampleRate: number;
  /** The accounted noise multiplier σ of the steps. */
  readonly noiseMultiplier: number;
  /** Identical steps this record stands for. */
  readonly count: number;
  /** How the batches were drawn. */
  readonly sampler: LedgerSampler;
  /** The neighbouring relation the steps are accounted under. */
  readonly adjacency: LedgerAdjacency;
  /** The noise mode of the steps. */
  readonly noiseMode: LedgerNoiseMode;
  /** When the record was written (ISO 8601, UTC). */
  readonly time: string;
}

export interface LedgerNoteRecord {
  readonly type: 'note';
  readonly text: string;
  readonly time: string;
}

export interface LedgerStopRecord {
  readonly type: 'stop';
  readonly reason: string;
  readonly time: string;
}

/**
 * Any line of a ledger file: the header (the run's fixed settings), a step, a note or a stop record
 * (schemas/ledger.schema.json).
 */
export type LedgerRecord = LedgerHeader | LedgerStepRecord | LedgerNoteRecord | LedgerStopRecord;

/** What the caller passes to `appendStep`; sampler/adjacency/noiseMode default to the header config's. */
export interface LedgerStepInput {
  /** Poisson sample rate q ∈ (0, 1]. */
  readonly sampleRate: number;
  /** The accounted noise multiplier σ > 0. */
  readonly noiseMultiplier: number;
  /** Identical steps this record stands for (default 1). */
  readonly count?: number;
  /** Batch sampler (default: the header config's). */
  readonly sampler?: LedgerSampler;
  /** Neighbouring relation (default: the header config's). */
  readonly adjacency?: LedgerAdjacency;
  /** Noise mode (default: the header config's). */
  readonly noiseMode?: LedgerNoiseMode;
}

/** The file operations the ledger uses; injectable so tests can observe that fsync happens before resolve. */
export interface LedgerFileOps {
  openSync(path: string, flags: string): number;
  writeSync(fd: number, data: string): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  write(fd: number, data: string): Promise<unknown>;
  fsync(fd: number): Promise<void>;
}

const nodeFileOps: LedgerFileOps = {
  openSync: (p, flags) => fs.openSync(p, flags),
  writeSync: (fd, data) => fs.writeSync(fd, data),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  closeSync: (fd) => fs.closeSync(fd),
  write: promisify((fd: number, data: string, cb: (err: NodeJS.ErrnoException | null, written: number) => void) => fs.write(fd, data, cb)),
  fsync: promisify(fs.fsync),
};

/** Report of a crash-truncated last line removed by `open`. */
export interface LedgerRecovery {
  readonly line: number;
  readonly droppedBytes: number;
  readonly message: string;
}

export interface LedgerOpenOptions {
  /** Refuse the ledger unless its config hash equals this config's. */
  readonly expectedConfig?: LedgerConfig;
  /** Injectable file operations (tests). */
  readonly fileOps?: LedgerFileOps;
}

let recordSchema: CompiledSchema<LedgerRecord> | undefined;
function schema(): CompiledSchema<LedgerRecord> {
  recordSchema ??= compileSchemaFile<LedgerRecord>('ledger.schema.json');
  return recordSchema;
}

/** Canonical JSON (sorted keys, recursively) for hashing. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** SHA-256 (hex) of the canonical JSON of a ledger config. */
export function configHash(config: LedgerConfig): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex');
}

/** The append-only, fsynced privacy ledger. */
export class PrivacyLedger {
  /** The ledger file. */
  readonly path: string;
  /** The ledger's first line: its id, creation time and fixed configuration (with its hash). */
  readonly header: LedgerHeader;
  /** Set when `open` removed a crash-truncated last line. */
  readonly recovered: LedgerRecovery | undefined;
  /** Warnings (e.g. a crash recovery). */
  readonly warnings: string[] = [];
  #records: LedgerStepRecord[] = [];
  #segments: StepSegment[] = [];
  #fd: number | undefined;
  #ops: LedgerFileOps;
  #queue: Promise<unknown> = Promise.resolve();
  #pendingSeq: number;

  private constructor(path: string, header: LedgerHeader, fd: number, ops: LedgerFileOps, recovered?: LedgerRecovery) {
    this.path = path;
    this.header = header;
    this.#fd = fd;
    this.#ops = ops;
    this.recovered = recovered;
    this.#pendingSeq = 0;
    if (recovered) this.warnings.push(recovered.message);
  }

  /** Create a new ledger (fails if the file exists; missing parent folders are created); the header is written and fsynced before resolving. */
  static async create(path: string, config: LedgerConfig, options: { fileOps?: LedgerFileOps } = {}): Promise<PrivacyLedger> {
    return PrivacyLedger.createSync(path, config, options);
  }

  /** Synchronous {@link PrivacyLedger.create}. */
  static createSync(path: string, config: LedgerConfig, options: { fileOps?: LedgerFileOps } = {}): PrivacyLedger {
    const ops = options.fileOps ?? nodeFileOps;
    const header: LedgerHeader = {
      type: 'header',
      version: 1,
      ledgerId: randomUUID(),
      createdAt: new Date().toISOString(),
      config,
      configHash: configHash(config),
    };
    if (!schema().check(header)) throw new LedgerError(path, `invalid ledger config: ${schema().lastErrors.join('; ')}`, 1);
    let fd: number;
    try {
      fs.mkdirSync(dirname(path), { recursive: true });
      fd = ops.openSync(path, 'wx');
    } catch (err) {
      throw new LedgerError(path, `cannot create ledger: ${(err as Error).message}`);
    }
    ops.writeSync(fd, `${JSON.stringify(header)}\n`);
    ops.fsyncSync(fd);
    const ledger = new PrivacyLedger(path, header, fd, ops);
    const warning = deltaWarningFor(config);
    if (warning) ledger.warnings.push(warning);
    return ledger;
  }

  /** Open and replay an existing ledger; see the module comment for recovery and refusal rules. */
  static async open(path: string, options: LedgerOpenOptions = {}): Promise<PrivacyLedger> {
    return PrivacyLedger.openSync(path, options);
  }

  /** Synchronous {@link PrivacyLedger.open}. */
  static openSync(path: string, options: LedgerOpenOptions = {}): PrivacyLedger {
    const ops = options.fileOps ?? nodeFileOps;
    let text: string;
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch (err) {
      throw new LedgerError(path, `cannot read ledger: ${(err as Error).message}`);
    }
    const lines = text.split('\n');
    const endsWithNewline = text.endsWith('\n');
    const last = lines.pop() as string; // '' when the file ends with a newline
    let recovered: LedgerRecovery | undefined;
    let restoreNewline = false;
    if (!endsWithNewline && last.length > 0) {
      const lineNo = lines.length + 1;
      let parsed: unknown;
      let ok = false;
      try {
        parsed = JSON.parse(last);
        ok = schema().check(parsed);
      } catch {
        ok = false;
      }
      if (ok && lineNo > 1) {
        lines.push(last);
        restoreNewline = true;
      } else if (lineNo > 1) {
        const keep = Buffer.byteLength(text, 'utf8') - Buffer.byteLength(last, 'utf8');
        fs.truncateSync(path, keep);
        recovered = {
          line: lineNo,
          droppedBytes: Buffer.byteLength(last, 'utf8'),
          message: `${path}:${lineNo}: incomplete last line (a write cut short by a crash) removed; earlier records kept`,
        };
      } else {
        throw new LedgerError(path, 'the header line is incomplete', 1);
      }
    }
    if (lines.length === 0) throw new LedgerError(path, 'empty ledger (no header)', 1);
    const records = lines.map((line, i) => parseLine(path, line, i + 1));
    const header = records[0];
    if (header.type !== 'header') throw new LedgerError(path, `first record must be the header; got type ${JSON.stringify(header.type)}`, 1);
    if (configHash(header.config) !== header.configHash) {
      throw new LedgerError(path, 'configHash does not match the header config (the header was altered)', 1);
    }
    if (options.expectedConfig !== undefined) {
      const expected = configHash(options.expectedConfig);
      if (expected !== header.configHash) {
        throw new LedgerError(
          path,
          `ledger belongs to another configuration: ${describeConfigDifference(header.config, options.expectedConfig)}`,
          1,
        );
      }
    }
    const fd = ops.openSync(path, 'a');
    if (restoreNewline) {
      ops.writeSync(fd, '\n');
      ops.fsyncSync(fd);
    }
    const ledger = new PrivacyLedger(path, header, fd, ops, recovered);
    let expectedSeq = 1;
    let stopped = false;
    for (let i = 1; i < records.length; i++) {
      const r = records[i];
      const lineNo = i + 1;
      if (r.type === 'header') throw new LedgerError(path, 'a second header record', lineNo);
      if (r.type !== 'step') {
        if (r.type === 'stop') stopped = true;
        continue;
      }
      if (stopped) throw new LedgerError(path, 'a step record after a stop record', lineNo);
      if (r.seq !== expectedSeq) throw new LedgerError(path, `seq ${r.seq} where ${expectedSeq} was expected (gap or reorder)`, lineNo);
      checkStepAgainstConfig(path, lineNo, r, header.config);
      ledger.#push(r);
      expectedSeq += 1;
    }
    ledger.#pendingSeq = expectedSeq - 1;
    const warning = deltaWarningFor(header.config);
    if (warning) ledger.warnings.push(warning);
    return ledger;
  }

  /** The training configuration of this ledger. */
  get config(): LedgerConfig {
    return this.header.config;
  }

  /** Step records in order (applied ones: those whose append has resolved, or replayed from the file). */
  get records(): readonly LedgerStepRecord[] {
    return this.#records;
  }

  /** Total number of steps recorded (sum of counts). */
  get steps(): number {
    let total = 0;
    for (const r of this.#records) total += r.count;
    return total;
  }

  /** Run-length merged (sampleRate, noiseMultiplier, count) segments of the recorded steps. */
  segments(): StepSegment[] {
    return this.#segments.slice();
  }

  /**
   * Append one step record: written and fsynced before the promise resolves. Apply the step only after it
   * resolves. Appends are serialised in call order.
   */
  appendStep(input: LedgerStepInput): Promise<LedgerStepRecord> {
    const record = this.#makeRecord(input);
    const fd = this.#openFd();
    const run = async (): Promise<LedgerStepRecord> => {
      await this.#ops.write(fd, `${JSON.stringify(record)}\n`);
      await this.#ops.fsync(fd);
      this.#push(record);
      return record;
    };
    const result = this.#queue.then(run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Synchronous {@link PrivacyLedger.appendStep}: written and fsynced when it returns. */
  appendStepSync(input: LedgerStepInput): LedgerStepRecord {
    const record = this.#makeRecord(input);
    const fd = this.#openFd();
    this.#ops.writeSync(fd, `${JSON.stringify(record)}\n`);
    this.#ops.fsyncSync(fd);
    this.#push(record);
    return record;
  }

  /** Append a free-text note (fsynced). */
  appendNoteSync(text: string): void {
    this.#writeOther({ type: 'note', text, time: new Date().toISOString() });
  }

  /** Append a stop record (fsynced); later steps are refused on replay. */
  appendStopSync(reason: string): void {
    this.#writeOther({ type: 'stop', reason, time: new Date().toISOString() });
  }

  /** ε of the recorded history by a fresh accountant (same segments ⇒ exactly the live accountant's ε). */
  replayEpsilon(delta: number, accountant: AccountantName | PrivacyAccountant = this.config.accountant ?? 'pld', options: AccountantFactoryOptions = {}): EpsilonResult {
    const acc = typeof accountant === 'string' ? (assertAccountantName(accountant), createAccountant(accountant, options)) : accountant.fresh();
    for (const s of this.#segments) acc.compose({ sampleRate: s.sampleRate, noiseMultiplier: s.noiseMultiplier }, s.count);
    return acc.getEpsilon(delta);
  }

  /** Close the file (waits for pending appends). */
  async close(): Promise<void> {
    await this.#queue;
    this.closeSync();
  }

  /** Close the file now. */
  closeSync(): void {
    if (this.#fd !== undefined) {
      this.#ops.closeSync(this.#fd);
      this.#fd = undefined;
    }
  }

  #openFd(): number {
    if (this.#fd === undefined) throw new LedgerError(this.path, 'ledger is closed');
    return this.#fd;
  }

  #writeOther(record: LedgerNoteRecord | LedgerStopRecord): void {
    const kind = record.type;
    if (!schema().check(record)) throw new LedgerError(this.path, `invalid ${kind} record: ${schema().lastErrors.join('; ')}`);
    const fd = this.#openFd();
    this.#ops.writeSync(fd, `${JSON.stringify(record)}\n`);
    this.#ops.fsyncSync(fd);
  }

  #makeRecord(input: LedgerStepInput): LedgerStepRecord {
    assertSampleRate(input.sampleRate);
    assertNoiseMultiplier(input.noiseMultiplier);
    const count = input.count ?? 1;
    assertSteps(count, 'count');
    const config = this.config;
    const record: LedgerStepRecord = {
      type: 'step',
      seq: this.#pendingSeq + 1,
      sampleRate: input.sampleRate,
      noiseMultiplier: input.noiseMultiplier,
      count,
      sampler: input.sampler ?? config.sampler ?? 'poisson',
      adjacency: input.adjacency ?? config.adjacency ?? 'add-remove',
      noiseMode: input.noiseMode ?? config.noiseMode ?? 'gaussian',
      time: new Date().toISOString(),
    };
    if (!schema().check(record)) throw new LedgerError(this.path, `invalid step record: ${schema().lastErrors.join('; ')}`);
    checkStepAgainstConfig(this.path, undefined, record, config);
    this.#pendingSeq += 1;
    return record;
  }

  #push(record: LedgerStepRecord): void {
    this.#records.push(record);
    this.#segments = appendSegment(this.#segments, { sampleRate: record.sampleRate, noiseMultiplier: record.noiseMultiplier, count: record.count });
  }
}

function parseLine(path: string, line: string, lineNo: number): LedgerRecord {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new LedgerError(path, `corrupt record (not JSON: ${(err as Error).message})`, lineNo);
  }
  if (!schema().check(value)) throw new LedgerError(path, `invalid record: ${schema().lastErrors.join('; ')}`, lineNo);
  return value as LedgerRecord;
}

function checkStepAgainstConfig(path: string, lineNo: number | undefined, r: LedgerStepRecord, config: LedgerConfig): void {
  for (const key of ['sampler', 'adjacency', 'noiseMode'] as const) {
    if (config[key] !== undefined && config[key] !== r[key]) {
      throw new LedgerError(path, `step ${key}=${JSON.stringify(r[key])} differs from the ledger config's ${JSON.stringify(config[key])}`, lineNo);
    }
  }
}

function describeConfigDifference(actual: LedgerConfig, expected: LedgerConfig): string {
  const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
  const diffs: string[] = [];
  for (const k of [...keys].sort()) {
    if (canonicalJson(actual[k]) !== canonicalJson(expected[k])) {
      diffs.push(`${k}: ledger has ${canonicalJson(actual[k]) ?? 'nothing'}, expected ${canonicalJson(expected[k]) ?? 'nothing'}`);
    }
  }
  return diffs.length > 0 ? diffs.join('; ') : 'config hash differs';
}

function deltaWarningFor(config: LedgerConfig): string | undefined {
  const delta = config.delta;
  if (typeof delta === 'number' && typeof config.datasetSize === 'number') return deltaWarning(delta, config.datasetSize);
  return undefined;
}
