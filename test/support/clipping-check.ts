/**
 * Checks computeClippedGradients on a tfjs-layers model against (1) an explicit per-example loop written here
 * (tf.variableGrads of each example's loss, clipped and summed in float64) and (2) the library's naive strategy.
 *
 * Tolerances as in test/per-example.test.ts: norm-relative error ≤ 1e-5 over all variables' sums, per element
 * |a − b| ≤ 1e-5·max|b|, per-example norms within 1e-5 relative.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { computeClippedGradients } from '../../src/dp/per-example/index.ts';
import type { ClippedGradientResult, ClippingStrategy, PerExampleLossFn } from '../../src/dp/per-example/index.ts';

export const REL_TOL = 1e-5;

/** Sparse categorical cross-entropy on probabilities, per example (written out, independent of src). */
export const sparseCe: PerExampleLossFn = (yTrue, yPred) => tf.tidy(() => {
  const oneHot = tf.oneHot(tf.cast(tf.reshape(yTrue, [-1]), 'int32'), yPred.shape[1] as number);
  return tf.neg(tf.sum(tf.mul(oneHot, tf.log(tf.clipByValue(yPred, 1e-7, 1))), 1));
});

interface Reference { grads: Map<string, Float64Array[]>; norms: Float64Array }

function reference(model: tf.LayersModel, x: tf.Tensor[], y: tf.Tensor, loss: PerExampleLossFn): Reference {
  const vars = model.trainableWeights.map((w) => ({ name: w.name, variable: w.read() as tf.Variable }));
  const B = x[0].shape[0];
  const grads = new Map<string, Float64Array[]>(vars.map((v) => [v.name, []]));
  const norms = new Float64Array(B);
  for (let i = 0; i < B; i++) {
    const { value, grads: g } = tf.variableGrads(() => tf.tidy(() => {
      const xi = x.map((t) => tf.slice(t, i, 1));
      const out = model.apply(xi.length === 1 ? xi[0] : xi, { training: false }) as tf.Tensor;
      return tf.sum(loss(tf.slice(y, i, 1), out)) as tf.Scalar;
    }), vars.map((v) => v.variable));
    let sq = 0;
    for (const v of vars) {
      const row = g[v.name] ? Float64Array.from(g[v.name].dataSync()) : new Float64Array(v.variable.size);
      for (const e of row) sq += e * e;
      grads.get(v.name)!.push(row);
    }
    norms[i] = Math.sqrt(sq);
    tf.dispose([value, ...Object.values(g)]);
  }
  return { grads, norms };
}

function assertClose(actual: Map<string, tf.Tensor>, expected: Map<string, Float64Array | tf.Tensor>, label: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${label}: same variables`);
  let diff2 = 0;
  let ref2 = 0;
  let maxRef = 0;
  let maxDiff = 0;
  for (const [name, t] of actual) {
    const a = t.dataSync();
    const e = expected.get(name)!;
    const b = e instanceof tf.Tensor ? e.dataSync() : e;
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

/** Result of {@link checkClipping}: what the vectorised runs reported (for further assertions). */
export interface ClippingCheck { clip: number; norms: Float64Array; variables: string[] }

/**
 * The full check: reference norms; C strictly between them (some examples clipped, some not); for each strategy
 * the per-example norms, the clipped sum vs the float64 reference and vs strategy 'naive', the loss sum, and an
 * empty fallbackLayers (no per-example loop).
 */
export function checkClipping(
  model: tf.LayersModel, x: tf.Tensor[], y: tf.Tensor, strategies: ClippingStrategy[] = ['auto', 'ghost', 'materialise'],
  loss: PerExampleLossFn = sparseCe,
): ClippingCheck {
  const ref = reference(model, x, y, loss);
  const sorted = [...ref.norms].sort((a, b) => a - b);
  const k = Math.floor(sorted.length / 2);
  const C = (sorted[k - 1] + sorted[k]) / 2;
  assert.ok(sorted[0] > 0, 'non-zero per-example gradients');
  const naive = computeClippedGradients(model, x, y, { l2NormClip: C, loss, strategy: 'naive' });
  const dispose = (r: ClippedGradientResult) => tf.dispose([...r.clippedSum.values()]);
  try {
    for (const strategy of strategies) {
      const r = computeClippedGradients(model, x, y, { l2NormClip: C, loss, strategy });
      try {
        assert.deepEqual(r.fallbackLayers, [], `${strategy}: no per-example loop`);
        assert.equal(r.nonFiniteCount, 0);
        r.perExampleNorms.forEach((n, i) => {
          assert.ok(Math.abs(n - ref.norms[i]) <= REL_TOL * ref.norms[i], `${strategy}: norm ${i}: ${n} vs ${ref.norms[i]}`);
          assert.ok(Math.abs(n - naive.perExampleNorms[i]) <= REL_TOL * naive.perExampleNorms[i], `${strategy}: norm ${i} vs naive`);
        });
        const factors = [...r.perExampleNorms].map((n) => Math.min(1, C / n));
        assert.ok(factors.some((c) => c === 1) && factors.some((c) => c < 1), 'both clipped and unclipped examples');
        const expected = new Map<string, Float64Array>();
        for (const [name, rows] of ref.grads) {
          const s = new Float64Array(rows[0].length);
          rows.forEach((row, i) => { for (let j = 0; j < row.length; j++) s[j] += factors[i] * row[j]; });
          expected.set(name, s);
        }
        assertClose(r.clippedSum, expected, `${model.name}/${strategy} vs reference`);
        assertClose(r.clippedSum, naive.clippedSum, `${model.name}/${strategy} vs naive`);
        assert.ok(Math.abs(r.lossSum - naive.lossSum) <= REL_TOL * Math.abs(naive.lossSum), `${strategy}: loss sum`);
      } finally {
        dispose(r);
      }
    }
    return { clip: C, norms: ref.norms, variables: [...ref.grads.keys()] };
  } finally {
    dispose(naive);
  }
}
