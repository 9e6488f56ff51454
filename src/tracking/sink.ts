/**
 * TrackingSink: the training loop's only door to MLflow. `record()` is synchronous and O(1): it stamps the point
 * with the current time and appends one line to the run directory's spool (write-ahead, see spool.ts); nothing waits
 * for the network. A background sender pushes the unacknowledged part of the spool to the server in batches (timer +
 * size threshold) and advances sent.cursor when the server acknowledged it. While the server is down, points keep
 * being spooled and the sender retries with capped exponential back-off; when it returns, the pending part is sent.
 * A resent point is de-duplicated by MLflow's SQL store (same key/timestamp/step/value), so delivery is exactly-once
 * as seen in `metrics/get-history`. Problems are reported once per kind through `warn`, never thrown into training
 * (except programming errors at the call site: an invalid key or non-integer step → InvalidArgumentError).
 *
 * Without a client the sink only writes the run directory ("local run directory" mode); push it later with
 * `replayRunDir` (replay.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InvalidArgumentError } from '../errors.ts';
import { MlflowError, isAuthError } from './errors.ts';
import { assertMlflowKey, assertParam, assertTag } from './keys.ts';
import type { MlflowClient, RunInfo, RunStatus } from './mlflow-client.ts';
import { ensureRemoteRun, pushSpool, uploadArtifacts } from './replay.ts';
import { ARTIFACTS_DIR, SpoolWriter, initRunDir, readCursor, type RemoteRun } from './spool.ts';

/** Options of {@link TrackingSink.open}. */
export interface TrackingSinkOptions {
  /** Run directory (created if missing; an existing one is appended to). */
  readonly runDir: string;
  /** MLflow client; omit for the local run-directory mode. */
  readonly client?: MlflowClient;
  /** Experiment for a new server run (default: run.json's, else "ewtune"). */
  readonly experimentName?: string;
  /** Name of a new server run. */
  readonly runName?: string;
  /** Resume this server run (default MLFLOW_RUN_ID when a client is given). */
  readonly runId?: string;
  /** Background flush period, ms (default 1000). */
  readonly flushIntervalMs?: number;
  /** Records pending since the last send that trigger an early send (default 500). */
  readonly flushThreshold?: number;
  /** First/maximum wait between send attempts while the server fails, ms (default 1000 / 10000). */
  readonly retryInitialMs?: number;
  /** Maximum wait between send attempts while the server fails, ms (default 10000). */
  readonly retryMaxMs?: number;
  /** Timeout of each background request, ms (default 15000). */
  readonly requestTimeoutMs?: number;
  /**
   * What `open` does when the server cannot be reached: `'throw'` (default; a clear error before training starts) or
   * `'spool'` (warn once, keep spooling, create the server run when it comes up). 401/403 and other rejections always throw.
   */
  readonly onUnreachable?: 'throw' | 'spool';
  /** Retries of the requests made by `open` (default 2). */
  readonly openRetries?: number;
  /** Receives each warning once per kind (default: console.warn with an `ewtune:` prefix). */
  readonly warn?: (message: string) => void;
  /** Clock for timestamps, ms since epoch (default Date.now). */
  readonly clock?: () => number;
}

/** State of the server side of a sink. */
export type SinkState = 'local' | 'connected' | 'retrying' | 'stopped';

/** Outcome of {@link TrackingSink.flush} / {@link TrackingSink.close}. */
export interface FlushResult {
  /** Everything recorded before the call is acknowledged by the server (always false in local mode). */
  readonly complete: boolean;
  /** Spool bytes not yet acknowledged. */
  readonly pendingBytes: number;
}
export interface CloseResult extends FlushResult {
  /** The run directory (spool, cursor, artifacts/). */
  readonly runDir: string;
  readonly remote?: RemoteRun;
  /** Artifact paths uploaded at close (relative to artifacts/). */
  readonly artifacts: string[];
}

/** Counters, for diagnostics and benchmarks. */
export interface SinkStats {
  recorded: number;
  nonFiniteSkipped: number;
  sendAttempts: number;
  sendFailures: number;
  requests: number;
}

const END_STATUSES: ReadonlySet<string> = new Set(['FINISHED', 'KILLED', 'FAILED']);

