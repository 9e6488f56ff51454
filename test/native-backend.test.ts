/**
 * The native TensorFlow backend (`npm run setup:native`: @tensorflow/tfjs-node 4.22.0 on PyPI's tensorflow-cpu
 * 2.21.0, src/setup/native.ts): the DP step, the per-example rules, an end-to-end run and the main job on it.
 *
 * Independent references: the pure-JS cpu backend (another implementation of every op) for ops, gradients and a
 * whole dpStep under the same seeded noise; an explicit per-example loop written in test/support/clipping-check.ts;
 * a ledger replay by the Edgeworth accountant for the run's ε points. No timing anywhere.
 *
 * Needs the native backend: when it is not set up the suite FAILS under CI=true and is skipped (with a message)
 * elsewhere. It switches to 'tensorflow' in `before` and restores the previous backend in `after`, so it shares the
 * mocha process with the cpu/wasm suites. The GPU group runs only where tfjs-node-gpu is set up and a GPU is
 * visible, and says why when it is skipped.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { EdgeworthAccountant } from '../src/accounting/edgeworth/index.ts';
import { PrivacyLedger } from '../src/accounting/ledger.ts';
import { chooseBackend, lastBackendChoice } from '../src/backend/index.ts';
import { computeClippedGradients } from '../src/dp/per-example/index.ts';
import { createNoiseSource } from '../src/dp/noise.ts';
import { dpStep } from '../src/train/dp-step.ts';
import { createTransformerBlockModel, createTransformerClassifier } from '../src/models/transformer.ts';
import { gpuVisible, nativeStatus, nativeVariant } from '../src/setup/native.ts';
import { validateConfig } from '../plugin/config.ts';
import { runTraining, type RunResult } from '../plugin/run.ts';
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { checkClipping } from './support/clipping-check.ts';
import { intTensor, lcg, uniformTensor } from './support/deterministic.ts';
import { sharedMlflowServer } from './support/mlflow-server.ts';

const REL_TOL = 1e-5;

/** Fails under CI=true, else skips the suite with a message (a fetched asset that is missing). */
function requireNative(ctx: Mocha.Context): void {
  const status = nativeStatus(false);
  if (status.ready) return;
  if (process.env.CI === 'true') assert.fail(`CI: the native TensorFlow backend is required: ${status.reason}`);
  console.log(`      (skipped: ${status.reason})`);
  ctx.skip();
}

/** max |a − b| ≤ tol · max |b| and ‖a − b‖ ≤ tol · ‖b‖. */
function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, label: string): void {
  assert.equal(a.length, b.length, `${label}: length`);
  let d2 = 0;
  let b2 = 0;
  let maxB = 0;
  let maxD = 0;
  for (let i = 0; i < a.length; i++) {
    assert.ok(Number.isFinite(a[i]), `${label}[${i}] finite`);
    d2 += (a[i] - b[i]) ** 2;
    b2 += b[i] ** 2;
    maxB = Math.max(maxB, Math.abs(b[i]));
    maxD = Math.max(maxD, Math.abs(a[i] - b[i]));
  }
  assert.ok(b2 > 0, `${label}: non-trivial reference`);
  assert.ok(Math.sqrt(d2 / b2) <= tol, `${label}: norm-relative error ${Math.sqrt(d2 / b2)} > ${tol}`);
  assert.ok(maxD <= tol * maxB, `${label}: max diff ${maxD} > ${tol} · ${maxB}`);
}

/** Run `f` on `backend` and return its values (host copy). */
async function on(backend: string, f: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const r = f();
    return (Array.isArray(r) ? r : [r]).map((t) => Float32Array.from(t.dataSync()));
  });
}

/** Sets every trainable weight from the LCG (same values on every backend). */
function setDeterministicWeights(model: tf.LayersModel, seed: number): void {
  const u = lcg(seed);
  for (const w of model.trainableWeights) {
    const values = Float32Array.from({ length: w.shape.reduce((p: number, d) => p * (d as number), 1) }, () => 0.3 * (2 * u() - 1));
    w.write(tf.tensor(values, w.shape as number[]));
  }
}

