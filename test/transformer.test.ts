/**
 * src/models/transformer.ts: shapes, the attention core against a direct float64 computation written here, and a
 * serialization round trip of the custom layers.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  PositionEmbedding, ScaledDotProductAttention, createTransformerBlockModel, createTransformerClassifier,
} from '../src/models/transformer.ts';

/** softmax(q kᵀ/√dh) v per head, in float64 loops. */
function attentionReference(q: number[][][], k: number[][][], v: number[][][], heads: number, causal: boolean): number[][][] {
  const B = q.length; const T = q[0].length; const d = q[0][0].length; const dh = d / heads;
  const out = q.map((row) => row.map(() => new Array<number>(d).fill(0)));
  for (let b = 0; b < B; b++) for (let h = 0; h < heads; h++) for (let t = 0; t < T; t++) {
    const s: number[] = [];
    for (let u = 0; u < T; u++) {
      let dot = 0;
      for (let j = 0; j < dh; j++) dot += q[b][t][h * dh + j] * k[b][u][h * dh + j];
      s.push(causal && u > t ? -Infinity : dot / Math.sqrt(dh));
    }
    const m = Math.max(...s);
    const e = s.map((x) => Math.exp(x - m));
    const z = e.reduce((a, c) => a + c, 0);
    for (let u = 0; u < T; u++) for (let j = 0; j < dh; j++) out[b][t][h * dh + j] += (e[u] / z) * v[b][u][h * dh + j];
  }
  return out;
}

describe('transformer model', () => {
  before(async () => { await tf.setBackend('cpu'); });

  for (const causal of [false, true]) {
    it(`attention core equals a direct float64 computation (causal=${causal}; |diff| ≤ 1e-5, float32)`, () => {
      const [q, k, v] = [1, 2, 3].map((s) => tf.randomNormal([2, 5, 8], 0, 1, 'float32', s));
      const layer = new ScaledDotProductAttention({ numHeads: 2, causal });
      const out = layer.apply([q, k, v]) as tf.Tensor;
      const ref = attentionReference(q.arraySync() as number[][][], k.arraySync() as number[][][], v.arraySync() as number[][][], 2, causal);
      const got = out.arraySync() as number[][][];
      for (let b = 0; b < 2; b++) for (let t = 0; t < 5; t++) for (let j = 0; j < 8; j++) {
        assert.ok(Math.abs(got[b][t][j] - ref[b][t][j]) <= 1e-5, `[${b},${t},${j}]`);
      }
      tf.dispose([q, k, v, out]);
    });
  }

  it('classifier and block have the expected shapes and weights', () => {
    const m = createTransformerClassifier({ vocabSize: 50, sequenceLength: 8, modelDim: 32, numHeads: 2, ffnDim: 64, numClasses: 3 });
    const p = m.predict(tf.zeros([4, 8], 'int32')) as tf.Tensor;
    assert.deepEqual(p.shape, [4, 3]);
    const sums = tf.sum(p, 1).dataSync();
    for (const s of sums) assert.ok(Math.abs(s - 1) < 1e-5);
    // token + position embeddings, 4 attention Dense (kernel+bias), 2 FFN Dense, 3 LayerNorms, head.
    assert.equal(m.trainableWeights.length, 1 + 1 + 8 + 4 + 6 + 2);
    const block = createTransformerBlockModel({ sequenceLength: 6, modelDim: 16, numHeads: 4, ffnDim: 32, numClasses: 5 });
    assert.deepEqual((block.predict(tf.zeros([2, 6, 16])) as tf.Tensor).shape, [2, 5]);
  });

  it('rejects a width not divisible by the heads', () => {
    assert.throws(() => createTransformerClassifier({ vocabSize: 5, sequenceLength: 4, modelDim: 10, numHeads: 3, ffnDim: 4, numClasses: 2 }), /divisible/);
  });

  it('round-trips through save/load (custom layers are registered)', async () => {
    const m = createTransformerClassifier({ vocabSize: 20, sequenceLength: 4, modelDim: 8, numHeads: 2, ffnDim: 8, numClasses: 2 });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await m.save(tf.io.withSaveHandler(async (a) => { artifacts = a; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; }));
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    assert.ok(loaded.layers.some((l) => l instanceof ScaledDotProductAttention));
    assert.ok(loaded.layers.some((l) => l instanceof PositionEmbedding));
    const x = tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 0]], [2, 4], 'int32');
    const a = (m.predict(x) as tf.Tensor).dataSync();
    const b = (loaded.predict(x) as tf.Tensor).dataSync();
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-6));
  });
});
