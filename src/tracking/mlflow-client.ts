/**
 * Typed MLflow REST client (tracking API `/api/2.0/mlflow/...`, artifacts through the server's proxied
 * `/api/2.0/mlflow-artifacts/artifacts/...`). Checked against a real MLflow 3.11.1 server.
 */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../errors.ts';
import { MlflowError } from './errors.ts';
import { HttpTransport, httpSettingsFromEnv, type HttpOverrides } from './http.ts';
import { LOG_BATCH_LIMITS, assertMetric, assertMlflowKey, assertParam, assertTag } from './keys.ts';

export interface Metric {
  readonly key: string;
  readonly value: number;
  /** ms since the epoch, taken when the value was recorded. */
  readonly timestamp: number;
  readonly step: number;
}
export interface Param {
  readonly key: string;
  readonly value: string;
}
export type Tag = Param;
export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface Experiment {
  readonly experimentId: string;
  readonly name: string;
  readonly artifactLocation?: string;
  readonly lifecycleStage: string;
}
export interface RunInfo {
  readonly runId: string;
  readonly experimentId: string;
  readonly runName?: string;
  readonly status: RunStatus;
  readonly startTime?: number;
  readonly endTime?: number;
  /** e.g. `mlflow-artifacts:/1/<run id>/artifacts`. */
  readonly artifactUri: string;
  readonly lifecycleStage: string;
}
export interface Run {
  readonly info: RunInfo;
  /** Latest value of each metric. */
  readonly metrics: Metric[];
  readonly params: Param[];
  readonly tags: Tag[];
}
export interface FileInfo {
  readonly path: string;
  readonly isDir: boolean;
  readonly fileSize?: number;
}
export interface LogBatch {
  readonly metrics?: readonly Metric[];
  readonly params?: readonly Param[];
  readonly tags?: readonly Tag[];
}

