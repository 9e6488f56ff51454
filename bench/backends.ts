/**
 * The same training steps on the native TensorFlow, WASM and pure-JS cpu backends, side by side in one process
 * (`npm run bench:backends`).
 *
 * Models (bench/step-cases.ts, as bench:dp-step): the 784-256-256-10 MLP and one transformer encoder block (d=128,
 * 4 heads, T=64, FFN 512), batch 32, SGD. Each backend gets its own copy of each model (built while that backend is
 * active), and the rounds interleave the backends (every backend, every step kind, once per round; the cpu backend in
 * fewer rounds), so machine noise hits all of them alike. Step kinds, each ending in optimizer.applyGradients:
 *   - non-private: tf.variableGrads of the mean loss, through the tfjs-core-ops forward pass and through
 *     model.apply; the ratio baseline is the faster of the two (as bench:dp-step);
 *   - DP without noise: computeClippedGradients (strategy 'auto': batched per-example rules, no per-example loop);
 *   - DP: the real dpStep (src/train/dp-step.ts) with the node:crypto Gaussian NoiseSource, and its noise stage
 *     alone (privatiseGradient on a realised clipped sum).
 *
 * Fails (exit 1, one line saying what to run) when the native backend is not set up. Last line:
 *   `backends transformer-dp tensorflow-vs-wasm=<x> dp-ratio-tensorflow=<y> mlp-dp tensorflow-vs-wasm=<z>`
 * x, z = wasm dpStep time / tensorflow dpStep time; y = tensorflow dpStep time / faster tensorflow non-private step,
 * both of the transformer block.
 *
 * The pre-trained MiniLM encoder (the main job's model, examples/minilm-polarity.json: top-2 layers + head, T 48, the
 * frozen bottom cached) runs as bench/finetune-run.ts's step-timing job — a real dpStep and a non-private Adam step on
 * one fixed batch of 32 real sentences, interleaved — in one child process per backend (tensorflow, then wasm; not
 * cpu: minutes per step), after the table above, in the same run. Needs the fetched model and corpus; skipped with
 * a line saying so when they are missing (BACKENDS_MINILM=0 skips it on purpose).
 *
 * Environment: BACKENDS_ROUNDS (default 9, at least 3) timed rounds for tensorflow and wasm; BACKENDS_CPU_ROUNDS
 * (default 2, 0 skips cpu) for the cpu backend, which runs only the core-ops non-private step and dpStep;
 * BACKENDS_MINILM_ROUNDS (default 5) for the MiniLM rows.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { chooseBackend, wasmFastKernelsEnabled } from '../src/backend/index.ts';
import { cacheDir } from '../src/cache.ts';
import { computeClippedGradients } from '../src/dp/per-example/index.ts';
import { createNoiseSource } from '../src/dp/noise.ts';
import type { NoiseSource } from '../src/dp/noise.ts';
import { clippedGradientSum, dpStep, privatiseGradient } from '../src/train/dp-step.ts';
import { resolveLoss } from '../src/dp/per-example/index.ts';
import { readExample, runFinetuneJob } from './finetune-job.ts';
import type { FinetuneJobResult } from './finetune-run.ts';
import { median } from './shared.ts';
import { checkSameFunction, mlpCase, sync, timeOnce, transformerCase, type StepCase } from './step-cases.ts';

const BATCH = 32;
const L2_NORM_CLIP = 1;
const NOISE_MULTIPLIER = 1;
const LEARNING_RATE = 0.01;
const ROUNDS = Math.max(3, Number(process.env.BACKENDS_ROUNDS ?? 9));
const CPU_ROUNDS = Math.max(0, Number(process.env.BACKENDS_CPU_ROUNDS ?? 2));

type BackendName = 'tensorflow' | 'wasm' | 'cpu';
const KINDS = ['coreNonPrivate', 'layersNonPrivate', 'clippedNoNoise', 'dpStep', 'noiseStage'] as const;
type Kind = (typeof KINDS)[number];
/** The step kinds the (slow) cpu backend runs. */
const CPU_KINDS: readonly Kind[] = ['coreNonPrivate', 'dpStep'];

