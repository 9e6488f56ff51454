/**
 * The reference per-example loop: for each example, the gradient of its own loss (tf.variableGrads), its norm,
 * the clip, the running sum. Also the fallback for layers the vectorised step does not support and for models
 * written as functions of tfjs-core ops.
 */
import * as tf from '@tensorflow/tfjs';
import { checkPerExampleLoss, clipFactors, forward, prepareCall } from './prepare.ts';
import type { PreparedCall, TrainableVariable } from './prepare.ts';
import type { ClippableModel, ClippedGradientOptions, ClippedGradientResult, ModelInput } from './types.ts';

/** Per-example gradients of some variables, stacked along a new leading batch axis, plus each example's loss. */
export interface PerExampleGradients {
  /** name → tensor of shape [B, ...variable shape]. */
  grads: Map<string, tf.Tensor>;
  /** loss_i, float64 view. */
  losses: Float64Array;
}

/**
 * Per-example gradients of `variables` (a subset of the trainable ones) by the per-example loop. Variables the loss
 * does not reach get zeros. The caller disposes the returned tensors.
 */
export function perExampleGradients(call: PreparedCall, variables: TrainableVariable[]): PerExampleGradients {
  const B = call.batchSize;
  const losses = new Float64Array(B);
  const rows = new Map<string, tf.Tensor[]>(variables.map((v) => [v.name, []]));
  const varList = variables.map((v) => v.variable);
  try {
    for (let i = 0; i < B; i++) {
      const { value, grads } = tf.tidy(() => {
        const xi = call.inputs.map((t) => tf.slice(t, i, 1));
        const yi = tf.slice(call.y, i, 1);
        return tf.variableGrads(() => {
          const loss = checkPerExampleLoss(call.loss(yi, forward(call, xi)), 1);
          return tf.sum(loss) as tf.Scalar;
        }, varList);
      });
      losses[i] = (value.dataSync() as Float32Array)[0];
      value.dispose();
      for (const v of variables) {
        const g = grads[v.name];
        rows.get(v.name)!.push(g ?? tf.zerosLike(v.variable));
      }
    }
    const stacked = new Map<string, tf.Tensor>();
    for (const v of variables) stacked.set(v.name, B > 0 ? tf.stack(rows.get(v.name)!) : tf.zeros([0, ...v.variable.shape]));
    return { grads: stacked, losses };
  } finally {
    for (const list of rows.values()) tf.dispose(list);
  }
}

/** Σ_v ‖g_{i,v}‖² per example, float32 tensor [B]. */
export function perExampleSquaredNorms(grads: Map<string, tf.Tensor>, batchSize: number): tf.Tensor1D {
  return tf.tidy(() => {
    let total: tf.Tensor = tf.zeros([batchSize]);
    for (const g of grads.values()) total = tf.add(total, tf.sum(tf.square(tf.reshape(g, [batchSize, -1])), 1));
    return total as tf.Tensor1D;
  });
}

/**
 * Σ_i c_i g_i for stacked per-example gradients; rows with c_i = 0 are zeroed with `where` first so that a
 * non-finite row cannot turn the sum into NaN.
 */
export function clippedSumOfStacked(g: tf.Tensor, factors: tf.Tensor1D, finite: tf.Tensor1D | null): tf.Tensor {
  return tf.tidy(() => {
    const B = g.shape[0];
    let flat = tf.reshape(g, [B, -1]);
    if (finite) flat = tf.where(tf.broadcastTo(tf.reshape(finite, [B, 1]), flat.shape), flat, tf.zerosLike(flat));
    return tf.reshape(tf.matMul(tf.reshape(factors, [1, B]), flat), g.shape.slice(1));
  });
}

/** The reference loop as a full step (see computeClippedGradients for the contract). */
export function naiveStep(call: PreparedCall, fallbackLayers: string[]): ClippedGradientResult {
  const B = call.batchSize;
  const { grads, losses } = perExampleGradients(call, call.trainable);
  try {
    const sq = perExampleSquaredNorms(grads, B);
    const sqData = sq.dataSync();
    sq.dispose();
    const norms = Float64Array.from(sqData, (v) => Math.sqrt(v));
    const { factors, finite, nonFiniteCount } = clipFactors(norms, call.l2NormClip);
    const sums = tf.tidy(() => {
      const c = tf.tensor1d(factors);
      const ok = nonFiniteCount > 0 ? tf.tensor1d(finite, 'bool') : null;
      return call.trainable.map((v) => clippedSumOfStacked(grads.get(v.name)!, c, ok));
    });
    const clippedSum = new Map(call.trainable.map((v, k) => [v.name, sums[k]]));
    return {
      clippedSum, perExampleNorms: norms, lossSum: sumFinite(losses, finite), batchSize: B, nonFiniteCount, fallbackLayers,
    };
  } finally {
    tf.dispose([...grads.values()]);
  }
}

/** Σ loss_i over contributing examples (finite gradient and finite loss). */
export function sumFinite(losses: Float64Array, finite: boolean[]): number {
  let s = 0;
  for (let i = 0; i < losses.length; i++) if (finite[i] && Number.isFinite(losses[i])) s += losses[i];
  return s;
}

/**
 * Reference implementation: clipped sum by the per-example loop (tf.variableGrads of each example's loss).
 * Same contract and result as {@link computeClippedGradients}; O(B) backward passes.
 */
export function naiveClippedGradients(
  model: ClippableModel, x: ModelInput, y: tf.Tensor, options: ClippedGradientOptions,
): ClippedGradientResult {
  const call = prepareCall(model, x, y, options);
  return naiveStep(call, []);
}
