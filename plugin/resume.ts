/**
 * Resuming a killed or stopped run: `ewtune train --resume <run dir>` (wired into runTraining, plugin/run.ts).
 *
 * A run directory holds everything a resume needs: `config.json` (the resolved configuration, saved when the run
 * started), the ledger (`artifacts/privacy/ledger.jsonl`), the checkpoint (`checkpoint/`, src/train/checkpoint.ts),
 * the spool and run.json (the MLflow run), and `process.json` (who trains it; src/tracking/liveness.ts).
 *
 * Order of a resume: refuse a directory whose process is alive; mark a crashed session FAILED/`crashed` (spool); push
 * the spool to the server (so that FAILED is applied before the run is set RUNNING again); open the same ledger (its ε
 * continues) and the same MLflow run; restore the model and optimizer from the checkpoint; train the planned updates
 * that are not in the checkpoint.
 *
 * Why resuming from a checkpoint behind the ledger is safe: the ledger record of step s is durable before step s's
 * update is applied, and a checkpoint taken after update s records the ledger's count then (≥ s). On resume the ledger
 * holds L ≥ C steps where C is the checkpoint's `ledgerSteps`: ε is computed over all L steps, which counts every step
 * whose update may be in the weights plus the steps whose updates were lost with the process (at most the steps since
 * the last checkpoint, and the one in flight). The lost updates are re-done as new steps, and accounted again: the
 * ledger only grows. Privacy is over-counted by the re-done steps, never under-counted.
 *
 * MLflow steps are ledger steps: every metric of a step is logged at the ledger's step count after it, which only
 * grows, so a re-done step is logged at a new step index and no (key, step) is logged twice. The run's tags
 * `ewtune.resumes` and `ewtune.redone_steps` say how many resumes and re-done steps the step axis contains.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { EwtuneError } from '../src/errors.ts';
import { PrivacyLedger } from '../src/accounting/ledger.ts';
import { CheckpointError, readCheckpointManifest, restoreCheckpoint, writeCheckpoint, writeFileAtomic, type CheckpointManifest } from '../src/train/checkpoint.ts';
import { markCrashedIfDead, repairSpoolTail, RunInUseError } from '../src/tracking/liveness.ts';
import type { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { ensureRemoteRun, pushSpool } from '../src/tracking/replay.ts';
import type { DpCallback, TrainableModel } from '../src/train/types.ts';
import { GroupedOptimizer } from '../src/train/grouped-optimizer.ts';
import { ConfigError, validateConfig, type ConfigOverrides, type TrainingConfig } from './config.ts';

/** The classifier head's layer name (src/finetune/modes.ts, src/models/transformer.ts). */
const HEAD_LAYER = 'classifier';

/** The resolved configuration saved in every run directory. */
export const RUN_CONFIG_FILE = 'config.json';
/** Checkpoint folder of a run directory. */
export const CHECKPOINT_DIR = 'checkpoint';
/** The ledger inside a run directory. */
export const LEDGER_PATH = ['artifacts', 'privacy', 'ledger.jsonl'] as const;

/** A run directory that cannot be resumed (the message says why). */
export class ResumeError extends EwtuneError {
  readonly runDir: string;
  constructor(runDir: string, message: string) {
    super('ERR_RESUME', `cannot resume ${runDir}: ${message}`);
    this.runDir = runDir;
  }
}

/** Save the resolved configuration in the run directory (atomic, durable). */
export function saveRunConfig(runDir: string, config: TrainingConfig): void {
  writeFileAtomic(runDir, RUN_CONFIG_FILE, `${JSON.stringify(config, null, 2)}\n`);
}

/**
 * The configuration of a run directory (its config.json, checked again against the schema), with the command-line
 * overrides a resume accepts (tracking URI, max steps). Throws ConfigError when it is missing or invalid.
 */
export function loadRunConfig(runDir: string, overrides: Pick<ConfigOverrides, 'trackingUri' | 'maxSteps'> = {}): TrainingConfig {
  const path = join(runDir, RUN_CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, [`cannot be read (${(e as NodeJS.ErrnoException).code === 'ENOENT' ? `${runDir} is not a run directory of ewtune train` : (e as Error).message})`]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, [`is not valid JSON: ${(e as Error).message}`]);
  }
  return validateConfig(parsed, path, overrides);
}

