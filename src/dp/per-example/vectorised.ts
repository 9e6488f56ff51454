/**
 * The vectorised DP step for tfjs-layers models: one forward pass (ours, graph.ts) with probes on every supported
 * layer's pre-activation output, one backward pass to the probes (output gradients G, no weight gradients), then
 * per layer the per-example squared norms from (A, G) and the clipped sum Aᵀ·diag(c)·G ("book-keeping": no second
 * backward pass). Layers without a rule go through the per-example loop for their own weights only.
 */
import * as tf from '@tensorflow/tfjs';
import { ProbeSet } from './probes.ts';
import { countLayerCalls, runGraph } from './graph.ts';
import type { WalkState } from './graph.ts';
import { checkPerExampleLoss, clipFactors } from './prepare.ts';
import type { PreparedCall, TrainableVariable } from './prepare.ts';
import { clippedSumOfStacked, perExampleGradients, perExampleSquaredNorms, sumFinite } from './naive.ts';
import type { ClippedGradientResult } from './types.ts';

const warnedModels = new WeakSet<object>();

/** Tells the user once per model which layers fell back to the per-example loop. */
export function warnFallbackOnce(model: object, layers: string[]): void {
  if (layers.length === 0 || warnedModels.has(model)) return;
  warnedModels.add(model);
  console.warn(
    `ewtune: per-example gradients of ${layers.join(', ')} are computed by the per-example loop ` +
    '(unsupported layer type, shared layer or custom model); the DP step is slower for them.',
  );
}

export function vectorisedStep(call: PreparedCall): ClippedGradientResult {
  const B = call.batchSize;
  const model = call.model as tf.LayersModel;
  const probes = new ProbeSet();
  const trainableNames = new Set(call.trainable.map((v) => v.name));
  const st: WalkState = {
    rule: {
      probes,
      strategy: call.strategy,
      batchSize: B,
      training: true,
      isTrainable: (w): w is { name: string; read(): tf.Tensor } => w != null && trainableNames.has(w.name),
    },
    trainableNames,
    callCounts: countLayerCalls(model),
    records: [],
    fallback: new Map(),
  };
  let fallbackGrads: Map<string, tf.Tensor> | null = null;
  const seed = tf.scalar(0);
  try {
    let losses: tf.Tensor | null = null;
    tf.tidy(() => {
      tf.grads((s: tf.Tensor) => {
        probes.seed = s;
        const { outputs } = runGraph(model, call.inputs, [], st);
        const perExample = checkPerExampleLoss(call.loss(call.y, outputs[0]), B);
        losses = probes.own(perExample);
        // `+ 0·seed` keeps the seed connected when no layer carries a probe (everything fell back).
        return tf.add(tf.sum(perExample), tf.mul(s, 0));
      })([seed]);
    });
    const fallbackLayers = [...st.fallback.keys()];
    const fallbackVars: TrainableVariable[] = [...st.fallback.values()].flat();
    warnFallbackOnce(model, fallbackLayers);
    if (fallbackVars.length > 0) fallbackGrads = perExampleGradients(call, fallbackVars).grads;

    // Per-example squared norms: one float32 row per layer, summed in float64.
    const sqRows = tf.tidy(() => {
      const rows = st.records.map((r) => r.squaredNorms());
      if (fallbackGrads) rows.push(perExampleSquaredNorms(fallbackGrads, B));
      return rows.length > 0 ? tf.stack(rows) : tf.zeros([0, B]);
    });
    const sqData = sqRows.dataSync();
    sqRows.dispose();
    const norms = new Float64Array(B);
    for (let l = 0; l < sqData.length / Math.max(B, 1); l++) for (let i = 0; i < B; i++) norms[i] += sqData[l * B + i];
    for (let i = 0; i < B; i++) norms[i] = Math.sqrt(norms[i]);

    const { factors, finite, nonFiniteCount } = clipFactors(norms, call.l2NormClip);
    const lossData = Float64Array.from((losses as unknown as tf.Tensor).dataSync());
    const names: string[] = [];
    const sums = tf.tidy(() => {
      const c = tf.tensor1d(factors);
      const ok = nonFiniteCount > 0 ? tf.tensor1d(finite, 'bool') : null;
      const out: tf.Tensor[] = [];
      for (const r of st.records) {
        for (const [name, t] of r.clippedSums(c, ok)) { names.push(name); out.push(t); }
      }
      for (const v of fallbackVars) { names.push(v.name); out.push(clippedSumOfStacked(fallbackGrads!.get(v.name)!, c, ok)); }
      return out;
    });
    const clippedSum = new Map<string, tf.Tensor>();
    names.forEach((name, k) => clippedSum.set(name, sums[k]));
    // Trainable variables the loss never reached (unused layers) get an explicit zero.
    for (const v of call.trainable) if (!clippedSum.has(v.name)) clippedSum.set(v.name, tf.zerosLike(v.variable));
    return {
      clippedSum, perExampleNorms: norms, lossSum: sumFinite(lossData, finite), batchSize: B, nonFiniteCount,
      fallbackLayers,
    };
  } finally {
    seed.dispose();
    probes.dispose();
    if (fallbackGrads) tf.dispose([...fallbackGrads.values()]);
  }
}
