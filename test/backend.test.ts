/**
 * Backend selection and the fast wasm kernels (src/backend). Every fast-kernel result is compared with the pure-JS
 * cpu backend (an independent implementation) on inputs from the seeded test stream; tolerance: max |fast − cpu|
 * ≤ 1e-4 · max |cpu| (float32 products with K ≤ 300 differ by ~1e-6 relative from summation order alone).
 * The first block fails loudly if the tfjs-backend-wasm internals the kernels rely on change.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { EwtuneError, InvalidArgumentError } from '../src/errors.ts';
import { createInsecureSeededRandom } from '../src/dp/csprng.ts';
import {
  checkWasmInternals, initBackend, setWasmFastKernels, WASM_KERNELS_TFJS_VERSION, wasmFastKernelsEnabled,
} from '../src/backend/index.ts';

const random = createInsecureSeededRandom('backend-test', { insecure: true });
function values(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * random.uniform() - 1);
}
function sizeOf(shape: number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

/** Run `f` on cpu and on wasm with fast kernels (same input data) and compare. */
async function compareWithCpu(label: string, inputs: Array<{ shape: number[]; dtype?: 'float32' | 'int32' }>,
  f: (...xs: tf.Tensor[]) => tf.Tensor, referenceF: (...xs: tf.Tensor[]) => tf.Tensor = f): Promise<void> {
  const data = inputs.map(({ shape, dtype }) => dtype === 'int32'
    ? Int32Array.from(values(sizeOf(shape)), (v) => Math.round(v * 1000)) : values(sizeOf(shape)));
  const run = (g: (...xs: tf.Tensor[]) => tf.Tensor) => tf.tidy(() => {
    const xs = inputs.map(({ shape, dtype }, i) => tf.tensor(data[i], shape, dtype ?? 'float32'));
    const r = g(...xs);
    return { shape: r.shape, values: r.dataSync().slice() };
  });
  await tf.setBackend('cpu');
  let reference;
  try {
    reference = run(referenceF);
  } finally {
    await tf.setBackend('wasm');
  }
  assert.ok(wasmFastKernelsEnabled());
  const fast = run(f);
  assert.deepEqual(fast.shape, reference.shape, `${label}: shape`);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < reference.values.length; i++) {
    scale = Math.max(scale, Math.abs(reference.values[i]));
    diff = Math.max(diff, Math.abs(reference.values[i] - fast.values[i]));
  }
  assert.ok(diff <= 1e-4 * Math.max(scale, 1e-30), `${label}: max diff ${diff} vs scale ${scale}`);
}

