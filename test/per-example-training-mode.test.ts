/**
 * The per-example pass is a training pass: dropout is on (each example its own mask), BatchNormalization is refused
 * unless frozen (then inference mode), and Keras masks (Embedding maskZero) propagate as tfjs's own model.predict /
 * model.fit do. Reference: per-example gradients of the loss of tfjs's model.predict (its executor, not our graph
 * walk), one example at a time, clipped and summed here in float64.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { computeClippedGradients } from '../src/dp/per-example/index.ts';
import type { ClippedGradientResult, ClippingStrategy } from '../src/dp/per-example/index.ts';
import { resolveLoss } from '../src/dp/per-example/losses.ts';
import { dpFit } from '../src/train/dp-fit.ts';
import { InvalidArgumentError } from '../src/errors.ts';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

const LOSS = 'sparseCategoricalCrossentropy' as const;

/** Deterministic weights (no RNG) so that models built twice are identical. */
function fixWeights(model: tf.LayersModel): tf.LayersModel {
  model.setWeights(model.getWeights().map((w, k) => {
    const vals = Float32Array.from({ length: w.size }, (_, i) => 0.4 * Math.sin(1.3 * i + 0.7 * k + 1));
    return tf.tensor(vals, w.shape);
  }));
  return model;
}

function mlp(dropoutRate: number | null, withBatchNorm: false | 'trainable' | 'frozen' = false): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: 16, activation: 'relu', inputShape: [5], name: 'hidden' }));
  if (withBatchNorm) {
    const bn = tf.layers.batchNormalization({ name: 'bn' });
    model.add(bn);
    if (withBatchNorm === 'frozen') bn.trainable = false;
  }
  if (dropoutRate !== null) model.add(tf.layers.dropout({ rate: dropoutRate, name: 'drop' }));
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', name: 'out' }));
  return fixWeights(model);
}

function mlpData(n: number): { x: tf.Tensor2D; y: tf.Tensor1D } {
  const x = Float32Array.from({ length: n * 5 }, (_, i) => Math.cos(0.61 * i) * 1.5);
  return { x: tf.tensor2d(x, [n, 5]), y: tf.tensor1d(Int32Array.from({ length: n }, (_, i) => i % 3), 'int32') };
}

/** Σ_i loss_i of tfjs's model.predict (inference mode). */
function inferenceLossSum(model: tf.LayersModel, x: tf.Tensor | tf.Tensor[], y: tf.Tensor): number {
  return tf.tidy(() => tf.sum(resolveLoss(LOSS)(y, model.predict(x) as tf.Tensor)).arraySync() as number);
}

/**
 * Reference clipped sum: for each example, tf.variableGrads of its loss through model.predict (tfjs's executor),
 * its norm over all trainable weights, c = min(1, C/‖g‖), summed in float64.
 */
function referenceClippedSum(model: tf.LayersModel, xs: tf.Tensor[], y: tf.Tensor, C: number): Map<string, Float64Array> {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const out = new Map<string, Float64Array>(vars.map((v) => [v.name, new Float64Array(v.size)]));
  const B = y.shape[0];
  for (let i = 0; i < B; i++) {
    const { grads } = tf.tidy(() => tf.variableGrads(() => {
      const xi = xs.map((t) => tf.slice(t, i, 1));
      const pred = model.predict(xi.length === 1 ? xi[0] : xi) as tf.Tensor;
      return tf.sum(resolveLoss(LOSS)(tf.slice(y, i, 1), pred)) as tf.Scalar;
    }, vars));
    const rows = vars.map((v) => Float64Array.from(grads[v.name] ? grads[v.name].dataSync() : new Float32Array(v.size)));
    tf.dispose(Object.values(grads));
    const norm = Math.sqrt(rows.reduce((s, r) => s + r.reduce((a, b) => a + b * b, 0), 0));
    const c = norm > C ? C / norm : 1;
    vars.forEach((v, k) => { const acc = out.get(v.name)!; rows[k].forEach((g, j) => { acc[j] += c * g; }); });
  }
  return out;
}

function assertClose(result: ClippedGradientResult, reference: Map<string, Float64Array>, tolerance: number, label: string): void {
  assert.deepEqual([...result.clippedSum.keys()].sort(), [...reference.keys()].sort(), label);
  for (const [name, ref] of reference) {
    const got = result.clippedSum.get(name)!.dataSync();
    const scale = Math.max(1e-6, ...ref.map(Math.abs));
    ref.forEach((r, j) => assert.ok(Math.abs(got[j] - r) <= tolerance * scale, `${label} ${name}[${j}]: ${got[j]} vs ${r}`));
  }
}

function dispose(result: ClippedGradientResult): void {
  tf.dispose([...result.clippedSum.values()]);
}

const STRATEGIES: ClippingStrategy[] = ['auto', 'naive'];

