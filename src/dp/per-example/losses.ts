/** Per-example losses (shape [B]) with Keras semantics; the reduction over examples is the caller's. */
import * as tf from '@tensorflow/tfjs';
import type { BuiltinLossName, PerExampleLossFn } from './types.ts';

/** Probability clipping of tfjs-layers' losses (backend epsilon()). */
const EPSILON = 1e-7;

/** Mean over every axis but the batch axis (identity for rank-1 input). */
function meanOverExampleAxes(t: tf.Tensor): tf.Tensor {
  if (t.rank <= 1) return t;
  const axes = [];
  for (let a = 1; a < t.rank; a++) axes.push(a);
  return tf.mean(t, axes);
}

function categoricalCrossentropy(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const p = tf.clipByValue(tf.div(yPred, tf.sum(yPred, -1, true)), EPSILON, 1 - EPSILON);
    return meanOverExampleAxes(tf.neg(tf.sum(tf.mul(tf.cast(yTrue, 'float32'), tf.log(p)), -1)));
  });
}

function sparseCategoricalCrossentropy(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const numClasses = yPred.shape[yPred.rank - 1];
    // Labels of shape [B] or [B, ..., 1] (Keras accepts a trailing 1).
    let labels = yTrue;
    if (labels.rank === yPred.rank) labels = tf.squeeze(labels, [labels.rank - 1]);
    const flat = tf.cast(tf.reshape(labels, [-1]), 'int32');
    const oneHot = tf.reshape(tf.oneHot(flat, numClasses), yPred.shape);
    return categoricalCrossentropy(oneHot, yPred);
  });
}

function binaryCrossentropy(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const y = tf.cast(yTrue, 'float32');
    const p = tf.clipByValue(yPred, EPSILON, 1 - EPSILON);
    const perElement = tf.neg(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p)))));
    return meanOverExampleAxes(perElement);
  });
}

function meanSquaredError(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.tidy(() => meanOverExampleAxes(tf.squaredDifference(tf.cast(yTrue, 'float32'), yPred)));
}

const BUILTIN: Record<BuiltinLossName, PerExampleLossFn> = {
  sparseCategoricalCrossentropy,
  categoricalCrossentropy,
  binaryCrossentropy,
  meanSquaredError,
};

export const BUILTIN_LOSS_NAMES = Object.keys(BUILTIN) as BuiltinLossName[];

/** The per-example loss function for a name or a user function. */
export function resolveLoss(loss: BuiltinLossName | PerExampleLossFn): PerExampleLossFn {
  return typeof loss === 'function' ? loss : BUILTIN[loss];
}
