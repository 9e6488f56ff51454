/**
 * The checks of a run that need the data, run by runTraining right after the texts are read and BEFORE a run
 * directory or an MLflow run is created (so a bad configuration leaves nothing behind and exits 2):
 *   - the run directory's parent is a writable folder (not a file);
 *   - the data file is readable, well formed and not empty, the training split is not empty (plugin/data.ts);
 *   - expectedBatchSize ≤ N (the sample rate E/N is a probability);
 *   - σ: the given one, or calibrated for the target (a target no σ can reach is a configuration error);
 *   - values that are valid but cannot train: a learning rate or clipping bound whose steps would move a weight by
 *     more than {@link MAX_STEP_PER_WEIGHT} (the run would only blow up or end in NaN), or l2NormClip above
 *     {@link MAX_L2_NORM_CLIP};
 *   - warnings (printed and set as MLflow tags by runTraining): δ ≥ 1/N, l2NormClip far above typical gradient norms.
 * These use only the configuration and N (no example): deciding on them reveals nothing about the private data.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { calibrateNoiseMultiplier, resolveSteps, type CalibrationResult } from '../src/accounting/calibrate.ts';
import { UnreachableTargetError } from '../src/errors.ts';
import { deltaWarning } from '../src/validate.ts';
import { ConfigError, type TrainingConfig } from './config.ts';
import type { LoadedTexts } from './data.ts';
import { loadCorpus } from './corpus.ts';
import { resolveModelPath } from './encoder.ts';
import type { LabelledCorpus } from '../src/data/labelled.ts';
import { CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE } from '../src/model-dir/index.ts';

/**
 * Largest accepted change of one weight in one step (in weight units). Adam and RMSprop move each weight by about
 * the learning rate per step whatever the gradient scale; SGD by lr·C·max(1, σ/E) at most for the clipped mean
 * plus its noise (×10 with momentum 0.9). Pre-trained weights are O(0.1): steps above 100 can only blow up.
 */
export const MAX_STEP_PER_WEIGHT = 100;

/** Largest accepted l2NormClip; per-example gradient norms are O(0.1–10), so above this clipping never acts. */
export const MAX_L2_NORM_CLIP = 1e6;

/** l2NormClip above this gets a warning (noise σ·C far above typical per-example gradient norms). */
export const WARN_L2_NORM_CLIP = 100;

/** A warning: printed by runTraining and set as the MLflow tag `tag`. */
export interface PreflightWarning {
  readonly tag: string;
  readonly message: string;
}

/** What the preflight found (runTraining uses these instead of computing them again). */
export interface Preflight {
  readonly texts: LoadedTexts;
  /** The same examples with their validation split and label names (plugin/corpus.ts). */
  readonly corpus: LabelledCorpus;
  /** N, the training examples. */
  readonly datasetSize: number;
  readonly sampleRate: number;
  readonly stepsPerEpoch: number;
  readonly plannedSteps: number;
  /** σ: given in the configuration or calibrated. */
  readonly noiseMultiplier: number;
  readonly calibration?: CalibrationResult;
  readonly warnings: readonly PreflightWarning[];
}

export interface PreflightOptions {
  /** Check that this folder (the parent of a new run directory) is, or can be made, a writable directory. */
  readonly runDirParent?: string;
}

/**
 * Everything about a run that can fail before it starts.
 * @throws ConfigError naming the field (runTraining / `ewtune train` report it and exit 2).
 */
