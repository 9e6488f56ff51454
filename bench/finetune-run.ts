/**
 * One run of `npm run bench:finetune`, in a child process of its own (so its peak RSS is its own): reads a JSON job
 * from argv[2], prints one JSON result line on stdout (progress on stderr).
 *
 * Jobs:
 * - `dp`: runTraining(config) — exactly what `ewtune train` does (calibrated σ, Poisson sampling, certified budget
 *   stop, MLflow or the local run directory); reports held-out (test) and validation accuracy, median step time.
 * - `nonprivate`: the same model, data, optimizer, learning rate, batch size and number of steps, trained with plain
 *   mini-batch steps (shuffled batches, mean loss, no clipping, no noise); logged to MLflow / a run directory too.
 * - `step-timing`: one model; a DP step (dpStep: per-example clipping + noise) and a non-private step on the same
 *   fixed batch, interleaved for `rounds` rounds after a warm-up; medians of each. Side by side in one process.
 */
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { chooseBackend } from '../src/backend/index.ts';
import { createNoiseSource } from '../src/dp/noise.ts';
import { resolveLoss } from '../src/dp/per-example/losses.ts';
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { TrackingSink } from '../src/tracking/sink.ts';
import { dpStep } from '../src/train/dp-step.ts';
import { validateConfig, type TrainingConfig } from '../plugin/config.ts';
import { loadCorpus } from '../plugin/corpus.ts';
import { prepareEncoderRun, type EncoderModelConfig, type EncoderRun } from '../plugin/encoder.ts';
import { createRunOptimizer } from '../plugin/resume.ts';
import { runTraining } from '../plugin/run.ts';
import { median } from './shared.ts';

export interface FinetuneJob {
  kind: 'dp' | 'nonprivate' | 'step-timing';
  /** A configuration object as in examples/*.json. */
  config: unknown;
  /** step-timing: interleaved rounds after one warm-up round. */
  rounds?: number;
}

export interface FinetuneJobResult {
  kind: FinetuneJob['kind'];
  backend: string;
  testAccuracy?: number;
  validationAccuracy?: number;
  steps?: number;
  noiseMultiplier?: number;
  epsilonCertified?: number;
  /** Median wall time of one training step (ms). */
  stepMs?: number;
  /** step-timing: median DP and non-private step (ms). */
  dpStepMs?: number;
  nonPrivateStepMs?: number;
  trainableParams?: number;
  peakRssMb: number;
  wallS: number;
  runUrl?: string;
  runDir?: string;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
}

/** Mean loss of a batch, for the non-private step (the DP step's per-example loss, averaged). */
function meanLoss(model: tf.LayersModel, x: tf.Tensor[], y: tf.Tensor): tf.Scalar {
  const perExample = resolveLoss('sparseCategoricalCrossentropy');
  return tf.mean(perExample(y, model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar;
}

function nonPrivateStep(model: tf.LayersModel, optimizer: tf.Optimizer, x: tf.Tensor[], y: tf.Tensor): number {
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => meanLoss(model, x, y), model.trainableWeights.map((w) => w.read() as tf.Variable));
    optimizer.applyGradients(grads);
    return value.dataSync()[0];
  });
}

function gather(enc: EncoderRun, rows: Int32Array): { x: tf.Tensor[]; y: tf.Tensor } {
  return tf.tidy(() => {
    const idx = tf.tensor1d(rows, 'int32');
    return { x: enc.train.x.map((t) => tf.gather(t, idx)), y: tf.gather(enc.train.y, idx) };
  });
}

