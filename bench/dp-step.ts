/**
 * Cost of a DP-SGD step against a non-private step, on the WASM backend, side by side in one process
 * (`npm run bench:dp-step`).
 *
 * Models: (a) a 784-256-256-10 MLP (tfjs-layers Sequential), batch 32; (b) one transformer encoder block
 * (src/models/transformer.ts createTransformerBlockModel: d=128, 4 heads, T=64, FFN 512, 2 classes), batch 32.
 * Steps timed for each model in interleaved rounds (every variant once per round, so machine noise hits all of them
 * alike), median over the rounds after warm-up; every step ends with optimizer.applyGradients (SGD):
 *   - non-private, the same model written in tfjs-core ops on the model's own variables (checked to compute the same
 *     function): tf.variableGrads of the mean loss;
 *   - non-private through the tfjs-layers model (model.apply): the same, but tfjs-layers' LayerNormalization tiles
 *     γ/β/mean/variance to the input shape and tfjs-core's Tile gradient is a loop of Slice + Add over the
 *     repetitions (B·T of them), which makes this baseline very slow for the transformer; ratios therefore use
 *     the faster of the two non-private steps;
 *   - naive DP: computeClippedGradients with strategy 'naive' (per-example loop), mean of the clipped sum;
 *   - vectorised DP without noise: computeClippedGradients (strategy 'auto'), mean of the clipped sum;
 *   - vectorised DP with noise: the real dpStep (src/train/dp-step.ts) with the node:crypto Gaussian NoiseSource;
 *     its noise stage alone (privatiseGradient on a realised clipped sum) is shown as well.
 * Then the WASM fast-kernel speed-up of dpStep: fast vs stock kernels (setWasmFastKernels), alternating
 * A, B, A, B, ... step by step.
 *
 * Inputs are built deterministically (an LCG); the only randomness on the privacy path is the repo's node:crypto
 * noise source. Every tensor is disposed (checked at the end).
 *
 * Output: markdown tables, then as the last line
 *   `dp-step ratio transformer=<x> mlp=<y> wasm-speedup=<z>`
 * with x, y = (vectorised DP step with noise) / (faster non-private step of the same model) and z = stock / fast
 * time of the transformer's dpStep.
 *
 * Environment: DP_STEP_ROUNDS (default 11, at least 3) sets the number of timed rounds.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend, setWasmFastKernels, wasmFastKernelsEnabled } from '../src/backend/index.ts';
import { computeClippedGradients, resolveLoss } from '../src/dp/per-example/index.ts';
import type { ClippingStrategy } from '../src/dp/per-example/index.ts';
import { createNoiseSource } from '../src/dp/noise.ts';
import type { NoiseSource } from '../src/dp/noise.ts';
import { clippedGradientSum, dpStep, privatiseGradient } from '../src/train/dp-step.ts';
import { median } from './shared.ts';
import { buildMlp, checkSameFunction, mlpCoreForward, sync, timeOnce, transformerCoreForward } from './step-cases.ts';
import { createTransformerBlockModel } from '../src/models/transformer.ts';
import { uniformTensor } from '../test/support/deterministic.ts';

const BATCH = 32;
const L2_NORM_CLIP = 1;
const NOISE_MULTIPLIER = 1;
const LEARNING_RATE = 0.01;
const ROUNDS = Math.max(3, Number(process.env.DP_STEP_ROUNDS ?? 11));

interface Case {
  readonly key: 'mlp' | 'transformer';
  readonly label: string;
  readonly model: tf.LayersModel;
  readonly x: tf.Tensor;
  readonly y: tf.Tensor;
  /** The same model (same weight variables) written in tfjs-core ops: probabilities [B, classes]. */
  readonly coreForward: (x: tf.Tensor) => tf.Tensor;
  /** Naive (per-example loop) DP steps are slow: time them in one round out of `naiveEvery`. */
  readonly naiveEvery: number;
}