export function preflightRun(config: TrainingConfig, options: PreflightOptions = {}): Preflight {
  if (options.runDirParent !== undefined) assertUsableFolder(options.runDirParent);
  if (config.model.kind === 'pretrained-encoder') assertModelDir(config.model.path);
  const corpus = loadCorpus(config);
  const texts: LoadedTexts = { train: corpus.train, test: corpus.test };
  const datasetSize = texts.train.length;
  const E = config.training.expectedBatchSize;
  if (E > datasetSize) {
    throw new ConfigError('/training/expectedBatchSize', [`/training/expectedBatchSize (${E}) exceeds the training set size `
      + `(${datasetSize}): the sample rate expectedBatchSize / N must be at most 1`]);
  }
  const sampleRate = E / datasetSize;
  const stepsPerEpoch = Math.ceil(datasetSize / E);
  const plannedSteps = resolveSteps(sampleRate, config.training.steps, config.training.epochs);
  const { delta, targetEpsilon } = config.privacy;
  const warnings: PreflightWarning[] = [];
  const deltaMessage = deltaWarning(delta, datasetSize);
  if (deltaMessage) warnings.push({ tag: 'ewtune.warning.delta', message: deltaMessage });

  let calibration: CalibrationResult | undefined;
  let noiseMultiplier = config.privacy.noiseMultiplier;
  if (noiseMultiplier === undefined) {
    try {
      calibration = calibrateNoiseMultiplier({
        targetEpsilon: targetEpsilon as number, delta, sampleRate, steps: plannedSteps, accountant: config.privacy.accountant,
        allowEstimate: config.privacy.allowEstimate, order: config.privacy.edgeworthOrder,
        valueDiscretizationInterval: config.privacy.valueDiscretizationInterval,
      });
    } catch (e) {
      if (e instanceof UnreachableTargetError) {
        throw new ConfigError('/privacy/targetEpsilon', [`/privacy/targetEpsilon (${targetEpsilon}) cannot be reached: ${e.message}. `
          + 'Raise targetEpsilon or delta, or plan fewer steps or a smaller expectedBatchSize']);
      }
      throw e;
    }
    noiseMultiplier = calibration.noiseMultiplier;
  }

  const { learningRate, l2NormClip, optimizer } = config.training;
  if (l2NormClip > MAX_L2_NORM_CLIP) {
    throw new ConfigError('/training/l2NormClip', [`/training/l2NormClip (${l2NormClip}) is above ${MAX_L2_NORM_CLIP}: per-example `
      + `gradient norms are of order 0.1–10, so no example would be clipped and the noise (std σ·C = ${(noiseMultiplier * l2NormClip).toPrecision(3)} `
      + 'on the summed gradient) would drown the gradient. Use a bound of the order of typical per-example gradient norms']);
  }
  const rates: Array<[string, number]> = [['learningRate', learningRate]];
  if (config.training.headLearningRate !== undefined) rates.push(['headLearningRate', config.training.headLearningRate]);
  for (const [field, rate] of rates) checkStepSize(field, rate, optimizer, l2NormClip, noiseMultiplier, E);
  if (l2NormClip > WARN_L2_NORM_CLIP) {
    warnings.push({ tag: 'ewtune.warning.l2_norm_clip', message: `l2NormClip=${l2NormClip} is far above typical per-example gradient `
      + `norms (0.1–10): clipping will rarely act and the noise std σ·C = ${(noiseMultiplier * l2NormClip).toPrecision(3)} may drown the gradient.` });
  }
  return { texts, corpus, datasetSize, sampleRate, stepsPerEpoch, plannedSteps, noiseMultiplier, calibration, warnings };
}

/** Refuses a learning rate (`/training/<field>`) whose steps would move a weight by more than MAX_STEP_PER_WEIGHT. */
function checkStepSize(field: string, learningRate: number, optimizer: TrainingConfig['training']['optimizer'], l2NormClip: number,
  noiseMultiplier: number, E: number): void {
  const perWeight = stepPerWeight(optimizer, learningRate, l2NormClip, noiseMultiplier, E);
  if (perWeight > MAX_STEP_PER_WEIGHT) {
    throw new ConfigError(`/training/${field}`, [`/training/${field} (${learningRate}) with ${optimizer}`
      + `${optimizer === 'sgd' || optimizer === 'momentum' ? `, l2NormClip ${l2NormClip}, σ ${noiseMultiplier.toPrecision(3)} and expectedBatchSize ${E}` : ''} `
      + `would move a weight by up to ~${perWeight.toPrecision(3)} per step (more than ${MAX_STEP_PER_WEIGHT}): the run could only `
      + 'blow up or end in a NaN loss. Use a smaller learning rate (Adam: ~1e-4 to 1e-2)']);
  }
}

/**
 * `model.path` names a fetched pre-trained model or a directory with the files a model directory needs (the full
 * checks of the weights against config.json run when it is loaded, still before any training).
 */
function assertModelDir(path: string): void {
  let dir: string;
  try {
    dir = resolveModelPath(path);
  } catch (e) {
    throw new ConfigError('/model/path', [(e as Error).message]);
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ConfigError('/model/path', [`/model/path ${dir} is not a directory (expected a Hugging Face model directory, or "minilm")`]);
  }
  for (const file of [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE]) {
    if (!existsSync(join(dir, file))) throw new ConfigError('/model/path', [`/model/path ${dir} has no ${file} (a model directory needs config.json, model.safetensors and tokenizer.json)`]);
  }
}

/** The largest change of one weight in one step the optimizer can make (see MAX_STEP_PER_WEIGHT). */
export function stepPerWeight(optimizer: TrainingConfig['training']['optimizer'], learningRate: number, l2NormClip: number,
  noiseMultiplier: number, expectedBatchSize: number): number {
  if (optimizer === 'adam' || optimizer === 'rmsprop') return learningRate;
  const sgd = learningRate * l2NormClip * Math.max(1, noiseMultiplier / expectedBatchSize);
  return optimizer === 'momentum' ? sgd / (1 - 0.9) : sgd;
}

/** `folder` exists as a writable directory, or its nearest existing ancestor is one (mkdir -p will work). */
function assertUsableFolder(folder: string): void {
  const target = resolve(folder);
  let path = target;
  for (;;) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (e) {
      const parent = dirname(path);
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== path) {
        path = parent;
        continue;
      }
      throw new ConfigError('/tracking/runDir', [`/tracking/runDir ${target} cannot be used: ${(e as Error).message}`]);
    }
    if (!isDirectory) {
      throw new ConfigError('/tracking/runDir', [`/tracking/runDir ${target}${path === target ? '' : ` (its parent ${path})`} is a file, `
        + 'not a directory: give a folder to hold the run directories']);
    }
    try {
      accessSync(path, constants.W_OK);
    } catch {
      throw new ConfigError('/tracking/runDir', [`/tracking/runDir ${target}: ${path} is not writable`]);
    }
    return;
  }
}