describe('per-example pass in training mode', function () {
  this.timeout(120_000);

  describe('dropout', () => {
    for (const strategy of STRATEGIES) {
      it(`rate 0.5 (${strategy}): per-example losses differ between two calls and from inference mode`, () => {
        const model = mlp(0.5);
        const { x, y } = mlpData(12);
        const inference = inferenceLossSum(model, x, y);
        const a = computeClippedGradients(model, x, y, { l2NormClip: 1, loss: LOSS, strategy });
        const b = computeClippedGradients(model, x, y, { l2NormClip: 1, loss: LOSS, strategy });
        // 12 examples × 16 units dropped at rate 0.5: equal sums would need identical masks (probability 2^-192).
        assert.notEqual(a.lossSum, b.lossSum);
        assert.ok(Math.abs(a.lossSum - inference) > 1e-4, `training ${a.lossSum} vs inference ${inference}`);
        assert.notDeepEqual(Array.from(a.perExampleNorms), Array.from(b.perExampleNorms));
        dispose(a);
        dispose(b);
      });
    }

    it('every example gets its own mask in the per-example loop (naive): per-example norms are not repeated', () => {
      // Identical examples: in inference mode all norms are equal; with per-example masks they differ.
      const model = mlp(0.5);
      const x = tf.tile(tf.tensor2d([[0.3, -1.2, 0.8, 1.5, -0.4]]), [8, 1]);
      const y = tf.zeros([8], 'int32');
      for (const strategy of STRATEGIES) {
        const r = computeClippedGradients(model, x, y, { l2NormClip: 100, loss: LOSS, strategy });
        assert.ok(new Set(Array.from(r.perExampleNorms, (v) => v.toPrecision(6))).size > 1, `${strategy}: ${r.perExampleNorms}`);
        dispose(r);
      }
    });

    for (const strategy of STRATEGIES) {
      it(`rate 0 (${strategy}): the same as inference mode (tfjs model.predict reference)`, () => {
        const model = mlp(0);
        const { x, y } = mlpData(10);
        const r = computeClippedGradients(model, x, y, { l2NormClip: 0.3, loss: LOSS, strategy });
        assert.ok(Math.abs(r.lossSum - inferenceLossSum(model, x, y)) <= 1e-5 * Math.abs(r.lossSum));
        assertClose(r, referenceClippedSum(model, [x], y, 0.3), 1e-5, strategy);
        dispose(r);
      });
    }

    it('rate 0: naive and vectorised agree', () => {
      const model = mlp(0);
      const { x, y } = mlpData(10);
      const naive = computeClippedGradients(model, x, y, { l2NormClip: 0.3, loss: LOSS, strategy: 'naive' });
      const vec = computeClippedGradients(model, x, y, { l2NormClip: 0.3, loss: LOSS, strategy: 'auto' });
      const asRef = new Map([...naive.clippedSum].map(([k, t]) => [k, Float64Array.from(t.dataSync())]));
      assertClose(vec, asRef, 1e-5, 'vectorised vs naive');
      assert.deepEqual(vec.fallbackLayers, []);
      dispose(naive);
      dispose(vec);
    });

    it('evaluation stays in inference mode: model.predict is deterministic after dpFit', async () => {
      const model = mlp(0.5);
      const { x, y } = mlpData(16);
      await dpFit(model, { x, y }, { expectedBatchSize: 4, l2NormClip: 1, noiseMultiplier: 1, optimizer: 'sgd',
        loss: LOSS, steps: 2 });
      const p1 = (model.predict(x) as tf.Tensor).arraySync();
      const p2 = (model.predict(x) as tf.Tensor).arraySync();
      assert.deepEqual(p1, p2);
    });
  });

  describe('BatchNormalization', () => {
    it('trainable: refused before any work, naming the layer and the reason', () => {
      const model = mlp(null, 'trainable');
      const { x, y } = mlpData(6);
      const tensors = tf.memory().numTensors;
      for (const strategy of STRATEGIES) {
        assert.throws(() => computeClippedGradients(model, x, y, { l2NormClip: 1, loss: LOSS, strategy }), (e: unknown) => {
          assert.ok(e instanceof InvalidArgumentError);
          assert.equal(e.argument, 'model');
          assert.match(e.message, /layer bn \(BatchNormalization\)/);
          assert.match(e.message, /batch statistics mix the examples/);
          assert.match(e.message, /layer\.trainable = false/);
          return true;
        });
      }
      assert.equal(tf.memory().numTensors, tensors);
    });

    it('trainable: dpFit refuses it before any step', async () => {
      const { x, y } = mlpData(8);
      let steps = 0;
      await assert.rejects(dpFit(mlp(null, 'trainable'), { x, y }, { expectedBatchSize: 4, l2NormClip: 1,
        noiseMultiplier: 1, optimizer: 'sgd', loss: LOSS, steps: 1, onStep: () => { steps++; } }),
      (e: unknown) => e instanceof InvalidArgumentError && /batch statistics/.test(e.message));
      assert.equal(steps, 0);
    });

    it('inside a frozen nested model, or frozen itself: inference mode on its moving statistics (tfjs reference)', () => {
      const { x, y } = mlpData(9);
      const frozen = mlp(null, 'frozen');
      // Moving statistics away from (0, 1) so that inference and batch normalisation differ.
      const bn = frozen.getLayer('bn');
      bn.setWeights(bn.getWeights().map((w, k) => tf.fill(w.shape, [1.2, 0.1, 0.5, 2.0][k])));
      for (const strategy of STRATEGIES) {
        const r = computeClippedGradients(frozen, x, y, { l2NormClip: 0.5, loss: LOSS, strategy });
        assert.ok(Math.abs(r.lossSum - inferenceLossSum(frozen, x, y)) <= 1e-5 * Math.abs(r.lossSum), strategy);
        assertClose(r, referenceClippedSum(frozen, [x], y, 0.5), 1e-5, strategy);
        assert.ok(![...r.clippedSum.keys()].some((k) => k.startsWith('bn/')));
        dispose(r);
      }
      // The same layers inside a nested model with trainable = false, under a trainable head.
      const inner = tf.sequential({ name: 'inner' });
      inner.add(tf.layers.dense({ units: 6, inputShape: [5], name: 'inner_dense' }));
      inner.add(tf.layers.batchNormalization({ name: 'inner_bn' }));
      inner.trainable = false;
      const input = tf.input({ shape: [5] });
      const head = tf.layers.dense({ units: 3, activation: 'softmax', name: 'head' });
      const outer = fixWeights(tf.model({ inputs: input, outputs: head.apply(inner.apply(input)) as tf.SymbolicTensor }));
      const innerBn = inner.getLayer('inner_bn');
      innerBn.setWeights(innerBn.getWeights().map((w, k) => tf.fill(w.shape, [0.8, -0.2, 0.3, 1.7][k])));
      const r = computeClippedGradients(outer, x, y, { l2NormClip: 0.5, loss: LOSS });
      assertClose(r, referenceClippedSum(outer, [x], y, 0.5), 1e-5, 'nested frozen');
      dispose(r);
    });
  });

  describe('masking (Embedding maskZero)', () => {
    const T = 6;
    const ids = () => tf.tensor2d([
      [3, 7, 1, 0, 0, 0], [5, 5, 2, 9, 4, 0], [8, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6], [6, 6, 0, 0, 0, 0],
    ], [5, T], 'int32');
    const labels = () => tf.tensor1d([0, 1, 2, 1, 0], 'int32');

    it('Embedding → Dense → GlobalAveragePooling1D → Dense: runs as tfjs runs it (it failed before)', () => {
      const model = fixWeights(tf.sequential({ layers: [
        tf.layers.embedding({ inputDim: 10, outputDim: 4, maskZero: true, inputLength: T, name: 'emb' }),
        tf.layers.dense({ units: 5, activation: 'tanh', name: 'proj' }),
        tf.layers.globalAveragePooling1d({}),
        tf.layers.dense({ units: 3, activation: 'softmax', name: 'cls' }),
      ] }));
      const x = ids();
      const y = labels();
      for (const strategy of ['auto', 'ghost', 'naive'] as ClippingStrategy[]) {
        const r = computeClippedGradients(model, x, y, { l2NormClip: 0.4, loss: LOSS, strategy });
        assert.ok(Math.abs(r.lossSum - inferenceLossSum(model, x, y)) <= 1e-5 * Math.abs(r.lossSum), strategy);
        assertClose(r, referenceClippedSum(model, [x], y, 0.4), 1e-5, strategy);
        dispose(r);
      }
    });

    it('Embedding → LSTM (uses the mask) → Dense: the mask reaches the LSTM exactly as in model.predict', () => {
      const model = fixWeights(tf.sequential({ layers: [
        tf.layers.embedding({ inputDim: 10, outputDim: 4, maskZero: true, inputLength: T, name: 'emb' }),
        tf.layers.lstm({ units: 3, name: 'lstm' }),
        tf.layers.dense({ units: 3, activation: 'softmax', name: 'cls' }),
      ] }));
      const x = ids();
      const y = labels();
      // The mask matters here: without it the padded steps would change the LSTM state.
      const unmasked = fixWeights(tf.sequential({ layers: [
        tf.layers.embedding({ inputDim: 10, outputDim: 4, maskZero: false, inputLength: T }),
        tf.layers.lstm({ units: 3 }), tf.layers.dense({ units: 3, activation: 'softmax' }),
      ] }));
      assert.ok(Math.abs(inferenceLossSum(model, x, y) - inferenceLossSum(unmasked, x, y)) > 1e-4);
      const r = computeClippedGradients(model, x, y, { l2NormClip: 0.4, loss: LOSS });
      assert.ok(Math.abs(r.lossSum - inferenceLossSum(model, x, y)) <= 1e-5 * Math.abs(r.lossSum));
      assertClose(r, referenceClippedSum(model, [x], y, 0.4), 1e-4, 'lstm');
      assert.deepEqual(r.fallbackLayers, ['lstm']);
      dispose(r);
    });
  });
});