/**
 * The cases, each built on the active backend (in-process, interleaved). The MiniLM encoder is measured apart, in
 * child processes (minilmRows): its data loading and bottom cache are the real ewtune-train path.
 */
const CASES: ReadonlyArray<{ readonly factory: (batch: number) => StepCase; readonly cpu: boolean }> = [
  { factory: transformerCase, cpu: true },
  { factory: mlpCase, cpu: true },
];

type Steps = Record<Kind, () => void | Promise<unknown>>;

function makeSteps(c: StepCase, noise: NoiseSource): { steps: Steps; parameters: number; fallbackLayers: string[]; dispose(): void } {
  const loss = resolveLoss('sparseCategoricalCrossentropy');
  const vars = c.model.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer = tf.train.sgd(LEARNING_RATE);
  const indices = Int32Array.from({ length: BATCH }, (_, i) => i);
  const data = { x: c.x, y: c.y };
  const options = {
    l2NormClip: L2_NORM_CLIP, loss: 'sparseCategoricalCrossentropy' as const, noiseMultiplier: NOISE_MULTIPLIER,
    expectedBatchSize: BATCH, noise, optimizer,
  };
  const batchSum = clippedGradientSum(c.model, data, indices, options);
  const nonPrivate = (predict: (x: tf.Tensor) => tf.Tensor) => () => {
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => tf.mean(loss(c.y, predict(c.x))) as tf.Scalar, vars);
      optimizer.applyGradients(grads);
    });
    sync(vars[0]);
  };
  const steps: Steps = {
    coreNonPrivate: nonPrivate(c.coreForward),
    layersNonPrivate: nonPrivate((x) => c.model.apply(x, { training: false }) as tf.Tensor),
    clippedNoNoise() {
      const r = computeClippedGradients(c.model, c.x, c.y, { l2NormClip: L2_NORM_CLIP, loss: 'sparseCategoricalCrossentropy' });
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
    },
    async dpStep() {
      await dpStep(c.model, data, indices, options);
      sync(vars[0]);
    },
    noiseStage() {
      tf.dispose(privatiseGradient(batchSum, options));
    },
  };
  return {
    steps, parameters: vars.reduce((p, v) => p + v.size, 0), fallbackLayers: batchSum.fallbackLayers,
    dispose: () => optimizer.dispose(),
  };
}

interface BackendState {
  readonly name: BackendName;
  readonly reason: string;
  readonly rounds: number;
  readonly kinds: readonly Kind[];
  readonly cases: Array<{ c: StepCase; s: ReturnType<typeof makeSteps> }>;
  readonly times: Map<string, number[]>;
}

async function activate(name: BackendName): Promise<string> {
  const choice = await chooseBackend(name);
  if (choice.name !== name) throw new Error(`asked for ${name}, got ${choice.name}`);
  if (name === 'wasm' && !wasmFastKernelsEnabled()) throw new Error('wasm without fast kernels');
  return choice.reason;
}

const MINILM_BATCH = 32;
const MINILM_ROUNDS = Math.max(3, Number(process.env.BACKENDS_MINILM_ROUNDS ?? 5));

/** The MiniLM step-timing job on one backend, in a child process (bench/finetune-run.ts). */
async function minilmStepTiming(backend: 'tensorflow' | 'wasm'): Promise<FinetuneJobResult> {
  const config: Record<string, unknown> = readExample('minilm-polarity.json');
  config.name = `bench-backends-minilm-${backend}`;
  // 400 sentences are enough to draw one batch of 32 from; the bottom cache is built for them only.
  config.data = { ...(config.data as object), maxExamples: 400 };
  config.training = { ...(config.training as object), backend, expectedBatchSize: MINILM_BATCH };
  const r = await runFinetuneJob({ kind: 'step-timing', config, rounds: MINILM_ROUNDS }, `MiniLM step timing on ${backend}`, { env: { MLFLOW_TRACKING_URI: '' } });
  console.error(`  MiniLM on ${backend}: DP ${r.dpStepMs?.toFixed(0)} ms, non-private ${r.nonPrivateStepMs?.toFixed(0)} ms`);
  return r;
}