/**
 * The training loop's only door to MLflow: `record()` (synchronous, O(1)) appends a metric point to the run
 * directory's spool, and a background sender pushes the spool to the server in batches, retrying while it is down
 * (exactly-once as seen by `metrics/get-history`). Without a client it writes the local run directory only (push it
 * later with {@link replayRunDir}). Open one with {@link TrackingSink.open}; end it with `close({ status })`. An invalid
 * key or a non-integer step throws {@link InvalidArgumentError} at the call site; network problems are never thrown
 * into training.
 */
export class TrackingSink {
  /** The run directory (spool, cursor, artifacts/). */
  readonly runDir: string;
  /** Counters of points recorded, skipped (non-finite) and sent, for diagnostics and benchmarks. */
  readonly stats: SinkStats = { recorded: 0, nonFiniteSkipped: 0, sendAttempts: 0, sendFailures: 0, requests: 0 };
  private readonly options: TrackingSinkOptions;
  private readonly writer: SpoolWriter;
  private readonly client: MlflowClient | undefined;
  private readonly clock: () => number;
  private readonly validKeys = new Set<string>();
  private readonly warned = new Set<string>();
  private run: RunInfo | undefined;
  private acked = 0;
  private sinceSend = 0;
  private timer: NodeJS.Timeout | undefined;
  private retryDelayMs: number;
  private nextAttemptAt = 0;
  private sending: Promise<boolean> | undefined;
  private closed = false;
  private _state: SinkState;

  private constructor(options: TrackingSinkOptions, writer: SpoolWriter, client: MlflowClient | undefined) {
    this.options = options;
    this.runDir = options.runDir;
    this.writer = writer;
    this.client = client;
    this.clock = options.clock ?? Date.now;
    this.retryDelayMs = options.retryInitialMs ?? 1000;
    this._state = client ? 'retrying' : 'local';
  }

  /**
   * Creates the run directory and, with a client, finds or creates the server run (resuming `runId`/MLFLOW_RUN_ID).
   * Rejects before training starts on wrong credentials, a rejected/missing run, or (unless `onUnreachable: 'spool'`)
   * an unreachable server.
   */
  static async open(options: TrackingSinkOptions): Promise<TrackingSink> {
    const flushIntervalMs = options.flushIntervalMs ?? 1000;
    if (!(flushIntervalMs > 0)) throw new InvalidArgumentError('flushIntervalMs', flushIntervalMs, 'a positive number of ms');
    const flushThreshold = options.flushThreshold ?? 500;
    if (!Number.isInteger(flushThreshold) || flushThreshold < 1) throw new InvalidArgumentError('flushThreshold', flushThreshold, 'a positive integer');
    initRunDir(options.runDir, { experimentName: options.experimentName, runName: options.runName });
    const background = options.client?.withOptions({ maxRetries: 0, timeoutMs: options.requestTimeoutMs ?? 15_000 });
    const sink = new TrackingSink(options, new SpoolWriter(options.runDir), background);
    if (options.client) {
      const opener = options.client.withOptions({ maxRetries: options.openRetries ?? 2 });
      try {
        await sink.connect(opener, options.runId ?? process.env.MLFLOW_RUN_ID);
      } catch (e) {
        const unreachable = e instanceof MlflowError && e.retryable;
        if (!unreachable || (options.onUnreachable ?? 'throw') === 'throw') {
          sink.writer.close();
          background?.close();
          throw e;
        }
        sink.warnOnce('unreachable', `MLflow at ${options.client.trackingUri} is unreachable (${(e as Error).message}); spooling to ${join(options.runDir, 'spool.jsonl')} and retrying in the background`);
        sink.backOff();
      } finally {
        opener.close();
      }
    }
    sink.timer = setInterval(() => sink.tick(), flushIntervalMs);
    sink.timer.unref();
    return sink;
  }

  private async connect(client: MlflowClient, runId: string | undefined, signal?: AbortSignal): Promise<void> {
    let { run } = await ensureRemoteRun(this.runDir, client, { experimentName: this.options.experimentName, runId, signal });
    if (runId && run.status !== 'RUNNING') run = await client.updateRun(run.runId, { status: 'RUNNING' }, signal);
    this.run = run;
    this.acked = readCursor(this.runDir, run.runId);
    this._state = 'connected';
  }

  /** `local`, `connected`, `retrying` (server failing; spooling), or `stopped` (server rejected us; spooling only). */
  get state(): SinkState {
    return this._state;
  }

  /** The server run, once known. */
  get remote(): RemoteRun | undefined {
    return this.run && this.client ? { trackingUri: this.client.trackingUri, experimentId: this.run.experimentId, runId: this.run.runId } : undefined;
  }

