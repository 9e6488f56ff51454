/**
 * Models and step helpers shared by the step benchmarks (bench/dp-step.ts, bench/backends.ts): the MLP and the
 * transformer block of the DP-step benchmark, each with the same function written in tfjs-core ops on the model's own
 * variables (the fastest non-private baseline), and timing helpers that work on any backend.
 */
import * as tf from '@tensorflow/tfjs';
import { createTransformerBlockModel } from '../src/models/transformer.ts';
import { uniformTensor } from '../test/support/deterministic.ts';

/** Forces completion of pending work on any backend by reading one value of `t`. */
export function sync(t: tf.Tensor): void {
  const one = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), 0, 1));
  one.dataSync();
  one.dispose();
}

/** Wall time of one call (ms). */
export async function timeOnce(f: () => void | Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/** The 784-256-256-10 MLP of bench:dp-step (tfjs-layers Sequential). */
export function buildMlp(): tf.LayersModel {
  return tf.sequential({ name: 'mlp', layers: [
    tf.layers.dense({ units: 256, inputShape: [784], activation: 'relu' }),
    tf.layers.dense({ units: 256, activation: 'relu' }),
    tf.layers.dense({ units: 10, activation: 'softmax' }),
  ] });
}

/** The variable behind weight `suffix` (kernel, bias, gamma, beta) of a layer. */
export function weightOf(layer: tf.layers.Layer, suffix: string): tf.Variable {
  // A second model of the same layer names gets uniquified variable names (`…/kernel_1`): match the original name.
  const w = layer.trainableWeights.find((v) => v.originalName.endsWith(`/${suffix}`));
  if (w === undefined) throw new Error(`layer ${layer.name} has no weight ${suffix}`);
  return w.read() as tf.Variable;
}

/** The MLP's forward pass in core ops on the model's own variables. */
export function mlpCoreForward(model: tf.LayersModel): (x: tf.Tensor) => tf.Tensor {
  const [l1, l2, l3] = model.layers;
  const [k1, b1, k2, b2, k3, b3] = [weightOf(l1, 'kernel'), weightOf(l1, 'bias'), weightOf(l2, 'kernel'), weightOf(l2, 'bias'),
    weightOf(l3, 'kernel'), weightOf(l3, 'bias')];
  return (x) => {
    const h1 = tf.relu(tf.add(tf.matMul(x, k1), b1));
    const h2 = tf.relu(tf.add(tf.matMul(h1, k2), b2));
    return tf.softmax(tf.add(tf.matMul(h2, k3), b3));
  };
}

/**
 * createTransformerBlockModel's forward pass in core ops on the model's own variables: Dense layers as 2-D products
 * on [B·T, d], LayerNormalization (epsilon 1e-3, as tfjs-layers) with γ, β broadcast instead of tiled.
 */
export function transformerCoreForward(model: tf.LayersModel, heads: number): (x: tf.Tensor) => tf.Tensor {
  const dense = (name: string) => ({ kernel: weightOf(model.getLayer(name), 'kernel'), bias: weightOf(model.getLayer(name), 'bias') });
  const norm = (name: string) => ({ gamma: weightOf(model.getLayer(name), 'gamma'), beta: weightOf(model.getLayer(name), 'beta') });
  const [q, k, v, o, f1, f2, cls] = ['block_query', 'block_key', 'block_value', 'block_attention_output', 'block_ffn1',
    'block_ffn2', 'classifier'].map(dense);
  const [ln1, ln2] = ['block_ln1', 'block_ln2'].map(norm);
  const affine = (x: tf.Tensor, p: { kernel: tf.Tensor; bias: tf.Tensor }) => tf.add(tf.matMul(x, p.kernel), p.bias);
  const layerNorm = (x: tf.Tensor, p: { gamma: tf.Tensor; beta: tf.Tensor }) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-3))), p.gamma), p.beta);
  };
  return (x) => {
    const [B, T, d] = x.shape as [number, number, number];
    const dh = d / heads;
    const split = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, T, heads, dh]), [0, 2, 1, 3]);
    const x2 = tf.reshape(x, [B * T, d]);
    const a = layerNorm(x2, ln1);
    const scores = tf.mul(tf.matMul(split(affine(a, q)), split(affine(a, k)), false, true), 1 / Math.sqrt(dh));
    const context = tf.matMul(tf.softmax(scores), split(affine(a, v)));
    const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [B * T, d]);
    const h = tf.add(x2, affine(merged, o));
    const out = tf.add(h, affine(tf.relu(affine(layerNorm(h, ln2), f1)), f2));
    return tf.softmax(affine(tf.mean(tf.reshape(out, [B, T, d]), 1), cls));
  };
}

/** The core-ops forward pass must compute the same function as the layers model (else the baseline is void). */
export function checkSameFunction(c: { key: string; model: tf.LayersModel; x: tf.Tensor; coreForward: (x: tf.Tensor) => tf.Tensor }): void {
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(c.model.apply(c.x, { training: false }) as tf.Tensor, c.coreForward(c.x)))));
  const d = diff.dataSync()[0];
  diff.dispose();
  if (!(d <= 1e-5)) throw new Error(`${c.key}: core-ops forward differs from the layers model by ${d}`);
}


/** A benchmark case: a model, one batch of inputs and labels, and its core-ops forward pass. */
export interface StepCase {
  readonly key: string;
  readonly label: string;
  readonly model: tf.LayersModel;
  readonly x: tf.Tensor;
  readonly y: tf.Tensor;
  /** The same model (same weight variables) written in tfjs-core ops: probabilities [B, classes]. */
  readonly coreForward: (x: tf.Tensor) => tf.Tensor;
}

/** The MLP 784-256-256-10 case of bench:dp-step (batch `batch`), on the current backend. */
export function mlpCase(batch: number): StepCase {
  const model = buildMlp();
  return {
    key: 'mlp', label: 'MLP 784-256-256-10', model, coreForward: mlpCoreForward(model),
    x: uniformTensor([batch, 784], 1), y: tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), 'int32'),
  };
}

/** The transformer-block case of bench:dp-step (d=128, 4 heads, T=64, FFN 512, 2 classes; batch `batch`). */
export function transformerCase(batch: number): StepCase {
  const model = createTransformerBlockModel({ sequenceLength: 64, modelDim: 128, numHeads: 4, ffnDim: 512, numClasses: 2 });
  return {
    key: 'transformer', label: 'Transformer block d=128 h=4 T=64 FFN 512', model, coreForward: transformerCoreForward(model, 4),
    x: uniformTensor([batch, 64, 128], 2, Math.sqrt(3)), y: tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 2), 'int32'),
  };
}
