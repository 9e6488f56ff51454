/**
 * Vectorised per-example clipping (src/dp/per-example) on the WASM backend with the fast kernels of
 * src/backend/wasm-kernels.ts, against
 *   - an independent reference: per-example gradients written out here (one tf.variableGrads per example, a
 *     hand-written cross-entropy) computed on the pure-JS cpu backend, clipped and summed in float64 — so a bug in
 *     a fast wasm kernel cannot hide in both sides of the comparison; and
 *   - the library's own per-example loop (naiveClippedGradients), on wasm with the same fast kernels.
 * Tolerance 1e-4 relative (float32 in different summation orders on two backends): norm-relative error over all
 * variables and per element against the largest reference element. A negative control (a wrong clip bound) checks
 * that the comparison does fail on this data.
 *
 * The suite switches to wasm in `before` and restores the previous backend and fast-kernel state in `after`, so it
 * can share a mocha process with the cpu-backend suites.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, setWasmFastKernels, wasmFastKernelsEnabled } from '../src/backend/index.ts';
import { computeClippedGradients, naiveClippedGradients } from '../src/dp/per-example/index.ts';
import type { ClippedGradientResult, ClippingStrategy, PerExampleLossFn } from '../src/dp/per-example/index.ts';
import { createTransformerBlockModel, createTransformerClassifier } from '../src/models/transformer.ts';
import { intTensor, uniformTensor } from './support/deterministic.ts';

const REL_TOL = 1e-4;

/** Sparse categorical cross-entropy written out (probabilities in, one loss per example out). */
const sparseCe: PerExampleLossFn = (yTrue, yPred) => tf.tidy(() => {
  const oneHot = tf.oneHot(tf.cast(tf.reshape(yTrue, [-1]), 'int32'), yPred.shape[1] as number);
  return tf.neg(tf.sum(tf.mul(oneHot, tf.log(tf.clipByValue(yPred, 1e-7, 1))), 1));
});

interface Reference {
  /** name → per-example gradient rows (float64). */
  grads: Map<string, Float64Array[]>;
  norms: Float64Array;
}

/** Per-example gradients on the cpu backend, one example at a time (independent of src/dp and of wasm). */
async function cpuReference(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor): Promise<Reference> {
  const backend = tf.getBackend();
  await tf.setBackend('cpu');
  try {
    const variables = model.trainableWeights.map((w) => ({ name: w.name, variable: w.read() as tf.Variable }));
    const B = x.shape[0];
    const grads = new Map<string, Float64Array[]>(variables.map((v) => [v.name, []]));
    const norms = new Float64Array(B);
    for (let i = 0; i < B; i++) {
      const { value, grads: g } = tf.variableGrads(
        () => tf.sum(sparseCe(tf.slice(y, i, 1), model.apply(tf.slice(x, i, 1), { training: false }) as tf.Tensor)) as tf.Scalar,
        variables.map((v) => v.variable),
      );
      let sq = 0;
      for (const v of variables) {
        const row = g[v.variable.name] ? Float64Array.from(g[v.variable.name].dataSync()) : new Float64Array(v.variable.size);
        for (const e of row) sq += e * e;
        grads.get(v.name)!.push(row);
      }
      norms[i] = Math.sqrt(sq);
      tf.dispose([value, ...Object.values(g)]);
    }
    return { grads, norms };
  } finally {
    await tf.setBackend(backend);
  }
}

/** Σ_i min(1, C/‖g_i‖)·g_i in float64, keyed like the reference. */
function referenceClippedSum(ref: Reference, C: number): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const [name, rows] of ref.grads) {
    const s = new Float64Array(rows[0].length);
    rows.forEach((row, i) => {
      const c = Math.min(1, C / ref.norms[i]);
      for (let j = 0; j < row.length; j++) s[j] += c * row[j];
    });
    out.set(name, s);
  }
  return out;
}