/** What {@link prepareResume} found. */
export interface ResumePreparation {
  /** The previous session had crashed and was marked FAILED/crashed now. */
  readonly crashed: boolean;
}

function ledgerHasStop(path: string): boolean {
  return readFileSync(path, 'utf8').split('\n').some((line) => {
    if (!line.includes('"stop"')) return false;
    try {
      return (JSON.parse(line) as { type?: string }).type === 'stop';
    } catch {
      return false;
    }
  });
}

/**
 * Checks before a resume touches anything: the directory has a ledger without a budget stop, something is left to do
 * (planned updates not all in the checkpoint; the ledger below `training.maxSteps`), and no live process owns it
 * (RunInUseError; a process on another host cannot be checked and is refused too). Then a crashed session is marked
 * FAILED with `ewtune.stop_reason=crashed` in the spool, and a torn last spool line is removed.
 */
export function prepareResume(runDir: string, config: TrainingConfig): ResumePreparation {
  const ledgerPath = join(runDir, ...LEDGER_PATH);
  if (!existsSync(ledgerPath)) throw new ResumeError(runDir, `it has no ledger (${ledgerPath}); the run never started training`);
  if (ledgerHasStop(ledgerPath)) throw new ResumeError(runDir, 'its privacy budget is spent (the ledger ends with a budget stop record)');
  let manifest: CheckpointManifest | undefined;
  try {
    manifest = readCheckpointManifest(join(runDir, CHECKPOINT_DIR));
  } catch (e) {
    if (e instanceof CheckpointError) throw new ResumeError(runDir, e.message);
    throw e;
  }
  const planned = manifest?.extra?.plannedSteps;
  if (manifest && typeof planned === 'number' && manifest.updates >= planned) {
    throw new ResumeError(runDir, `nothing to do: the checkpoint holds all ${planned} planned updates`);
  }
  const maxSteps = config.training.maxSteps;
  if (maxSteps !== undefined) {
    const ledger = PrivacyLedger.openSync(ledgerPath);
    const steps = ledger.steps;
    ledger.closeSync();
    if (steps >= maxSteps) throw new ResumeError(runDir, `nothing to do: the ledger holds ${steps} steps, /training/maxSteps is ${maxSteps} (give a larger --max-steps)`);
  }
  const marked = markCrashedIfDead(runDir);
  if (marked.state === 'alive' && marked.record) throw new RunInUseError(runDir, marked.record);
  if (marked.state === 'unknown' && marked.record) {
    throw new ResumeError(runDir, `process.json names process ${marked.record.pid} on host ${marked.record.host}, which cannot be checked from here; `
      + 'if that process is gone, delete process.json and resume again');
  }
  repairSpoolTail(runDir);
  return { crashed: marked.crashed };
}

/**
 * The run's optimizer: {@link createOptimizer} for the model, or — with `training.headLearningRate` — a
 * {@link GroupedOptimizer} whose `head` group (the trainable weights of the layer named `classifier`) has its own
 * optimizer of the same kind at that learning rate.
 * @throws ConfigError when headLearningRate is set and the model has no trainable `classifier` layer.
 */
export function createRunOptimizer(training: TrainingConfig['training'], model: TrainableModel): tf.Optimizer {
  const base = createOptimizer(training.optimizer, training.learningRate);
  if (training.headLearningRate === undefined) return base;
  const head = model instanceof tf.LayersModel ? model.layers.find((l) => l.name === HEAD_LAYER) : undefined;
  const variables = head ? head.trainableWeights.map((w) => w.name) : [];
  if (variables.length === 0) {
    base.dispose();
    throw new ConfigError('/training/headLearningRate', [`/training/headLearningRate needs a model with a trainable layer named "${HEAD_LAYER}" (the classifier head)`]);
  }
  return new GroupedOptimizer([{ name: 'head', optimizer: createOptimizer(training.optimizer, training.headLearningRate), variables }], base);
}

