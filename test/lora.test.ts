/**
 * LoraDense (src/models/lora.ts) and its per-example rule (src/dp/per-example/lora-rule.ts), cpu backend.
 * Independent numbers: the layer's output is compared with x·W + b + s·x·A·B written out in float64 here; the
 * per-example clipped sums with a per-example tf.variableGrads loop (test/support/clipping-check.ts).
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../src/errors.ts';
import { LoraDense, loraLinearFactory, setLoraDropoutRandom } from '../src/models/lora.ts';
import { createInsecureSeededRandom } from '../src/dp/csprng.ts';
import { LAYER_RULES } from '../src/dp/per-example/rules.ts';
import { computeClippedGradients } from '../src/dp/per-example/index.ts';
import { checkClipping } from './support/clipping-check.ts';
import { intTensor, uniformTensor } from './support/deterministic.ts';

/** Writes deterministic non-zero values into every weight of `model` (B of LoRA too, so ∂A ≠ 0). */
function fillWeights(model: tf.LayersModel, seed: number, scale = 0.3): void {
  model.weights.forEach((w, k) => {
    const t = uniformTensor(w.shape as number[], seed + 17 * k, scale);
    w.write(t);
    t.dispose();
  });
}

/** float64 x·W + b + s·x·A·B for x [n, in]. */
function expectedLora(x: number[][], W: number[][], b: number[], A: number[][], Bm: number[][], s: number): number[][] {
  return x.map((row) => W[0].map((_, o) => {
    let z = b[o];
    for (let i = 0; i < row.length; i++) z += row[i] * W[i][o];
    for (let r = 0; r < A[0].length; r++) {
      let u = 0;
      for (let i = 0; i < row.length; i++) u += row[i] * A[i][r];
      z += s * u * Bm[r][o];
    }
    return z;
  }));
}