interface Variants {
  readonly layersNonPrivate: () => void;
  readonly coreNonPrivate: () => void;
  readonly naiveDp: () => void;
  readonly vectorisedDp: () => void;
  readonly dpWithNoise: () => Promise<unknown>;
  readonly privatise: () => void;
  readonly parameters: number;
  dispose(): void;
}

function makeVariants(c: Case, noise: NoiseSource): Variants {
  const loss = resolveLoss('sparseCategoricalCrossentropy');
  const vars = c.model.trainableWeights.map((w) => w.read() as tf.Variable);
  const parameters = vars.reduce((p, v) => p + v.size, 0);
  const optimizer = tf.train.sgd(LEARNING_RATE);
  const indices = Int32Array.from({ length: BATCH }, (_, i) => i);
  const data = { x: c.x, y: c.y };
  const options = {
    l2NormClip: L2_NORM_CLIP, loss: 'sparseCategoricalCrossentropy' as const, noiseMultiplier: NOISE_MULTIPLIER,
    expectedBatchSize: BATCH, noise, optimizer,
  };
  // A realised clipped sum (host arrays, no tensors held) to time the noise stage of dpStep on its own.
  const batchSum = clippedGradientSum(c.model, data, indices, options);

  const nonPrivate = (predict: (x: tf.Tensor) => tf.Tensor) => () => {
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => tf.mean(loss(c.y, predict(c.x))) as tf.Scalar, vars);
      optimizer.applyGradients(grads);
    });
    sync(vars[0]);
  };
  const clippedStep = (strategy: ClippingStrategy) => () => {
    const r = computeClippedGradients(c.model, c.x, c.y, { l2NormClip: L2_NORM_CLIP, loss: 'sparseCategoricalCrossentropy', strategy });
    try {
      tf.tidy(() => {
        const grads: tf.NamedTensorMap = {};
        for (const [name, sum] of r.clippedSum) grads[name] = tf.div(sum, BATCH);
        optimizer.applyGradients(grads);
      });
    } finally {
      tf.dispose([...r.clippedSum.values()]);
    }
    sync(vars[0]);
  };

  return {
    parameters,
    layersNonPrivate: nonPrivate((x) => c.model.apply(x, { training: false }) as tf.Tensor),
    coreNonPrivate: nonPrivate(c.coreForward),
    naiveDp: clippedStep('naive'),
    vectorisedDp: clippedStep('auto'),
    async dpWithNoise() {
      await dpStep(c.model, data, indices, options);
      sync(vars[0]);
    },
    privatise() {
      tf.dispose(privatiseGradient(batchSum, options));
    },
    dispose() {
      optimizer.dispose();
    },
  };
}

interface CaseResult {
  readonly parameters: number;
  readonly layersNonPrivate: number;
  readonly coreNonPrivate: number;
  readonly naiveDp: number;
  readonly vectorisedDp: number;
  readonly dpWithNoise: number;
  readonly privatise: number;
  readonly samples: { main: number; naive: number };
}

async function measureCase(c: Case, noise: NoiseSource): Promise<CaseResult> {
  checkSameFunction(c);
  const v = makeVariants(c, noise);
  try {
    // Warm-up: every variant twice (kernel setup, wasm memory growth), the naive loop once.
    for (let k = 0; k < 2; k++) {
      v.layersNonPrivate();
      v.coreNonPrivate();
      v.vectorisedDp();
      await v.dpWithNoise();
      v.privatise();
    }
    v.naiveDp();
    const t = {
      layersNonPrivate: [] as number[], coreNonPrivate: [] as number[], naiveDp: [] as number[], vectorisedDp: [] as number[],
      dpWithNoise: [] as number[], privatise: [] as number[],
    };
    for (let round = 0; round < ROUNDS; round++) {
      t.coreNonPrivate.push(await timeOnce(v.coreNonPrivate));
      t.layersNonPrivate.push(await timeOnce(v.layersNonPrivate));
      t.vectorisedDp.push(await timeOnce(v.vectorisedDp));
      t.dpWithNoise.push(await timeOnce(v.dpWithNoise));
      t.privatise.push(await timeOnce(v.privatise));
      if (round % c.naiveEvery === 0) t.naiveDp.push(await timeOnce(v.naiveDp));
    }
    return {
      parameters: v.parameters,
      layersNonPrivate: median(t.layersNonPrivate),
      coreNonPrivate: median(t.coreNonPrivate),
      naiveDp: median(t.naiveDp),
      vectorisedDp: median(t.vectorisedDp),
      dpWithNoise: median(t.dpWithNoise),
      privatise: median(t.privatise),
      samples: { main: ROUNDS, naive: t.naiveDp.length },
    };
  } finally {
    v.dispose();
  }
}

