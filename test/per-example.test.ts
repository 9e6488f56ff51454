/**
 * Vectorised per-example clipping (src/dp/per-example) against an independent reference: per-example gradients
 * computed here one example at a time with tf.variableGrads, clipped and summed in float64 (JS arrays), plus the
 * library's own naive loop. cpu backend, float32.
 *
 * Tolerances: float32 arithmetic in different orders (ghost norms vs direct gradients) differs by a few ulps per
 * operation; over sums of ≤ a few thousand terms that stays far below 1e-5 relative. We assert
 * - norm-relative error ‖a − b‖/‖b‖ ≤ 1e-5 over the concatenation of all variables' sums, and
 * - per element |a − b| ≤ 1e-5 · max|b| (some true sums are exactly 0, e.g. the attention key bias, whose
 *   gradient vanishes because softmax is shift-invariant, so a per-element relative bound would be meaningless).
 * Post-clip norms: c_i · ‖g_i‖ ≤ C(1 + 1e-6), with c_i = min(1, C/n_i) from the returned norms n_i and ‖g_i‖ from
 * the reference per-example gradients.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../src/errors.ts';
import {
  computeClippedGradients, naiveClippedGradients, FUNCTION_MODEL_LABEL,
} from '../src/dp/per-example/index.ts';
import type {
  ClippedGradientResult, ClippingStrategy, FunctionModel, PerExampleLossFn,
} from '../src/dp/per-example/index.ts';
import { createTransformerClassifier } from '../src/models/transformer.ts';
import { intTensor, lcg } from './support/deterministic.ts';

const REL_TOL = 1e-5;
const CLIP_SLACK = 1e-6;

/** Sparse categorical cross-entropy written out here (probabilities in, per-example loss out). */
const sparseCe: PerExampleLossFn = (yTrue, yPred) => tf.tidy(() => {
  const oneHot = tf.oneHot(tf.cast(tf.reshape(yTrue, [-1]), 'int32'), yPred.shape[1] as number);
  return tf.neg(tf.sum(tf.mul(oneHot, tf.log(tf.clipByValue(yPred, 1e-7, 1))), 1));
});

const mse: PerExampleLossFn = (yTrue, yPred) => tf.tidy(() => tf.mean(tf.squaredDifference(yTrue, yPred), 1));

interface Reference {
  /** name → per-example gradient rows (float64). */
  grads: Map<string, Float64Array[]>;
  norms: Float64Array;
}

/** Per-example gradients by an explicit loop (independent of src): one tf.variableGrads per example. */
function reference(
  variables: Array<{ name: string; variable: tf.Variable }>,
  predict: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, y: tf.Tensor, loss: PerExampleLossFn,
): Reference {
  const B = x.shape[0];
  const grads = new Map<string, Float64Array[]>(variables.map((v) => [v.name, []]));
  const norms = new Float64Array(B);
  for (let i = 0; i < B; i++) {
    const { value, grads: g } = tf.variableGrads(
      () => tf.sum(loss(tf.slice(y, i, 1), predict(tf.slice(x, i, 1)))) as tf.Scalar,
      variables.map((v) => v.variable),
    );
    let sq = 0;
    for (const v of variables) {
      const row = g[v.name] ? Float64Array.from(g[v.name].dataSync()) : new Float64Array(v.variable.size);
      for (const e of row) sq += e * e;
      grads.get(v.name)!.push(row);
    }
    norms[i] = Math.sqrt(sq);
    tf.dispose([value, ...Object.values(g)]);
  }
  return { grads, norms };
}

/** Σ_i c_i g_i in float64 with the given factors (0 for skipped examples). */
function clippedSumOf(ref: Reference, factors: number[]): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const [name, rows] of ref.grads) {
    const s = new Float64Array(rows[0].length);
    rows.forEach((row, i) => { if (factors[i] !== 0) for (let j = 0; j < row.length; j++) s[j] += factors[i] * row[j]; });
    out.set(name, s);
  }
  return out;
}