describe('LoRA (cpu backend)', function () {
  this.timeout(120_000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('computes x·W + b + (alpha/r)·x·A·B; A, B trainable, the base frozen; B starts at zero', () => {
    const layer = new LoraDense({ units: 5, rank: 3, alpha: 6, name: 'lora_check' });
    const x = uniformTensor([4, 7], 1);
    const fresh = layer.apply(x) as tf.Tensor; // builds
    const base = tf.add(tf.matMul(x, layer.kernel.read()), layer.bias!.read());
    assert.ok(tf.max(tf.abs(tf.sub(fresh, base))).dataSync()[0] < 1e-6, 'B = 0: output equals the base layer');
    assert.deepEqual(layer.trainableWeights.map((w) => w.name.split('/').pop()), ['lora_A', 'lora_B']);
    assert.deepEqual(layer.nonTrainableWeights.map((w) => w.name.split('/').pop()), ['kernel', 'bias']);
    const A0 = layer.loraA.read().arraySync() as number[][];
    const bound = 1 / Math.sqrt(7);
    assert.ok(A0.flat().every((v) => Math.abs(v) <= bound) && A0.flat().some((v) => v !== 0), 'A ~ U(−1/√in, 1/√in)');
    for (const [w, seed] of [[layer.kernel, 2], [layer.bias!, 3], [layer.loraA, 4], [layer.loraB, 5]] as const) {
      w.write(uniformTensor(w.shape as number[], seed, 0.5));
    }
    const out = (layer.apply(x) as tf.Tensor).arraySync() as number[][];
    const want = expectedLora(x.arraySync() as number[][], layer.kernel.read().arraySync() as number[][],
      layer.bias!.read().arraySync() as number[], layer.loraA.read().arraySync() as number[][],
      layer.loraB.read().arraySync() as number[][], 2);
    out.forEach((row, i) => row.forEach((v, o) => assert.ok(Math.abs(v - want[i][o]) < 1e-5, `out[${i}][${o}]`)));
    // merge() folds the adapter in: x·merge() + b is the same output.
    const merged = layer.merge();
    const viaMerged = tf.add(tf.matMul(x, merged), layer.bias!.read()).arraySync() as number[][];
    viaMerged.forEach((row, i) => row.forEach((v, o) => assert.ok(Math.abs(v - want[i][o]) < 1e-5, `merged[${i}][${o}]`)));
    // setBase copies a loaded base kernel and bias, and checks their shapes.
    const k = uniformTensor([7, 5], 6);
    const bias = uniformTensor([5], 7);
    layer.setBase(k, bias);
    assert.deepEqual(layer.kernel.read().dataSync(), k.dataSync());
    assert.throws(() => layer.setBase(uniformTensor([5, 7], 8), bias), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'lora_check.kernel');
    assert.throws(() => layer.setBase(k, null), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'lora_check.bias');
    tf.dispose([x, fresh, base, merged, k, bias]);
  });

  it('getConfig round-trips through a model JSON (class LoraDense registered)', async () => {
    const input = tf.input({ shape: [3] });
    const layer = new LoraDense({ units: 4, rank: 2, alpha: 16, activation: 'gelu', dropout: 0.1, trainBias: true, name: 'lora_cfg' });
    const model = tf.model({ inputs: input, outputs: layer.apply(input) as tf.SymbolicTensor });
    const json = model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'];
    const copy = (await tf.models.modelFromJSON({ modelTopology: json } as tf.io.ModelJSON)).getLayer('lora_cfg');
    assert.ok(copy instanceof LoraDense);
    const config = layer.getConfig();
    for (const key of ['units', 'rank', 'alpha', 'useBias', 'trainBias', 'activation', 'dropout'] as const) {
      assert.deepEqual(copy.getConfig()[key], config[key], key);
    }
    assert.equal(copy.scale, 8);
    assert.deepEqual(copy.trainableWeights.map((w) => w.name.split('/').pop()?.replace(/_\d+$/, '')), ['bias', 'lora_A', 'lora_B']);
  });

  it('rejects bad arguments with InvalidArgumentError naming them', () => {
    assert.throws(() => new LoraDense({ units: 4, rank: 0 }), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'rank');
    assert.throws(() => new LoraDense({ units: 4, rank: 2, alpha: -1 }), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'alpha');
    assert.throws(() => new LoraDense({ units: 4, rank: 2, dropout: 1 }), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'dropout');
    assert.throws(() => loraLinearFactory({ targets: [] }), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'lora.targets');
  });

  it('the factory adapts the targets only (default query, value)', () => {
    const f = loraLinearFactory({ rank: 2 });
    assert.ok(f({ name: 'encoder.layer.0.attention.self.query', units: 4, useBias: true }) instanceof LoraDense);
    assert.ok(f({ name: 'encoder.layer.0.attention.self.value', units: 4, useBias: true }) instanceof LoraDense);
    assert.ok(!(f({ name: 'encoder.layer.0.attention.self.key', units: 4, useBias: true }) instanceof LoraDense));
    assert.ok(!(f({ name: 'classifier', units: 2, useBias: true, activation: 'softmax' }) instanceof LoraDense));
    const g = loraLinearFactory({ targets: ['dense'] });
    assert.ok(g({ name: 'encoder.layer.1.output.dense', units: 4, useBias: true }) instanceof LoraDense);
    const h = loraLinearFactory({ targets: ['intermediate.dense'] });
    assert.ok(h({ name: 'encoder.layer.1.intermediate.dense', units: 4, useBias: true }) instanceof LoraDense);
    assert.ok(!(h({ name: 'encoder.layer.1.output.dense', units: 4, useBias: true }) instanceof LoraDense));
    assert.ok(!(h({ name: 'encoder.layer.1.xintermediate.dense', units: 4, useBias: true }) instanceof LoraDense), 'whole path components only');
  });

  it('is registered as a per-example rule', () => {
    assert.ok(LAYER_RULES.get('LoraDense'), 'LAYER_RULES has LoraDense');
  });

  it('per-example clipped sums on sequence inputs (auto, ghost, materialise) equal the per-example loop', () => {
    const input = tf.input({ shape: [6, 8] });
    const a = new LoraDense({ units: 10, rank: 3, alpha: 6, activation: 'gelu', name: 'lora_seq_a' }).apply(input) as tf.SymbolicTensor;
    const b = new LoraDense({ units: 8, rank: 2, trainBias: true, name: 'lora_seq_b' }).apply(a) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling1d().apply(b) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax', name: 'head' }).apply(pooled) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out, name: 'lora_seq' });
    fillWeights(model, 11);
    assert.equal(model.trainableWeights.length, 2 + 3 + 2, 'A, B | A, B, bias | head kernel, bias');
    const x = uniformTensor([5, 6, 8], 12);
    const y = tf.tensor1d([0, 1, 2, 0, 1], 'int32');
    checkClipping(model, [x], y);
    tf.dispose([x, y]);
  });

  it('per-example clipped sums on 2-D inputs equal the per-example loop', () => {
    const input = tf.input({ shape: [7] });
    const h = new LoraDense({ units: 6, rank: 2, activation: 'tanh', name: 'lora_flat' }).apply(input) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax', name: 'head2' }).apply(h) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out, name: 'lora_flat_model' });
    fillWeights(model, 21, 0.6);
    const x = uniformTensor([6, 7], 22);
    const y = intTensor([6], 3, 23);
    checkClipping(model, [x], y);
    tf.dispose([x, y]);
  });

  it('training-mode dropout in the DP step: the rule applies the same masks as the per-example loop', () => {
    // One LoRA layer: the vectorised pass draws one [B, T, in] mask, the loop one [1, T, in] mask per example, in
    // the same row-major order, so the same seeded stream gives both the same masks.
    const input = tf.input({ shape: [5, 8] });
    const h = new LoraDense({ units: 6, rank: 3, dropout: 0.4, activation: 'tanh', name: 'lora_dropout_step' }).apply(input) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling1d().apply(h) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax', name: 'head3' }).apply(pooled) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out, name: 'lora_dropout_model' });
    fillWeights(model, 41, 0.5);
    const x = uniformTensor([6, 5, 8], 42);
    const y = intTensor([6], 3, 43);
    const run = (strategy: 'naive' | 'auto' | 'ghost') => {
      setLoraDropoutRandom(createInsecureSeededRandom('lora-step-dropout', { insecure: true }));
      try {
        return computeClippedGradients(model, x, y, { l2NormClip: 0.2, loss: 'sparseCategoricalCrossentropy', strategy });
      } finally {
        setLoraDropoutRandom(null);
      }
    };
    const naive = run('naive');
    const otherMasks = computeClippedGradients(model, x, y, { l2NormClip: 0.2, loss: 'sparseCategoricalCrossentropy', strategy: 'naive' });
    for (const strategy of ['auto', 'ghost'] as const) {
      const r = run(strategy);
      assert.deepEqual(r.fallbackLayers, []);
      r.perExampleNorms.forEach((n, i) => assert.ok(Math.abs(n - naive.perExampleNorms[i]) <= 1e-5 * n, `${strategy}: norm ${i}`));
      for (const [name, t] of r.clippedSum) {
        const e = naive.clippedSum.get(name)!;
        const diff = tf.max(tf.abs(tf.sub(t, e))).dataSync()[0];
        const scale = tf.max(tf.abs(e)).dataSync()[0];
        assert.ok(scale > 0 && diff <= 1e-5 * scale, `${strategy}: ${name}: ${diff} vs ${scale}`);
      }
      tf.dispose([...r.clippedSum.values()]);
    }
    // The masks matter: without the seeded stream (fresh OS-random masks) the norms differ.
    assert.ok(otherMasks.perExampleNorms.some((n, i) => Math.abs(n - naive.perExampleNorms[i]) > 1e-3 * n), 'dropout changes the gradients');
    tf.dispose([...naive.clippedSum.values(), ...otherMasks.clippedSum.values(), x, y]);
  });

  it('dropout is off in inference and draws node:crypto masks in training mode', () => {
    setLoraDropoutRandom(createInsecureSeededRandom('lora-dropout-test', { insecure: true }));
    try {
      const layer = new LoraDense({ units: 4, rank: 2, dropout: 0.5, name: 'lora_drop' });
      const x = uniformTensor([3, 10], 31);
      tf.dispose(layer.apply(x) as tf.Tensor);
      layer.loraB.write(uniformTensor([2, 4], 32));
      const inference = layer.apply(x, { training: false }) as tf.Tensor;
      const noMask = layer.preActivation(x, null);
      assert.ok(tf.max(tf.abs(tf.sub(inference, noMask))).dataSync()[0] === 0, 'inference: no dropout');
      const mask = layer.dropoutMask([3, 10], true)!;
      const values = new Set(mask.dataSync());
      assert.deepEqual([...values].sort(), [0, 2], 'inverted dropout mask of 0 and 1/(1 − p)');
      assert.equal(layer.dropoutMask([3, 10], false), null);
      const training = layer.apply(x, { training: true }) as tf.Tensor;
      assert.ok(tf.max(tf.abs(tf.sub(training, inference))).dataSync()[0] > 0, 'training: masks change the output');
      tf.dispose([x, inference, noMask, mask, training]);
    } finally {
      setLoraDropoutRandom(null);
    }
  });
});