/** dpStep with fast vs stock wasm kernels, alternating A, B, A, B, ... (median of each). */
interface Speedup { fast: number; stock: number; nonPrivateFast: number; nonPrivateStock: number }

async function measureSpeedup(c: Case, noise: NoiseSource, pairs: number): Promise<Speedup> {
  const v = makeVariants(c, noise);
  const fast: number[] = [];
  const stock: number[] = [];
  const npFast: number[] = [];
  const npStock: number[] = [];
  try {
    for (const enable of [true, false]) {
      setWasmFastKernels(enable);
      await v.dpWithNoise(); // warm-up with each kernel set
      v.coreNonPrivate();
    }
    for (let k = 0; k < pairs; k++) {
      setWasmFastKernels(true);
      fast.push(await timeOnce(v.dpWithNoise));
      npFast.push(await timeOnce(v.coreNonPrivate));
      setWasmFastKernels(false);
      stock.push(await timeOnce(v.dpWithNoise));
      npStock.push(await timeOnce(v.coreNonPrivate));
    }
  } finally {
    setWasmFastKernels(true);
    v.dispose();
  }
  return { fast: median(fast), stock: median(stock), nonPrivateFast: median(npFast), nonPrivateStock: median(npStock) };
}

const ms = (t: number) => `${t < 10 ? t.toFixed(2) : t.toFixed(1)} ms`;
const ratio = (t: number, base: number) => `×${(t / base).toFixed(2)}`;

