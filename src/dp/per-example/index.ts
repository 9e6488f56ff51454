/**
 * Per-example clipped gradient sums for TF.js models: the heart of the DP step.
 *
 * computeClippedGradients(model, x, y, { l2NormClip, loss }) returns Σ_i c_i·g_i with c_i = min(1, C/‖g_i‖),
 * for every trainable variable, where g_i is example i's gradient over all trainable variables jointly. The caller
 * adds noise and divides by the expected batch size.
 */
import * as tf from '@tensorflow/tfjs';
import { naiveClippedGradients, naiveStep } from './naive.ts';
import { prepareCall, validateClippingCall } from './prepare.ts';
import { vectorisedStep, warnFallbackOnce } from './vectorised.ts';
import type { ClippableModel, ClippedGradientOptions, ClippedGradientResult, ModelInput } from './types.ts';

export type {
  BuiltinLossName, ClippableModel, ClippedGradientOptions, ClippedGradientResult, ClippingStrategy, FunctionModel,
  ModelInput, PerExampleLossFn,
} from './types.ts';
export { naiveClippedGradients, validateClippingCall };
export type { ValidatedClipping } from './prepare.ts';
export { resolveLoss } from './losses.ts';

/** The label reported in fallbackLayers for a model written as a function of tfjs-core ops. */
export const FUNCTION_MODEL_LABEL = '<function model>';

/**
 * Clipped per-example gradient sum of one (physical) batch.
 *
 * - tfjs-layers models (Sequential, functional, nested): Dense (2-D and sequence inputs), Embedding,
 *   LayerNormalization (last axis) and ewtune's PositionEmbedding are vectorised (materialised or ghost norms chosen
 *   per layer by cost and memory, clipped sum by book-keeping); weightless layers (attention cores, activations, pooling, add,
 *   reshape...) are called as tfjs calls them; any other layer with trainable weights, or a layer called more than
 *   once, uses the per-example loop for its own weights (listed in `fallbackLayers`, console.warn once per model).
 * - A `{ variables, predict }` model written with tfjs-core ops (`FunctionModel`) uses the per-example loop.
 * - Frozen weights (trainable = false) get no entry and no extra work.
 * - The forward pass is a training pass: dropout is on (each example its own mask, from TF.js's random ops: not
 *   privacy noise, and DP holds whatever the masks), as in model.fit; masks (e.g. Embedding maskZero) propagate as
 *   in model.fit/predict. BatchNormalization is refused unless frozen (trainable = false: inference mode on its
 *   moving statistics), because batch statistics mix examples. Regularizer losses are not included.
 * - An example whose gradient is non-finite contributes zero and is counted in `nonFiniteCount`.
 * - All intermediate tensors are disposed; the caller owns (and must dispose) the tensors of `clippedSum`.
 *
 * @throws InvalidArgumentError (before any work) for l2NormClip ≤ 0 or non-finite, an unknown loss or strategy,
 *   x/y batch mismatch, wrong number of inputs, unsupported dtypes, a model without trainable weights, or a
 *   BatchNormalization layer in training mode (the error names the layer and says why).
 */
export function computeClippedGradients(
  model: ClippableModel, x: ModelInput, y: tf.Tensor, options: ClippedGradientOptions,
): ClippedGradientResult {
  const call = prepareCall(model, x, y, options);
  if (call.batchSize === 0) return emptyResult(call.trainable.map((v) => [v.name, v.variable]));
  if (call.strategy === 'naive') return naiveStep(call, []);
  if (call.kind === 'function') {
    warnFallbackOnce(model, [FUNCTION_MODEL_LABEL]);
    return naiveStep(call, [FUNCTION_MODEL_LABEL]);
  }
  return vectorisedStep(call);
}

/** An empty (Poisson) batch: zero sums, no examples. */
function emptyResult(variables: Array<[string, tf.Variable]>): ClippedGradientResult {
  return {
    clippedSum: new Map(variables.map(([name, v]) => [name, tf.zerosLike(v)])),
    perExampleNorms: new Float64Array(0),
    lossSum: 0,
    batchSize: 0,
    nonFiniteCount: 0,
    fallbackLayers: [],
  };
}
