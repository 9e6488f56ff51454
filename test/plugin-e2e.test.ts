/**
 * The plugin end to end against a REAL MLflow server (test/support/mlflow-server.ts) and a real headless Chromium:
 * `runTraining` on the SpamAssassin corpus with the pre-trained embedding (small sizes), then the server's
 * get-history compared with an independent replay of the run's ledger, params, tags, status, artifacts; a budget
 * stop (KILLED); the MLflow UI's privacy charts; local mode + `ewtune mlflow replay`; SIGTERM; config errors.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { EdgeworthAccountant } from '../src/accounting/edgeworth/index.ts';
import { PrivacyLedger } from '../src/accounting/ledger.ts';
import { pldEpsilon } from '../src/accounting/pld/index.ts';
import { main } from '../src/cli/main.ts';
import { MlflowClient, type Metric } from '../src/tracking/mlflow-client.ts';
import { readSpool, type SpoolRecord } from '../src/tracking/spool.ts';
import { TrackingSink } from '../src/tracking/sink.ts';
import { dpFit } from '../src/train/index.ts';
import { validateConfig, type TrainingConfig } from '../plugin/config.ts';
import { PrivacyTrackingCallback } from '../plugin/callback.ts';
import { runTraining, type RunResult } from '../plugin/run.ts';
import { sharedMlflowServer } from './support/mlflow-server.ts';
import { screenshotHtmlArtifact, screenshotRunCharts } from './support/browser.ts';

const unique = (p: string): string => `${p}-${randomUUID().slice(0, 8)}`;
const quiet = { log: () => undefined, handleSignals: false } as const;

function smallConfig(runDir: string, overrides: { training?: object; privacy?: object; name?: string } = {}): TrainingConfig {
  return validateConfig({
    name: overrides.name ?? unique('e2e'),
    experimentName: 'ewtune-tests',
    data: { kind: 'spam-assassin', maxTokens: 16, vocabularySize: 20000, maxExamples: 400 },
    model: { kind: 'transformer-classifier', embedding: 'wink-glove-100d', dModel: 16, heads: 2, ffnDim: 32, layers: 1 },
    training: { steps: 12, expectedBatchSize: 32, l2NormClip: 1, optimizer: 'adam', learningRate: 0.01, backend: 'cpu', ...overrides.training },
    privacy: { targetEpsilon: 4, delta: 1e-5, ...overrides.privacy },
    tracking: { runDir },
  });
}

function relClose(a: number, b: number, rel: number): boolean {
  return Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));
}

describe('plugin end to end (real MLflow server, real Chromium)', function () {
  this.timeout(300_000);
  let uri: string;
  let client: MlflowClient;
  const dirs: string[] = [];
  const newDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'ewtune-e2e-'));
    dirs.push(d);
    return d;
  };
  let completed: RunResult;

  before(async () => {
    uri = await sharedMlflowServer();
    client = MlflowClient.fromEnv(uri, {});
  });
  after(async () => {
    client?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await tf.setBackend('cpu');
  });

  it('a DP run: one privacy/epsilon_edgeworth point per step, equal to the ledger replay; params, tags, FINISHED, artifacts', async () => {
    // 3 epochs of 4 steps (q = 100/400): held-out scores after each epoch.
    const config = smallConfig(newDir(), { training: { maxSteps: undefined, steps: undefined, epochs: 3, expectedBatchSize: 100 } });
    config.tracking.trackingUri = uri;
    completed = await runTraining(config, { ...quiet, certifiedIn: 'inline' });
    assert.equal(completed.status, 'FINISHED');
    assert.equal(completed.stopReason, 'completed');
    assert.equal(completed.steps, 12);
    assert.ok(completed.runId && completed.complete);

    const runId = completed.runId;
    const history = await client.getMetricHistory(runId, 'privacy/epsilon_edgeworth');
    assert.deepEqual(history.map((m) => m.step).sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i + 1));

    // Independent recomputation from the durable ledger (what was actually recorded before each update).
    const ledger = PrivacyLedger.openSync(join(completed.runDir, 'artifacts', 'privacy', 'ledger.jsonl'));
    assert.equal(ledger.steps, 12);
    const acc = new EdgeworthAccountant({ order: 1 });
    const byStep = new Map(history.map((m: Metric) => [m.step, m.value]));
    ledger.records.forEach((r, i) => {
      acc.compose({ sampleRate: r.sampleRate, noiseMultiplier: r.noiseMultiplier }, r.count);
      const expected = acc.getEpsilon(1e-5).epsilon;
      assert.ok(relClose(byStep.get(i + 1) as number, expected, 1e-12), `step ${i + 1}: ${byStep.get(i + 1)} vs ${expected}`);
    });
    // The certified curve: its last point is the PLD upper bound of the whole ledger.
    const certified = await client.getMetricHistory(runId, 'privacy/epsilon_certified');
    assert.ok(certified.length >= 2, 'certified ε at least at step 1 and at the end');
    const last = certified.reduce((a, b) => (a.step >= b.step ? a : b));
    assert.equal(last.step, 12);
    assert.ok(relClose(last.value, pldEpsilon(ledger.segments(), 1e-5).epsilon, 1e-12));
    assert.ok(last.value <= 4, 'certified ε within the target');
    ledger.closeSync();
    for (const key of ['privacy/delta', 'privacy/delta_log10', 'privacy/epsilon_rdp', 'train/loss', 'train/batch_size']) {
      assert.equal((await client.getMetricHistory(runId, key)).length, 12, key);
    }
    // δ ~ 1e-6 and its readable log10, point by point; the budget used = certified ε / target ε at each certified point.
    const deltaByStep = new Map((await client.getMetricHistory(runId, 'privacy/delta')).map((m) => [m.step, m.value]));
    for (const m of await client.getMetricHistory(runId, 'privacy/delta_log10')) {
      assert.ok(relClose(m.value, Math.log10(deltaByStep.get(m.step) as number), 1e-12), `delta_log10 at step ${m.step}`);
    }
    const budgetUsed = new Map((await client.getMetricHistory(runId, 'privacy/budget_used')).map((m) => [m.step, m.value]));
    assert.deepEqual([...budgetUsed.keys()].sort((a, b) => a - b), certified.map((m) => m.step).sort((a, b) => a - b));
    for (const m of certified) assert.ok(relClose(budgetUsed.get(m.step) as number, m.value / 4, 1e-12), `budget_used at step ${m.step}`);
    // Held-out scores after every epoch (steps 4, 8, 12); the last one is the run's reported accuracy.
    for (const key of ['eval/accuracy', 'eval/loss']) {
      const h = await client.getMetricHistory(runId, key);
      assert.deepEqual(h.map((m) => m.step).sort((a, b) => a - b), [4, 8, 12], key);
      assert.ok(h.every((m) => Number.isFinite(m.value) && m.value >= 0), key);
    }
    const finalAccuracy = (await client.getMetricHistory(runId, 'eval/accuracy')).find((m) => m.step === 12);
    assert.equal(finalAccuracy?.value, completed.accuracy);

    const run = await client.getRun(runId);
    assert.equal(run.info.status, 'FINISHED');
    const params = Object.fromEntries(run.params.map((p) => [p.key, p.value]));
    for (const key of ['noise_multiplier', 'l2_norm_clip', 'sampling_rate', 'expected_batch_size', 'dataset_size', 'steps',
      'target_epsilon', 'target_delta', 'accountant', 'sampler', 'noise_mode', 'backend', 'ewtune_version', 'node_version',
      'tfjs_version', 'trainable_params', 'finetune_mode']) {
      assert.ok(key in params, `param ${key}`);
    }
    assert.equal(params.backend, 'cpu');
    assert.equal(params.node_version, process.versions.node);
    assert.equal(params.ewtune_version, tags0(run)['ewtune.version']);
    assert.equal(Number(params.trainable_params), completed.trainableParams);
    assert.equal(params.finetune_mode, 'frozen-embedding');
    assert.equal(Number(params.noise_multiplier), completed.noiseMultiplier);
    const tags = Object.fromEntries(run.tags.map((t) => [t.key, t.value]));
    assert.equal(tags['ewtune.stop_reason'], 'completed');
    assert.equal(tags['ewtune.steps_taken'], '12');
    assert.match(tags['ewtune.version'], /^\d+\.\d+\.\d+/);
    assert.equal(JSON.parse(tags['ewtune.metric_kinds'])['privacy/epsilon_certified'], 'upper');
    assert.equal(JSON.parse(tags['ewtune.metric_kinds'])['privacy/epsilon_edgeworth'], 'estimate');
    assert.equal(Number(tags['ewtune.final_epsilon_certified']), last.value);

    const top = (await client.listArtifacts(runId)).map((f) => f.path);
    assert.ok(top.includes('report.html'), `artifacts ${top}`);
    const privacy = (await client.listArtifacts(runId, 'privacy')).map((f) => f.path).sort();
    assert.deepEqual(privacy, ['privacy/delta_vs_step.svg', 'privacy/epsilon_delta.svg', 'privacy/epsilon_vs_step.svg', 'privacy/ledger.jsonl']);
  });

  it('the MLflow UI\'s Model metrics tab draws ε, δ (readable ticks on its log10 panel), the budget used and held-out scores; screenshot under test-output/screenshots/', async () => {
    assert.ok(completed?.runId, 'needs the run of the previous test');
    const screenshotPath = join(process.cwd(), 'test-output', 'screenshots', 'mlflow-model-metrics.png');
    const keys = ['privacy/epsilon_edgeworth', 'privacy/epsilon_certified', 'privacy/delta', 'privacy/delta_log10', 'privacy/budget_used', 'eval/accuracy', 'eval/loss'];
    const check = await screenshotRunCharts({
      trackingUri: uri, experimentId: completed.experimentId as string, runId: completed.runId as string, metricKeys: keys, screenshotPath,
    });
    console.log(`      screenshot: ${screenshotPath}; y ticks of privacy/delta ${JSON.stringify(check.yTicksByKey['privacy/delta'])}, `
      + `privacy/delta_log10 ${JSON.stringify(check.yTicksByKey['privacy/delta_log10'])}`);
    assert.ok(existsSync(screenshotPath));
    for (const k of keys) assert.ok(check.pointsByKey[k] >= 2, `${k}: ${JSON.stringify(check.pointsByKey)}`);
    // The δ panel a person reads: its axis must carry at least one tick that is not "0".
    assert.ok(readableTicks(check.yTicksByKey['privacy/delta_log10']).length > 0, `privacy/delta_log10 y ticks ${JSON.stringify(check.yTicksByKey['privacy/delta_log10'])}`);
  });

  it('the report.html artifact opened in the MLflow UI shows the charts (iframe with SVG charts); screenshot under test-output/screenshots/', async () => {
    assert.ok(completed?.runId, 'needs the run of the first test');
    const screenshotPath = join(process.cwd(), 'test-output', 'screenshots', 'mlflow-artifact-report-html.png');
    const view = await screenshotHtmlArtifact({
      trackingUri: uri, experimentId: completed.experimentId as string, runId: completed.runId as string, artifactPath: 'report.html', screenshotPath,
    });
    console.log(`      screenshot: ${screenshotPath}; ${view.svgCount} charts in the artifact view`);
    assert.ok(existsSync(screenshotPath));
    assert.equal(view.heading, 'ewtune privacy report');
    assert.equal(view.svgCount, 3, 'ε vs step, ε–δ profile, δ vs step');
    assert.ok(readableTicks(view.axisLabels).length >= 6, `axis labels ${JSON.stringify(view.axisLabels)}`);
  });

  it('readableTicks: a δ axis labelled only "0" has no readable tick', () => {
    assert.deepEqual(readableTicks(['0', '0', '0', '0']), []);
    assert.deepEqual(readableTicks(['0', '0.000001', '−0', '-0.0', '']), ['0.000001']);
    assert.deepEqual(readableTicks(['−80', '−60']), ['−80', '−60']);
  });

  it('a budget stop: the step that would exceed the certified budget is never taken; status KILLED, stop-reason tag', async () => {
    const q = 32 / 400;
    const sigma = 0.7;
    // Pick the budget between the certified ε after 5 and after 6 steps: the run must stop after exactly 5.
    const e5 = pldEpsilon([{ sampleRate: q, noiseMultiplier: sigma, count: 5 }], 1e-5).epsilon;
    const e6 = pldEpsilon([{ sampleRate: q, noiseMultiplier: sigma, count: 6 }], 1e-5).epsilon;
    const budget = (e5 + e6) / 2;
    const config = smallConfig(newDir(), { training: { steps: 40 }, privacy: { noiseMultiplier: sigma, targetEpsilon: budget } });
    config.tracking.trackingUri = uri;
    const r = await runTraining(config, { ...quiet, certifiedIn: 'inline' });
    assert.equal(r.stopReason, 'budget');
    assert.equal(r.status, 'KILLED');
    assert.equal(r.steps, 5);
    assert.ok((r.epsilonCertified?.epsilon as number) <= budget);
    const run = await client.getRun(r.runId as string);
    assert.equal(run.info.status, 'KILLED');
    const tags = Object.fromEntries(run.tags.map((t) => [t.key, t.value]));
    assert.equal(tags['ewtune.stop_reason'], 'budget');
    assert.equal((await client.getMetricHistory(r.runId as string, 'privacy/epsilon_edgeworth')).length, 5);
    const ledgerText = readFileSync(join(r.runDir, 'artifacts', 'privacy', 'ledger.jsonl'), 'utf8');
    assert.match(ledgerText, /"type":"stop"/);
  });

  it('no server: a local run directory; `ewtune mlflow replay` pushes it (every point once, a second replay adds none)', async () => {
    const config = smallConfig(newDir(), { training: { steps: 4 } });
    const r = await runTraining(config, { ...quiet, env: {}, certifiedIn: 'inline' });
    assert.equal(r.runId, undefined);
    assert.equal(r.status, 'FINISHED');
    for (const f of ['run.json', 'spool.jsonl', 'artifacts/report.html', 'artifacts/privacy/ledger.jsonl', 'artifacts/privacy/epsilon_vs_step.svg']) {
      assert.ok(existsSync(join(r.runDir, f)), f);
    }
    const spooled = spoolRecords(r.runDir).filter((x) => x.t === 'm' && x.k === 'privacy/epsilon_edgeworth');
    assert.equal(spooled.length, 4);
    const out: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: (t: string) => void out.push(t) };
    assert.equal(await main(['mlflow', 'replay', r.runDir, '--tracking-uri', uri, '--json'], io), 0, out.join('\n'));
    const first = JSON.parse(out[0]) as { remote: { runId: string } };
    const history = await client.getMetricHistory(first.remote.runId, 'privacy/epsilon_edgeworth');
    assert.deepEqual(history.map((m) => m.value), spooled.map((m) => (m as { v: number }).v));
    out.length = 0;
    assert.equal(await main(['mlflow', 'replay', r.runDir, '--tracking-uri', uri, '--json'], io), 0);
    assert.equal((await client.getMetricHistory(first.remote.runId, 'privacy/epsilon_edgeworth')).length, 4);
    assert.equal((await client.getRun(first.remote.runId)).info.status, 'FINISHED');
  });

  it('an unreachable server is an error before training starts (no step in the ledger)', async () => {
    const runDir = newDir();
    const config = smallConfig(runDir);
    config.tracking.trackingUri = 'http://127.0.0.1:9'; // discard port: connection refused
    await assert.rejects(runTraining(config, { ...quiet, env: { MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0' } }));
    const ledgers = runDirsWithLedger(runDir);
    assert.deepEqual(ledgers, [], 'no ledger was created');
  });

  it('the callback works next to tfjs callbacks in dpFit (local sink)', async () => {
    const runDir = newDir();
    const sink = await TrackingSink.open({ runDir });
    const callback = new PrivacyTrackingCallback({ sink, delta: 1e-5, targetEpsilon: 2, plannedSteps: 6, certifiedIn: 'inline' });
    let tfjsBatches = 0;
    const tfjsCallback = new tf.CustomCallback({ onBatchEnd: async () => void tfjsBatches++ });
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2, activation: 'softmax' })] });
    const x = tf.tensor2d(Array.from({ length: 60 }, (_, i) => Math.sin(i)), [20, 3]);
    const y = tf.tensor1d(Array.from({ length: 20 }, (_, i) => i % 2), 'int32');
    const history = await dpFit(model, { x, y }, {
      steps: 6, expectedBatchSize: 5, l2NormClip: 1, noiseMultiplier: 1.1, optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy',
      callbacks: [callback, tfjsCallback],
    });
    const summary = await callback.finish({ history });
    tf.dispose([x, y]);
    model.dispose();
    assert.equal(tfjsBatches, 6);
    assert.equal(summary.steps, 6);
    assert.equal(summary.status, 'FINISHED');
    const points = spoolRecords(runDir).filter((r) => r.t === 'm' && r.k === 'privacy/epsilon_edgeworth');
    assert.deepEqual(points.map((p) => (p as { s: number }).s), [1, 2, 3, 4, 5, 6]);
  });

  it('`ewtune train`: SIGTERM stops after the current step; the run ends KILLED with the signal as stop reason', async () => {
    const runDir = newDir();
    const configPath = join(runDir, 'config.json');
    const raw = JSON.parse(JSON.stringify(smallConfig(runDir, { training: { steps: 2000 } }))) as Record<string, unknown>;
    writeFileSync(configPath, JSON.stringify(raw));
    const env = { ...process.env };
    delete env.MLFLOW_TRACKING_URI;
    const child = spawn(process.execPath, ['bin/ewtune.mjs', 'train', configPath, '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    const sent = new Promise<void>((resolve) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        if (/step \d+\/2000/.test(stderr) && !child.killed) {
          child.kill('SIGTERM');
          resolve();
        }
      });
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    await sent;
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout) as RunResult;
    assert.equal(result.status, 'KILLED');
    assert.equal(result.stopReason, 'signal:SIGTERM');
    assert.ok(result.steps >= 1 && result.steps < 2000);
    const records = spoolRecords(result.runDir);
    assert.ok(records.some((r) => r.t === 'g' && r.k === 'ewtune.stop_reason' && r.v === 'signal:SIGTERM'));
    assert.ok(records.some((r) => r.t === 'e' && r.status === 'KILLED'));
    const ledger = PrivacyLedger.openSync(join(result.runDir, 'artifacts', 'privacy', 'ledger.jsonl'));
    assert.equal(ledger.steps, result.steps, 'every applied step is in the ledger');
    ledger.closeSync();
  });

  it('the main job\'s own config (examples/spam-assassin.json) runs through `ewtune train` (2 steps, local run directory)', async () => {
    const runs = newDir();
    const env = { ...process.env };
    delete env.MLFLOW_TRACKING_URI;
    const dir = mkdtempSync(join(runs, 'cfg-'));
    const raw = JSON.parse(readFileSync('examples/spam-assassin.json', 'utf8')) as { tracking?: object; $schema?: string };
    raw.tracking = { runDir: join(runs, 'runs') };
    raw.$schema = join(process.cwd(), 'schemas', 'config.schema.json');
    writeFileSync(join(dir, 'spam-assassin.json'), JSON.stringify(raw));
    const child = spawn(process.execPath, ['bin/ewtune.mjs', 'train', join(dir, 'spam-assassin.json'), '--max-steps', '2', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, stderr);
    const r = JSON.parse(stdout) as RunResult;
    assert.equal(r.status, 'FINISHED');
    assert.equal(r.stopReason, 'max-steps');
    assert.equal(r.steps, 2);
    assert.equal(r.plannedSteps, 113);
    assert.equal(r.epsilonCertified?.kind, 'upper');
    assert.equal(r.epsilonEdgeworth?.kind, 'estimate');
    assert.ok((r.calibration?.epsilon as number) <= 3);
    assert.match(stderr, /ewtune mlflow replay|writing the run to/);
  });

  it('`ewtune train` with an invalid config: exit code 2, the message names the field; nothing runs', async () => {
    const dir = newDir();
    const path = join(dir, 'bad.json');
    const raw = JSON.parse(JSON.stringify(smallConfig(dir))) as { training: Record<string, unknown> };
    raw.training.l2NormClip = -1;
    writeFileSync(path, JSON.stringify(raw));
    const err: string[] = [];
    const code = await main(['train', path], { out: () => undefined, err: (t) => void err.push(t) });
    assert.equal(code, 2);
    assert.match(err.join('\n'), /\/training\/l2NormClip must be > 0/);
  });
});

/** Tick labels a person can read a value from: not empty and not a zero ("0", "−0", "0.0"). */
function readableTicks(ticks: readonly string[]): string[] {
  return ticks.filter((t) => t.trim() !== '' && !/^[-−]?0(\.0*)?$/.test(t.trim()));
}

function tags0(run: { tags: readonly { key: string; value: string }[] }): Record<string, string> {
  return Object.fromEntries(run.tags.map((t) => [t.key, t.value]));
}

function spoolRecords(dir: string): SpoolRecord[] {
  return readSpool(dir, 0, { maxBytes: 1e9 }).records.map((r) => r.record);
}

/** Run directories (with a ledger) created under `parent`. */
function runDirsWithLedger(parent: string): string[] {
  return readdirSync(parent).filter((d) => existsSync(join(parent, d, 'artifacts', 'privacy', 'ledger.jsonl')));
}
