/**
 * Argument checks of the DP training entry points (dpFit, dpStep, clippedGradientSum, privatiseGradient). Each
 * throws InvalidArgumentError naming the caller's argument, before any tensor work or noise draw.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.ts';
import { assertFiniteNumber, assertNoiseMultiplier, assertSteps } from '../validate.ts';
import type { NoiseSource } from '../dp/noise.ts';
import type { DpData, TrainableModel } from './types.ts';

const SUPPORTED_DTYPES = new Set(['float32', 'int32']);

/** A finite number > 0. */
export function assertPositiveNumber(argument: string, value: unknown): asserts value is number {
  assertFiniteNumber(argument, value);
  if (value <= 0) throw new InvalidArgumentError(argument, value, 'a finite number > 0');
}

/** The trainable variables of a tfjs-layers model or a core-ops `{ variables, predict }` model. */
export function trainableVariables(model: TrainableModel): tf.Variable[] {
  if (model === null || typeof model !== 'object') throw new InvalidArgumentError('model', model, 'a model');
  if (model instanceof tf.LayersModel) return model.trainableWeights.map((w) => w.read() as tf.Variable);
  const vars = (model as { variables?: unknown }).variables;
  if (!Array.isArray(vars) || typeof (model as { predict?: unknown }).predict !== 'function') {
    throw new InvalidArgumentError('model', model, 'a tf.LayersModel or { variables: tf.Variable[], predict }');
  }
  return vars.filter((v: tf.Variable) => v.trainable);
}

/** What {@link validateModelAndData} found. */
export interface ModelAndData {
  /** N, the number of examples (first axis of every tensor of `data`). */
  readonly datasetSize: number;
  /** Total number of trainable parameters. */
  readonly dimension: number;
}

/** The model has trainable weights; data.x (one tensor or one per input) and data.y are live, typed, of equal length. */
export function validateModelAndData(model: TrainableModel, data: DpData): ModelAndData {
  if (model === null || typeof model !== 'object') throw new InvalidArgumentError('model', model, 'a model');
  if (data === null || typeof data !== 'object') throw new InvalidArgumentError('data', data, 'an object { x, y }');
  const xs = Array.isArray(data.x) ? data.x : [data.x];
  if (xs.length === 0) throw new InvalidArgumentError('data.x', data.x, 'a tensor or a non-empty array of tensors');
  xs.forEach((t, i) => {
    const name = Array.isArray(data.x) ? `data.x[${i}]` : 'data.x';
    if (!(t instanceof tf.Tensor)) throw new InvalidArgumentError(name, t, 'a tf.Tensor');
    if (t.isDisposed) throw new InvalidArgumentError(name, 'disposed tensor', 'a live tensor');
    if (!SUPPORTED_DTYPES.has(t.dtype)) throw new InvalidArgumentError(`${name}.dtype`, t.dtype, "'float32' or 'int32'");
    if (t.rank < 1) throw new InvalidArgumentError(`${name}.shape`, t.shape, 'of rank ≥ 1 (examples first)');
  });
  if (!(data.y instanceof tf.Tensor)) throw new InvalidArgumentError('data.y', data.y, 'a tf.Tensor');
  if (data.y.isDisposed) throw new InvalidArgumentError('data.y', 'disposed tensor', 'a live tensor');
  if (!SUPPORTED_DTYPES.has(data.y.dtype)) throw new InvalidArgumentError('data.y.dtype', data.y.dtype, "'float32' or 'int32'");
  if (data.y.rank < 1) throw new InvalidArgumentError('data.y.shape', data.y.shape, 'of rank ≥ 1 (examples first)');
  const datasetSize = xs[0].shape[0];
  if (datasetSize === 0) throw new InvalidArgumentError('data.x', xs[0].shape, 'a non-empty dataset (shape[0] ≥ 1)');
  xs.forEach((t, i) => {
    if (t.shape[0] !== datasetSize) {
      throw new InvalidArgumentError(`data.x[${i}].shape[0]`, t.shape[0], `equal to data.x[0].shape[0] = ${datasetSize}`);
    }
  });
  if (data.y.shape[0] !== datasetSize) {
    throw new InvalidArgumentError('data.y.shape[0]', data.y.shape[0], `equal to data.x.shape[0] = ${datasetSize}`);
  }
  const variables = trainableVariables(model);
  if (variables.length === 0) throw new InvalidArgumentError('model', 'no trainable weights', 'a model with trainable weights');
  return { datasetSize, dimension: variables.reduce((n, v) => n + v.size, 0) };
}

