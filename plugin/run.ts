/**
 * runTraining: one DP fine-tuning run from a checked configuration, end to end.
 *   1. tracking first (a clear error before any training when the server is unreachable or refuses the credentials);
 *   2. backend, data, pre-trained embedding, model;
 *   3. σ: the given noise multiplier, or calibrated for the target (ε, δ) over the planned steps (certified PLD/RDP
 *      by default; the Edgeworth estimate only when allowed by name, with the certified ε at that σ reported);
 *   4. the durable ledger (run dir artifacts/privacy/ledger.jsonl, fsynced before each update);
 *   5. dpFit with the budget stop (always certified), the PrivacyTrackingCallback and a progress callback;
 *      SIGINT/SIGTERM request a stop after the current step;
 *   6. held-out accuracy and loss (after every epoch and at the end), charts, tags, artifacts; status FINISHED /
 *      KILLED (budget stop, signal) / FAILED (error).
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { CalibrationResult } from '../src/accounting/calibrate.ts';
import { PrivacyLedger } from '../src/accounting/ledger.ts';
import { chooseBackend } from '../src/backend/index.ts';
import { NonFiniteTrainingError } from '../src/errors.ts';
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { TrackingSink } from '../src/tracking/sink.ts';
import { dpFit } from '../src/train/index.ts';
import type { DpCallback, DpHistory } from '../src/train/types.ts';
import type { EpsilonResult } from '../src/accounting/types.ts';
import { PrivacyTrackingCallback, type TrackingSummary } from './callback.ts';
import type { TrainingConfig } from './config.ts';
import { prepareModel, type Evaluation, type PreparedModel } from './prepared-model.ts';
import { privacyRecord } from './privacy-record.ts';
import { preflightRun } from './preflight.ts';
import { Checkpointer, createRunOptimizer, prepareResume, restoreForResume, saveRunConfig, syncRemoteBeforeResume } from './resume.ts';
import { writeProcessRecord } from '../src/tracking/liveness.ts';
import { EWTUNE_VERSION } from './version.ts';

/** Options of {@link runTraining} (all optional). */
export interface RunOptions {
  /** Progress and messages (default: stderr). */
  readonly log?: (line: string) => void;
  /** Per-step progress (the CLI draws a progress bar with it). */
  readonly onProgress?: (p: { step: number; plannedSteps: number; epsilonEdgeworth?: number; loss?: number }) => void;
  /** Install SIGINT/SIGTERM handlers that stop after the current step (default true). */
  readonly handleSignals?: boolean;
  /** Environment for the tracking client (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Where the certified ε is computed (default 'worker'). */
  readonly certifiedIn?: 'worker' | 'inline';
  /** Continue the killed or stopped run in this run directory (`config` from its config.json; see plugin/resume.ts). */
  readonly resumeDir?: string;
}

/**
 * The outcome of {@link runTraining}: where the run is (directory, MLflow URL and ids), how it ended, σ and q, the final
 * ε's (each labelled estimate or upper), the held-out accuracy and the saved model.
 */
export interface RunResult {
  /** The run directory (spool, ledger, checkpoints, artifacts/). */
  readonly runDir: string;
  /** MLflow run page, when a server was used. */
  readonly runUrl?: string;
  /** The MLflow server used, if any. */
  readonly trackingUri?: string;
  /** MLflow experiment id, when a server was used. */
  readonly experimentId?: string;
  /** MLflow run id, when a server was used. */
  readonly runId?: string;
  /** Final run status: FINISHED, KILLED (budget stop or signal) or FAILED. */
  readonly status: TrackingSummary['status'];
  /** Why training ended: completed, budget, max-steps, max-epochs, stopTraining or signal:SIGINT/SIGTERM. */
  readonly stopReason: string;
  /** DP steps taken (resumed ones included). */
  readonly steps: number;
  /** Steps the run was planned (and σ calibrated) for. */
  readonly plannedSteps: number;
  /** The noise multiplier σ used (given or calibrated). */
  readonly noiseMultiplier: number;
  /** Poisson sample rate q = expectedBatchSize / datasetSize. */
  readonly sampleRate: number;
  /** How σ was calibrated, when a target ε was given without a noise multiplier. */
  readonly calibration?: CalibrationResult;
  /** Final Edgeworth ε at δ (an estimate, not a bound). */
  readonly epsilonEdgeworth?: EpsilonResult;
  /** Final certified ε at δ (PLD, an upper bound): the guarantee. */
  readonly epsilonCertified?: EpsilonResult;
  /** Final RDP ε at δ (an upper bound). */
  readonly epsilonRdp?: EpsilonResult;
  /** Held-out (test split) accuracy. */
  readonly accuracy?: number;
  /** Accuracy on the validation split carved from training (corpora that have one). */
  readonly validationAccuracy?: number;
  /** Σ sizes of the trainable weights. */
  readonly trainableParams?: number;
  /** The saved private model (pre-trained encoders with model.save): a Hugging Face directory with privacy.json. */
  readonly modelDir?: string;
  /** Everything was acknowledged by the server (false in local mode or if the server was down at the end). */
  readonly complete: boolean;
  /** dpFit's history (per-epoch loss and ε estimate, stop reason). */
  readonly history?: DpHistory;
}

