/**
 * auditFromConfig: the one-run audit of a training configuration (`ewtune audit <config.json>`). The same data,
 * model, optimizer, clipping bound, sampling rate and σ (given, or calibrated for the target over the planned steps
 * exactly as `ewtune train` does) as the configured run, plus the canaries; Poisson sampling always (the audit tests
 * the accounting of Poisson-subsampled steps). The trained model is discarded.
 *
 * Tracking: like `ewtune train` (the --tracking-uri flag, the config's tracking.trackingUri, MLFLOW_TRACKING_URI,
 * else the local run directory), one MLflow run tagged `ewtune.run_kind=audit` with the metrics
 *   privacy/epsilon_audit       the audit's ε lower bound at δ (kind lower, confidence 95%)
 *   privacy/epsilon_certified   the certified ε of the audited steps (PLD, kind upper)
 *   audit/correct_guesses, audit/guesses, audit/canaries
 * at MLflow step = the number of DP steps, the kinds in the tag `ewtune.metric_kinds`, the result as
 * artifacts/audit/result.json. A run whose ε_audit exceeds its certified ε ends FAILED with
 * `ewtune.stop_reason=privacy_bug`.
 */
import { resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { calibrateNoiseMultiplier, resolveSteps } from '../accounting/calibrate.ts';
import { initBackend } from '../backend/index.ts';
import { MlflowClient } from '../tracking/mlflow-client.ts';
import { TrackingSink } from '../tracking/sink.ts';
import { InvalidArgumentError } from '../errors.ts';
import type { TrainingConfig } from '../../plugin/config.ts';
import { buildClassifier } from '../../plugin/model.ts';
import { prepareData } from '../../plugin/data.ts';
import { DEFAULT_CANARIES, runAudit, type AuditResult } from './run.ts';

/** Metric keys of an audit run and what each number is. */
export const AUDIT_METRIC_KINDS = {
  'privacy/epsilon_audit': 'lower',
  'privacy/epsilon_certified': 'upper',
  'audit/correct_guesses': 'none',
  'audit/guesses': 'none',
  'audit/canaries': 'none',
} as const;

/** Options of {@link auditFromConfig}. */
export interface ConfigAuditOptions {
  /** M (default 1000). */
  readonly canaries?: number;
  /** Progress and messages (default: stderr). */
  readonly log?: (line: string) => void;
  readonly onStep?: (step: number, steps: number) => void;
  /** Environment for the tracking client (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
}

/** The audit result with where it was recorded. */
export interface ConfigAuditResult extends AuditResult {
  readonly runDir: string;
  readonly trackingUri?: string;
  readonly runId?: string;
  readonly runUrl?: string;
  /** The steps the configuration plans (the audit ran `steps` ≤ this, capped by maxSteps). */
  readonly plannedSteps: number;
}

function timestampName(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
}

/**
 * Audit the run a validated configuration describes (see plugin/config.ts loadConfig): `training.maxSteps` (or
 * --max-steps) caps the steps audited.
 * @throws InvalidArgumentError for a bad canary count; the errors of data loading, calibration and tracking.
 */
export async function auditFromConfig(config: TrainingConfig, options: ConfigAuditOptions = {}): Promise<ConfigAuditResult> {
  const canaries = options.canaries ?? DEFAULT_CANARIES;
  if (!Number.isSafeInteger(canaries) || canaries < 2) throw new InvalidArgumentError('canaries', canaries, 'an integer >= 2');
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const env = options.env ?? process.env;
  const trackingUri = config.tracking.trackingUri ?? (env.MLFLOW_TRACKING_URI || undefined);
  const runName = `${config.name ?? 'ewtune'}-audit`;
  const runDir = resolve(config.tracking.runDir, `${timestampName()}-${runName}`.replace(/[^A-Za-z0-9._-]/g, '_'));

  const client = trackingUri ? MlflowClient.fromEnv(trackingUri, env) : undefined;
  const sink = await TrackingSink.open({ runDir, client, experimentName: config.experimentName, runName, onUnreachable: 'throw' });
  const remote = sink.remote;
  if (remote) log(`ewtune audit: MLflow run ${remote.runId} in experiment ${remote.experimentId} on ${remote.trackingUri}`);
  let data: ReturnType<typeof prepareData> | undefined;
  let model: tf.LayersModel | undefined;
  try {
    const backend = await initBackend(config.training.backend);
    log(`ewtune audit: backend ${backend}; loading data and the model`);
    data = prepareData(config);
    model = buildClassifier(config, data.vocabularySize, data.vectors);
    const datasetSize = data.train.size;
    const E = config.training.expectedBatchSize;
    if (E > datasetSize) throw new InvalidArgumentError('/training/expectedBatchSize', E, `at most the training set size (${datasetSize})`);
    const sampleRate = E / datasetSize;
    const plannedSteps = resolveSteps(sampleRate, config.training.steps, config.training.epochs);
    const steps = Math.min(plannedSteps, config.training.maxSteps ?? plannedSteps);
    const { delta, targetEpsilon } = config.privacy;
    let noiseMultiplier = config.privacy.noiseMultiplier;
    if (noiseMultiplier === undefined) {
      const calibration = calibrateNoiseMultiplier({
        targetEpsilon: targetEpsilon as number, delta, sampleRate, steps: plannedSteps, accountant: config.privacy.accountant,
        allowEstimate: config.privacy.allowEstimate, order: config.privacy.edgeworthOrder,
        valueDiscretizationInterval: config.privacy.valueDiscretizationInterval,
      });
      noiseMultiplier = calibration.noiseMultiplier;
      log(`ewtune audit: noiseMultiplier ${noiseMultiplier.toPrecision(6)} (calibrated for ε ≤ ${targetEpsilon} at δ ${delta} over ${plannedSteps} steps, as ewtune train would)`);
    }
    if (config.privacy.sampler !== 'poisson') log('ewtune audit: the audit samples batches by Poisson sampling (the configured "shuffle" sampler is not what the accountant assumes)');
    log(`ewtune audit: ${canaries} canaries, ${steps} step(s) of sample rate ${sampleRate.toPrecision(6)}, σ ${noiseMultiplier.toPrecision(6)}, C ${config.training.l2NormClip}`);
    const params: Record<string, string | number> = {
      audit_canaries: canaries, steps, planned_steps: plannedSteps, sampling_rate: sampleRate, noise_multiplier: noiseMultiplier,
      l2_norm_clip: config.training.l2NormClip, target_delta: delta, dataset_size: datasetSize, optimizer: config.training.optimizer,
      learning_rate: config.training.learningRate, noise_mode: config.privacy.noiseMode, sampler: 'poisson', backend,
    };
    for (const [k, v] of Object.entries(params)) sink.logParam(k, v);
    sink.setTag('ewtune.run_kind', 'audit');

    const result = await runAudit(model, { x: data.train.ids, y: data.train.labels }, {
      canaries, steps, sampleRate, l2NormClip: config.training.l2NormClip, noiseMultiplier, delta,
      optimizer: config.training.optimizer, learningRate: config.training.learningRate, loss: 'sparseCategoricalCrossentropy',
      maxPhysicalBatchSize: config.training.maxPhysicalBatchSize, noise: config.privacy.noiseMode, onStep: options.onStep,
    });

    sink.record('privacy/epsilon_audit', result.epsilonAudit, steps);
    sink.record('privacy/epsilon_certified', result.epsilonCertified, steps);
    sink.record('audit/correct_guesses', result.correctGuesses, steps);
    sink.record('audit/guesses', result.guesses, steps);
    sink.record('audit/canaries', canaries, steps);
    sink.setTag('ewtune.metric_kinds', JSON.stringify(AUDIT_METRIC_KINDS));
    sink.setTag('ewtune.audit.kind', 'lower');
    sink.setTag('ewtune.audit.confidence', String(result.confidence));
    sink.setTag('ewtune.audit.epsilon_lower', String(result.epsilonAudit));
    sink.setTag('ewtune.audit.epsilon_certified', String(result.epsilonCertified));
    sink.setTag('ewtune.audit.privacy_bug', String(result.privacyBug));
    sink.setTag('ewtune.audit.method', 'one-run audit (Steinke, Nasr, Jagielski 2023), white-box Dirac gradient canaries, Bonferroni over k');
    sink.setTag('ewtune.stop_reason', result.privacyBug ? 'privacy_bug' : 'completed');
    sink.writeArtifact('audit/result.json', `${JSON.stringify(result, null, 1)}\n`);
    const close = await sink.close({ status: result.privacyBug ? 'FAILED' : 'FINISHED' });
    if (!close.complete && remote) log(`ewtune audit: not all points reached the server; send the rest with: ewtune mlflow replay ${runDir} --tracking-uri ${remote.trackingUri}`);
    return {
      ...result, runDir, plannedSteps, trackingUri: remote?.trackingUri, runId: remote?.runId,
      runUrl: remote ? `${remote.trackingUri.replace(/\/$/, '')}/#/experiments/${remote.experimentId}/runs/${remote.runId}` : undefined,
    };
  } catch (error) {
    sink.setTag('ewtune.error', String((error as Error).message ?? error).slice(0, 4000));
    await sink.close({ status: 'FAILED' }).catch(() => undefined);
    throw error;
  } finally {
    model?.dispose();
    data?.dispose();
  }
}