/** `indices` is an Int32Array of example indices in [0, datasetSize). */
export function assertIndices(indices: unknown, datasetSize: number): asserts indices is Int32Array {
  if (!(indices instanceof Int32Array)) throw new InvalidArgumentError('indices', indices, 'an Int32Array');
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (i < 0 || i >= datasetSize) {
      throw new InvalidArgumentError(`indices[${k}]`, i, `an example index in [0, ${datasetSize}) (data has ${datasetSize} examples)`);
    }
  }
}

/** An options object (not null, not an array). */
export function assertOptions(options: unknown, argument = 'options'): asserts options is Record<string, unknown> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(argument, options, 'an options object');
  }
}

/** The clipping options shared by clippedGradientSum and dpStep (the loss and strategy are checked by the clipper). */
export function assertClippingOptions(options: { l2NormClip?: unknown; maxPhysicalBatchSize?: unknown }): void {
  assertPositiveNumber('l2NormClip', options.l2NormClip);
  if (options.maxPhysicalBatchSize !== undefined) assertSteps(options.maxPhysicalBatchSize, 'maxPhysicalBatchSize');
}

/** Whether a value is usable as a NoiseSource. */
export function isNoiseSource(noise: unknown): noise is NoiseSource {
  return noise !== null && typeof noise === 'object' && typeof (noise as NoiseSource).perturb === 'function';
}

/**
 * The privatisation options: σ > 0 (σ = 0 only with `nonPrivate: true`, which requires σ = 0), C > 0, expected batch
 * size > 0, a NoiseSource (not needed for a non-private step), σ·C finite.
 */
export function assertPrivatiseOptions(options: {
  noiseMultiplier?: unknown; l2NormClip?: unknown; expectedBatchSize?: unknown; noise?: unknown; nonPrivate?: unknown;
}): void {
  const nonPrivate = options.nonPrivate;
  if (nonPrivate !== undefined && typeof nonPrivate !== 'boolean') {
    throw new InvalidArgumentError('nonPrivate', nonPrivate, 'a boolean');
  }
  if (nonPrivate === true) {
    if (options.noiseMultiplier !== 0) {
      throw new InvalidArgumentError('noiseMultiplier', options.noiseMultiplier,
        '0 with nonPrivate: true (a step with noise is a private step: leave nonPrivate out)');
    }
  } else if (options.noiseMultiplier === 0) {
    throw new InvalidArgumentError('noiseMultiplier', 0,
      'a finite number > 0 (noiseMultiplier 0 adds no noise: the step is not private; pass nonPrivate: true to ask for that by name)');
  } else {
    assertNoiseMultiplier(options.noiseMultiplier, 'noiseMultiplier');
  }
  assertPositiveNumber('l2NormClip', options.l2NormClip);
  assertPositiveNumber('expectedBatchSize', options.expectedBatchSize);
  if (nonPrivate !== true) {
    if (!isNoiseSource(options.noise)) throw new InvalidArgumentError('noise', options.noise, 'a NoiseSource (createNoiseSource)');
    const std = (options.noiseMultiplier as number) * (options.l2NormClip as number);
    if (!Number.isFinite(std)) {
      throw new InvalidArgumentError('noiseMultiplier', options.noiseMultiplier,
        `small enough that noiseMultiplier × l2NormClip (${options.l2NormClip}) is finite`);
    }
  }
}

/** A tf.Optimizer (anything with applyGradients). */
export function assertOptimizer(optimizer: unknown): asserts optimizer is tf.Optimizer {
  if (!(optimizer instanceof tf.Optimizer)
    && !(optimizer !== null && typeof optimizer === 'object' && typeof (optimizer as tf.Optimizer).applyGradients === 'function')) {
    throw new InvalidArgumentError('optimizer', optimizer, 'a tf.Optimizer (e.g. tf.train.sgd(0.1))');
  }
}