/* eslint-disable @typescript-eslint/no-explicit-any */
function toRunInfo(raw: any): RunInfo {
  return {
    runId: raw.run_id ?? raw.run_uuid,
    experimentId: String(raw.experiment_id),
    runName: raw.run_name,
    status: raw.status,
    startTime: raw.start_time === undefined ? undefined : Number(raw.start_time),
    endTime: raw.end_time === undefined ? undefined : Number(raw.end_time),
    artifactUri: raw.artifact_uri,
    lifecycleStage: raw.lifecycle_stage,
  };
}
function toMetric(raw: any): Metric {
  return { key: raw.key, value: Number(raw.value), timestamp: Number(raw.timestamp), step: Number(raw.step ?? 0) };
}
function toRun(raw: any): Run {
  return {
    info: toRunInfo(raw.info),
    metrics: (raw.data?.metrics ?? []).map(toMetric),
    params: (raw.data?.params ?? []).map((p: any) => ({ key: p.key, value: p.value })),
    tags: (raw.data?.tags ?? []).map((t: any) => ({ key: t.key, value: t.value })),
  };
}
function toExperiment(raw: any): Experiment {
  return { experimentId: String(raw.experiment_id), name: raw.name, artifactLocation: raw.artifact_location, lifecycleStage: raw.lifecycle_stage };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Rough JSON size of one entry in a log-batch body (bytes). */
function entryBytes(e: { key: string; value: unknown }): number {
  return Buffer.byteLength(e.key) + (typeof e.value === 'string' ? Buffer.byteLength(e.value) : 24) + 64;
}

/**
 * Splits a batch into requests within MLflow's limits: ≤ 1000 metrics, ≤ 100 params, ≤ 100 tags, ≤ 1000 entities
 * and < 1 MB per request. Order is kept (params, then tags, then metrics), so params land before metrics.
 */
export function chunkLogBatch(batch: LogBatch): Array<{ metrics: Metric[]; params: Param[]; tags: Tag[] }> {
  const chunks: Array<{ metrics: Metric[]; params: Param[]; tags: Tag[] }> = [];
  let cur = { metrics: [] as Metric[], params: [] as Param[], tags: [] as Tag[] };
  let bytes = 0;
  const byteBudget = LOG_BATCH_LIMITS.requestBytes - 10_000;
  const push = <K extends 'metrics' | 'params' | 'tags'>(kind: K, entry: (typeof cur)[K][number], limit: number): void => {
    const size = entryBytes(entry as { key: string; value: unknown });
    const count = cur.metrics.length + cur.params.length + cur.tags.length;
    if (cur[kind].length >= limit || count >= LOG_BATCH_LIMITS.entities || bytes + size > byteBudget) {
      chunks.push(cur);
      cur = { metrics: [], params: [], tags: [] };
      bytes = 0;
    }
    (cur[kind] as unknown[]).push(entry);
    bytes += size;
  };
  for (const p of batch.params ?? []) push('params', p, LOG_BATCH_LIMITS.params);
  for (const t of batch.tags ?? []) push('tags', t, LOG_BATCH_LIMITS.tags);
  for (const m of batch.metrics ?? []) push('metrics', m, LOG_BATCH_LIMITS.metrics);
  if (cur.metrics.length + cur.params.length + cur.tags.length > 0) chunks.push(cur);
  return chunks;
}

/**
 * Maps a run's `artifact_uri` (`mlflow-artifacts:/<exp>/<run>/artifacts` or `mlflow-artifacts://host/...`) to the
 * path under `/api/2.0/mlflow-artifacts/artifacts/`. Throws if the server does not proxy artifacts.
 */
export function artifactApiPath(artifactUri: string): string {
  const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/?(.*)$/.exec(artifactUri);
  if (!m) throw new InvalidArgumentError('artifactUri', artifactUri, "an 'mlflow-artifacts:' URI (start the server with --artifacts-destination / proxied artifacts)");
  return m[1].replace(/\/+$/, '');
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

function assertArtifactPath(path: string): void {
  if (!path || path.startsWith('/') || path.split('/').some((p) => p === '' || p === '.' || p === '..')) throw new InvalidArgumentError('artifactPath', path, "a relative path without '.', '..' or empty segments");
}

/** Typed client for one tracking server. Methods reject with {@link MlflowError} on failure. */
export class MlflowClient {
  /** The HTTP transport (node:http/https with auth, TLS, proxy and retries). */
  readonly transport: HttpTransport;

  constructor(transport: HttpTransport) {
    this.transport = transport;
  }

  /** Client for `trackingUri` (default MLFLOW_TRACKING_URI) with auth/TLS/proxy/retry settings from `env`. */
  static fromEnv(trackingUri?: string, env: NodeJS.ProcessEnv = process.env, overrides: HttpOverrides = {}): MlflowClient {
    const uri = trackingUri ?? env.MLFLOW_TRACKING_URI;
    if (!uri) throw new InvalidArgumentError('trackingUri', uri, 'given (option or MLFLOW_TRACKING_URI)');
    return new MlflowClient(new HttpTransport(httpSettingsFromEnv(uri, env, overrides)));
  }

  /** Base URL of the server (without credentials). */
  get trackingUri(): string {
    return this.transport.settings.baseUrl;
  }

  /** Same server and credentials, other retry/timeout settings (e.g. `{ maxRetries: 0 }` for a background sender). */
  withOptions(overrides: HttpOverrides): MlflowClient {
    return new MlflowClient(this.transport.with(overrides));
  }

  /** Closes idle keep-alive sockets (lets the process exit promptly). */
  close(): void {
    this.transport.close();
  }

  private async call<T>(method: 'GET' | 'POST', endpoint: string, payload: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    const path = `/api/2.0/mlflow/${endpoint}`;
    const res =
      method === 'GET'
        ? await this.transport.request({ method, path, query: payload as Record<string, string | number | undefined>, signal })
        : await this.transport.request({ method, path, json: payload, signal });
    const text = res.body.toString('utf8');
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** The experiment called `name`, or `undefined` if there is none (404 RESOURCE_DOES_NOT_EXIST). */
  async getExperimentByName(name: string, signal?: AbortSignal): Promise<Experiment | undefined> {
    try {
      const r = await this.call<{ experiment: unknown }>('GET', 'experiments/get-by-name', { experiment_name: name }, signal);
      return toExperiment(r.experiment);
    } catch (e) {
      if (e instanceof MlflowError && e.errorCode === 'RESOURCE_DOES_NOT_EXIST') return undefined;
      throw e;
    }
  }

  /** Creates an experiment; returns its id. Rejects with RESOURCE_ALREADY_EXISTS if the name is taken. */
  async createExperiment(name: string, options: { artifactLocation?: string; tags?: readonly Tag[] } = {}, signal?: AbortSignal): Promise<string> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 500) throw new InvalidArgumentError('experimentName', name, 'a non-empty string of at most 500 characters');
    const r = await this.call<{ experiment_id: string }>('POST', 'experiments/create', { name, artifact_location: options.artifactLocation, tags: options.tags }, signal);
    return String(r.experiment_id);
  }

  /**
   * Id of the active experiment `name`, creating it if needed. Race-safe: create first; on RESOURCE_ALREADY_EXISTS
   * (another process won) read it by name. Rejects if the experiment exists but is deleted.
   */
  async getOrCreateExperiment(name: string, signal?: AbortSignal): Promise<string> {
    try {
      return await this.createExperiment(name, {}, signal);
    } catch (e) {
      if (!(e instanceof MlflowError && e.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw e;
      const existing = await this.getExperimentByName(name, signal);
      if (!existing) throw e;
      if (existing.lifecycleStage !== 'active') throw new MlflowError({ status: e.status, errorCode: 'INVALID_STATE', endpoint: e.endpoint, detail: `experiment ${JSON.stringify(name)} (id ${existing.experimentId}) is ${existing.lifecycleStage}; restore it or choose another name`, retryable: false });
      return existing.experimentId;
    }
  }

  /** Creates a run (status RUNNING). `startTime` defaults to now. */
  async createRun(args: { experimentId: string; runName?: string; startTime?: number; tags?: readonly Tag[] }, signal?: AbortSignal): Promise<RunInfo> {
    (args.tags ?? []).forEach((t, i) => assertTag(`tags[${i}]`, t));
    const r = await this.call<{ run: unknown }>('POST', 'runs/create', { experiment_id: String(args.experimentId), run_name: args.runName, start_time: args.startTime ?? Date.now(), tags: args.tags }, signal);
    return toRun(r.run).info;
  }

  /**
   * The run's info, params, tags and latest metrics (`runs/get`). Rejects with {@link MlflowError} (e.g. RESOURCE_DOES_NOT_EXIST).
   */
  async getRun(runId: string, signal?: AbortSignal): Promise<Run> {
    const r = await this.call<{ run: unknown }>('GET', 'runs/get', { run_id: runId }, signal);
    return toRun(r.run);
  }

  /** Sets status and/or end time (and/or name) of a run. */
  async updateRun(runId: string, update: { status?: RunStatus; endTime?: number; runName?: string }, signal?: AbortSignal): Promise<RunInfo> {
    const r = await this.call<{ run_info: unknown }>('POST', 'runs/update', { run_id: runId, status: update.status, end_time: update.endTime, run_name: update.runName }, signal);
    return toRunInfo(r.run_info);
  }

  /**
   * Resumes an existing run (as `mlflow.start_run(run_id=...)`): `runId` defaults to MLFLOW_RUN_ID; a run that is not
   * RUNNING is set back to RUNNING. Rejects with RESOURCE_DOES_NOT_EXIST if there is no such run.
   */
  async resumeRun(runId: string | undefined = process.env.MLFLOW_RUN_ID, signal?: AbortSignal): Promise<Run> {
    if (!runId) throw new InvalidArgumentError('runId', runId, 'given (argument or MLFLOW_RUN_ID)');
    const run = await this.getRun(runId, signal);
    if (run.info.lifecycleStage !== 'active') throw new MlflowError({ status: undefined, errorCode: 'INVALID_STATE', endpoint: 'GET /api/2.0/mlflow/runs/get', detail: `run ${runId} is ${run.info.lifecycleStage}`, retryable: false });
    if (run.info.status === 'RUNNING') return run;
    const info = await this.updateRun(runId, { status: 'RUNNING' }, signal);
    return { ...run, info };
  }

  /**
   * Logs metrics, params and tags, split into as many `runs/log-batch` requests as MLflow's limits require (see
   * `chunkLogBatch`). Everything is validated before the first request (InvalidArgumentError). Resending a
   * metric with the same key/timestamp/step/value is a no-op on the SQL store, so a retried batch does not duplicate.
   */
  async logBatch(runId: string, batch: LogBatch, signal?: AbortSignal): Promise<{ requests: number }> {
    (batch.metrics ?? []).forEach((m, i) => assertMetric(`metrics[${i}]`, m));
    (batch.params ?? []).forEach((p, i) => assertParam(`params[${i}]`, p));
    (batch.tags ?? []).forEach((t, i) => assertTag(`tags[${i}]`, t));
    const chunks = chunkLogBatch(batch);
    for (const c of chunks) await this.call('POST', 'runs/log-batch', { run_id: runId, metrics: c.metrics, params: c.params, tags: c.tags }, signal);
    return { requests: chunks.length };
  }

  /**
   * Logs one metric point (`runs/log-metric`). Throws {@link InvalidArgumentError} before sending for a key MLflow
   * would refuse, a non-finite value or a non-integer step/timestamp; rejects with {@link MlflowError} on a server error.
   */
  async logMetric(runId: string, metric: Metric, signal?: AbortSignal): Promise<void> {
    assertMetric('metric', metric);
    await this.call('POST', 'runs/log-metric', { run_id: runId, key: metric.key, value: metric.value, timestamp: metric.timestamp, step: metric.step }, signal);
  }

  /**
   * Logs one param (`runs/log-parameter`; params are immutable: a different value for the same key is a 400).
   * Throws {@link InvalidArgumentError} for an invalid key or a value over 6000 characters; rejects with {@link MlflowError}.
   */
  async logParam(runId: string, key: string, value: string, signal?: AbortSignal): Promise<void> {
    assertParam('param', { key, value });
    await this.call('POST', 'runs/log-parameter', { run_id: runId, key, value }, signal);
  }

  /**
   * Sets one tag (`runs/set-tag`). Throws {@link InvalidArgumentError} for an invalid key or a value over 8000 characters;
   * rejects with {@link MlflowError}.
   */
  async setTag(runId: string, key: string, value: string, signal?: AbortSignal): Promise<void> {
    assertTag('tag', { key, value });
    await this.call('POST', 'runs/set-tag', { run_id: runId, key, value }, signal);
  }

  /** Every point of a metric, following `next_page_token`; always sends `max_results` (MLflow 3.4+ needs it). */
  async getMetricHistory(runId: string, key: string, options: { pageSize?: number; signal?: AbortSignal } = {}): Promise<Metric[]> {
    assertMlflowKey('metricKey', key);
    const pageSize = options.pageSize ?? 25_000;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 25_000) throw new InvalidArgumentError('pageSize', pageSize, 'an integer in [1, 25000]');
    const out: Metric[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.call<{ metrics?: unknown[]; next_page_token?: string }>('GET', 'metrics/get-history', { run_id: runId, metric_key: key, max_results: pageSize, page_token: pageToken }, options.signal);
      for (const m of r.metrics ?? []) out.push(toMetric(m));
      pageToken = r.next_page_token || undefined;
    } while (pageToken);
    return out;
  }

  /** One page of `runs/search`. */
  async searchRuns(args: { experimentIds: readonly string[]; filter?: string; maxResults?: number; orderBy?: readonly string[]; pageToken?: string }, signal?: AbortSignal): Promise<{ runs: Run[]; nextPageToken?: string }> {
    const r = await this.call<{ runs?: unknown[]; next_page_token?: string }>(
      'POST',
      'runs/search',
      { experiment_ids: args.experimentIds.map(String), filter: args.filter, max_results: args.maxResults ?? 1000, order_by: args.orderBy, page_token: args.pageToken },
      signal,
    );
    return { runs: (r.runs ?? []).map(toRun), nextPageToken: r.next_page_token || undefined };
  }

  /**
   * Uploads `content` as artifact `artifactPath` of a run through the server's artifact proxy
   * (`PUT /api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path>`). `run` is a RunInfo or an artifact URI.
   * Idempotent: re-uploading overwrites the file.
   */
  async uploadArtifact(run: RunInfo | string, artifactPath: string, content: Buffer | string, options: { contentType?: string; signal?: AbortSignal } = {}): Promise<void> {
    assertArtifactPath(artifactPath);
    const base = artifactApiPath(typeof run === 'string' ? run : run.artifactUri);
    await this.transport.request({ method: 'PUT', path: `/api/2.0/mlflow-artifacts/artifacts/${encodePath(base)}/${encodePath(artifactPath)}`, body: content, contentType: options.contentType ?? contentTypeOf(artifactPath), signal: options.signal });
  }

  /** Uploads a local file as artifact `artifactPath`. */
  async uploadArtifactFile(run: RunInfo | string, localPath: string, artifactPath: string, signal?: AbortSignal): Promise<void> {
    await this.uploadArtifact(run, artifactPath, await readFile(localPath), { signal });
  }

  /** Lists a run's artifacts under `path` (one level; paths are relative to the run's artifact root). */
  async listArtifacts(runId: string, path?: string, signal?: AbortSignal): Promise<FileInfo[]> {
    const r = await this.call<{ files?: Array<{ path: string; is_dir: boolean; file_size?: number | string }> }>('GET', 'artifacts/list', { run_id: runId, path }, signal);
    return (r.files ?? []).map((f) => ({ path: f.path, isDir: !!f.is_dir, fileSize: f.file_size === undefined ? undefined : Number(f.file_size) }));
  }
}

function contentTypeOf(path: string): string {
  const ext = path.slice(path.lastIndexOf('.') + 1).toLowerCase();
  const types: Record<string, string> = { svg: 'image/svg+xml', png: 'image/png', html: 'text/html; charset=utf-8', json: 'application/json', jsonl: 'application/x-ndjson', txt: 'text/plain; charset=utf-8', csv: 'text/csv' };
  return types[ext] ?? 'application/octet-stream';
}
