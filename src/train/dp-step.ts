/**
 * One DP-SGD step, split so that the durable record can be written between computing the noisy gradient and
 * applying it:
 *   1. {@link clippedGradientSum}: Σ_i clip_C(g_i) over one logical batch, summed over physical micro-batches;
 *   2. {@link privatiseGradient}: + N(0, (σC)²) in float64 from a NoiseSource, ÷ EXPECTED batch size, cast once;
 *   3. the caller records the step (ledger fsync, accountant) — {@link dpStep} awaits `beforeApply`;
 *   4. optimizer.applyGradients.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.ts';
import { computeClippedGradients, validateClippingCall } from '../dp/per-example/index.ts';
import type { BuiltinLossName, ClippingStrategy, PerExampleLossFn } from '../dp/per-example/index.ts';
import { effectiveNoiseMultiplier } from '../dp/noise.ts';
import type { NoiseSource } from '../dp/noise.ts';
import { splitVirtualBatch } from '../dp/sampling.ts';
import type { DpData, TrainableModel } from './types.ts';
import {
  assertClippingOptions, assertIndices, assertOptimizer, assertOptions, assertPrivatiseOptions, validateModelAndData,
} from './checks.ts';

/** The clipped, noiseless sum of one logical batch. Float32 host arrays (no tensors held). */
export interface ClippedBatchSum {
  /** Σ_i c_i·g_i per trainable variable name. */
  readonly sums: Map<string, Float32Array>;
  readonly shapes: Map<string, number[]>;
  readonly batchSize: number;
  readonly lossSum: number;
  readonly nonFiniteCount: number;
  readonly fallbackLayers: string[];
}

/** Options of {@link clippedGradientSum}. */
export interface ClippedSumOptions {
  readonly l2NormClip: number;
  readonly loss: BuiltinLossName | PerExampleLossFn;
  readonly strategy?: ClippingStrategy;
  /** Physical micro-batch size (default: the whole logical batch at once). */
  readonly maxPhysicalBatchSize?: number;
}

function gatherRows(data: DpData, rows: Int32Array): { x: tf.Tensor | tf.Tensor[]; y: tf.Tensor } {
  const idx = tf.tensor1d(rows, 'int32');
  try {
    const x = Array.isArray(data.x) ? data.x.map((t) => tf.gather(t, idx)) : tf.gather(data.x, idx);
    return { x, y: tf.gather(data.y, idx) };
  } finally {
    idx.dispose();
  }
}

/**
 * Σ_i clip_C(g_i) over the examples `indices` of `data`, computed in physical micro-batches of at most
 * `maxPhysicalBatchSize` (virtual batches: same result as one physical batch up to float32 summation order).
 * An empty `indices` gives zero sums.
 *
 * @throws InvalidArgumentError (before any work) naming the argument: model without trainable weights or with a
 *   layer the DP step refuses (e.g. BatchNormalization in training mode), bad data (types, lengths), indices not an
 *   Int32Array or out of [0, N), l2NormClip not finite > 0, maxPhysicalBatchSize not a positive integer, unknown
 *   loss or strategy.
 */
export function clippedGradientSum(model: TrainableModel, data: DpData, indices: Int32Array,
  options: ClippedSumOptions): ClippedBatchSum {
  checkClippedSumArgs(model, data, indices, options);
  return clippedSumUnchecked(model, data, indices, options);
}

function checkClippedSumArgs(model: TrainableModel, data: DpData, indices: Int32Array, options: ClippedSumOptions): void {
  const { datasetSize } = validateModelAndData(model, data);
  assertIndices(indices, datasetSize);
  assertOptions(options);
  assertClippingOptions(options);
  validateClippingCall(model, options);
}

function clippedSumUnchecked(model: TrainableModel, data: DpData, indices: Int32Array,
  options: ClippedSumOptions): ClippedBatchSum {
  const parts = indices.length === 0 ? [indices]
    : splitVirtualBatch(indices, options.maxPhysicalBatchSize ?? indices.length);
  const acc = new Map<string, tf.Tensor>();
  let batchSize = 0;
  let lossSum = 0;
  let nonFiniteCount = 0;
  const fallback = new Set<string>();
  try {
    for (const rows of parts) {
      const { x, y } = gatherRows(data, rows);
      let result;
      try {
        result = computeClippedGradients(model, x, y,
          { l2NormClip: options.l2NormClip, loss: options.loss, strategy: options.strategy });
      } finally {
        tf.dispose(x);
        y.dispose();
      }
      batchSize += result.batchSize;
      lossSum += result.lossSum;
      nonFiniteCount += result.nonFiniteCount;
      for (const name of result.fallbackLayers) fallback.add(name);
      for (const [name, g] of result.clippedSum) {
        const prev = acc.get(name);
        if (prev === undefined) {
          acc.set(name, g);
        } else {
          acc.set(name, tf.add(prev, g));
          prev.dispose();
          g.dispose();
        }
      }
    }
    const sums = new Map<string, Float32Array>();
    const shapes = new Map<string, number[]>();
    for (const [name, t] of acc) {
      sums.set(name, Float32Array.from(t.dataSync() as Float32Array));
      shapes.set(name, t.shape.slice());
    }
    return { sums, shapes, batchSize, lossSum, nonFiniteCount, fallbackLayers: [...fallback] };
  } finally {
    for (const t of acc.values()) t.dispose();
  }
}

