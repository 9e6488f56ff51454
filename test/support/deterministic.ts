/** Deterministic test and benchmark inputs from a 32-bit LCG (inputs only; privacy noise comes from node:crypto). */
import * as tf from '@tensorflow/tfjs';

/** Uniforms in [0, 1) from the Numerical Recipes LCG seeded with `seed`. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A float32 tensor of uniforms in [−scale, scale). */
export function uniformTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const u = lcg(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => scale * (2 * u() - 1)), shape, 'float32');
}

/** An int32 tensor of integers in [0, max). */
export function intTensor(shape: number[], max: number, seed: number): tf.Tensor {
  const u = lcg(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Int32Array.from({ length: n }, () => Math.floor(u() * max)), shape, 'int32');
}