/** `eval/…` metrics of one held-out evaluation at MLflow step `step` (DP steps taken so far). */
function recordEvaluation(sink: TrackingSink, scores: Evaluation, step: number): void {
  if (scores.test !== undefined) sink.record('eval/accuracy', scores.test, step);
  if (scores.testLoss !== undefined && Number.isFinite(scores.testLoss)) sink.record('eval/loss', scores.testLoss, step);
  if (scores.validation !== undefined) sink.record('eval/validation_accuracy', scores.validation, step);
  if (scores.validationLoss !== undefined && Number.isFinite(scores.validationLoss)) sink.record('eval/validation_loss', scores.validationLoss, step);
}

function timestampName(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
}

/** Run one training from a validated configuration (see loadConfig / validateConfig). */
export async function runTraining(config: TrainingConfig, options: RunOptions = {}): Promise<RunResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const env = options.env ?? process.env;
  const trackingUri = config.tracking.trackingUri ?? (env.MLFLOW_TRACKING_URI || undefined);
  const runName = config.name ?? 'ewtune';
  const resuming = options.resumeDir !== undefined;
  const runDir = resuming ? resolve(options.resumeDir as string)
    : resolve(config.tracking.runDir, `${timestampName()}-${runName}`.replace(/[^A-Za-z0-9._-]/g, '_'));
  // 0. Checks that need the data (plugin/preflight.ts): a bad configuration fails here, before a run directory or an
  //    MLflow run exists.
  const preflight = preflightRun(config, { runDirParent: resuming ? undefined : config.tracking.runDir });
  for (const w of preflight.warnings) log(`ewtune: warning: ${w.message}`);
  mkdirSync(runDir, { recursive: true });
  // A resume refuses a live or finished run and marks a crashed one FAILED (crashed) first; a new run saves its config.
  if (resuming) prepareResume(runDir, config);
  else saveRunConfig(runDir, config);

  // 1. Tracking: fails here, before any training, if the server is unreachable or rejects us.
  const client = trackingUri ? MlflowClient.fromEnv(trackingUri, env) : undefined;
  const resumeRunId = resuming && client ? await syncRemoteBeforeResume(runDir, client, config.experimentName) : undefined;
  const sink = await TrackingSink.open({ runDir, client, experimentName: config.experimentName, runName, onUnreachable: 'throw', runId: resumeRunId });
  const session = writeProcessRecord(runDir); // pid + start time: a later resume or replay can tell a crash from a live run
  const remote = sink.remote;
  if (remote) log(`ewtune: MLflow run ${remote.runId} in experiment ${remote.experimentId} on ${remote.trackingUri}`);
  else log(`ewtune: no tracking server (option, config or MLFLOW_TRACKING_URI): writing the run to ${runDir}`);
  for (const w of preflight.warnings) sink.setTag(w.tag, w.message);

  let callback: PrivacyTrackingCallback | undefined;
  let prepared: PreparedModel | undefined;
  let model: tf.LayersModel | undefined;
  let ledger: PrivacyLedger | undefined;
  let optimizer: tf.Optimizer | undefined;
  const signals: Array<[NodeJS.Signals, () => void]> = [];
  let signalled: NodeJS.Signals | undefined;
  try {
    // 2. Backend, data, model.
    const backendChoice = await chooseBackend(config.training.backend);
    const backend = backendChoice.name;
    log(`ewtune: backend ${backend} (${backendChoice.reason})`);
    prepared = await prepareModel(config, preflight, log);
    model = prepared.model;
    const { datasetSize, sampleRate, stepsPerEpoch, plannedSteps, noiseMultiplier, calibration } = preflight;
    const E = config.training.expectedBatchSize;
    const { delta, targetEpsilon } = config.privacy;

    // 3. σ: given, or calibrated by the preflight.
    if (calibration) {
      log(`ewtune: calibrated noiseMultiplier ${noiseMultiplier.toPrecision(6)} for ε ≤ ${targetEpsilon} at δ ${delta} over ${plannedSteps} steps `
        + `(${calibration.accountant}: ε ${calibration.epsilon.toPrecision(6)}, ${calibration.kind}`
        + `${calibration.certifiedEpsilon ? `; certified ε at this σ ${calibration.certifiedEpsilon.epsilon.toPrecision(6)}` : ''})`);
    }

    // Params once.
    const params: Record<string, string | number | boolean> = {
      noise_multiplier: noiseMultiplier, l2_norm_clip: config.training.l2NormClip, sampling_rate: sampleRate,
      expected_batch_size: E, dataset_size: datasetSize, steps: plannedSteps, steps_per_epoch: stepsPerEpoch,
      target_delta: delta, accountant: config.privacy.accountant, sampler: config.privacy.sampler,
      noise_mode: config.privacy.noiseMode, backend, backend_reason: backendChoice.reason, optimizer: config.training.optimizer,
      learning_rate: config.training.learningRate, data: config.data.kind,
      // System facts: what actually ran (the backend chosen, not the one asked for), with which versions.
      ewtune_version: EWTUNE_VERSION, node_version: process.versions.node, tfjs_version: tf.version.tfjs,
      trainable_params: prepared.trainableParams, ...prepared.params,
    };
    if (config.training.headLearningRate !== undefined) params.head_learning_rate = config.training.headLearningRate;
    if (config.training.epochs !== undefined) params.epochs = config.training.epochs;
    if (targetEpsilon !== undefined) params.target_epsilon = targetEpsilon;
    if (config.training.maxSteps !== undefined) params.max_steps = config.training.maxSteps;
    if (!resuming) for (const [k, v] of Object.entries(params)) sink.logParam(k, v); // params are immutable in MLflow
    if (calibration?.certifiedEpsilon) sink.setTag('ewtune.calibration_certified_epsilon', String(calibration.certifiedEpsilon.epsilon));

    // 4. Ledger (in the run directory's artifacts, uploaded at the end).
    const ledgerPath = join(runDir, 'artifacts', 'privacy', 'ledger.jsonl');
    mkdirSync(join(runDir, 'artifacts', 'privacy'), { recursive: true });
    const ledgerConfig = {
      datasetSize, l2NormClip: config.training.l2NormClip, sampler: config.privacy.sampler, adjacency: 'add-remove',
      noiseMode: config.privacy.noiseMode, accountant: config.privacy.accountant === 'rdp' ? 'rdp' : 'pld',
    } as const;
    ledger = resuming ? await PrivacyLedger.open(ledgerPath, { expectedConfig: ledgerConfig }) : await PrivacyLedger.create(ledgerPath, ledgerConfig);

    // Checkpoints (plugin/resume.ts): the optimizer is made here so its state can be saved and restored.
    optimizer = createRunOptimizer(config.training, model);
    const restored = resuming ? await restoreForResume(runDir, ledger, model, optimizer) : { updates: 0 };
    const checkpointer = new Checkpointer({ runDir, model, optimizer, ledger, everySteps: config.training.checkpointEverySteps, updates: restored.updates, plannedSteps });
    await checkpointer.save();
    if (resuming) {
      sink.setTag('ewtune.resumes', String(session.session - 1));
      log(`ewtune: resuming ${runDir}: ledger ${ledger.steps} steps (ε continues from them), checkpoint ${restored.updates} of ${plannedSteps} updates; `
        + `${ledger.steps - restored.updates} steps re-done and accounted again`);
    }
    const progressTotal = plannedSteps + ledger.steps - restored.updates;

    // 5. Train.
    callback = new PrivacyTrackingCallback({
      sink, delta, targetEpsilon, plannedSteps, certifiedEveryFraction: config.tracking.certifiedEveryFraction,
      edgeworthOrder: config.privacy.edgeworthOrder, certifiedIn: options.certifiedIn,
      resumeSegments: resuming ? ledger.segments() : undefined,
    });
    const trackingCallback = callback;
    // Held-out scores after every epoch (and once more at the end when the last step closed no epoch). The test and
    // validation splits are not training data: DP-SGD never samples them, so the ledger does not account them.
    let lastEvaluation: { step: number; scores: Evaluation } | undefined;
    const evaluateNow = (): Evaluation => {
      if (!config.training.evaluate || !prepared) return {};
      if (lastEvaluation?.step === trackingCallback.steps) return lastEvaluation.scores;
      const scores = prepared.evaluate();
      recordEvaluation(sink, scores, trackingCallback.steps);
      lastEvaluation = { step: trackingCallback.steps, scores };
      return scores;
    };
    const heldOut: DpCallback = { onEpochEnd: () => void evaluateNow() };
    const progress: DpCallback = {
      onBatchEnd: (_batch, logs = {}) => {
        options.onProgress?.({ step: trackingCallback.steps, plannedSteps: progressTotal, loss: logs.loss, epsilonEdgeworth: trackingCallback.lastEpsilonEdgeworth });
      },
    };
    const stoppable = model as tf.LayersModel & { stopTraining: boolean };
    if (options.handleSignals ?? true) {
      for (const sig of ['SIGINT', 'SIGTERM'] as const) {
        const handler = () => {
          if (signalled) process.exit(sig === 'SIGINT' ? 130 : 143); // second signal: leave now (the ledger is durable)
          signalled = sig;
          stoppable.stopTraining = true;
          log(`\newtune: ${sig}: stopping after the current step (again to exit at once)`);
        };
        process.on(sig, handler);
        signals.push([sig, handler]);
      }
    }
    const history = await dpFit(model, prepared.train, {
      steps: plannedSteps - restored.updates, expectedBatchSize: E, maxPhysicalBatchSize: config.training.maxPhysicalBatchSize,
      l2NormClip: config.training.l2NormClip, noiseMultiplier, optimizer,
      learningRate: config.training.learningRate, loss: 'sparseCategoricalCrossentropy', sampler: config.privacy.sampler,
      noise: config.privacy.noiseMode, ledger, callbacks: [callback, checkpointer, heldOut, progress],
      budget: {
        ...(targetEpsilon !== undefined ? { epsilon: targetEpsilon, delta, accountant: config.privacy.accountant === 'rdp' ? 'rdp' as const : 'pld' as const } : {}),
        ...(config.training.maxSteps !== undefined ? { maxSteps: config.training.maxSteps } : {}),
      },
    });
    await checkpointer.save(); // the end state (also after a stop request)
    sink.setTag('ewtune.redone_steps', String(ledger.steps - checkpointer.updates));
    if (history.fallbackLayers.length > 0) log(`ewtune: layers clipped by the per-example loop: ${history.fallbackLayers.join(', ')}`);

    // 6. The final held-out scores (the test split is held out; its accuracy is not covered by ε but is not private
    //    training data); the last epoch's when it ended at the last step.
    const evaluation = evaluateNow();
    const testAccuracy = evaluation.test;
    const stopReason = signalled ? `signal:${signalled}` : history.stopReason;
    const save = prepared.save;
    let savedModelDir: string | undefined;
    const summary = await callback.finish({
      history, stopReason,
      extraSummary: [['noise multiplier σ', noiseMultiplier.toPrecision(6)], ['sample rate q', sampleRate.toPrecision(6)],
        ['held-out accuracy', testAccuracy === undefined ? 'n/a' : testAccuracy.toFixed(4)]],
      // 7. The private model, with the guarantee it carries (final ε known, artifacts not yet uploaded).
      beforeClose: save ? async (final) => {
        const dir = join(runDir, 'artifacts', 'model');
        await save(dir, privacyRecord({
          config, final, noiseMultiplier, sampleRate, datasetSize, stopReason, accuracy: evaluation,
          accountedNoiseMultiplier: history.accountedNoiseMultiplier,
        }));
        savedModelDir = dir;
        log(`ewtune: private model saved to ${dir} (Hugging Face layout, privacy.json)`);
      } : undefined,
    });
    callback = undefined;
    return {
      runDir, trackingUri: remote?.trackingUri, experimentId: remote?.experimentId, runId: remote?.runId,
      runUrl: remote ? `${remote.trackingUri.replace(/\/$/, '')}/#/experiments/${remote.experimentId}/runs/${remote.runId}` : undefined,
      status: summary.status, stopReason: summary.stopReason, steps: summary.steps, plannedSteps, noiseMultiplier, sampleRate,
      calibration, epsilonEdgeworth: summary.epsilonEdgeworth, epsilonCertified: summary.epsilonCertified,
      epsilonRdp: summary.epsilonRdp, accuracy: testAccuracy, validationAccuracy: evaluation.validation,
      trainableParams: prepared.trainableParams, modelDir: savedModelDir, complete: summary.close.complete, history,
    };
  } catch (error) {
    // FAILED, with everything recorded so far kept (spool, ledger) and sent where possible.
    sink.setTag('ewtune.error', String((error as Error).message ?? error).slice(0, 4000));
    // A diverged run (NaN/∞ loss or weights, see dpFit) is tagged ewtune.stop_reason=non-finite-loss.
    const stopReason = error instanceof NonFiniteTrainingError ? 'non-finite-loss' : 'error';
    if (error instanceof NonFiniteTrainingError) log(`ewtune: ${error.message}`);
    if (callback) await callback.finish({ stopReason, status: 'FAILED' }).catch(() => undefined);
    else {
      sink.setTag('ewtune.stop_reason', stopReason);
      await sink.close({ status: 'FAILED' }).catch(() => undefined);
    }
    throw error;
  } finally {
    for (const [sig, handler] of signals) process.off(sig, handler);
    await ledger?.close().catch(() => undefined);
    optimizer?.dispose();
    prepared?.dispose();
  }
}