/** Options of {@link privatiseGradient}. */
export interface PrivatiseOptions {
  /**
   * σ > 0: the noise std is σ·l2NormClip. σ = 0 is refused unless `nonPrivate: true` says, by name, that a step
   * without noise (no privacy guarantee) is wanted.
   */
  readonly noiseMultiplier: number;
  /** C > 0, the per-example clipping bound the sum was clipped with. */
  readonly l2NormClip: number;
  /** The expected (logical) batch size the noisy sum is divided by (q·N for Poisson sampling); > 0. */
  readonly expectedBatchSize: number;
  /** Where the noise comes from (createNoiseSource); not used by a non-private step. */
  readonly noise: NoiseSource;
  /**
   * `true` asks for a NON-PRIVATE step: noiseMultiplier must then be 0, no noise is drawn and the update is the
   * clipped mean only. Such a step has no DP guarantee and must not be recorded in a privacy ledger or composed in
   * an accountant (both refuse σ = 0). Default false.
   */
  readonly nonPrivate?: boolean;
}

/**
 * (Σ clip(g_i) + N(0, (σC)²·I)) / expectedBatchSize per variable: the noise is drawn and added in float64 by the
 * NoiseSource (hardened mode: on its grid), divided in float64, cast to float32 once. Returns new tensors (the
 * caller disposes them) keyed by variable name, ready for optimizer.applyGradients.
 *
 * @throws InvalidArgumentError (before any noise is drawn) naming the argument: noiseMultiplier not finite > 0
 *   (0 only with nonPrivate: true), l2NormClip or expectedBatchSize not finite > 0, no NoiseSource, a batch that is
 *   not a ClippedBatchSum.
 */
export function privatiseGradient(batch: ClippedBatchSum, options: PrivatiseOptions): tf.NamedTensorMap {
  assertOptions(options);
  assertPrivatiseOptions(options);
  assertBatch(batch);
  return privatiseUnchecked(batch, options);
}

function assertBatch(batch: ClippedBatchSum): void {
  if (batch === null || typeof batch !== 'object' || !(batch.sums instanceof Map) || !(batch.shapes instanceof Map)) {
    throw new InvalidArgumentError('batch', batch, 'a ClippedBatchSum (from clippedGradientSum)');
  }
  for (const [name, sum] of batch.sums) {
    const shape = batch.shapes.get(name);
    if (!(sum instanceof Float32Array) || !Array.isArray(shape) || shape.reduce((n, d) => n * d, 1) !== sum.length) {
      throw new InvalidArgumentError(`batch.sums.get(${JSON.stringify(name)})`, shape,
        'a Float32Array whose length matches batch.shapes');
    }
  }
}

function privatiseUnchecked(batch: ClippedBatchSum, options: PrivatiseOptions): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  if (options.nonPrivate === true) {
    // No noise: the clipped mean (float64 division, one cast), for explicitly non-private steps only.
    for (const [name, sum] of batch.sums) {
      const avg = new Float32Array(sum.length);
      for (let i = 0; i < sum.length; i++) avg[i] = sum[i] / options.expectedBatchSize;
      out[name] = tf.tensor(avg, batch.shapes.get(name), 'float32');
    }
    return out;
  }
  const std = options.noiseMultiplier * options.l2NormClip;
  const noise = options.noise;
  for (const [name, sum] of batch.sums) {
    let noisy: Float64Array;
    if (typeof noise.perturbInto === 'function') {
      if (scratch.length < sum.length) scratch = new Float64Array(sum.length);
      noisy = noise.perturbInto(sum, std, scratch.subarray(0, sum.length));
    } else {
      noisy = noise.perturb(sum, std);
    }
    const avg = new Float32Array(noisy.length);
    for (let i = 0; i < noisy.length; i++) avg[i] = noisy[i] / options.expectedBatchSize;
    // The scratch buffer outlives the step: wipe the noisy sum from it.
    if (noisy.buffer === scratch.buffer) noisy.fill(0);
    out[name] = tf.tensor(avg, batch.shapes.get(name), 'float32');
  }
  return out;
}

