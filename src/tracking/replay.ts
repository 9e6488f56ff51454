/**
 * Pushing a run directory (see spool.ts for the layout) to an MLflow server: find or create the server run,
 * send the spool from the acknowledged cursor in batches, apply the run end, upload artifacts/. Used by
 * `ewtune mlflow replay <run dir>` and, incrementally, by the TrackingSink's background sender.
 * Every step is idempotent: metrics are de-duplicated by the SQL store (same key/timestamp/step/value), params
 * may be re-logged with the same value, tags and artifacts are overwritten with the same content.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { MlflowError } from './errors.ts';
import type { Metric, MlflowClient, Param, RunInfo, Tag } from './mlflow-client.ts';
import { markCrashedIfDead } from './liveness.ts';
import { ARTIFACTS_DIR, readCursor, readRunMeta, readSpool, recordRemote, toMetric, writeCursor, type RemoteRun } from './spool.ts';

/** Experiment used when neither the caller nor run.json names one. */
export const DEFAULT_EXPERIMENT_NAME = 'ewtune';

/**
 * The server run for this directory on `client`'s server: `options.runId` if given (resumed), else the one recorded
 * in run.json for this server (if it still exists), else a new run in `options.experimentName` / run.json's
 * experiment / {@link DEFAULT_EXPERIMENT_NAME}, created with run.json's start time and name. The mapping is recorded
 * in run.json before anything is sent, so an interrupted replay resumes the same run.
 */
export async function ensureRemoteRun(dir: string, client: MlflowClient, options: { experimentName?: string; runId?: string; signal?: AbortSignal } = {}): Promise<{ run: RunInfo; created: boolean }> {
  const meta = readRunMeta(dir);
  const runId = options.runId ?? meta.remotes.find((r) => r.trackingUri === client.trackingUri)?.runId;
  if (runId) {
    try {
      const run = (await client.getRun(runId, options.signal)).info;
      recordRemote(dir, { trackingUri: client.trackingUri, experimentId: run.experimentId, runId: run.runId });
      return { run, created: false };
    } catch (e) {
      // A recorded run that no longer exists (e.g. another server at the same URI): create a fresh one.
      if (options.runId || !(e instanceof MlflowError && e.errorCode === 'RESOURCE_DOES_NOT_EXIST')) throw e;
    }
  }
  const experimentId = await client.getOrCreateExperiment(options.experimentName ?? meta.experimentName ?? DEFAULT_EXPERIMENT_NAME, options.signal);
  const run = await client.createRun({ experimentId, runName: meta.runName, startTime: meta.startTime }, options.signal);
  recordRemote(dir, { trackingUri: client.trackingUri, experimentId, runId: run.runId });
  return { run, created: true };
}

/** Counts of what one push sent. */
export interface PushResult {
  metrics: number;
  params: number;
  tags: number;
  /** Run end applied (status + end time). */
  ended: boolean;
  /** `runs/log-batch` requests made. */
  requests: number;
  /** Spool offset acknowledged after this push. */
  cursor: number;
  /** Complete spool lines that were not valid records (skipped). */
  invalidLines: number;
}

/**
 * Sends the spool of `dir` to run `runId` from its acknowledged cursor up to `until` (default: the end), in batches
 * of at most `batchEntities` records, advancing sent.cursor after each acknowledged batch. Rejects with the first
 * MlflowError; what was acknowledged before stays acknowledged.
 */
