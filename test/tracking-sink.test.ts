/**
 * TrackingSink, run directory and replay, against a REAL MLflow server (shared, test/support/mlflow-server.ts);
 * a scripted fake only for 401 and a server that rejects records.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '../src/errors.ts';
import { MlflowError } from '../src/tracking/errors.ts';
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { pushSpool, replayRunDir } from '../src/tracking/replay.ts';
import { TrackingSink } from '../src/tracking/sink.ts';
import { CURSOR_FILE, RUN_META_FILE, SPOOL_FILE, readRunMeta, readSpool, writeCursor } from '../src/tracking/spool.ts';
import { startFakeMlflow } from './support/fake-mlflow.ts';
import { freePort, sharedMlflowServer } from './support/mlflow-server.ts';

const unique = (p: string): string => `${p}-${randomUUID().slice(0, 8)}`;

describe('TrackingSink and replay against a real server', function () {
  this.timeout(120_000);
  let client: MlflowClient;
  const dirs: string[] = [];
  const newDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'ewtune-run-'));
    dirs.push(d);
    return d;
  };

  before(async () => {
    client = MlflowClient.fromEnv(await sharedMlflowServer(), {});
  });
  after(() => {
    client?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('sends params, tags, every metric point once, the end status and artifacts', async () => {
    const dir = newDir();
    const warnings: string[] = [];
    const experimentName = unique('sink');
    const sink = await TrackingSink.open({ runDir: dir, client, experimentName, runName: 'sink-basic', flushIntervalMs: 50, flushThreshold: 100, warn: (m) => warnings.push(m) });
    sink.logParam('noise_multiplier', 1.1);
    sink.setTag('ewtune.metric_kind.privacy/epsilon_edgeworth', 'estimate');
    const recorded: Array<[number, number]> = [];
    for (let step = 1; step <= 300; step++) {
      const value = 0.01 * step + 1e-9 * step * step;
      sink.record('privacy/epsilon_edgeworth', value, step);
      recorded.push([step, value]);
      if (step % 50 === 0) await new Promise((r) => setTimeout(r, 20)); // let the background sender run mid-way
    }
    sink.writeArtifact('privacy/ledger.jsonl', '{"step":1}\n');
    const closed = await sink.close({ status: 'KILLED' });
    assert.equal(closed.complete, true);
    assert.equal(closed.pendingBytes, 0);
    assert.deepEqual(closed.artifacts, ['privacy/ledger.jsonl']);
    assert.deepEqual(warnings, []);
    assert.ok(sink.stats.sendAttempts >= 2, 'sent in the background in several batches');
    const runId = closed.remote!.runId;
    const history = await client.getMetricHistory(runId, 'privacy/epsilon_edgeworth');
    assert.deepEqual(history.map((m) => [m.step, m.value]).sort((a, b) => a[0] - b[0]), recorded);
    const run = await client.getRun(runId);
    assert.equal(run.info.status, 'KILLED');
    assert.ok(run.info.endTime! >= run.info.startTime!);
    assert.equal(run.params.find((p) => p.key === 'noise_multiplier')?.value, '1.1');
    assert.equal(run.tags.find((t) => t.key === 'ewtune.metric_kind.privacy/epsilon_edgeworth')?.value, 'estimate');
    assert.equal(run.info.runName, 'sink-basic');
    assert.deepEqual((await client.listArtifacts(runId, 'privacy')).map((f) => f.path), ['privacy/ledger.jsonl']);
    // The run directory has the documented layout, and the cursor sits at the end of the spool.
    assert.ok(existsSync(join(dir, RUN_META_FILE)) && existsSync(join(dir, SPOOL_FILE)) && existsSync(join(dir, CURSOR_FILE)));
    const spoolSize = readFileSync(join(dir, SPOOL_FILE)).length;
    assert.deepEqual(JSON.parse(readFileSync(join(dir, CURSOR_FILE), 'utf8')), { [runId]: spoolSize });
    assert.deepEqual(readRunMeta(dir).remotes, [closed.remote]);
  });

  it('timestamps are taken at record time and stored with the point', async () => {
    const dir = newDir();
    let now = 1_700_000_000_000;
    const sink = await TrackingSink.open({ runDir: dir, client, experimentName: unique('clock'), clock: () => now });
    for (let step = 0; step < 5; step++) {
      now += 1000;
      sink.record('train/loss', 1 / (step + 1), step);
    }
    const { remote } = await sink.close();
    const history = await client.getMetricHistory(remote!.runId, 'train/loss');
    assert.deepEqual(history.map((m) => m.timestamp).sort(), [1, 2, 3, 4, 5].map((k) => 1_700_000_000_000 + 1000 * k));
  });

  it('resending the whole spool (cursor lost) adds no duplicate', async () => {
    const dir = newDir();
    const sink = await TrackingSink.open({ runDir: dir, client, experimentName: unique('resend') });
    for (let step = 0; step < 120; step++) sink.record('m', step * 0.5, step);
    sink.logParam('p', 'same');
    const { remote } = await sink.close();
    writeCursor(dir, remote!.runId, 0); // as if the acknowledgement had been lost in a crash
    const again = await pushSpool(dir, client, remote!.runId);
    assert.equal(again.metrics, 120, 'everything was sent a second time');
    assert.equal((await client.getMetricHistory(remote!.runId, 'm')).length, 120);
  });

  it('local mode writes the run directory only; replay pushes it once, a second replay adds nothing', async () => {
    const dir = newDir();
    const sink = await TrackingSink.open({ runDir: dir, experimentName: unique('local'), runName: 'offline' });
    assert.equal(sink.state, 'local');
    sink.logParam('sampling_rate', 0.01);
    sink.setTag('mode', 'local');
    for (let step = 1; step <= 250; step++) sink.record('privacy/epsilon_edgeworth', Math.sqrt(step) / 10, step);
    sink.writeArtifact('privacy/ledger.jsonl', 'l1\nl2\n');
    const closed = await sink.close({ status: 'FINISHED' });
    assert.equal(closed.complete, false);
    assert.equal(closed.remote, undefined);
    assert.ok(!existsSync(join(dir, CURSOR_FILE)));
    assert.equal(readFileSync(join(dir, SPOOL_FILE), 'utf8').trim().split('\n').length, 1 + 1 + 250 + 1);

    const first = await replayRunDir(dir, client);
    assert.equal(first.created, true);
    assert.deepEqual([first.metrics, first.params, first.tags, first.ended], [250, 1, 1, true]);
    assert.deepEqual(first.artifacts, ['privacy/ledger.jsonl']);
    const second = await replayRunDir(dir, client);
    assert.equal(second.created, false);
    assert.equal(second.remote.runId, first.remote.runId);
    assert.deepEqual([second.metrics, second.params, second.tags, second.requests], [0, 0, 0, 0]);

    const runId = first.remote.runId;
    const history = await client.getMetricHistory(runId, 'privacy/epsilon_edgeworth');
    assert.equal(history.length, 250);
    assert.equal(new Set(history.map((m) => m.step)).size, 250);
    const run = await client.getRun(runId);
    assert.equal(run.info.status, 'FINISHED');
    assert.equal(run.info.runName, 'offline');
    assert.equal(run.info.startTime, readRunMeta(dir).startTime);
    assert.equal((await client.getExperimentByName(readRunMeta(dir).experimentName!))?.experimentId, run.info.experimentId);
    const search = await client.searchRuns({ experimentIds: [run.info.experimentId] });
    assert.equal(search.runs.length, 1, 'a second replay created no second run');
    assert.deepEqual((await client.listArtifacts(runId, 'privacy')).map((f) => f.path), ['privacy/ledger.jsonl']);
  });

  it('resumes a server run given by MLFLOW_RUN_ID and sets it RUNNING', async () => {
    const experimentId = await client.getOrCreateExperiment(unique('resume'));
    const run = await client.createRun({ experimentId });
    await client.updateRun(run.runId, { status: 'FAILED', endTime: Date.now() });
    const saved = process.env.MLFLOW_RUN_ID;
    process.env.MLFLOW_RUN_ID = run.runId;
    let sink: TrackingSink;
    try {
      sink = await TrackingSink.open({ runDir: newDir(), client });
    } finally {
      if (saved === undefined) delete process.env.MLFLOW_RUN_ID;
      else process.env.MLFLOW_RUN_ID = saved;
    }
    assert.equal(sink.remote?.runId, run.runId);
    assert.equal((await client.getRun(run.runId)).info.status, 'RUNNING');
    sink.record('x', 1, 1);
    await sink.close();
    assert.equal((await client.getMetricHistory(run.runId, 'x')).length, 1);
    assert.equal((await client.getRun(run.runId)).info.status, 'FINISHED');
  });

  it('record() refuses invalid keys and steps at once; skips non-finite values with one warning', async () => {
    const warnings: string[] = [];
    const sink = await TrackingSink.open({ runDir: newDir(), warn: (m) => warnings.push(m) });
    assert.throws(() => sink.record('bad//key', 1, 1), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'key');
    assert.throws(() => sink.record('ok', 1, 1.5), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'step');
    assert.throws(() => sink.logParam('p', 'x'.repeat(6001)), InvalidArgumentError);
    sink.record('privacy/epsilon_edgeworth', Infinity, 1);
    sink.record('privacy/epsilon_edgeworth', NaN, 2);
    assert.equal(sink.stats.nonFiniteSkipped, 2);
    assert.equal(warnings.length, 1);
    assert.equal(sink.stats.recorded, 0);
    await sink.close();
  });

  it('an experiment deleted mid-run: training goes on, one warning, nothing lost from the run directory', async () => {
    const warnings: string[] = [];
    const dir = newDir();
    const sink = await TrackingSink.open({ runDir: dir, client, experimentName: unique('deleted'), flushIntervalMs: 20, warn: (m) => warnings.push(m) });
    for (let s = 0; s < 10; s++) sink.record('m', s, s);
    assert.equal((await sink.flush(60_000)).complete, true);
    await client.transport.request({ method: 'POST', path: '/api/2.0/mlflow/experiments/delete', json: { experiment_id: sink.remote!.experimentId } });
    for (let s = 10; s < 40; s++) sink.record('m', s, s); // must not throw
    const flushed = await sink.flush(60_000);
    assert.equal(flushed.complete, false);
    assert.equal(sink.state, 'stopped');
    await sink.close();
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /ewtune mlflow replay/);
    assert.equal(readSpool(dir, 0).records.filter((r) => r.record.t === 'm').length, 40);
  });

  it('readers ignore a torn last spool line (crash mid-write)', async () => {
    const dir = newDir();
    const sink = await TrackingSink.open({ runDir: dir });
    for (let s = 0; s < 3; s++) sink.record('m', s, s);
    await sink.close();
    appendFileSync(join(dir, SPOOL_FILE), '{"t":"m","k":"m","v":9,"ts":1');
    const chunk = readSpool(dir, 0);
    assert.equal(chunk.records.length, 4); // 3 points + end
    const replayed = await replayRunDir(dir, client, { experimentName: unique('torn') });
    assert.equal(replayed.metrics, 3);
  });
});

describe('TrackingSink: server faults before and during a run', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const newDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'ewtune-run-'));
    dirs.push(d);
    return d;
  };

  it('close() uploads the artifacts however long they take: a slow upload is not cut off by the spool deadline', async () => {
    // The artifact PUT answers 6 s after the request, past the close's 5 s spool deadline (which the few spooled
    // records meet with seconds to spare on any machine); the upload is bounded by the client's
    // inactivity timeout (120 s), not by that deadline (a large model on a slow link or a busy machine).
    const fake = await startFakeMlflow((r) => {
      if (r.url.startsWith('/api/2.0/mlflow/experiments/get-by-name')) return { status: 200, json: { experiment: { experiment_id: '3', name: 'e' } } };
      if (r.url.startsWith('/api/2.0/mlflow/experiments/create')) return { status: 200, json: { experiment_id: '3' } };
      if (r.url.startsWith('/api/2.0/mlflow/runs/create')) return { status: 200, json: { run: { info: { run_id: 'r1', experiment_id: '3', status: 'RUNNING', artifact_uri: 'mlflow-artifacts:/3/r1/artifacts', lifecycle_stage: 'active' } } } };
      if (r.url.startsWith('/api/2.0/mlflow/runs/update')) return { status: 200, json: { run_info: { run_id: 'r1', experiment_id: '3', status: 'FINISHED', artifact_uri: 'mlflow-artifacts:/3/r1/artifacts', lifecycle_stage: 'active' } } };
      if (r.url.startsWith('/api/2.0/mlflow-artifacts/')) return { status: 200, json: {}, delayMs: 6000 };
      return { status: 200, json: {} };
    });
    try {
      const warnings: string[] = [];
      const dir = newDir();
      const sink = await TrackingSink.open({ runDir: dir, client: MlflowClient.fromEnv(fake.uri, {}), warn: (m) => warnings.push(m) });
      for (let s = 0; s < 5; s++) sink.record('m', s, s);
      mkdirSync(join(dir, 'artifacts', 'model'), { recursive: true });
      writeFileSync(join(dir, 'artifacts', 'model', 'model.safetensors'), Buffer.alloc(3 << 20, 7));
      const closed = await sink.close({ deadlineMs: 5000 });
      assert.equal(closed.complete, true);
      assert.deepEqual(warnings, []);
      assert.deepEqual(closed.artifacts, ['model/model.safetensors']);
      const put = fake.requests.find((r) => r.method === 'PUT');
      assert.ok(put, 'the artifact was uploaded');
      assert.equal(Buffer.byteLength(put.body), 3 << 20);
      await assert.rejects(sink.close({ deadlineMs: -1 }), InvalidArgumentError);
    } finally {
      await fake.close();
    }
  });

  it('wrong credentials (401) fail open() before training starts, without the secret', async () => {
    const fake = await startFakeMlflow(() => ({ status: 401, json: { error_code: 'UNAUTHENTICATED', message: 'bad credentials' } }));
    try {
      const client = MlflowClient.fromEnv(fake.uri, { MLFLOW_TRACKING_TOKEN: 'very-secret-token' });
      await assert.rejects(TrackingSink.open({ runDir: newDir(), client }), (e: unknown) => e instanceof MlflowError && e.status === 401 && !e.message.includes('very-secret-token'));
      assert.equal(fake.requests.length, 1, 'a 401 is not retried');
    } finally {
      await fake.close();
    }
  });

  it('an unreachable server fails open() by default; with onUnreachable "spool" the run is spooled with one warning', async () => {
    const port = await freePort(); // nothing listens here
    const client = MlflowClient.fromEnv(`http://127.0.0.1:${port}`, { MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: '0', MLFLOW_HTTP_REQUEST_BACKOFF_JITTER: '0' });
    await assert.rejects(TrackingSink.open({ runDir: newDir(), client }), (e: unknown) => e instanceof MlflowError && e.errorCode === 'CONNECTION_ERROR');
    const warnings: string[] = [];
    const dir = newDir();
    const sink = await TrackingSink.open({ runDir: dir, client, onUnreachable: 'spool', flushIntervalMs: 20, retryInitialMs: 20, retryMaxMs: 40, warn: (m) => warnings.push(m) });
    for (let s = 0; s < 50; s++) sink.record('m', s, s);
    // Several background attempts fail: wait for them (a condition, not a guess of how long they take).
    while (sink.stats.sendFailures < 2) await new Promise((r) => setTimeout(r, 20));
    assert.ok(sink.stats.sendFailures >= 2);
    assert.equal(sink.state, 'retrying');
    const closed = await sink.close({ deadlineMs: 200 });
    assert.equal(closed.complete, false);
    assert.equal(warnings.length, 2, warnings.join('\n')); // "unreachable" once + "not acknowledged, replay later" once
    assert.match(warnings[1], /ewtune mlflow replay/);
    assert.equal(readSpool(dir, 0).records.length, 51);
  });

  it('a server that rejects the records stops sending, warns once, keeps spooling', async () => {
    const fake = await startFakeMlflow((r) => {
      if (r.url.startsWith('/api/2.0/mlflow/experiments/create')) return { status: 200, json: { experiment_id: '3' } };
      if (r.url.startsWith('/api/2.0/mlflow/runs/create')) return { status: 200, json: { run: { info: { run_id: 'r1', experiment_id: '3', status: 'RUNNING', artifact_uri: 'mlflow-artifacts:/3/r1/artifacts', lifecycle_stage: 'active' } } } };
      return { status: 400, json: { error_code: 'INVALID_STATE', message: 'The run r1 must be in the active state' } };
    });
    try {
      const warnings: string[] = [];
      const dir = newDir();
      const sink = await TrackingSink.open({ runDir: dir, client: MlflowClient.fromEnv(fake.uri, {}), flushIntervalMs: 20, warn: (m) => warnings.push(m) });
      for (let s = 0; s < 10; s++) sink.record('m', s, s);
      await sink.flush(60_000);
      for (let s = 10; s < 20; s++) sink.record('m', s, s);
      // The second batch is rejected: wait until the sink has stopped (it then sends nothing more, by design).
      while (sink.state !== 'stopped') await new Promise((r) => setTimeout(r, 20));
      assert.equal(sink.state, 'stopped');
      const logBatchCalls = fake.requests.filter((r) => r.url.includes('log-batch')).length;
      assert.equal(logBatchCalls, 1, 'no retry of a rejected batch');
      await sink.close();
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0], /INVALID_STATE/);
      assert.equal(readSpool(dir, 0).records.filter((r) => r.record.t === 'm').length, 20);
    } finally {
      await fake.close();
    }
  });
});