/** The MiniLM rows (one child process per backend); NaN ratio when skipped. */
async function minilmRows(): Promise<number> {
  if (process.env.BACKENDS_MINILM === '0') { console.log('MiniLM rows skipped (BACKENDS_MINILM=0).'); return Number.NaN; }
  if (!existsSync(cacheDir('models')) || !existsSync(cacheDir('data'))) {
    console.log('MiniLM rows skipped: run `npx ewtune models fetch minilm && npx ewtune data fetch polarity` first.');
    return Number.NaN;
  }
  const t = await minilmStepTiming('tensorflow');
  const w = await minilmStepTiming('wasm');
  const row = (label: string, key: 'dpStepMs' | 'nonPrivateStepMs') => {
    const [a, b] = [t[key] as number, w[key] as number];
    console.log(`| ${label} | ${ms(a)} | ${ms(b)} | — | ×${(b / a).toFixed(1)} | — |`);
  };
  console.log('');
  console.log(`| MiniLM (main job's model), batch ${MINILM_BATCH}, median step | tensorflow | wasm (1 thread, fast kernels) | cpu | tensorflow vs wasm | tensorflow vs cpu |`);
  console.log('|---|---:|---:|---:|---:|---:|');
  console.log(`| *all-MiniLM-L6-v2 top-2 layers + head, T 48, ${(t.trainableParams ?? 0).toLocaleString('en-US')} params, Adam* | | | | | |`);
  row('non-private step (tf.variableGrads of the mean loss)', 'nonPrivateStepMs');
  row('**DP step (dpStep, clipping + node:crypto noise)**', 'dpStepMs');
  console.log(`| DP step / non-private step | ${((t.dpStepMs as number) / (t.nonPrivateStepMs as number)).toFixed(2)} | ${((w.dpStepMs as number) / (w.nonPrivateStepMs as number)).toFixed(2)} | — | | |`);
  console.log(`Medians of ${MINILM_ROUNDS} interleaved DP / non-private rounds per backend, one child process each (cpu not run: minutes per step).`);
  return (w.dpStepMs as number) / (t.dpStepMs as number);
}

const ms = (t: number) => (Number.isNaN(t) ? '—' : `${t < 10 ? t.toFixed(2) : t.toFixed(1)} ms`);