/** The optimizer dpFit would make for this name and learning rate (same defaults), made here so its state can be checkpointed. */
export function createOptimizer(name: TrainingConfig['training']['optimizer'], learningRate: number): tf.Optimizer {
  switch (name) {
    case 'sgd': return tf.train.sgd(learningRate);
    case 'adam': return tf.train.adam(learningRate);
    case 'momentum': return tf.train.momentum(learningRate, 0.9);
    case 'rmsprop': return tf.train.rmsprop(learningRate);
    default: throw new ConfigError('/training/optimizer', [`/training/optimizer ${JSON.stringify(name)} is not supported`]);
  }
}

/**
 * With a tracking server: the server run of this directory (run.json's, else a new one created from the spool) with
 * everything spooled so far sent — in particular a crash's FAILED end — so the resumed sink can set it RUNNING again.
 * Returns its run id.
 */
export async function syncRemoteBeforeResume(runDir: string, client: MlflowClient, experimentName?: string): Promise<string> {
  const { run } = await ensureRemoteRun(runDir, client, { experimentName });
  await pushSpool(runDir, client, run.runId);
  return run.runId;
}

/**
 * Restore the checkpoint of a resumed run into `model` and `optimizer`, after checking it belongs to `ledger` and is
 * not ahead of it. Returns the updates already applied (0 without a checkpoint: training restarts from the freshly
 * built model, and the ledger still counts every step taken before).
 */
export async function restoreForResume(runDir: string, ledger: PrivacyLedger, model: TrainableModel, optimizer: tf.Optimizer): Promise<{ updates: number; manifest?: CheckpointManifest }> {
  const dir = join(runDir, CHECKPOINT_DIR);
  let manifest: CheckpointManifest | undefined;
  try {
    manifest = await restoreCheckpoint(dir, model, optimizer);
  } catch (e) {
    if (e instanceof CheckpointError) throw new ResumeError(runDir, e.message);
    throw e;
  }
  if (!manifest) return { updates: 0 };
  if (manifest.ledgerId !== undefined && manifest.ledgerId !== ledger.header.ledgerId) {
    throw new ResumeError(runDir, `the checkpoint belongs to ledger ${manifest.ledgerId}, not to ${ledger.header.ledgerId}`);
  }
  if (manifest.ledgerSteps > ledger.steps) {
    throw new ResumeError(runDir, `the checkpoint records ${manifest.ledgerSteps} ledger steps but the ledger holds ${ledger.steps}: `
      + 'a checkpoint is never ahead of the ledger, so the ledger was replaced or truncated');
  }
  return { updates: manifest.updates, manifest };
}

/** Options of {@link Checkpointer}. */
export interface CheckpointerOptions {
  readonly runDir: string;
  readonly model: TrainableModel;
  readonly optimizer: tf.Optimizer;
  readonly ledger: PrivacyLedger;
  /** Write a checkpoint after every this many updates (counted over the whole run). */
  readonly everySteps: number;
  /** Updates already in the weights (a resumed run's checkpoint), default 0. */
  readonly updates?: number;
  /** Planned updates of the whole run (stored, so a resume of a completed run is refused before it starts). */
  readonly plannedSteps?: number;
}

/**
 * A dpFit callback that writes a checkpoint after every `everySteps`-th update (onBatchEnd runs after the update is
 * applied; the ledger already holds that step's record), and on `save()` (start and end of a session).
 */
export class Checkpointer implements DpCallback {
  readonly #o: CheckpointerOptions;
  #updates: number;
  #saved = -1;

  constructor(options: CheckpointerOptions) {
    this.#o = options;
    this.#updates = options.updates ?? 0;
  }

  /** Updates applied to the model so far (over the whole run). */
  get updates(): number {
    return this.#updates;
  }

  async onBatchEnd(): Promise<void> {
    this.#updates += 1;
    if (this.#updates % this.#o.everySteps === 0) await this.save();
  }

  /** Write a checkpoint of the current state unless one of exactly this state was written. */
  async save(): Promise<void> {
    if (this.#saved === this.#updates) return;
    const { runDir, model, optimizer, ledger } = this.#o;
    await writeCheckpoint(join(runDir, CHECKPOINT_DIR), {
      model, optimizer, updates: this.#updates, ledgerSteps: ledger.steps, ledgerId: ledger.header.ledgerId,
      extra: this.#o.plannedSteps !== undefined ? { plannedSteps: this.#o.plannedSteps } : undefined,
    });
    this.#saved = this.#updates;
  }
}
