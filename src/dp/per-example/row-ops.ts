/**
 * Row-wise tensor helpers shared by the per-layer rules (rules.ts, lora-rule.ts): rows are examples. Imports no rule
 * module, so every rule can import it without a cycle.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Largest materialised per-example gradient stack (floats, 64 MiB) that strategy `auto` accepts per layer (all layers'
 * stacks live until the clipped sums are formed).
 */
export const MAX_MATERIALISED_FLOATS = 2 ** 24;

/** Zero the rows of non-finite examples so that 0·NaN cannot reach a sum. */
export function zeroRows(t: tf.Tensor, finite: tf.Tensor1D | null): tf.Tensor {
  if (finite === null) return t;
  const shape = [t.shape[0], ...t.shape.slice(1).map(() => 1)];
  return tf.where(tf.broadcastTo(tf.reshape(finite, shape), t.shape), t, tf.zerosLike(t));
}

/** Multiply row i of t by c_i (t of any rank ≥ 1). */
export function scaleRows(t: tf.Tensor, factors: tf.Tensor1D): tf.Tensor {
  return tf.mul(t, tf.reshape(factors, [t.shape[0], ...t.shape.slice(1).map(() => 1)]));
}

/** Per-example squared norm of a [B, ...] stack. */
export function rowSquares(t: tf.Tensor): tf.Tensor1D {
  return tf.sum(tf.square(tf.reshape(t, [t.shape[0], -1])), 1) as tf.Tensor1D;
}