function assertClose(actual: Map<string, tf.Tensor>, expected: Map<string, Float64Array | tf.Tensor>, label: string): number {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${label}: same variables`);
  let diff2 = 0;
  let ref2 = 0;
  let maxRef = 0;
  let maxDiff = 0;
  for (const [name, t] of actual) {
    const a = t.dataSync();
    const e = expected.get(name)!;
    const b = e instanceof tf.Tensor ? e.dataSync() : e;
    assert.equal(a.length, b.length);
    for (let j = 0; j < a.length; j++) {
      assert.ok(Number.isFinite(a[j]), `${label}: ${name}[${j}] finite`);
      diff2 += (a[j] - b[j]) ** 2;
      ref2 += b[j] ** 2;
      maxRef = Math.max(maxRef, Math.abs(b[j]));
      maxDiff = Math.max(maxDiff, Math.abs(a[j] - b[j]));
    }
  }
  const rel = Math.sqrt(diff2 / ref2);
  assert.ok(ref2 > 0, `${label}: non-trivial reference`);
  assert.ok(rel <= REL_TOL, `${label}: norm-relative error ${rel} > ${REL_TOL}`);
  assert.ok(maxDiff <= REL_TOL * maxRef, `${label}: max element diff ${maxDiff} > ${REL_TOL} * ${maxRef}`);
  return rel;
}

function disposeResult(r: ClippedGradientResult): void {
  tf.dispose([...r.clippedSum.values()]);
}

/** A clip bound strictly between the sorted reference norms, so some examples are below and some above. */
function clipBetween(norms: Float64Array): number {
  const s = [...norms].sort((a, b) => a - b);
  const k = Math.floor(s.length / 2);
  return (s[k - 1] + s[k]) / 2;
}

function layersVariables(model: tf.LayersModel) {
  return model.trainableWeights.map((w) => ({ name: w.name, variable: w.read() as tf.Variable }));
}

/**
 * The full check for one model: vectorised (each strategy) vs the float64 reference and vs naiveClippedGradients,
 * examples on both sides of C, post-clip norms ≤ C.
 */
function checkModel(
  model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, loss: PerExampleLossFn,
  strategies: ClippingStrategy[] = ['auto'],
): void {
  const predict = (xi: tf.Tensor) => model.apply(xi, { training: false }) as tf.Tensor;
  const ref = reference(layersVariables(model), predict, x, y, loss);
  const C = clipBetween(ref.norms);
  assert.ok(ref.norms.some((n) => n < C) && ref.norms.some((n) => n > C), 'examples below and above C');
  const naive = naiveClippedGradients(model, x, y, { l2NormClip: C, loss });
  try {
    for (const strategy of strategies) {
      const r = computeClippedGradients(model, x, y, { l2NormClip: C, loss, strategy });
      try {
        assert.equal(r.batchSize, x.shape[0]);
        assert.equal(r.nonFiniteCount, 0);
        assert.deepEqual(r.fallbackLayers, []);
        r.perExampleNorms.forEach((n, i) => assert.ok(Math.abs(n - ref.norms[i]) <= 1e-5 * ref.norms[i], `norm ${i}: ${n} vs ${ref.norms[i]}`));
        const factors = [...r.perExampleNorms].map((n) => Math.min(1, C / n));
        factors.forEach((c, i) => assert.ok(c * ref.norms[i] <= C * (1 + CLIP_SLACK), `post-clip norm of example ${i}`));
        assert.ok(factors.some((c) => c === 1) && factors.some((c) => c < 1), 'both clipped and unclipped examples');
        assertClose(r.clippedSum, clippedSumOf(ref, factors), `${model.name}/${strategy} vs reference`);
        assertClose(r.clippedSum, naive.clippedSum, `${model.name}/${strategy} vs naive`);
        assert.ok(Math.abs(r.lossSum - naive.lossSum) <= 1e-5 * Math.abs(naive.lossSum));
      } finally {
        disposeResult(r);
      }
    }
  } finally {
    disposeResult(naive);
  }
}

function normalTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const u = lcg(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = scale * (u() + u() + u() - 1.5) * 2;
  return tf.tensor(data, shape);
}

describe('per-example clipping (cpu backend)', function () {
  this.timeout(120_000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('Dense on 2-D inputs (Sequential MLP) equals the reference', () => {
    const model = tf.sequential({ name: 'mlp', layers: [
      tf.layers.dense({ units: 8, inputShape: [6], activation: 'tanh' }),
      tf.layers.dense({ units: 4, activation: 'softmax' }),
    ] });
    const x = normalTensor([6, 6], 1);
    const y = tf.tensor1d([0, 1, 2, 3, 0, 1]);
    checkModel(model, x, y, sparseCe, ['auto', 'ghost']);
  });

  it('Dense on 3-D (sequence) inputs, functional: ghost, materialised and auto agree with the reference', () => {
    const input = tf.input({ shape: [5, 6] });
    const h = tf.layers.dense({ units: 7, activation: 'relu' }).apply(input) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling1d().apply(h) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(pooled) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out, name: 'dense3d' });
    checkModel(model, normalTensor([6, 5, 6], 2), tf.tensor1d([0, 1, 2, 0, 1, 2]), sparseCe, ['auto', 'ghost', 'materialise']);
  });

  it('Embedding (repeated ids within an example) equals the reference', () => {
    const input = tf.input({ shape: [6], dtype: 'int32' });
    const e = tf.layers.embedding({ inputDim: 7, outputDim: 5 }).apply(input) as tf.SymbolicTensor;
    const flat = tf.layers.flatten().apply(e) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(flat) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out, name: 'embedding' });
    // Vocabulary 7, 6 tokens per example: repeats are certain for most rows.
    const x = intTensor([6, 6], 7, 3);
    const rows = x.arraySync() as number[][];
    assert.ok(rows.some((r) => new Set(r).size < r.length), 'some example repeats a token id');
    checkModel(model, x, tf.tensor1d([0, 1, 2, 0, 1, 2]), sparseCe, ['auto']);
  });

  it('LayerNormalization on 2-D and 3-D inputs equals the reference', () => {
    const input = tf.input({ shape: [4, 6] });
    const n1 = tf.layers.layerNormalization().apply(input) as tf.SymbolicTensor;
    const d1 = tf.layers.dense({ units: 6, activation: 'tanh' }).apply(n1) as tf.SymbolicTensor;
    const flat = tf.layers.flatten().apply(d1) as tf.SymbolicTensor;
    const n2 = tf.layers.layerNormalization().apply(flat) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 2 }).apply(n2) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out, name: 'layernorm' });
    // Non-trivial γ, β so their gradients are not the identity case.
    for (const w of model.trainableWeights) {
      if (w.name.includes('gamma')) w.write(tf.add(1, normalTensor(w.shape as number[], 7, 0.3)));
      if (w.name.includes('beta')) w.write(normalTensor(w.shape as number[], 8, 0.3));
    }
    checkModel(model, normalTensor([6, 4, 6], 4, 2), normalTensor([6, 2], 5), mse, ['auto']);
  });

  it('small transformer encoder (d=32, 2 heads, T=8, vocab 50, batch 6) equals the reference', () => {
    const model = createTransformerClassifier({
      vocabSize: 50, sequenceLength: 8, modelDim: 32, numHeads: 2, ffnDim: 64, numClasses: 3,
    });
    checkModel(model, intTensor([6, 8], 50, 9), tf.tensor1d([0, 1, 2, 0, 1, 2]), sparseCe, ['auto', 'ghost', 'materialise']);
  });

  it('built-in loss names match the same loss written out', () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [4], activation: 'softmax' })] });
    const x = normalTensor([5, 4], 10);
    const y = tf.tensor1d([0, 1, 2, 1, 0]);
    const a = computeClippedGradients(model, x, y, { l2NormClip: 0.3, loss: 'sparseCategoricalCrossentropy' });
    const b = computeClippedGradients(model, x, y, { l2NormClip: 0.3, loss: sparseCe });
    const c = computeClippedGradients(model, x, tf.oneHot(tf.cast(y, 'int32'), 3), { l2NormClip: 0.3, loss: 'categoricalCrossentropy' });
    assertClose(a.clippedSum, b.clippedSum, 'sparse name vs function');
    assertClose(c.clippedSum, b.clippedSum, 'categorical name vs function');
    [a, b, c].forEach(disposeResult);
  });

  it('a frozen layer gets no entry and the rest is unchanged', () => {
    const frozen = tf.layers.dense({ units: 8, inputShape: [6], activation: 'tanh', trainable: false });
    const model = tf.sequential({ name: 'frozen', layers: [frozen, tf.layers.dense({ units: 4, activation: 'softmax' })] });
    const x = normalTensor([6, 6], 11);
    const y = tf.tensor1d([0, 1, 2, 3, 0, 1]);
    const r = computeClippedGradients(model, x, y, { l2NormClip: 0.2, loss: sparseCe });
    const names = [...r.clippedSum.keys()];
    assert.equal(names.length, 2);
    assert.ok(!names.some((n) => frozen.weights.map((w) => w.name).includes(n)), 'no entry for frozen weights');
    disposeResult(r);
    checkModel(model, x, y, sparseCe);
  });

  it('a nested Sequential inside a functional model is walked', () => {
    const inner = tf.sequential({ name: 'inner', layers: [tf.layers.dense({ units: 5, inputShape: [4], activation: 'relu' })] });
    const input = tf.input({ shape: [4] });
    const h = inner.apply(input) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 2, activation: 'softmax' }).apply(h) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out, name: 'nested' });
    checkModel(model, normalTensor([6, 4], 12), tf.tensor1d([0, 1, 0, 1, 0, 1]), sparseCe);
  });

  it('an unsupported layer falls back to the loop for its own weights, warns once, and stays exact', () => {
    const input = tf.input({ shape: [6, 3] });
    const conv = tf.layers.conv1d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'conv_fallback' });
    const c = conv.apply(input) as tf.SymbolicTensor;
    const flat = tf.layers.flatten().apply(c) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(flat) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out, name: 'withconv' });
    const x = normalTensor([6, 6, 3], 13);
    const y = tf.tensor1d([0, 1, 2, 0, 1, 2]);
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (m: string) => { warnings.push(m); };
    try {
      const ref = reference(layersVariables(model), (xi) => model.apply(xi) as tf.Tensor, x, y, sparseCe);
      const C = clipBetween(ref.norms);
      for (let k = 0; k < 2; k++) {
        const r = computeClippedGradients(model, x, y, { l2NormClip: C, loss: sparseCe });
        assert.deepEqual(r.fallbackLayers, ['conv_fallback']);
        assertClose(r.clippedSum, clippedSumOf(ref, [...r.perExampleNorms].map((n) => Math.min(1, C / n))), 'hybrid');
        disposeResult(r);
      }
    } finally {
      console.warn = warn;
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /conv_fallback/);
  });

  it('a model written as tfjs-core ops works (per-example loop) and frozen variables get nothing', () => {
    const w1 = tf.variable(normalTensor([4, 5], 14, 0.7), true, 'fm_w1');
    const b1 = tf.variable(tf.zeros([5]), true, 'fm_b1');
    const w2 = tf.variable(normalTensor([5, 3], 15, 0.7), false, 'fm_w2_frozen');
    const fm: FunctionModel = {
      variables: [w1, b1, w2],
      predict: (x) => tf.softmax(tf.matMul(tf.tanh(tf.add(tf.matMul(x, w1), b1)), w2)),
    };
    const x = normalTensor([6, 4], 16);
    const y = tf.tensor1d([0, 1, 2, 0, 1, 2]);
    const ref = reference([{ name: 'fm_w1', variable: w1 }, { name: 'fm_b1', variable: b1 }], fm.predict, x, y, sparseCe);
    const C = clipBetween(ref.norms);
    const warn = console.warn;
    console.warn = () => {};
    try {
      const r = computeClippedGradients(fm, x, y, { l2NormClip: C, loss: sparseCe });
      assert.deepEqual(r.fallbackLayers, [FUNCTION_MODEL_LABEL]);
      assert.deepEqual([...r.clippedSum.keys()].sort(), ['fm_b1', 'fm_w1']);
      assertClose(r.clippedSum, clippedSumOf(ref, [...r.perExampleNorms].map((n) => Math.min(1, C / n))), 'function model');
      disposeResult(r);
    } finally {
      console.warn = warn;
    }
  });

  it('a non-finite example contributes zero and is counted', () => {
    const model = tf.sequential({ name: 'nonfinite', layers: [
      tf.layers.dense({ units: 8, inputShape: [6], activation: 'tanh' }),
      tf.layers.dense({ units: 4, activation: 'softmax' }),
    ] });
    const good = normalTensor([5, 6], 17);
    const bad = tf.tensor2d([[1, Infinity, 0, 0, 0, 0]]);
    const x = tf.concat([good.slice(0, 2), bad, good.slice(2)]);
    const y = tf.tensor1d([0, 1, 2, 3, 0, 1]);
    const yGood = tf.tensor1d([0, 1, 3, 0, 1]);
    for (const f of [computeClippedGradients, naiveClippedGradients]) {
      const r = f(model, x, y, { l2NormClip: 0.1, loss: sparseCe });
      const expected = naiveClippedGradients(model, good, yGood, { l2NormClip: 0.1, loss: sparseCe });
      assert.equal(r.nonFiniteCount, 1, f.name);
      assert.ok(!Number.isFinite(r.perExampleNorms[2]));
      assertClose(r.clippedSum, expected.clippedSum, `${f.name}: non-finite example excluded`);
      assert.ok(Math.abs(r.lossSum - expected.lossSum) <= 1e-5 * expected.lossSum);
      disposeResult(r);
      disposeResult(expected);
    }
  });

  it('an empty batch returns zero sums', () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
    const r = computeClippedGradients(model, tf.zeros([0, 3]), tf.zeros([0, 2]), { l2NormClip: 1, loss: 'meanSquaredError' });
    assert.equal(r.batchSize, 0);
    assert.equal(r.clippedSum.size, 2);
    for (const t of r.clippedSum.values()) assert.equal(tf.max(tf.abs(t)).dataSync()[0], 0);
    disposeResult(r);
  });

  it('tf.memory().numTensors is stable over 100 calls (apart from the returned tensors)', () => {
    const model = createTransformerClassifier({ vocabSize: 20, sequenceLength: 4, modelDim: 8, numHeads: 2, ffnDim: 8, numClasses: 2 });
    const x = intTensor([3, 4], 20, 18);
    const y = tf.tensor1d([0, 1, 1]);
    disposeResult(computeClippedGradients(model, x, y, { l2NormClip: 1, loss: 'sparseCategoricalCrossentropy' }));
    const before = tf.memory().numTensors;
    for (let k = 0; k < 100; k++) {
      const strategy = (['auto', 'ghost', 'materialise'] as const)[k % 3];
      const r = computeClippedGradients(model, x, y, { l2NormClip: 1, loss: 'sparseCategoricalCrossentropy', strategy });
      assert.equal(tf.memory().numTensors, before + r.clippedSum.size);
      disposeResult(r);
    }
    assert.equal(tf.memory().numTensors, before);
  });

  describe('bad input → InvalidArgumentError naming the argument', () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3], activation: 'softmax' })] });
    const x = tf.zeros([4, 3]);
    const y = tf.tensor1d([0, 1, 0, 1]);
    const expectArg = (fn: () => unknown, argument: string) =>
      assert.throws(fn, (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument);

    for (const f of [computeClippedGradients, naiveClippedGradients]) {
      it(`${f.name}: l2NormClip ≤ 0, NaN, Infinity`, () => {
        for (const c of [0, -1, NaN, Infinity]) expectArg(() => f(model, x, y, { l2NormClip: c, loss: 'sparseCategoricalCrossentropy' }), 'l2NormClip');
      });
      it(`${f.name}: x/y batch mismatch`, () => {
        expectArg(() => f(model, x, tf.tensor1d([0, 1, 0]), { l2NormClip: 1, loss: 'sparseCategoricalCrossentropy' }), 'y');
      });
      it(`${f.name}: no trainable weights`, () => {
        const frozen = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3], trainable: false })] });
        expectArg(() => f(frozen, x, y, { l2NormClip: 1, loss: 'sparseCategoricalCrossentropy' }), 'model');
      });
      it(`${f.name}: unknown loss, strategy, dtype; per-example loss of the wrong shape`, () => {
        expectArg(() => f(model, x, y, { l2NormClip: 1, loss: 'hinge' as never }), 'loss');
        expectArg(() => f(model, x, y, { l2NormClip: 1, loss: 'sparseCategoricalCrossentropy', strategy: 'fast' as never }), 'strategy');
        expectArg(() => f(model, tf.zeros([4, 3], 'bool'), y, { l2NormClip: 1, loss: 'sparseCategoricalCrossentropy' }), 'x');
        expectArg(() => f(model, x, y, { l2NormClip: 1, loss: (_t, p) => tf.mean(p) }), 'loss');
      });
    }
  });
});
