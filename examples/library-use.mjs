// ewtune as a library: DP fine-tuning with dpFit, a durable privacy ledger, and the tracking callback (MLflow when
// MLFLOW_TRACKING_URI is set, else only the local run directory) next to an ordinary tfjs callback.
//   node library-use.mjs [runDir]        (in a project with ewtune and @tensorflow/tfjs installed)
// The data is a small deterministic toy problem (two noisy clusters) so the example runs in seconds.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { dpFit, initBackend, PrivacyLedger } from 'ewtune';
import { createPrivacyCallback } from 'ewtune/plugin';

const runDir = process.argv[2] ?? join('ewtune-runs', `library-use-${Date.now()}`);
const N = 2000;
const features = 8;
const xs = new Float32Array(N * features);
const ys = new Int32Array(N);
for (let i = 0; i < N; i++) {
  ys[i] = i % 2;
  for (let j = 0; j < features; j++) xs[i * features + j] = (ys[i] ? 0.5 : -0.5) + Math.sin(7.3 * i + 1.7 * j);
}

const backend = await initBackend('auto'); // tfjs-node(-gpu) if installed, else WASM (fast kernels), else cpu
const model = tf.sequential({
  layers: [tf.layers.dense({ inputShape: [features], units: 16, activation: 'relu' }), tf.layers.dense({ units: 2, activation: 'softmax' })],
});
const x = tf.tensor2d(xs, [N, features]);
const y = tf.tensor1d(ys, 'int32');
const steps = 60;
const callback = await createPrivacyCallback({ runDir, experimentName: 'ewtune-examples', delta: 1e-5, targetEpsilon: 3, plannedSteps: steps });
const ledger = await PrivacyLedger.create(join(runDir, 'artifacts', 'privacy', 'ledger.jsonl'),
  { datasetSize: N, l2NormClip: 1, sampler: 'poisson', adjacency: 'add-remove', noiseMode: 'gaussian' });
let epochs = 0;
const history = await dpFit(model, { x, y }, {
  steps, expectedBatchSize: 64, l2NormClip: 1.0,
  target: { epsilon: 3, delta: 1e-5 }, // calibrates σ (certified PLD) and stops before exceeding ε = 3
  optimizer: 'adam', learningRate: 0.01, loss: 'sparseCategoricalCrossentropy',
  ledger, callbacks: [callback, new tf.CustomCallback({ onEpochEnd: async () => void epochs++ })],
});
const summary = await callback.finish({ history }); // final certified ε, tags, charts, ledger upload, run status
await ledger.close();
const accuracy = tf.tidy(() => /** @type {tf.Tensor} */ (model.predict(x)).argMax(-1).equal(y).mean().dataSync()[0]);
console.log(JSON.stringify({
  runDir, backend, status: summary.status, steps: summary.steps, noiseMultiplier: history.noiseMultiplier, epochs,
  epsilonCertified: summary.epsilonCertified?.epsilon, epsilonEdgeworth: summary.epsilonEdgeworth?.epsilon, accuracy,
  mlflowRunId: summary.close.remote?.runId ?? null,
}));
tf.dispose([x, y]);
