/**
 * Stock vs fast wasm kernels, side by side in one process (`npx tsx bench/wasm-kernels.ts`).
 *
 * Prints GFLOP/s of 2-D, transposed and batched matmuls, and the time of one training step
 * (tf.variableGrads + optimizer.applyGradients) of a 784-256-256-10 MLP (batch 32) and of a transformer-encoder
 * block built from core ops (d=128, 4 heads, T=64, FFN 512, batch 32), with the stock kernels and with the fast
 * ones, alternating so both see the same machine state. Last line (machine-readable):
 * `wasm-kernels speedup mlp=<x> transformer=<y>`.
 *
 * The step builders are exported for bench/dp-step.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, setWasmFastKernels } from '../src/backend/index.ts';

/** A training step to time; `dispose` frees its variables. */
export interface TrainingStep {
  readonly name: string;
  step(): void;
  dispose(): void;
}

function glorot(shape: number[], seed: number): tf.Variable {
  const fanIn = shape[0];
  const fanOut = shape[shape.length - 1];
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return tf.variable(tf.randomUniform(shape, -limit, limit, 'float32', seed));
}

/** One SGD step of a 784-256-256-10 MLP with softmax cross-entropy on a fixed batch. */
export function buildMlpStep(batchSize = 32): TrainingStep {
  const w1 = glorot([784, 256], 1);
  const b1 = tf.variable(tf.zeros([256]));
  const w2 = glorot([256, 256], 2);
  const b2 = tf.variable(tf.zeros([256]));
  const w3 = glorot([256, 10], 3);
  const b3 = tf.variable(tf.zeros([10]));
  const x = tf.randomNormal([batchSize, 784], 0, 1, 'float32', 4);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: batchSize }, (_, i) => i % 10), 'int32'), 10);
  const optimizer = tf.train.sgd(0.01);
  const vars = [w1, b1, w2, b2, w3, b3];
  return {
    name: 'mlp 784-256-256-10 b32',
    step() {
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => {
          const h1 = tf.relu(tf.add(tf.matMul(x, w1), b1));
          const h2 = tf.relu(tf.add(tf.matMul(h1, w2), b2));
          const logits = tf.add(tf.matMul(h2, w3), b3);
          return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
        }, vars);
        optimizer.applyGradients(grads);
      });
    },
    dispose() {
      for (const v of vars) v.dispose();
      x.dispose();
      y.dispose();
      optimizer.dispose();
    },
  };
}

function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), gamma), beta);
}

/**
 * One SGD step of a post-LN transformer encoder block from core ops: multi-head self-attention (4 heads) and a
 * ReLU FFN, Dense layers as 2-D products on [B·T, d] (as tfjs-layers Dense does on 3-D input), a mean-pooled
 * 2-class head, softmax cross-entropy.
 */
export function buildTransformerStep(batchSize = 32, seqLen = 64, dModel = 128, heads = 4, ffn = 512): TrainingStep {
  const dHead = dModel / heads;
  const wq = glorot([dModel, dModel], 11);
  const wk = glorot([dModel, dModel], 12);
  const wv = glorot([dModel, dModel], 13);
  const wo = glorot([dModel, dModel], 14);
  const w1 = glorot([dModel, ffn], 15);
  const b1 = tf.variable(tf.zeros([ffn]));
  const w2 = glorot([ffn, dModel], 16);
  const b2 = tf.variable(tf.zeros([dModel]));
  const g1 = tf.variable(tf.ones([dModel]));
  const be1 = tf.variable(tf.zeros([dModel]));
  const g2 = tf.variable(tf.ones([dModel]));
  const be2 = tf.variable(tf.zeros([dModel]));
  const wc = glorot([dModel, 2], 17);
  const vars = [wq, wk, wv, wo, w1, b1, w2, b2, g1, be1, g2, be2, wc];
  const x = tf.randomNormal([batchSize, seqLen, dModel], 0, 1, 'float32', 18);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: batchSize }, (_, i) => i % 2), 'int32'), 2);
  const optimizer = tf.train.sgd(0.01);
  const rows = batchSize * seqLen;
  const splitHeads = (t: tf.Tensor) =>
    tf.reshape(tf.transpose(tf.reshape(t, [batchSize, seqLen, heads, dHead]), [0, 2, 1, 3]), [batchSize * heads, seqLen, dHead]);
  return {
    name: `transformer block d=${dModel} h=${heads} T=${seqLen} ffn=${ffn} b${batchSize}`,
    step() {
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => {
          const x2 = tf.reshape(x, [rows, dModel]);
          const q = splitHeads(tf.matMul(x2, wq));
          const k = splitHeads(tf.matMul(x2, wk));
          const v = splitHeads(tf.matMul(x2, wv));
          const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dHead));
          const context = tf.matMul(tf.softmax(scores), v); // [B·H, T, dh]
          const merged = tf.reshape(tf.transpose(tf.reshape(context, [batchSize, heads, seqLen, dHead]), [0, 2, 1, 3]), [rows, dModel]);
          const h = layerNorm(tf.add(x2, tf.matMul(merged, wo)), g1, be1);
          const f = tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(h, w1), b1)), w2), b2);
          const out = layerNorm(tf.add(h, f), g2, be2);
          const pooled = tf.mean(tf.reshape(out, [batchSize, seqLen, dModel]), 1);
          return tf.losses.softmaxCrossEntropy(y, tf.matMul(pooled, wc)) as tf.Scalar;
        }, vars);
        optimizer.applyGradients(grads);
      });
    },
    dispose() {
      for (const v of vars) v.dispose();
      x.dispose();
      y.dispose();
      optimizer.dispose();
    },
  };
}

