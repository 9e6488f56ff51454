/**
 * ewtune's plugin entry (plugin.json "entry"): the integration surface for a training program.
 *   - PrivacyTrackingCallback: a tfjs-style callback for dpFit that logs ε (estimate and certified), δ and the
 *     loss per step to MLflow or a local run directory, and ends the run with charts, ledger and status;
 *   - createPrivacyCallback: opens the tracking sink (MLflow or local) and returns the callback;
 *   - loadConfig / validateConfig: schemas/config.schema.json checked with ajv;
 *   - runTraining: a whole DP fine-tuning run from a config (what `ewtune train` does).
 *
 * @module ewtune/plugin
 */
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { TrackingSink } from '../src/tracking/sink.ts';
import { PrivacyTrackingCallback, type PrivacyTrackingCallbackOptions } from './callback.ts';

export { PrivacyTrackingCallback, METRIC_KINDS } from './callback.ts';
export type { PrivacyTrackingCallbackOptions, TrackingSummary } from './callback.ts';
export { loadConfig, validateConfig, ConfigError } from './config.ts';
export type { TrainingConfig, ConfigOverrides } from './config.ts';
export { runTraining } from './run.ts';
export type { RunOptions, RunResult } from './run.ts';
export { buildClassifier, accuracy } from './model.ts';
export { prepareData } from './data.ts';
export { EWTUNE_VERSION } from './version.ts';

/** Options of {@link createPrivacyCallback}. */
export interface CreatePrivacyCallbackOptions extends Omit<PrivacyTrackingCallbackOptions, 'sink'> {
  /** Local run directory (spool, ledger, charts); always written, also with a server. */
  readonly runDir: string;
  /** MLflow server; default MLFLOW_TRACKING_URI; none → local run directory only. */
  readonly trackingUri?: string;
  /** MLflow experiment of a new run (default: the run directory's run.json, else "ewtune"). */
  readonly experimentName?: string;
  /** Name of a new MLflow run. */
  readonly runName?: string;
}

/**
 * Open the tracking sink (fails before training if a given server is unreachable or refuses the credentials) and
 * return the callback to pass to dpFit. Call `await callback.finish({ history })` after dpFit.
 */
export async function createPrivacyCallback(options: CreatePrivacyCallbackOptions): Promise<PrivacyTrackingCallback> {
  const uri = options.trackingUri ?? (process.env.MLFLOW_TRACKING_URI || undefined);
  const client = uri ? MlflowClient.fromEnv(uri) : undefined;
  const sink = await TrackingSink.open({ runDir: options.runDir, client, experimentName: options.experimentName, runName: options.runName });
  return new PrivacyTrackingCallback({ ...options, sink });
}