function shuffled(n: number): Int32Array {
  const a = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

async function encoderFor(config: TrainingConfig): Promise<EncoderRun> {
  if (config.model.kind !== 'pretrained-encoder') throw new Error('bench:finetune jobs need a pretrained-encoder model');
  return prepareEncoderRun(config.model as EncoderModelConfig, loadCorpus(config), log);
}

async function runDp(config: TrainingConfig, backend: string): Promise<Omit<FinetuneJobResult, 'peakRssMb' | 'wallS'>> {
  const stepEnds: number[] = [];
  const result = await runTraining(config, {
    log, handleSignals: false, certifiedIn: 'worker',
    onProgress: () => { stepEnds.push(performance.now()); },
  });
  const intervals = stepEnds.slice(1).map((t, i) => t - stepEnds[i]);
  return {
    kind: 'dp', backend, testAccuracy: result.accuracy, validationAccuracy: result.validationAccuracy, steps: result.steps,
    noiseMultiplier: result.noiseMultiplier, epsilonCertified: result.epsilonCertified?.epsilon, stepMs: median(intervals),
    trainableParams: result.trainableParams, runUrl: result.runUrl, runDir: result.runDir,
  };
}

async function runNonPrivate(config: TrainingConfig, backend: string): Promise<Omit<FinetuneJobResult, 'peakRssMb' | 'wallS'>> {
  const trackingUri = config.tracking.trackingUri ?? (process.env.MLFLOW_TRACKING_URI || undefined);
  const runName = `${config.name ?? 'ewtune'}-nonprivate`;
  const runDir = join(config.tracking.runDir, `${new Date().toISOString().replace(/[-:.]/g, '')}-${runName}`);
  const sink = await TrackingSink.open({ runDir, client: trackingUri ? MlflowClient.fromEnv(trackingUri, process.env) : undefined, experimentName: config.experimentName, runName });
  const enc = await encoderFor(config);
  try {
    const N = enc.train.size;
    const E = config.training.expectedBatchSize;
    const steps = config.training.steps ?? Math.ceil((config.training.epochs as number) * N / E);
    for (const [k, v] of Object.entries({ private: false, mode: (config.model as EncoderModelConfig).finetune.mode, learning_rate: config.training.learningRate, head_learning_rate: config.training.headLearningRate ?? config.training.learningRate, batch_size: E, steps, backend, dataset_size: N })) sink.logParam(k, v);
    const optimizer = createRunOptimizer(config.training, enc.model); // the DP run's optimizer and parameter groups
    let order = shuffled(N);
    let cursor = 0;
    const times: number[] = [];
    for (let step = 1; step <= steps; step++) {
      if (cursor + E > N) { order = shuffled(N); cursor = 0; }
      const rows = order.slice(cursor, cursor + E);
      cursor += E;
      const t0 = performance.now();
      const batch = gather(enc, rows);
      const loss = nonPrivateStep(enc.model, optimizer, batch.x, batch.y);
      tf.dispose([...batch.x, batch.y]);
      times.push(performance.now() - t0);
      sink.record('train/loss', loss, step);
      if (step % 10 === 0) log(`nonprivate step ${step}/${steps} loss ${loss.toFixed(4)}`);
    }
    optimizer.dispose();
    const testAccuracy = enc.accuracy(enc.test);
    const validationAccuracy = enc.accuracy(enc.validation);
    sink.record('eval/accuracy', testAccuracy, steps);
    if (Number.isFinite(validationAccuracy)) sink.record('eval/validation_accuracy', validationAccuracy, steps);
    const closed = await sink.close({ status: 'FINISHED' });
    const remote = closed.remote;
    return {
      kind: 'nonprivate', backend, testAccuracy, validationAccuracy, steps, stepMs: median(times), trainableParams: enc.summary.trainableParams,
      runDir, runUrl: remote ? `${remote.trackingUri.replace(/\/$/, '')}/#/experiments/${remote.experimentId}/runs/${remote.runId}` : undefined,
    };
  } finally {
    enc.dispose();
  }
}

async function runStepTiming(config: TrainingConfig, backend: string, rounds: number): Promise<Omit<FinetuneJobResult, 'peakRssMb' | 'wallS'>> {
  const enc = await encoderFor(config);
  try {
    const E = Math.min(config.training.expectedBatchSize, enc.train.size);
    const rows = shuffled(enc.train.size).slice(0, E);
    const batch = gather(enc, rows);
    const noise = createNoiseSource('gaussian');
    const dpOptimizer = createRunOptimizer(config.training, enc.model);
    const plainOptimizer = createRunOptimizer(config.training, enc.model);
    const dpTimes: number[] = [];
    const plainTimes: number[] = [];
    const data = { x: enc.train.x, y: enc.train.y };
    for (let r = 0; r <= rounds; r++) {
      // Alternate which goes first so neither always runs on a warm cache.
      const order = r % 2 === 0 ? ['dp', 'plain'] : ['plain', 'dp'];
      for (const which of order) {
        const t0 = performance.now();
        if (which === 'dp') {
          await dpStep(enc.model, data, rows, {
            l2NormClip: config.training.l2NormClip, loss: 'sparseCategoricalCrossentropy', noiseMultiplier: 1,
            expectedBatchSize: E, noise, optimizer: dpOptimizer,
          });
        } else {
          const b = gather(enc, rows);
          nonPrivateStep(enc.model, plainOptimizer, b.x, b.y);
          tf.dispose([...b.x, b.y]);
        }
        const ms = performance.now() - t0;
        if (r > 0) (which === 'dp' ? dpTimes : plainTimes).push(ms);
      }
      log(`step-timing round ${r}/${rounds}`);
    }
    tf.dispose([...batch.x, batch.y]);
    dpOptimizer.dispose();
    plainOptimizer.dispose();
    return { kind: 'step-timing', backend, dpStepMs: median(dpTimes), nonPrivateStepMs: median(plainTimes), trainableParams: enc.summary.trainableParams };
  } finally {
    enc.dispose();
  }
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as FinetuneJob;
  const t0 = performance.now();
  const config = validateConfig(job.config, 'bench:finetune job');
  const backend = (await chooseBackend(config.training.backend)).name;
  let result: Omit<FinetuneJobResult, 'peakRssMb' | 'wallS'>;
  if (job.kind === 'dp') result = await runDp(config, backend);
  else if (job.kind === 'nonprivate') result = await runNonPrivate(config, backend);
  else result = await runStepTiming(config, backend, job.rounds ?? 5);
  const out: FinetuneJobResult = { ...result, peakRssMb: peakRssMb(), wallS: (performance.now() - t0) / 1000 };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(() => process.exit(0), (error) => {
  log(`bench:finetune job failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
