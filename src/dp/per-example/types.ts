/** Public types of the per-example clipping step (src/dp/per-example). */
import type * as tf from '@tensorflow/tfjs';

/** A per-example loss: returns one loss per example, shape [B]. It must not mix examples (no batch mean). */
export type PerExampleLossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

/** Built-in losses (Keras semantics: predictions are probabilities, clipped to [1e-7, 1 − 1e-7]). */
export type BuiltinLossName =
  | 'sparseCategoricalCrossentropy'
  | 'categoricalCrossentropy'
  | 'binaryCrossentropy'
  | 'meanSquaredError';

/**
 * How per-example norms are computed.
 * - `auto`: vectorised; per Dense layer on sequences, materialised per-example gradients (never more arithmetic,
 *   the clipped sum then comes almost free) unless their stack exceeds a memory cap, then the cheaper by cost estimate.
 * - `ghost`: vectorised; ghost norms wherever a layer has both forms.
 * - `materialise`: vectorised; materialised per-example gradients wherever a layer has both forms.
 * - `naive`: the per-example loop (reference implementation), whatever the model.
 */
export type ClippingStrategy = 'auto' | 'ghost' | 'materialise' | 'naive';

export interface ClippedGradientOptions {
  /** Per-example L2 clipping bound C > 0 (over all trainable variables jointly). */
  l2NormClip: number;
  /** Loss: a built-in name or a function returning per-example losses of shape [B]. */
  loss: BuiltinLossName | PerExampleLossFn;
  /** Default `auto`. */
  strategy?: ClippingStrategy;
}

/**
 * A model written as a function of tfjs-core ops. Variables with `trainable === false` get no gradient.
 * `predict` must treat examples independently (row i of the output depends on row i of the input only).
 */
export interface FunctionModel {
  variables: tf.Variable[];
  predict: (x: tf.Tensor) => tf.Tensor;
}

/** Anything computeClippedGradients accepts. */
export type ClippableModel = tf.LayersModel | FunctionModel;

/** The model input: one tensor, or one per model input (functional models with several inputs). */
export type ModelInput = tf.Tensor | tf.Tensor[];

/**
 * What {@link computeClippedGradients} returns for one physical batch: the clipped gradient sum per variable (not
 * averaged, no noise), the per-example norms before clipping, the loss sum and the examples that were skipped.
 */
export interface ClippedGradientResult {
  /**
   * Σ_i c_i·g_i for every trainable variable, keyed by variable name (c_i = min(1, C/‖g_i‖)); examples with a
   * non-finite gradient contribute zero. Not averaged, no noise. The caller owns (and disposes) these tensors.
   */
  clippedSum: Map<string, tf.Tensor>;
  /** ‖g_i‖ before clipping (float64 view of float32 sums); NaN/Infinity for non-finite examples. */
  perExampleNorms: Float64Array;
  /** Σ_i loss_i over the examples that contributed (finite gradient and finite loss). */
  lossSum: number;
  /** B, the number of examples in this (physical) batch. */
  batchSize: number;
  /** Examples whose gradient was non-finite (they contributed zero). */
  nonFiniteCount: number;
  /** Names of layers whose trainable weights went through the per-example loop (empty when fully vectorised). */
  fallbackLayers: string[];
}