/**
 * Float64 buffer reused by privatiseGradient for the noisy sums (a fresh multi-MiB array per variable and step costs
 * page faults comparable to drawing the noise); zeroed after each use.
 */
let scratch = new Float64Array(0);

/**
 * The noise multiplier the accountant must use: σ for the continuous modes; for the hardened mode the effective
 * one (applied std / (C + Λ√d)) with d = the total number of trainable parameters.
 */
export function accountedNoiseMultiplier(noise: NoiseSource, noiseMultiplier: number, l2NormClip: number,
  dimension: number): number {
  if (noise.mode !== 'hardened') return noiseMultiplier;
  const gridBits = noise.describe().gridBits;
  return effectiveNoiseMultiplier(noiseMultiplier, l2NormClip, dimension, gridBits);
}

/** Options of {@link dpStep}. */
export interface DpStepOptions extends ClippedSumOptions, Omit<PrivatiseOptions, 'l2NormClip'> {
  readonly optimizer: tf.Optimizer;
  /**
   * Awaited after the noisy gradient is computed and BEFORE it is applied: record the step durably here (ledger
   * append + fsync, accountant compose). Return `false` to skip the update (nothing is applied). `step.nonPrivate`
   * is true for a step asked for with `nonPrivate: true`: do not record it as a private step.
   */
  readonly beforeApply?: (batch: ClippedBatchSum, step: DpStepKind) => Promise<boolean | void> | boolean | void;
}

/** What kind of step {@link dpStep} took (passed to beforeApply and returned). */
export interface DpStepKind {
  /** True when the step had no noise (`nonPrivate: true`): it carries no DP guarantee. */
  readonly nonPrivate: boolean;
  /** The σ applied (0 for a non-private step). */
  readonly noiseMultiplier: number;
}

/** Result of {@link dpStep}. */
export interface DpStepResult {
  readonly applied: boolean;
  /** True for a step taken with `nonPrivate: true` (no noise, no DP guarantee). */
  readonly nonPrivate: boolean;
  readonly batchSize: number;
  /** Mean per-example loss over the realised batch (NaN when empty). */
  readonly lossMean: number;
  readonly nonFiniteCount: number;
  readonly fallbackLayers: string[];
}

/**
 * One DP step on the examples `indices` (sampled by the caller, e.g. with poissonSample) for users with their own
 * loop. The caller is responsible for accounting: do it in `beforeApply`.
 *
 * Every argument is checked before any work (as dpFit does): see {@link clippedGradientSum} and
 * {@link privatiseGradient} for the checks; also `optimizer` (a tf.Optimizer) and `beforeApply` (a function).
 * @throws InvalidArgumentError naming the argument (e.g. `expectedBatchSize` 0, NaN, negative or ∞;
 *   `noiseMultiplier` NaN, negative, ∞, or 0 without `nonPrivate: true`).
 */
export async function dpStep(model: TrainableModel, data: DpData, indices: Int32Array,
  options: DpStepOptions): Promise<DpStepResult> {
  assertOptions(options);
  assertPrivatiseOptions(options);
  assertOptimizer(options.optimizer);
  if (options.beforeApply !== undefined && typeof options.beforeApply !== 'function') {
    throw new InvalidArgumentError('beforeApply', options.beforeApply, 'a function');
  }
  checkClippedSumArgs(model, data, indices, options);
  const batch = clippedSumUnchecked(model, data, indices, options);
  const grads = privatiseUnchecked(batch, options);
  const kind: DpStepKind = { nonPrivate: options.nonPrivate === true, noiseMultiplier: options.noiseMultiplier };
  try {
    const proceed = options.beforeApply ? await options.beforeApply(batch, kind) : undefined;
    if (proceed === false) return summary(batch, false, kind.nonPrivate);
    options.optimizer.applyGradients(grads);
    return summary(batch, true, kind.nonPrivate);
  } finally {
    tf.dispose(grads);
  }
}

function summary(batch: ClippedBatchSum, applied: boolean, nonPrivate: boolean): DpStepResult {
  return {
    applied,
    nonPrivate,
    batchSize: batch.batchSize,
    lossMean: batch.batchSize > 0 ? batch.lossSum / (batch.batchSize - batch.nonFiniteCount || NaN) : NaN,
    nonFiniteCount: batch.nonFiniteCount,
    fallbackLayers: batch.fallbackLayers,
  };
}