describe('native TensorFlow backend (tfjs-node on the PyPI TensorFlow wheel)', function () {
  this.timeout(300_000);
  let previousBackend: string | null = null;

  before(async function () {
    requireNative(this);
    previousBackend = tf.engine().backendName ?? null;
    const choice = await chooseBackend('tensorflow');
    assert.equal(choice.name, 'tensorflow');
  });

  after(async () => {
    await tf.setBackend(previousBackend ?? 'cpu');
  });

  it("the project's own @tensorflow/tfjs runs on 'tensorflow' (one tfjs-core; the package placed, deps in the cache)", async () => {
    assert.equal(tf.getBackend(), 'tensorflow');
    const binding = (tf.backend() as unknown as { binding: { TF_Version: string } }).binding;
    assert.equal(binding.TF_Version, nativeVariant(false).wheel.version);
    const choice = await chooseBackend('auto');
    assert.equal(choice.name, 'tensorflow');
    assert.match(choice.reason, /^auto: @tensorflow\/tfjs-node/);
    assert.deepEqual(lastBackendChoice(), choice);
    const pkg = join('node_modules', '@tensorflow', 'tfjs-node');
    assert.ok(!lstatSync(pkg).isSymbolicLink(), 'a real directory (a link would resolve another tfjs-core)');
    assert.ok(!existsSync(join(pkg, 'node_modules', '@tensorflow')), 'no nested @tensorflow/* copy');
    assert.ok(lstatSync(join(pkg, 'deps')).isSymbolicLink(), 'deps/ links into the cache');
    assert.ok(realpathSync(join(pkg, 'deps')).includes(`${join('.ewtune-cache', 'native')}`) || process.env.EWTUNE_CACHE !== undefined);
  });

  it('ops and their gradients equal the pure-JS cpu backend (matMul, conv2d, softmax, moments, layer norm)', async () => {
    const u = lcg(3);
    const data = (n: number) => Float32Array.from({ length: n }, () => 2 * u() - 1);
    const [a, b, img, ker] = [data(6 * 5), data(5 * 4), data(2 * 7 * 7 * 3), data(3 * 3 * 3 * 4)];
    const f = () => {
      const A = tf.tensor2d(a, [6, 5]);
      const B = tf.tensor2d(b, [5, 4]);
      const I = tf.tensor4d(img, [2, 7, 7, 3]);
      const K = tf.tensor4d(ker, [3, 3, 3, 4]);
      const loss = (A_: tf.Tensor, B_: tf.Tensor, I_: tf.Tensor, K_: tf.Tensor) => {
        const m = tf.softmax(tf.matMul(A_ as tf.Tensor2D, B_ as tf.Tensor2D));
        const c = tf.conv2d(I_ as tf.Tensor4D, K_ as tf.Tensor4D, 1, 'same');
        const { mean, variance } = tf.moments(c, -1, true);
        const ln = tf.div(tf.sub(c, mean), tf.sqrt(tf.add(variance, 1e-3)));
        return tf.add(tf.sum(tf.square(m)), tf.mean(tf.square(tf.relu(ln))));
      };
      const grads = tf.grads(loss)([A, B, I, K]);
      return [loss(A, B, I, K), ...grads];
    };
    const native = await on('tensorflow', f);
    const cpu = await on('cpu', f);
    await tf.setBackend('tensorflow');
    native.forEach((v, i) => assertClose(v, cpu[i], 1e-5, `output ${i}`));
  });

  it('per-example clipping, every strategy: vectorised = naive loop = explicit per-example loop (MLP)', () => {
    const model = tf.sequential({ name: 'native_mlp', layers: [
      tf.layers.dense({ units: 24, inputShape: [12], activation: 'tanh' }),
      tf.layers.dense({ units: 16, activation: 'relu' }),
      tf.layers.dense({ units: 4, activation: 'softmax' }),
    ] });
    const x = uniformTensor([10, 12], 1, 1.5);
    const y = tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3, 0, 1], 'int32');
    try {
      checkClipping(model, [x], y, ['auto', 'ghost', 'materialise']);
    } finally {
      model.dispose();
      tf.dispose([x, y]);
    }
  });

  it('per-example clipping on a transformer classifier (trainable embedding) and on the bench transformer block', () => {
    const classifier = createTransformerClassifier({ vocabSize: 40, sequenceLength: 8, modelDim: 32, numHeads: 2, ffnDim: 64, numClasses: 3 });
    const ids = intTensor([6, 8], 40, 9);
    const y3 = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
    const block = createTransformerBlockModel({ sequenceLength: 6, modelDim: 16, numHeads: 2, ffnDim: 32, numClasses: 2 });
    const xb = uniformTensor([8, 6, 16], 11, Math.sqrt(3));
    const y2 = tf.tensor1d([0, 1, 0, 1, 1, 0, 1, 0], 'int32');
    try {
      checkClipping(classifier, [ids], y3, ['auto', 'ghost', 'materialise']);
      checkClipping(block, [xb], y2, ['auto', 'ghost', 'materialise']);
    } finally {
      classifier.dispose();
      block.dispose();
      tf.dispose([ids, y3, xb, y2]);
    }
  });

  it('the per-example rules are batched: the kernels run per clipping call do not grow with the batch size', async () => {
    const model = createTransformerBlockModel({ sequenceLength: 6, modelDim: 16, numHeads: 2, ffnDim: 32, numClasses: 2 });
    const kernelsFor = async (batch: number): Promise<number> => {
      const x = uniformTensor([batch, 6, 16], 20 + batch);
      const y = tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 2), 'int32');
      try {
        const info = await tf.profile(() => {
          const r = computeClippedGradients(model, x, y, { l2NormClip: 0.5, loss: 'sparseCategoricalCrossentropy' });
          assert.deepEqual(r.fallbackLayers, []);
          tf.dispose([...r.clippedSum.values()]);
        });
        return info.kernels.length;
      } finally {
        tf.dispose([x, y]);
      }
    };
    try {
      const small = await kernelsFor(4);
      const large = await kernelsFor(16);
      assert.ok(small > 0);
      assert.equal(large, small, `kernels for batch 16 (${large}) vs batch 4 (${small}): a per-example loop would scale`);
    } finally {
      model.dispose();
    }
  });

  it('one dpStep on tensorflow = the same dpStep on cpu (same weights, same seeded noise); tensors stay flat', async () => {
    const step = async (backend: string): Promise<Float32Array[]> => {
      await tf.setBackend(backend);
      const model = createTransformerClassifier({ vocabSize: 30, sequenceLength: 6, modelDim: 16, numHeads: 2, ffnDim: 32, numClasses: 2 });
      setDeterministicWeights(model, 5);
      const x = intTensor([12, 6], 30, 4);
      const y = tf.tensor1d(Array.from({ length: 12 }, (_, i) => i % 2), 'int32');
      const optimizer = tf.train.sgd(0.5);
      const before = model.trainableWeights.map((w) => Float32Array.from(w.read().dataSync()));
      const tensors = tf.memory().numTensors;
      const options = {
        l2NormClip: 0.5, loss: 'sparseCategoricalCrossentropy' as const, noiseMultiplier: 0.01, expectedBatchSize: 12, optimizer,
        noise: createNoiseSource('insecure-seeded', { seed: 'native-backend-test' }),
      };
      for (let k = 0; k < 3; k++) await dpStep(model, { x, y }, Int32Array.from({ length: 12 }, (_, i) => i), options);
      const after = model.trainableWeights.map((w) => Float32Array.from(w.read().dataSync()));
      const delta = after.map((a, i) => a.map((v, j) => v - before[i][j]));
      // dpStep leaves no tensor behind (the optimizer holds none for SGD).
      assert.equal(tf.memory().numTensors, tensors, `${backend}: tensors after 3 steps`);
      optimizer.dispose();
      model.dispose();
      tf.dispose([x, y]);
      return delta;
    };
    const native = await step('tensorflow');
    const cpu = await step('cpu');
    await tf.setBackend('tensorflow');
    const flat = (xs: Float32Array[]) => Float32Array.from(xs.flatMap((a) => [...a]));
    // The updates are 3 steps of (clipped sum + the same noise)/B, the noise small against the clipped sum so that a
    // clipping difference shows: compare them (float32, two backends: 1e-4).
    assertClose(flat(native), flat(cpu), 1e-4, 'weight updates');
  });

  it('an end-to-end run on tensorflow against a real MLflow server: backend param and reason, one ε point per step = ledger replay', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewtune-native-e2e-'));
    const uri = await sharedMlflowServer();
    const client = MlflowClient.fromEnv(uri, {});
    const lines: string[] = [];
    try {
      const config = validateConfig({
        name: `native-e2e-${Date.now()}`, experimentName: 'ewtune-tests',
        data: { kind: 'spam-assassin', maxTokens: 16, vocabularySize: 20000, maxExamples: 300 },
        model: { kind: 'transformer-classifier', embedding: 'wink-glove-100d', dModel: 16, heads: 2, ffnDim: 32, layers: 1 },
        training: { steps: 4, expectedBatchSize: 32, l2NormClip: 1, optimizer: 'adam', learningRate: 0.01, backend: 'tensorflow' },
        privacy: { targetEpsilon: 4, delta: 1e-5 },
        tracking: { runDir: dir, trackingUri: uri },
      });
      const result: RunResult = await runTraining(config, { log: (l: string) => lines.push(l), handleSignals: false, certifiedIn: 'inline' });
      assert.equal(result.status, 'FINISHED');
      assert.equal(result.steps, 4);
      assert.equal(tf.getBackend(), 'tensorflow');
      const backendLine = lines.find((l) => l.startsWith('ewtune: backend'));
      assert.match(backendLine ?? '', /^ewtune: backend tensorflow \(@tensorflow\/tfjs-node \(/);
      const run = await client.getRun(result.runId as string);
      const params = Object.fromEntries(run.params.map((p) => [p.key, p.value]));
      assert.equal(params.backend, 'tensorflow');
      assert.match(params.backend_reason, /@tensorflow\/tfjs-node/);
      const history = await client.getMetricHistory(result.runId as string, 'privacy/epsilon_edgeworth');
      const ledger = PrivacyLedger.openSync(join(result.runDir, 'artifacts', 'privacy', 'ledger.jsonl'));
      try {
        assert.equal(ledger.steps, 4);
        const acc = new EdgeworthAccountant({ order: 1 });
        const byStep = new Map(history.map((m) => [m.step, m.value]));
        ledger.records.forEach((r, i) => {
          acc.compose({ sampleRate: r.sampleRate, noiseMultiplier: r.noiseMultiplier }, r.count);
          const expected = acc.getEpsilon(1e-5).epsilon;
          const got = byStep.get(i + 1) as number;
          assert.ok(Math.abs(got - expected) <= 1e-12 * expected, `step ${i + 1}: ${got} vs ${expected}`);
        });
      } finally {
        ledger.closeSync();
      }
    } finally {
      client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the main job's config (examples/spam-assassin.json, backend 'auto') trains on tensorflow through `ewtune train` and says why", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewtune-native-main-'));
    try {
      const raw = JSON.parse(readFileSync('examples/spam-assassin.json', 'utf8')) as { tracking?: object; $schema?: string; training: { backend: string } };
      assert.equal(raw.training.backend, 'auto');
      raw.tracking = { runDir: join(dir, 'runs') };
      raw.$schema = join(process.cwd(), 'schemas', 'config.schema.json');
      writeFileSync(join(dir, 'config.json'), JSON.stringify(raw));
      const env = { ...process.env };
      delete env.MLFLOW_TRACKING_URI;
      const child = spawn(process.execPath, ['bin/ewtune.mjs', 'train', join(dir, 'config.json'), '--max-steps', '2', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      assert.equal(code, 0, stderr);
      const r = JSON.parse(stdout) as RunResult;
      assert.equal(r.status, 'FINISHED');
      assert.equal(r.steps, 2);
      assert.match(stderr, /ewtune: backend tensorflow \(auto: @tensorflow\/tfjs-node/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('native TensorFlow backend on a GPU (tfjs-node-gpu)', function () {
  this.timeout(300_000);

  it('runs on the GPU when @tensorflow/tfjs-node-gpu is set up and a GPU is visible', async function () {
    const gpu = gpuVisible();
    const status = nativeStatus(true);
    if (!gpu.visible || !status.ready) {
      console.log(`      (GPU group skipped: ${!gpu.visible ? gpu.reason : status.reason})`);
      this.skip();
    }
    // A separate process: tfjs-node and tfjs-node-gpu cannot both register 'tensorflow' in one process.
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import * as tf from '@tensorflow/tfjs';
      import { chooseBackend } from './src/backend/index.ts';
      const c = await chooseBackend('auto');
      const y = tf.matMul(tf.ones([256, 256]), tf.ones([256, 256])).dataSync()[0];
      console.log(JSON.stringify({ ...c, y }));`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '--import=tsx' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, stderr);
    const r = JSON.parse(stdout.trim().split('\n').pop() as string) as { name: string; device: string; nativePackage: string; y: number };
    assert.equal(r.name, 'tensorflow');
    assert.equal(r.nativePackage, '@tensorflow/tfjs-node-gpu');
    assert.equal(r.device, 'gpu');
    assert.equal(r.y, 256);
  });
});