/** Median wall time (ms) of `fn` over `repeats` runs after `warmup` runs; `fn` must block until done. */
export function medianMs(fn: () => void, repeats: number, warmup = 2): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((p, q) => p - q);
  return times[Math.floor(times.length / 2)];
}

/** Time a step with stock and with fast kernels (interleaved rounds); returns median ms of each. */
export function compareStep(step: TrainingStep, repeats: number): { stockMs: number; fastMs: number } {
  const run = () => {
    step.step();
    // Reading one value forces completion on any backend.
    tf.tidy(() => tf.zeros([1])).dataSync();
  };
  const stock: number[] = [];
  const fast: number[] = [];
  for (let round = 0; round < 3; round++) {
    setWasmFastKernels(false);
    stock.push(medianMs(run, repeats, 1));
    setWasmFastKernels(true);
    fast.push(medianMs(run, repeats, 1));
  }
  stock.sort((p, q) => p - q);
  fast.sort((p, q) => p - q);
  return { stockMs: stock[1], fastMs: fast[1] };
}

function matmulGflops(label: string, a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean, flops: number): string {
  const run = () => {
    const r = tf.matMul(a, b, transposeA, transposeB);
    r.dataSync();
    r.dispose();
  };
  setWasmFastKernels(false);
  const stockMs = medianMs(run, 5);
  setWasmFastKernels(true);
  const fastMs = medianMs(run, 5);
  const g = (ms: number) => (flops / ms / 1e6).toFixed(2);
  return `${label.padEnd(44)} stock ${g(stockMs).padStart(6)} GFLOP/s  fast ${g(fastMs).padStart(6)} GFLOP/s  ×${(stockMs / fastMs).toFixed(1)}`;
}

async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  console.log(`backend ${backend}, tfjs ${tf.version.tfjs}, one thread`);
  const n = 256;
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
  const f2 = 2 * n * n * n;
  console.log(matmulGflops('2-D 256×256·256×256', a, b, false, false, f2));
  console.log(matmulGflops('2-D transposeA (weight grad form)', a, b, true, false, f2));
  console.log(matmulGflops('2-D transposeB (input grad form)', a, b, false, true, f2));
  const xa = tf.randomNormal([2048, 128], 0, 1, 'float32', 3);
  const dy = tf.randomNormal([2048, 512], 0, 1, 'float32', 4);
  console.log(matmulGflops('Xᵀ·dY 128×2048·2048×512', xa, dy, true, false, 2 * 2048 * 128 * 512));
  const q = tf.randomNormal([128, 64, 32], 0, 1, 'float32', 5);
  const k = tf.randomNormal([128, 64, 32], 0, 1, 'float32', 6);
  console.log(matmulGflops('batched Q·Kᵀ [128,64,32]·[128,64,32]ᵀ', q, k, false, true, 2 * 128 * 64 * 64 * 32));
  const p = tf.randomNormal([128, 64, 64], 0, 1, 'float32', 7);
  console.log(matmulGflops('batched P·V [128,64,64]·[128,64,32]', p, k, false, false, 2 * 128 * 64 * 64 * 32));
  console.log(matmulGflops('batched Pᵀ·dC [128,64,64]ᵀ·[128,64,32]', p, k, true, false, 2 * 128 * 64 * 64 * 32));
  for (const t of [a, b, xa, dy, q, k, p]) t.dispose();

  const mlp = buildMlpStep();
  const mlpTimes = compareStep(mlp, 5);
  mlp.dispose();
  console.log(`${'train step ' + mlp.name}`.padEnd(60), `stock ${mlpTimes.stockMs.toFixed(1)} ms  fast ${mlpTimes.fastMs.toFixed(1)} ms  ×${(mlpTimes.stockMs / mlpTimes.fastMs).toFixed(2)}`);
  const block = buildTransformerStep();
  const blockTimes = compareStep(block, 3);
  block.dispose();
  console.log(`${'train step ' + block.name}`.padEnd(60), `stock ${blockTimes.stockMs.toFixed(1)} ms  fast ${blockTimes.fastMs.toFixed(1)} ms  ×${(blockTimes.stockMs / blockTimes.fastMs).toFixed(2)}`);
  console.log(`wasm-kernels speedup mlp=${(mlpTimes.stockMs / mlpTimes.fastMs).toFixed(2)} transformer=${(blockTimes.stockMs / blockTimes.fastMs).toFixed(2)}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
}