export async function pushSpool(dir: string, client: MlflowClient, runId: string, options: { until?: number; batchEntities?: number; signal?: AbortSignal } = {}): Promise<PushResult> {
  const batchEntities = options.batchEntities ?? 1000;
  const result: PushResult = { metrics: 0, params: 0, tags: 0, ended: false, requests: 0, cursor: readCursor(dir, runId), invalidLines: 0 };
  for (;;) {
    const chunk = readSpool(dir, result.cursor, { until: options.until, maxBytes: 400_000 });
    result.invalidLines += chunk.invalidLines;
    if (chunk.records.length === 0) {
      if (chunk.next > result.cursor) {
        result.cursor = chunk.next; // only invalid lines: skip them
        writeCursor(dir, runId, result.cursor);
        continue;
      }
      return result;
    }
    let metrics: Metric[] = [];
    let params: Param[] = [];
    let tags: Tag[] = [];
    let batchEnd = result.cursor;
    const sendBatch = async (): Promise<void> => {
      if (metrics.length + params.length + tags.length > 0) {
        const r = await client.logBatch(runId, { metrics, params, tags }, options.signal);
        result.requests += r.requests;
        result.metrics += metrics.length;
        result.params += params.length;
        result.tags += tags.length;
        metrics = [];
        params = [];
        tags = [];
      }
      if (batchEnd > result.cursor) {
        result.cursor = batchEnd;
        writeCursor(dir, runId, result.cursor);
      }
    };
    for (const { record, end } of chunk.records) {
      if (record.t === 'e') {
        await sendBatch();
        await client.updateRun(runId, { status: record.status, endTime: record.ts }, options.signal);
        result.ended = true;
        batchEnd = end;
        await sendBatch();
        continue;
      }
      if (record.t === 'm') metrics.push(toMetric(record));
      else if (record.t === 'p') params.push({ key: record.k, value: record.v });
      else tags.push({ key: record.k, value: record.v });
      batchEnd = end;
      if (metrics.length + params.length + tags.length >= batchEntities) await sendBatch();
    }
    await sendBatch();
    if (chunk.next > result.cursor) {
      result.cursor = chunk.next; // trailing invalid lines
      writeCursor(dir, runId, result.cursor);
    }
  }
}

/** Relative paths (with `/`) of every file under `<dir>/artifacts`. */
export function listLocalArtifacts(dir: string): string[] {
  const root = join(dir, ARTIFACTS_DIR);
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const name of entries.sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) out.push(relative(root, p).split(sep).join('/'));
    }
  };
  walk(root);
  return out;
}

/** Uploads every file under `<dir>/artifacts` to the run (overwriting: idempotent). Returns the paths uploaded. */
export async function uploadArtifacts(dir: string, client: MlflowClient, run: RunInfo, signal?: AbortSignal): Promise<string[]> {
  const paths = listLocalArtifacts(dir);
  for (const p of paths) await client.uploadArtifactFile(run, join(dir, ARTIFACTS_DIR, ...p.split('/')), p, signal);
  return paths;
}

/** What {@link replayRunDir} did. */
export interface ReplayResult extends PushResult {
  readonly remote: RemoteRun;
  /** A new server run was created (false when an earlier replay's run, or `runId`, was used). */
  readonly created: boolean;
  readonly artifacts: string[];
  /** The run's last session had died without ending the run (its process is gone): marked FAILED, tag ewtune.stop_reason=crashed. */
  readonly crashed: boolean;
}

/**
 * Pushes a run directory to `client`'s server: marks a crashed last session FAILED (see liveness.ts), ensures the server run (see `ensureRemoteRun` in replay.ts), sends the
 * unacknowledged part of the spool, applies the run end, uploads artifacts/. A second replay to the same server adds
 * nothing (same run, cursor at the end, artifacts overwritten with identical content).
 */
export async function replayRunDir(dir: string, client: MlflowClient, options: { experimentName?: string; runId?: string; signal?: AbortSignal } = {}): Promise<ReplayResult> {
  // A session left RUNNING by a process that no longer exists (SIGKILL, power loss) ends FAILED/crashed (liveness.ts).
  const { crashed } = markCrashedIfDead(dir);
  const { run, created } = await ensureRemoteRun(dir, client, options);
  const pushed = await pushSpool(dir, client, run.runId, { signal: options.signal });
  const artifacts = await uploadArtifacts(dir, client, run, options.signal);
  return { ...pushed, remote: { trackingUri: client.trackingUri, experimentId: run.experimentId, runId: run.runId }, created, artifacts, crashed };
}