/** Asserts ‖a − b‖/‖b‖ ≤ tol and max |a − b| ≤ tol · max |b| over all variables. */
function assertClose(actual: Map<string, tf.Tensor>, expected: Map<string, ArrayLike<number>>, label: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${label}: same variables`);
  let diff2 = 0;
  let ref2 = 0;
  let maxRef = 0;
  let maxDiff = 0;
  for (const [name, t] of actual) {
    const a = t.dataSync();
    const b = expected.get(name)!;
    assert.equal(a.length, b.length, `${label}: ${name} size`);
    for (let j = 0; j < a.length; j++) {
      assert.ok(Number.isFinite(a[j]), `${label}: ${name}[${j}] finite`);
      diff2 += (a[j] - b[j]) ** 2;
      ref2 += b[j] ** 2;
      maxRef = Math.max(maxRef, Math.abs(b[j]));
      maxDiff = Math.max(maxDiff, Math.abs(a[j] - b[j]));
    }
  }
  assert.ok(ref2 > 0, `${label}: non-trivial reference`);
  const rel = Math.sqrt(diff2 / ref2);
  assert.ok(rel <= REL_TOL, `${label}: norm-relative error ${rel} > ${REL_TOL}`);
  assert.ok(maxDiff <= REL_TOL * maxRef, `${label}: max element diff ${maxDiff} > ${REL_TOL} * ${maxRef}`);
}

function hostSums(r: ClippedGradientResult): Map<string, Float32Array> {
  return new Map([...r.clippedSum].map(([name, t]) => [name, t.dataSync() as Float32Array]));
}

function disposeResult(r: ClippedGradientResult): void {
  tf.dispose([...r.clippedSum.values()]);
}

/**
 * The check for one model: C between the reference norms (examples below and above it), vectorised (each strategy)
 * vs the cpu reference and vs the naive loop on wasm; norms vs the reference; a wrong C must fail the comparison.
 */
async function checkOnWasm(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, strategies: ClippingStrategy[]): Promise<void> {
  const ref = await cpuReference(model, x, y);
  assert.equal(tf.getBackend(), 'wasm');
  assert.ok(wasmFastKernelsEnabled(), 'fast kernels on');
  const sorted = [...ref.norms].sort((a, b) => a - b);
  const C = (sorted[Math.floor(sorted.length / 2) - 1] + sorted[Math.floor(sorted.length / 2)]) / 2;
  assert.ok(ref.norms.some((n) => n < C) && ref.norms.some((n) => n > 1.05 * C), 'examples below and clearly above C');
  const expected = referenceClippedSum(ref, C);

  const naive = naiveClippedGradients(model, x, y, { l2NormClip: C, loss: 'sparseCategoricalCrossentropy' });
  try {
    assertClose(naive.clippedSum, expected, `${model.name}: naive loop (wasm) vs cpu reference`);
    const naiveSums = hostSums(naive);
    for (const strategy of strategies) {
      const r = computeClippedGradients(model, x, y, { l2NormClip: C, loss: 'sparseCategoricalCrossentropy', strategy });
      try {
        assert.deepEqual(r.fallbackLayers, [], 'fully vectorised');
        assert.equal(r.nonFiniteCount, 0);
        r.perExampleNorms.forEach((n, i) =>
          assert.ok(Math.abs(n - ref.norms[i]) <= REL_TOL * ref.norms[i], `${strategy}: norm ${i}: ${n} vs ${ref.norms[i]}`));
        assertClose(r.clippedSum, naiveSums, `${model.name}/${strategy}: vectorised vs naive loop (both wasm)`);
        assertClose(r.clippedSum, expected, `${model.name}/${strategy}: vectorised (wasm) vs cpu reference`);
      } finally {
        disposeResult(r);
      }
    }
    // Negative control: the comparison is sensitive enough to see a 10% error in C on this data.
    const wrong = computeClippedGradients(model, x, y, { l2NormClip: 0.9 * C, loss: 'sparseCategoricalCrossentropy' });
    try {
      assert.throws(() => assertClose(wrong.clippedSum, expected, 'wrong C'), /norm-relative error|max element diff/);
    } finally {
      disposeResult(wrong);
    }
  } finally {
    disposeResult(naive);
  }
}

describe('per-example clipping on wasm with the fast kernels', function () {
  this.timeout(120_000);

  let previousBackend: string | null = null;
  let previousFast = false;
  before(async () => {
    // The engine's current backend without triggering a default initialisation.
    previousBackend = tf.engine().backendName;
    previousFast = wasmFastKernelsEnabled();
    assert.equal(await initBackend('wasm'), 'wasm');
    assert.ok(wasmFastKernelsEnabled());
  });

  after(async () => {
    setWasmFastKernels(previousFast);
    await tf.setBackend(previousBackend ?? 'cpu');
  });

  it('small MLP (Dense on 2-D inputs): vectorised = naive loop = cpu reference', async () => {
    const model = tf.sequential({ name: 'wasm_mlp', layers: [
      tf.layers.dense({ units: 24, inputShape: [12], activation: 'tanh' }),
      tf.layers.dense({ units: 16, activation: 'relu' }),
      tf.layers.dense({ units: 4, activation: 'softmax' }),
    ] });
    const x = uniformTensor([10, 12], 1, 1.5);
    const y = tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3, 0, 1], 'int32');
    try {
      await checkOnWasm(model, x, y, ['auto', 'ghost']);
    } finally {
      model.dispose();
      tf.dispose([x, y]);
    }
  });

  /** The tiny classifier, with non-trivial LayerNormalization γ, β (not the identity case). */
  function tinyClassifier(trainableEmbedding: boolean): tf.LayersModel {
    const model = createTransformerClassifier({
      vocabSize: 40, sequenceLength: 8, modelDim: 32, numHeads: 2, ffnDim: 64, numClasses: 3,
    });
    for (const w of model.trainableWeights) {
      if (w.name.includes('gamma')) w.write(tf.tidy(() => tf.add(1, uniformTensor(w.shape as number[], 7, 0.3))));
      if (w.name.includes('beta')) w.write(uniformTensor(w.shape as number[], 8, 0.3));
    }
    if (!trainableEmbedding) model.getLayer('token_embedding').trainable = false;
    return model;
  }

  it('small transformer classifier (d=32, 2 heads, T=8, FFN 64, batch 6): vectorised = naive loop = cpu reference', async () => {
    const model = tinyClassifier(true);
    const x = intTensor([6, 8], 40, 9);
    const y = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
    try {
      await checkOnWasm(model, x, y, ['auto', 'ghost', 'materialise']);
    } finally {
      model.dispose();
      tf.dispose([x, y]);
    }
  });

  it('the same classifier with the token embedding frozen (no gradient through tf.gather)', async () => {
    const model = tinyClassifier(false);
    const x = intTensor([6, 8], 40, 10);
    const y = tf.tensor1d([2, 1, 0, 2, 1, 0], 'int32');
    try {
      assert.ok(!model.trainableWeights.some((w) => w.name.startsWith('token_embedding')));
      await checkOnWasm(model, x, y, ['auto', 'ghost', 'materialise']);
    } finally {
      model.dispose();
      tf.dispose([x, y]);
    }
  });

  it('small transformer block on float inputs (the bench model, d=16, 2 heads, T=6, FFN 32, batch 8)', async () => {
    const model = createTransformerBlockModel({ sequenceLength: 6, modelDim: 16, numHeads: 2, ffnDim: 32, numClasses: 2 });
    const x = uniformTensor([8, 6, 16], 11, Math.sqrt(3));
    const y = tf.tensor1d([0, 1, 0, 1, 1, 0, 1, 0], 'int32');
    try {
      await checkOnWasm(model, x, y, ['auto', 'ghost', 'materialise']);
    } finally {
      model.dispose();
      tf.dispose([x, y]);
    }
  });

  it('no tensors leak on wasm over repeated calls', () => {
    const model = createTransformerBlockModel({ sequenceLength: 4, modelDim: 8, numHeads: 2, ffnDim: 8, numClasses: 2 });
    const x = uniformTensor([3, 4, 8], 18);
    const y = tf.tensor1d([0, 1, 1], 'int32');
    try {
      disposeResult(computeClippedGradients(model, x, y, { l2NormClip: 1, loss: 'sparseCategoricalCrossentropy' }));
      const before = tf.memory().numTensors;
      for (let k = 0; k < 20; k++) {
        const f = k % 2 === 0 ? computeClippedGradients : naiveClippedGradients;
        disposeResult(f(model, x, y, { l2NormClip: 1, loss: 'sparseCategoricalCrossentropy' }));
      }
      assert.equal(tf.memory().numTensors, before);
    } finally {
      model.dispose();
      tf.dispose([x, y]);
    }
  });
});