async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  if (backend !== 'wasm' || !wasmFastKernelsEnabled()) throw new Error(`expected wasm with fast kernels, got ${backend}`);
  const tensorsAtStart = tf.memory().numTensors;
  const noise = createNoiseSource('gaussian');
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  console.log(`backend ${backend} (1 thread, fast kernels), tfjs ${tf.version.tfjs}, node ${process.version}, ${cpu}, `
    + `${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`batch ${BATCH}, C=${L2_NORM_CLIP}, σ=${NOISE_MULTIPLIER}, SGD; noise: ${noise.describe().generator}; `
    + `${ROUNDS} interleaved rounds`);

  const mlpModel = buildMlp();
  const blockModel = createTransformerBlockModel({ sequenceLength: 64, modelDim: 128, numHeads: 4, ffnDim: 512, numClasses: 2 });
  const cases: Case[] = [
    {
      key: 'mlp', label: 'MLP 784-256-256-10', model: mlpModel, coreForward: mlpCoreForward(mlpModel),
      x: uniformTensor([BATCH, 784], 1), y: tf.tensor1d(Array.from({ length: BATCH }, (_, i) => i % 10), 'int32'),
      naiveEvery: 1,
    },
    {
      key: 'transformer', label: 'Transformer block d=128 h=4 T=64 FFN 512', model: blockModel,
      coreForward: transformerCoreForward(blockModel, 4),
      x: uniformTensor([BATCH, 64, 128], 2, Math.sqrt(3)), y: tf.tensor1d(Array.from({ length: BATCH }, (_, i) => i % 2), 'int32'),
      naiveEvery: 2,
    },
  ];

  const results = new Map<Case['key'], CaseResult>();
  const speedups = new Map<Case['key'], Speedup>();
  const t0 = performance.now();
  const progress = (what: string) => console.error(`  ${what} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  for (const c of cases) {
    results.set(c.key, await measureCase(c, noise));
    progress(`${c.key}: step timings done`);
    speedups.set(c.key, await measureSpeedup(c, noise, ROUNDS));
    progress(`${c.key}: fast/stock kernels done`);
  }
  for (const c of cases) {
    c.model.dispose();
    c.x.dispose();
    c.y.dispose();
  }
  const leaked = tf.memory().numTensors - tensorsAtStart;

  const mlp = results.get('mlp')!;
  const tr = results.get('transformer')!;
  // Ratios are against the faster of the two non-private implementations of the same model (the conservative choice).
  const base = (r: CaseResult) => Math.min(r.coreNonPrivate, r.layersNonPrivate);
  const row = (label: string, pick: (r: CaseResult) => number) =>
    `| ${label} | ${ms(pick(mlp))} | ${ratio(pick(mlp), base(mlp))} | ${ms(pick(tr))} | ${ratio(pick(tr), base(tr))} |`;
  const params = (r: CaseResult) => r.parameters.toLocaleString('en-US');
  console.log('');
  console.log(`| one training step, WASM (1 thread, fast kernels), batch ${BATCH} | ${cases[0].label}, ${params(mlp)} params | ratio | `
    + `${cases[1].label}, ${params(tr)} params | ratio |`);
  console.log('|---|---:|---:|---:|---:|');
  console.log(row('non-private, same model in tfjs-core ops (tf.variableGrads + applyGradients)', (r) => r.coreNonPrivate));
  console.log(row('non-private, tfjs-layers model.apply (tf.variableGrads + applyGradients)', (r) => r.layersNonPrivate));
  console.log(row('DP, naive per-example loop, no noise', (r) => r.naiveDp));
  console.log(row('DP, vectorised, no noise', (r) => r.vectorisedDp));
  console.log(row('**DP, vectorised + noise (dpStep)**', (r) => r.dpWithNoise));
  console.log(row('&nbsp;&nbsp;of which noise: node:crypto Gaussian in float64, ÷B, upload', (r) => r.privatise));
  console.log('');
  const mlpS = speedups.get('mlp')!;
  const trS = speedups.get('transformer')!;
  console.log('| training step, WASM, batch 32 | stock kernels | fast kernels | speed-up |');
  console.log('|---|---:|---:|---:|');
  for (const [label, sp] of [[cases[0].label, mlpS], [cases[1].label, trS]] as const) {
    console.log(`| ${label}: DP step (dpStep, with noise) | ${ms(sp.stock)} | ${ms(sp.fast)} | ×${(sp.stock / sp.fast).toFixed(2)} |`);
    console.log(`| ${label}: non-private step (core ops) | ${ms(sp.nonPrivateStock)} | ${ms(sp.nonPrivateFast)} | ×${(sp.nonPrivateStock / sp.nonPrivateFast).toFixed(2)} |`);
  }
  console.log('');
  console.log(`Ratios: time / the faster non-private step of the same model. Medians of ${ROUNDS} interleaved rounds `
    + `(naive loop: ${mlp.samples.naive} MLP, ${tr.samples.naive} transformer) after warm-up; fast/stock kernels `
    + `alternated step by step (${ROUNDS} pairs; wasm-speedup below = the transformer DP step's). Leaked tensors: ${leaked}. Total ${((performance.now() - t0) / 1000).toFixed(0)} s.`);
  if (leaked !== 0) console.log(`WARNING: ${leaked} tensors not disposed`);
  console.log(`dp-step ratio transformer=${(tr.dpWithNoise / base(tr)).toFixed(2)} mlp=${(mlp.dpWithNoise / base(mlp)).toFixed(2)} `
    + `wasm-speedup=${(trS.stock / trS.fast).toFixed(2)}`);
}

await main();