  /** Spool bytes not yet acknowledged by the server. */
  get pendingBytes(): number {
    return this.writer.offset - this.acked;
  }

  /**
   * Records one metric point: synchronous, O(1), never touches the network. The timestamp is taken now.
   * A non-finite value is not recorded (MLflow cannot store it as a number); it is counted and warned about once per key.
   */
  record(key: string, value: number, step: number): void {
    if (!this.validKeys.has(key)) {
      assertMlflowKey('key', key);
      this.validKeys.add(key);
    }
    if (!Number.isSafeInteger(step)) throw new InvalidArgumentError('step', step, 'an integer');
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.stats.nonFiniteSkipped++;
      this.warnOnce(`nonfinite:${key}`, `metric ${JSON.stringify(key)} got a non-finite value (${String(value)}) at step ${step}; non-finite values are not logged`);
      return;
    }
    this.append({ t: 'm', k: key, v: value, ts: this.clock(), s: step });
  }

  /** Records a param (value converted with String()). Same write-ahead path as metrics. */
  logParam(key: string, value: string | number | boolean): void {
    const v = String(value);
    assertParam('param', { key, value: v });
    this.append({ t: 'p', k: key, v });
  }

  /** Records a tag. Same write-ahead path as metrics. */
  setTag(key: string, value: string): void {
    assertTag('tag', { key, value });
    this.append({ t: 'g', k: key, v: value });
  }

  /** Writes `content` to `<runDir>/artifacts/<path>`; uploaded at close (and by replay). */
  writeArtifact(path: string, content: string | Buffer): void {
    if (!path || path.startsWith('/') || path.split('/').some((p) => p === '' || p === '.' || p === '..')) throw new InvalidArgumentError('path', path, "a relative path without '.', '..' or empty segments");
    const file = join(this.runDir, ARTIFACTS_DIR, ...path.split('/'));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }

  private append(record: Parameters<SpoolWriter['append']>[0]): void {
    if (this.closed) throw new InvalidArgumentError('sink', 'closed', 'open (record after close)');
    try {
      this.writer.append(record);
    } catch (e) {
      this.warnOnce('spool-write', `cannot append to the spool in ${this.runDir} (${(e as Error).message}); records are being lost`);
      return;
    }
    this.stats.recorded++;
    if (++this.sinceSend >= (this.options.flushThreshold ?? 500) && this.client && !this.sending && this.clock() >= this.nextAttemptAt) setImmediate(() => this.tick());
  }

  private warnOnce(kind: string, message: string): void {
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    (this.options.warn ?? ((m: string) => console.warn(`ewtune: ${m}`)))(message);
  }

  private backOff(): void {
    this.nextAttemptAt = Date.now() + this.retryDelayMs;
    this.retryDelayMs = Math.min(this.options.retryMaxMs ?? 10_000, this.retryDelayMs * 2);
  }

  private tick(): void {
    if (this.closed || !this.client || this.sending || this._state === 'stopped') return;
    if (Date.now() < this.nextAttemptAt || this.pendingBytes === 0) return;
    void this.sendOnce();
  }

  /** One send of everything pending (serialised: concurrent callers share the in-flight send). True on success. */
  private sendOnce(signal?: AbortSignal): Promise<boolean> {
    if (this.sending) return this.sending;
    const p = this.doSend(signal).finally(() => {
      this.sending = undefined;
    });
    this.sending = p;
    return p;
  }

  private async doSend(signal?: AbortSignal): Promise<boolean> {
    const client = this.client;
    if (!client || this._state === 'stopped') return false;
    this.stats.sendAttempts++;
    const until = this.writer.offset;
    this.sinceSend = 0;
    try {
      if (!this.run) await this.connect(client, this.options.runId ?? process.env.MLFLOW_RUN_ID, signal);
      const run = this.run as RunInfo;
      const r = await pushSpool(this.runDir, client, run.runId, { until, signal });
      this.acked = r.cursor;
      this.stats.requests += r.requests;
      this._state = 'connected';
      this.retryDelayMs = this.options.retryInitialMs ?? 1000;
      this.nextAttemptAt = 0;
      return true;
    } catch (e) {
      this.stats.sendFailures++;
      this.acked = this.run ? readCursor(this.runDir, this.run.runId) : this.acked;
      if (e instanceof MlflowError && (e.retryable || e.errorCode === 'ABORTED')) {
        if (e.errorCode !== 'ABORTED') {
          this._state = 'retrying';
          this.warnOnce('unreachable', `MLflow at ${client.trackingUri} is not answering (${e.message}); spooling to ${join(this.runDir, 'spool.jsonl')} and retrying in the background — nothing is lost`);
        }
        this.backOff();
      } else {
        this._state = 'stopped';
        const hint = isAuthError(e) ? 'check MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN' : 'the run keeps being spooled';
        this.warnOnce('rejected', `MLflow at ${client.trackingUri} rejected the run's records (${(e as Error).message}); ${hint}; push it later with \`ewtune mlflow replay ${this.runDir}\``);
      }
      return false;
    }
  }

  /**
   * Sends everything recorded so far, retrying with back-off, until acknowledged or `deadlineMs` (default 10 s)
   * passes (an in-flight request is aborted at the deadline). Never rejects.
   */
  async flush(deadlineMs = 10_000): Promise<FlushResult> {
    this.writer.sync();
    if (!this.client || this._state === 'stopped') return { complete: false, pendingBytes: this.pendingBytes };
    const target = this.writer.offset;
    const deadline = Date.now() + deadlineMs;
    while (this.acked < target && this.state !== 'stopped') {
      const left = deadline - Date.now();
      if (left <= 0) break;
      if (this.sending) await withTimeout(this.sending, left);
      else {
        const wait = this.nextAttemptAt - Date.now();
        if (wait > 0) {
          await sleep(Math.min(wait, left));
          continue;
        }
        await this.sendOnce(AbortSignal.timeout(left));
      }
    }
    return { complete: this.acked >= target, pendingBytes: this.pendingBytes };
  }

  /**
   * Ends the run: appends the end record (status, end time), sends everything within `deadlineMs` (default 30 s),
   * then uploads artifacts/ — with no overall deadline unless `artifactDeadlineMs` is given: each upload request is
   * bounded by the client's inactivity timeout and retry policy (MLFLOW_HTTP_REQUEST_TIMEOUT, …), so a large model
   * that keeps moving is uploaded however slow the link or the machine, and a server that stops answering is given
   * up on. Closes the spool. What is not acknowledged or uploaded stays in the run directory for replay (warned
   * once). Never rejects on server problems.
   */
  async close(options: { status?: Exclude<RunStatus, 'RUNNING' | 'SCHEDULED'>; deadlineMs?: number; artifactDeadlineMs?: number } = {}): Promise<CloseResult> {
    const status = options.status ?? 'FINISHED';
    if (!END_STATUSES.has(status)) throw new InvalidArgumentError('status', status, 'FINISHED, KILLED or FAILED');
    for (const name of ['deadlineMs', 'artifactDeadlineMs'] as const) {
      const v = options[name];
      if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new InvalidArgumentError(name, v, 'a finite number of milliseconds ≥ 0');
    }
    if (this.closed) return { complete: this.acked >= this.writer.offset, pendingBytes: this.pendingBytes, runDir: this.runDir, remote: this.remote, artifacts: [] };
    const deadline = Date.now() + (options.deadlineMs ?? 30_000);
    this.append({ t: 'e', status, ts: this.clock() });
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    let artifacts: string[] = [];
    const result = await this.flush(Math.max(0, deadline - Date.now()));
    if (result.complete && this.client && this.run) {
      try {
        const signal = options.artifactDeadlineMs === undefined ? undefined : AbortSignal.timeout(Math.max(1, options.artifactDeadlineMs));
        artifacts = await uploadArtifacts(this.runDir, this.client, this.run, signal);
      } catch (e) {
        this.warnOnce('artifacts', `uploading artifacts of ${this.runDir} failed (${(e as Error).message}); push them later with \`ewtune mlflow replay ${this.runDir}\``);
      }
    } else if (this.client && this.state !== 'stopped') {
      // (A stopped sink has already warned, with the replay hint.)
      this.warnOnce('incomplete', `${this.pendingBytes} spool bytes of ${this.runDir} were not acknowledged by MLflow before the deadline; push them later with \`ewtune mlflow replay ${this.runDir}\``);
    }
    this.writer.close();
    this.client?.close();
    return { ...result, runDir: this.runDir, remote: this.remote, artifacts };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for `p` or `ms`, whichever is first, and clears the timer (no dangling timer keeps the process alive). */
async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