describe('backend: wasm fast kernels', function () {
  this.timeout(120_000);

  let listenersBefore = 0;
  let listenersAfter = 0;
  before(async () => {
    listenersBefore = process.listenerCount('uncaughtException') + process.listenerCount('unhandledRejection');
    assert.equal(await initBackend('wasm'), 'wasm');
    listenersAfter = process.listenerCount('uncaughtException') + process.listenerCount('unhandledRejection');
  });

  after(async () => {
    setWasmFastKernels(false);
    await tf.setBackend('cpu');
  });

  it("initialising wasm leaves no process-wide 'uncaughtException'/'unhandledRejection' handler behind", () => {
    assert.equal(listenersAfter, listenersBefore);
  });

  it('tfjs internals the kernels rely on are unchanged (fails loudly on a tfjs upgrade)', () => {
    const require = createRequire(import.meta.url);
    const wasmPackage = JSON.parse(readFileSync(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'), 'utf8'));
    assert.equal(wasmPackage.version, WASM_KERNELS_TFJS_VERSION, 'installed tfjs-backend-wasm version');
    const ourPackage = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    assert.equal(ourPackage.dependencies['@tensorflow/tfjs-backend-wasm'], WASM_KERNELS_TFJS_VERSION,
      'package.json must pin tfjs-backend-wasm exactly');
    assert.deepEqual(checkWasmInternals(), []);
    assert.ok(wasmFastKernelsEnabled());
  });

  it('setWasmFastKernels(false) restores the stock kernels and (true) re-installs ours', () => {
    const fastConfig = tf.getKernel('BatchMatMul', 'wasm');
    setWasmFastKernels(false);
    const stockConfig = tf.getKernel('BatchMatMul', 'wasm');
    assert.notEqual(stockConfig?.kernelFunc, fastConfig?.kernelFunc);
    setWasmFastKernels(true);
    assert.equal(tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc, fastConfig?.kernelFunc);
  });

  it('2-D matmul, all transpose combinations, both layout strategies', async () => {
    // (m, k, n) with k·n small and large against m·k + m·n, so both A·Bᵀ and Aᵀ·Bᵀ strategies run.
    for (const [m, k, n] of [[5, 7, 3], [32, 256, 300], [300, 40, 8], [1, 9, 1], [64, 1, 33]]) {
      for (const transposeA of [false, true]) {
        for (const transposeB of [false, true]) {
          await compareWithCpu(`matMul ${m}x${k}x${n} tA=${transposeA} tB=${transposeB}`,
            [{ shape: transposeA ? [k, m] : [m, k] }, { shape: transposeB ? [n, k] : [k, n] }],
            (a, b) => tf.matMul(a, b, transposeA, transposeB));
        }
      }
    }
  });

  it('batched and broadcast matmul', async () => {
    const cases: Array<[number[], number[], boolean, boolean]> = [
      [[4, 6, 5], [4, 5, 3], false, false],
      [[4, 5, 6], [4, 5, 3], true, false],
      [[4, 6, 5], [4, 3, 5], false, true],
      [[4, 5, 6], [4, 3, 5], true, true],
      [[1, 6, 5], [3, 5, 4], false, false], // A broadcast over B's batch
      [[3, 6, 5], [5, 4], false, false], // rank mismatch: one 2-D product
      [[3, 5, 6], [4, 5], true, true],
      [[16, 64, 32], [16, 64, 32], false, true], // attention scores shape
    ];
    for (const [sa, sb, ta, tb] of cases) {
      await compareWithCpu(`matMul ${sa}·${sb} tA=${ta} tB=${tb}`, [{ shape: sa }, { shape: sb }],
        (a, b) => tf.matMul(a, b, ta, tb));
    }
  });

  it('two-sided batch broadcasting [2,1,·,·]·[3,·,·] (reference: explicitly broadcast operands on cpu)', async () => {
    // The stock cpu and wasm kernels index batches modulo their sizes, which is wrong for two-sided broadcasting;
    // the reference therefore broadcasts both operands explicitly first.
    await compareWithCpu('broadcast 2x1 · 3', [{ shape: [2, 1, 6, 5] }, { shape: [3, 5, 4] }],
      (a, b) => tf.matMul(a, b),
      (a, b) => tf.matMul(tf.broadcastTo(a, [2, 3, 6, 5]), tf.broadcastTo(b, [2, 3, 5, 4])));
    await compareWithCpu('broadcast 2x1 · 1x3 tA tB', [{ shape: [2, 1, 5, 6] }, { shape: [1, 3, 4, 5] }],
      (a, b) => tf.matMul(a, b, true, true),
      (a, b) => tf.matMul(tf.broadcastTo(a, [2, 3, 5, 6]), tf.broadcastTo(b, [2, 3, 4, 5]), true, true));
  });

  it('a weight tensor reused as B under another shape (reshape shares the id) stays correct', async () => {
    await compareWithCpu('reshape reuse', [{ shape: [6, 4] }, { shape: [3, 6] }, { shape: [2, 4] }], (w, x, y) => {
      const first = tf.matMul(x, w); // B = w as [6, 4]
      const second = tf.matMul(y, tf.reshape(w, [4, 6])); // same data id as [4, 6]
      return tf.concat([first.flatten(), second.flatten()]);
    });
  });

  it('transpose: permutations with size-1 axes, kept last axis, float32 and int32', async () => {
    const cases: Array<[number[], number[]]> = [
      [[7, 9], [1, 0]], [[3, 7, 9], [0, 2, 1]], [[4, 6, 5, 8], [0, 2, 1, 3]], [[4, 6, 5, 3], [3, 2, 1, 0]],
      [[2, 1, 5, 9], [3, 1, 0, 2]], [[2, 3, 4, 5, 6], [4, 0, 3, 1, 2]], [[1, 5, 1], [2, 1, 0]], [[3, 4], [0, 1]],
    ];
    for (const [shape, perm] of cases) {
      for (const dtype of ['float32', 'int32'] as const) {
        await compareWithCpu(`transpose ${shape} ${perm} ${dtype}`, [{ shape, dtype }], (x) => tf.transpose(x, perm));
      }
    }
  });

  it('sum: leading, middle, trailing, mixed and negative axes, keepDims', async () => {
    const cases: Array<[number | number[], boolean]> = [
      [0, false], [[0, 1], true], [1, false], [[1, 2], false], [-1, false], [[0, 3], true], [[1, 3], false],
      [[0, 1, 2, 3], false], [[2, 0], true], [null as unknown as number, false], [[], false],
    ];
    for (const [axis, keepDims] of cases) {
      await compareWithCpu(`sum ${axis} keepDims=${keepDims}`, [{ shape: [4, 6, 5, 3] }], (x) => tf.sum(x, axis, keepDims));
    }
    await compareWithCpu('sum int32 axis 0', [{ shape: [5, 4], dtype: 'int32' }], (x) => tf.sum(x, 0));
  });

  it('gradients of an attention block equal the cpu backend', async () => {
    const b = 2;
    const t = 5;
    const d = 8;
    const h = 2;
    await compareWithCpu('attention grads', [{ shape: [b, t, d] }, { shape: [d, d] }, { shape: [d, d] }, { shape: [d, 3 * d] }],
      (x, wq, wo, w1) => {
        const grads = tf.grads((xx: tf.Tensor, q: tf.Tensor, o: tf.Tensor, f: tf.Tensor) => {
          const x2 = tf.reshape(xx, [b * t, d]);
          const split = (m: tf.Tensor) => tf.reshape(tf.transpose(tf.reshape(m, [b, t, h, d / h]), [0, 2, 1, 3]), [b * h, t, d / h]);
          const qq = split(tf.matMul(x2, q));
          const att = tf.softmax(tf.matMul(qq, qq, false, true));
          const ctx = tf.reshape(tf.transpose(tf.reshape(tf.matMul(att, qq), [b, h, t, d / h]), [0, 2, 1, 3]), [b * t, d]);
          const y = tf.relu(tf.matMul(tf.add(x2, tf.matMul(ctx, o)), f));
          return tf.sum(tf.square(y));
        });
        return tf.concat(grads([x, wq, wo, w1]).map((g) => g.flatten()));
      });
  });

  it('UnsortedSegmentSum (missing in stock tfjs-wasm) equals cpu; a trainable Embedding gets its gradient on wasm', async () => {
    const xs = Array.from({ length: 7 * 3 }, (_, i) => Math.sin(i) * 10);
    const ids = [4, 0, 4, 2, -1, 9, 0];
    const onWasm = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor2d(xs, [7, 3]), tf.tensor1d(ids, 'int32'), 5).arraySync());
    await tf.setBackend('cpu');
    const onCpu = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor2d(xs, [7, 3]), tf.tensor1d(ids, 'int32'), 5).arraySync());
    const cpuGrad = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.gather(t, tf.tensor1d([1, 3, 1, 0], 'int32')).square().sum())(tf.tensor2d(xs.slice(0, 12), [4, 3])).arraySync());
    await tf.setBackend('wasm');
    const wasmGrad = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.gather(t, tf.tensor1d([1, 3, 1, 0], 'int32')).square().sum())(tf.tensor2d(xs.slice(0, 12), [4, 3])).arraySync());
    assert.deepEqual(onWasm, onCpu);
    (onWasm as number[][]).flat().forEach((v, i) => assert.ok(Math.abs(v - (onCpu as number[][]).flat()[i]) <= 1e-5));
    (wasmGrad as number[][]).flat().forEach((v, i) => assert.ok(Math.abs(v - (cpuGrad as number[][]).flat()[i]) <= 1e-4, `${v} vs ${(cpuGrad as number[][]).flat()[i]}`));
  });

  it('no leaked tensors or wasm allocations', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor(values(4 * 6 * 5), [4, 6, 5]);
    const y = tf.tensor(values(4 * 5 * 3), [4, 5, 3]);
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const tensorsBefore = tf.memory().numTensors;
    const dataBefore = backend.numDataIds();
    for (let i = 0; i < 20; i++) {
      tf.tidy(() => {
        tf.matMul(x, y).dataSync();
        tf.matMul(x, x, false, true).dataSync();
        tf.matMul(x, x, true, false).dataSync();
        tf.matMul(tf.reshape(x, [5, 24]), tf.reshape(y, [12, 5]), true, true).dataSync();
        tf.sum(x, [0, 1]).dataSync();
        tf.transpose(x, [2, 0, 1]).dataSync();
      });
    }
    assert.equal(tf.memory().numTensors, tensorsBefore);
    assert.equal(backend.numDataIds(), dataBefore);
    x.dispose();
    y.dispose();
  });
});

describe('backend: initBackend', () => {
  after(async () => {
    setWasmFastKernels(false);
    await tf.setBackend('cpu');
  });

  it('selects cpu on request and refuses unknown preferences', async () => {
    assert.equal(await initBackend('cpu'), 'cpu');
    await assert.rejects(initBackend('gpu' as never), InvalidArgumentError);
    await assert.rejects(initBackend('cpu', { fastKernels: 'yes' as never }), InvalidArgumentError);
  });

  it("'tensorflow' is a typed error when tfjs-node is not installed; 'auto' then falls back to wasm", async () => {
    const require = createRequire(import.meta.url);
    const nativeInstalled = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'].some((name) => {
      try {
        require.resolve(name);
        return true;
      } catch {
        return false;
      }
    });
    if (nativeInstalled) {
      assert.equal(await initBackend('auto'), 'tensorflow');
      return;
    }
    await assert.rejects(initBackend('tensorflow'), (e: unknown) => e instanceof EwtuneError && e.code === 'ERR_BACKEND_UNAVAILABLE');
    assert.equal(await initBackend('auto'), 'wasm');
    assert.ok(wasmFastKernelsEnabled());
  });
});