async function main(): Promise<void> {
  // The native backend must be set up: one line saying what to run, exit 1.
  let nativeReason: string;
  try {
    nativeReason = await activate('tensorflow');
  } catch (err) {
    console.error(`bench:backends: the native TensorFlow backend is not set up (${(err as Error).message.split('\n')[0]}); run \`npm run setup:native\``);
    process.exit(1);
  }
  const noise = createNoiseSource('gaussian');
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  const binding = (tf.backend() as unknown as { binding?: { TF_Version?: string } }).binding;
  console.log(`tfjs ${tf.version.tfjs}, libtensorflow ${binding?.TF_Version ?? '?'} (${nativeReason}), node ${process.version}, ${cpu}, `
    + `${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`batch ${BATCH}, C=${L2_NORM_CLIP}, σ=${NOISE_MULTIPLIER}, SGD; noise: ${noise.describe().generator}; `
    + `${ROUNDS} interleaved rounds (cpu: ${CPU_ROUNDS})`);

  const backends: BackendName[] = CPU_ROUNDS > 0 ? ['tensorflow', 'wasm', 'cpu'] : ['tensorflow', 'wasm'];
  const states: BackendState[] = [];
  // tf.memory() counts the tensors of every backend: one count before anything is built, one after all is disposed.
  const tensorsAtStart = tf.memory().numTensors;
  for (const name of backends) {
    const reason = await activate(name);
    const cases = CASES.filter((k) => name !== 'cpu' || k.cpu).map(({ factory }) => {
      const c = factory(BATCH);
      checkSameFunction(c);
      return { c, s: makeSteps(c, noise) };
    });
    const kinds = name === 'cpu' ? CPU_KINDS : KINDS;
    // Warm-up: every step kind once (twice on the fast backends: kernel setup, memory growth).
    for (let k = 0; k < (name === 'cpu' ? 1 : 2); k++) {
      for (const { s } of cases) for (const kind of kinds) await s.steps[kind]();
    }
    states.push({ name, reason, rounds: name === 'cpu' ? CPU_ROUNDS : ROUNDS, kinds, cases, times: new Map() });
    console.error(`  ${name}: built and warmed up (${reason})`);
  }

  const t0 = performance.now();
  for (let round = 0; round < ROUNDS; round++) {
    for (const st of states) {
      if (round >= st.rounds) continue;
      await activate(st.name);
      for (const { c, s } of st.cases) {
        for (const kind of st.kinds) {
          const key = `${c.key}/${kind}`;
          const list = st.times.get(key) ?? [];
          list.push(await timeOnce(s.steps[kind]));
          st.times.set(key, list);
        }
      }
    }
    console.error(`  round ${round + 1}/${ROUNDS} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }

  for (const st of states) {
    await activate(st.name);
    for (const { c, s } of st.cases) {
      s.dispose();
      c.model.dispose();
      c.x.dispose();
      c.y.dispose();
    }
  }
  const leaked = tf.memory().numTensors - tensorsAtStart;

  const med = (b: BackendName, key: string, kind: Kind) => median(states.find((s) => s.name === b)?.times.get(`${key}/${kind}`) ?? []);
  const base = (b: BackendName, key: string) => Math.min(med(b, key, 'coreNonPrivate'), med(b, key, 'layersNonPrivate') || Infinity);
  const labels: Record<Kind, string> = {
    coreNonPrivate: 'non-private, tfjs-core ops',
    layersNonPrivate: 'non-private, tfjs-layers model.apply',
    clippedNoNoise: 'DP, batched per-example clipping, no noise',
    dpStep: '**DP step (dpStep, clipping + node:crypto noise)**',
    noiseStage: '&nbsp;&nbsp;of which noise (privatiseGradient)',
  };
  const tfState = states[0];
  console.log('');
  console.log(`| batch ${BATCH}, median step | tensorflow | wasm (1 thread, fast kernels) | cpu | tensorflow vs wasm | tensorflow vs cpu |`);
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const { c, s } of tfState.cases) {
    console.log(`| *${c.label}, ${s.parameters.toLocaleString('en-US')} params* | | | | | |`);
    for (const kind of KINDS) {
      const [t, w, p] = (['tensorflow', 'wasm', 'cpu'] as const).map((b) => med(b, c.key, kind));
      const x = (a: number) => (Number.isNaN(a) ? '—' : `×${(a / t).toFixed(1)}`);
      console.log(`| ${labels[kind]} | ${ms(t)} | ${ms(w)} | ${ms(p)} | ${x(w)} | ${x(p)} |`);
    }
    const ratio = (b: BackendName) => (med(b, c.key, 'dpStep') / base(b, c.key)).toFixed(2);
    console.log(`| DP step / faster non-private step | ${ratio('tensorflow')} | ${ratio('wasm')} | ${CPU_ROUNDS > 0 ? ratio('cpu') : '—'} | | |`);
    if (s.fallbackLayers.length > 0) console.log(`| (per-example loop fallback for: ${s.fallbackLayers.join(', ')}) | | | | | |`);
  }
  console.log('');
  console.log(`Medians of ${ROUNDS} interleaved rounds (cpu: ${CPU_ROUNDS}; cpu runs the core-ops non-private step and dpStep only) `
    + `after warm-up. Leaked tensors: ${leaked}. Timed part ${((performance.now() - t0) / 1000).toFixed(0)} s.`);
  const minilm = await minilmRows();
  const tr = (b: BackendName) => med(b, 'transformer', 'dpStep');
  const mlp = (b: BackendName) => med(b, 'mlp', 'dpStep');
  console.log(`backends transformer-dp tensorflow-vs-wasm=${(tr('wasm') / tr('tensorflow')).toFixed(2)} `
    + `dp-ratio-tensorflow=${(tr('tensorflow') / base('tensorflow', 'transformer')).toFixed(2)} `
    + `mlp-dp tensorflow-vs-wasm=${(mlp('wasm') / mlp('tensorflow')).toFixed(2)}`
    + (Number.isNaN(minilm) ? '' : ` minilm-dp tensorflow-vs-wasm=${minilm.toFixed(2)}`));
}

await main();
