/**
 * Quick cpu-backend timing of the per-example clipping step (not a test):
 *   npx tsx bench/per-example-quick.ts
 * Compares, per model, a plain non-private step (tf.variableGrads of the mean loss), computeClippedGradients
 * (vectorised, auto) and naiveClippedGradients (per-example loop). Median of the timed repetitions after a warm-up.
 */
import * as tf from '@tensorflow/tfjs';
import { computeClippedGradients, naiveClippedGradients, resolveLoss } from '../src/dp/per-example/index.ts';
import { createTransformerBlockModel } from '../src/models/transformer.ts';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function time(reps: number, f: () => void): number {
  f(); // warm-up
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    f();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const loss = resolveLoss('sparseCategoricalCrossentropy');
  const cases = [
    {
      name: 'mlp 784-256-256-10, batch 32',
      model: tf.sequential({ layers: [
        tf.layers.dense({ units: 256, inputShape: [784], activation: 'relu' }),
        tf.layers.dense({ units: 256, activation: 'relu' }),
        tf.layers.dense({ units: 10, activation: 'softmax' }),
      ] }) as tf.LayersModel,
      x: tf.randomNormal([32, 784]), y: tf.randomUniform([32], 0, 10, 'int32'), reps: 5, naiveReps: 2,
    },
    {
      name: 'transformer block d=128 h=4 T=64 ffn=512, batch 32',
      model: createTransformerBlockModel({ sequenceLength: 64, modelDim: 128, numHeads: 4, ffnDim: 512, numClasses: 10 }),
      x: tf.randomNormal([32, 64, 128]), y: tf.randomUniform([32], 0, 10, 'int32'), reps: 3, naiveReps: 1,
    },
  ];
  const ratios: string[] = [];
  for (const c of cases) {
    const vars = c.model.trainableWeights.map((w) => w.read() as tf.Variable);
    const plain = time(c.reps, () => {
      const { value, grads } = tf.variableGrads(() => tf.mean(loss(c.y, c.model.apply(c.x) as tf.Tensor)) as tf.Scalar, vars);
      value.dataSync();
      tf.dispose([value, ...Object.values(grads)]);
    });
    const run = (f: typeof computeClippedGradients) => () => {
      const r = f(c.model, c.x, c.y, { l2NormClip: 1, loss: 'sparseCategoricalCrossentropy' });
      for (const t of r.clippedSum.values()) t.dataSync();
      tf.dispose([...r.clippedSum.values()]);
    };
    const dp = time(c.reps, run(computeClippedGradients));
    const naive = time(c.naiveReps, run(naiveClippedGradients));
    console.log(`${c.name}: non-private ${plain.toFixed(0)} ms, vectorised DP ${dp.toFixed(0)} ms ` +
      `(${(dp / plain).toFixed(2)}x), naive ${naive.toFixed(0)} ms (${(naive / plain).toFixed(2)}x)`);
    ratios.push(`${c.name.split(' ')[0]}: dp/plain=${(dp / plain).toFixed(2)} naive/plain=${(naive / plain).toFixed(2)}`);
  }
  console.log(`per-example-quick (cpu) ${ratios.join('; ')}`);
}

await main();
