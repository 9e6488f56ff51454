/**
 * bench:tracking — what MLflow tracking costs a training step of the main example (examples/spam-assassin.json),
 * with a LIVE MLflow server (MLFLOW_TRACKING_URI, else one started from .venv / EWTUNE_MLFLOW_BIN).
 *
 * Measured side by side in one run, on the example's model, data and backend:
 *   1. step time: dpFit steps WITHOUT tracking and WITH the PrivacyTrackingCallback (Edgeworth + RDP per step,
 *      certified PLD in the worker at every 1% of the planned steps, sink spooling and sending to the server),
 *      in alternating blocks so machine noise hits both alike;
 *   2. the synchronous cost training waits on per step: the callback's onBatchEnd (accounting + 5 sink.record).
 * Overhead ratio = (2) / median step time without tracking (goal ≤ 1%); the block comparison (1) is reported too.
 * Last line: `tracking overhead-ratio=<x> callback-ms=<y> step-ms=<z> block-ratio=<w>`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.ts';
import { resolveSteps } from '../src/accounting/calibrate.ts';
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { TrackingSink } from '../src/tracking/sink.ts';
import { dpFit } from '../src/train/index.ts';
import type { DpCallback } from '../src/train/types.ts';
import { loadConfig } from '../plugin/config.ts';
import { prepareData } from '../plugin/data.ts';
import { buildClassifier } from '../plugin/model.ts';
import { PrivacyTrackingCallback } from '../plugin/callback.ts';
import { startMlflowServer, type MlflowServer } from '../test/support/mlflow-server.ts';
import { median } from './shared.ts';

const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 4);
const STEPS_PER_BLOCK = Number(process.env.BENCH_STEPS ?? 10);


async function main(): Promise<void> {
  let server: MlflowServer | undefined;
  let uri = process.env.MLFLOW_TRACKING_URI;
  if (!uri) {
    server = await startMlflowServer();
    uri = server.uri;
  }
  const config = loadConfig(new URL('../examples/spam-assassin.json', import.meta.url).pathname);
  const backend = await initBackend(config.training.backend);
  const data = prepareData(config);
  const model = buildClassifier(config, data.vocabularySize, data.vectors);
  const E = config.training.expectedBatchSize;
  const plannedSteps = resolveSteps(E / data.train.size, config.training.steps, config.training.epochs);
  const runDir = mkdtempSync(join(tmpdir(), 'ewtune-bench-tracking-'));
  const client = MlflowClient.fromEnv(uri);
  const sink = await TrackingSink.open({ runDir, client, experimentName: 'ewtune-bench', runName: 'bench-tracking' });
  const tracking = new PrivacyTrackingCallback({ sink, delta: config.privacy.delta, targetEpsilon: config.privacy.targetEpsilon, plannedSteps });

  // Time each onBatchEnd of the tracking callback (the synchronous work a step waits on).
  const callbackMs: number[] = [];
  const timedTracking: DpCallback = {
    onBatchEnd: (batch, logs) => {
      const t0 = performance.now();
      tracking.onBatchEnd(batch, logs);
      callbackMs.push(performance.now() - t0);
    },
  };
  const stepTimes = { off: [] as number[], on: [] as number[] };
  let last = 0;
  const clock = (into: number[]): DpCallback => ({
    onBatchBegin: () => void (last = performance.now()),
    onBatchEnd: () => void into.push(performance.now() - last),
  });
  const common = {
    steps: STEPS_PER_BLOCK, expectedBatchSize: E, l2NormClip: config.training.l2NormClip, noiseMultiplier: 0.85,
    optimizer: tf.train.adam(config.training.learningRate), loss: 'sparseCategoricalCrossentropy' as const,
  };
  // Warm-up block (kernels, caches).
  await dpFit(model, { x: data.train.ids, y: data.train.labels }, { ...common, steps: 3 });
  for (let b = 0; b < BLOCKS; b++) {
    await dpFit(model, { x: data.train.ids, y: data.train.labels }, { ...common, callbacks: [clock(stepTimes.off)] });
    // The timing callback goes last so the tracking work is inside the measured step.
    const on: DpCallback = clock(stepTimes.on);
    await dpFit(model, { x: data.train.ids, y: data.train.labels }, {
      ...common, callbacks: [{ onBatchBegin: on.onBatchBegin }, timedTracking, { onBatchEnd: on.onBatchEnd }],
    });
  }
  const t0 = performance.now();
  const summary = await tracking.finish({ stopReason: 'completed' });
  const finishMs = performance.now() - t0;

  const stepOff = median(stepTimes.off);
  const stepOn = median(stepTimes.on);
  const cb = median(callbackMs);
  const ratio = cb / stepOff;
  const lines = [
    `## bench:tracking (backend ${backend}; example model; ${BLOCKS} alternating blocks of ${STEPS_PER_BLOCK} steps; live MLflow server)`,
    '',
    '| measure | value |',
    '|---|---|',
    `| median step without tracking | ${stepOff.toFixed(1)} ms |`,
    `| median step with tracking | ${stepOn.toFixed(1)} ms |`,
    `| block ratio (with / without) | ${(stepOn / stepOff).toFixed(4)} |`,
    `| tracking callback per step (median; Edgeworth + RDP + 5 records) | ${cb.toFixed(3)} ms |`,
    `| tracking callback per step (max) | ${Math.max(...callbackMs).toFixed(3)} ms |`,
    `| **overhead ratio** (callback / step) | **${(ratio * 100).toFixed(3)} %** |`,
    `| finish (final certified ε, charts, upload, status) | ${finishMs.toFixed(0)} ms, once |`,
    `| all points acknowledged by the server | ${summary.close.complete} |`,
    '',
  ];
  console.log(lines.join('\n'));
  console.log(`tracking overhead-ratio=${ratio.toFixed(5)} callback-ms=${cb.toFixed(3)} step-ms=${stepOff.toFixed(1)} block-ratio=${(stepOn / stepOff).toFixed(4)}`);
  model.dispose();
  data.dispose();
  rmSync(runDir, { recursive: true, force: true });
  await server?.stop();
}

await main();
