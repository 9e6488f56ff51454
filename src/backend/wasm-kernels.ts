/**
 * Fast training kernels for `@tensorflow/tfjs-backend-wasm` 4.22.0.
 *
 * Why: the stock wasm `BatchMatMul` sends only an un-transposed, batch-1 product A·B to XNNPACK (~20 GFLOP/s on
 * one thread); transposed operands and batched products fall into a scalar C++ loop (1–2 GFLOP/s). Backprop is made
 * of exactly those (dW = Xᵀ·dY, dX = dY·Wᵀ, attention Q·Kᵀ), so a training step runs 5–10× slower than it could.
 * The stock `Transpose` (element-wise strided loop) and `Sum` over leading axes (= Transpose + Sum) are slow too.
 *
 * What: replacement kernels registered for backend 'wasm' under the same kernel names (gradients are registered per
 * kernel name, not per backend, so autodiff is unchanged):
 * - `BatchMatMul`: every product is XNNPACK's un-transposed, batch-1 product (the stock fast path), so the
 *   arithmetic is the one of a plain `tf.matMul(a2d, b2d)`. 2-D operands: the transposed layout that moves the
 *   fewest elements (materialise an operand's transpose, or compute the transposed product and transpose it back).
 *   Batched: transposed operands are materialised by the fast transpose below; when B has one batch the whole
 *   product is ONE 2-D product ([batch·M, K]·[K, N]); otherwise one product per (broadcast) batch, run on alias
 *   tensor ids that point into the operands' and the output's memory (no copies). Two-sided batch broadcasting
 *   ([2,1,…]·[3,…]) is done properly (the stock cpu and wasm kernels index batches modulo their sizes there).
 * - `Transpose`: after dropping size-1 axes and merging axes that stay adjacent, a (batched) 2-D swap is done by a
 *   cache-blocked copy and a permutation that keeps the last axis by contiguous row copies; other cases go to the
 *   stock kernel.
 * - `Sum` (float32): reduction over leading axes as ones[1, R]·X[R, C] on XNNPACK; over other non-trailing axes via
 *   the fast transpose then the stock trailing-axis sum; trailing-axis sums go to the stock kernel.
 *
 * Internals relied on (tfjs-backend-wasm 4.22.0, pinned exactly in package.json; items 1–3 and 5 are checked by
 * `checkWasmInternals`, run before every enable and by test/backend.test.ts, whose comparisons with the cpu
 * backend cover the rest):
 * 1. `backend.makeOutput(shape, dtype)` allocates a tensor on the wasm heap and returns its TensorInfo;
 *    `backend.disposeData(dataId)` frees it (decrements its refCount).
 * 2. `backend.dataIdMap.get(dataId).memoryOffset` is the byte offset of the tensor data in `backend.wasm.HEAPU8`,
 *    densely packed row-major (float32/int32 = 4 bytes per element).
 * 3. The stock kernel configs for 'BatchMatMul', 'Transpose', 'Sum' on 'wasm' take
 *    `{inputs, backend, attrs}` and return one TensorInfo; the stock BatchMatMul computes 2-D un-transposed
 *    products with XNNPACK (a performance fact, not a correctness one: results are checked against cpu in tests).
 * 4. Heap views are re-read after each allocation (the wasm memory may grow and detach old views).
 * 5. Batched products only: the wasm export `BatchMatMul(a_id, a_shape, a_rank, b_id, b_shape, b_rank, transpose_a,
 *    transpose_b, out_id)` (bound with `backend.wasm.cwrap`, as the stock kernel does); `backend.wasm.tfjs.
 *    registerTensor(id, size, byteOffset)` / `disposeData(id)` register and drop a C++ tensor record without
 *    allocating or freeing memory (backend.cc `register_tensor` / `dispose_data`); `backend.dataIdNextNumber` is the
 *    JS-side id counter (incremented for every id we register, so ids never collide).
 * 6. The stock XNNPACK product caches B's packed weights under B's tensor id only (batch_mat_mul_impl.cc): see
 *    {@link matMul2d} for how these kernels never feed it a stale id.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';

/** The parts of `BackendWasm` these kernels use (see the module comment). */
interface WasmBackendInternals {
  wasm: {
    HEAPU8: Uint8Array;
    cwrap(name: string, returnType: null, argTypes: string[]): (...args: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, memoryOffset: number): void; disposeData(id: number): void };
  };
  dataIdNextNumber: number;
  dataIdMap: {
    has(dataId: object): boolean;
    get(dataId: object): { memoryOffset: number; shape: number[]; dtype: string; refCount: number } | undefined;
  };
  makeOutput(shape: number[], dtype: string): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

type KernelArgs = { inputs: NamedTensorInfoMap; backend: WasmBackendInternals; attrs: NamedAttrMap };

const PATCHED_KERNELS = ['BatchMatMul', 'Transpose', 'Sum'] as const;
type PatchedKernel = (typeof PATCHED_KERNELS)[number];

/** The tfjs-backend-wasm version these kernels were written and checked against. */
export const WASM_KERNELS_TFJS_VERSION = '4.22.0';

const stock = new Map<PatchedKernel, KernelConfig>();
/** [K, N] under which each data id was first used as the B operand of the XNNPACK product (see matMul2d). */
const weightShapes = new WeakMap<object, string>();
let enabled = false;

// ----------------------------------------------------------------------------------------------------------------
// Heap helpers

function int32View(backend: WasmBackendInternals, info: TensorInfo): Int32Array {
  const data = backend.dataIdMap.get(info.dataId);
  if (data === undefined) throw new Error('wasm fast kernels: tensor data not found on the wasm backend');
  return new Int32Array(backend.wasm.HEAPU8.buffer, data.memoryOffset, sizeOf(info.shape));
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A TensorInfo sharing `info`'s data under another shape (no refCount change: never dispose it). */
function view(info: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

function callStock(name: PatchedKernel, args: KernelArgs, inputs: NamedTensorInfoMap, attrs: NamedAttrMap): TensorInfo {
  const config = stock.get(name);
  if (config === undefined) throw new Error(`wasm fast kernels: stock ${name} kernel missing`);
  return (config.kernelFunc as unknown as (a: KernelArgs) => TensorInfo)({ inputs, backend: args.backend, attrs });
}

/**
 * Stock 2-D product a[M, K]·b[K, N] (its XNNPACK path).
 *
 * Soundness: the stock XNNPACK path caches the packed weights of B under B's tensor id alone
 * (batch_mat_mul_impl.cc, key (b_id, bias_id, activation)), not under its shape, and `tf.reshape` shares ids; so a
 * B whose id was ever used with another [K, N] would silently reuse stale packed weights. So `b` is either a fresh
 * temporary used once (`bIsFresh`), or a tensor whose data id is recorded here with the [K, N] of its first use as
 * B; any later use under another [K, N] is made on a copy (O(K·N), small next to 2·M·K·N). (Products the stock
 * kernels compute outside these kernels are not seen; stock tfjs has the same hazard for them.)
 */
function matMul2d(args: KernelArgs, a: TensorInfo, b: TensorInfo, bIsFresh: boolean): TensorInfo {
  let copy = false;
  if (!bIsFresh) {
    const key = `${b.shape[0]},${b.shape[1]}`;
    const seen = weightShapes.get(b.dataId);
    if (seen === undefined) weightShapes.set(b.dataId, key);
    else copy = seen !== key;
  }
  const fresh = copy ? copyOf(args, b, 0, b.shape) : b;
  try {
    return callStock('BatchMatMul', args, { a, b: fresh }, { transposeA: false, transposeB: false });
  } finally {
    if (copy) args.backend.disposeData(fresh.dataId);
  }
}

// ----------------------------------------------------------------------------------------------------------------
// Transpose

const BLOCK = 32;

/** out[b, c, r] = x[b, r, c] for `batch` matrices rows × cols (element offsets into the views). */
function swapLastTwo(src: Int32Array, dst: Int32Array, batch: number, rows: number, cols: number): void {
  const plane = rows * cols;
  for (let b = 0; b < batch; b++) {
    const base = b * plane;
    for (let r0 = 0; r0 < rows; r0 += BLOCK) {
      const r1 = Math.min(r0 + BLOCK, rows);
      for (let c0 = 0; c0 < cols; c0 += BLOCK) {
        const c1 = Math.min(c0 + BLOCK, cols);
        for (let r = r0; r < r1; r++) {
          const srcRow = base + r * cols;
          let d = base + c0 * rows + r;
          for (let c = c0; c < c1; c++, d += rows) dst[d] = src[srcRow + c];
        }
      }
    }
  }
}

/** Drop size-1 axes and merge axes that remain adjacent and in order under `perm`. */
export function simplifyPermutation(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  const kept: number[] = [];
  for (let i = 0; i < shape.length; i++) if (shape[i] !== 1) kept.push(i);
  const renumber = new Map<number, number>(kept.map((axis, i) => [axis, i]));
  const keptShape = kept.map((axis) => shape[axis]);
  const keptPerm = perm.filter((axis) => shape[axis] !== 1).map((axis) => renumber.get(axis) as number);
  // Merge runs p, p+1, … that are consecutive in keptPerm.
  const groups: number[][] = [];
  for (const axis of keptPerm) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last[last.length - 1] + 1 === axis) last.push(axis);
    else groups.push([axis]);
  }
  const order = groups.map((g) => g[0]);
  const sortedFirsts = [...order].sort((x, y) => x - y);
  const newShape = sortedFirsts.map((first) => {
    const g = groups.find((gr) => gr[0] === first) as number[];
    return g.reduce((s, axis) => s * keptShape[axis], 1);
  });
  const newPerm = order.map((first) => sortedFirsts.indexOf(first));
  return { shape: newShape, perm: newPerm };
}

function fastTranspose(args: KernelArgs, x: TensorInfo, perm: readonly number[]): TensorInfo | undefined {
  if (x.dtype !== 'float32' && x.dtype !== 'int32') return undefined;
  const outShape = perm.map((axis) => x.shape[axis]);
  if (sizeOf(x.shape) === 0) return undefined;
  const s = simplifyPermutation(x.shape, perm);
  const rank = s.perm.length;
  if (rank <= 1) return undefined; // a no-op: the stock kernel returns a cheap identity
  const { backend } = args;
  if (rank === 2 || (rank === 3 && s.perm[0] === 0 && s.perm[1] === 2 && s.perm[2] === 1)) {
    const batch = rank === 2 ? 1 : s.shape[0];
    const rows = s.shape[rank - 2];
    const cols = s.shape[rank - 1];
    const out = backend.makeOutput(outShape, x.dtype);
    swapLastTwo(int32View(backend, x), int32View(backend, out), batch, rows, cols);
    return out;
  }
  if (s.perm[rank - 1] === rank - 1 && s.shape[rank - 1] >= 8) {
    // The last axis is kept: copy contiguous rows of length `inner` in output order.
    const inner = s.shape[rank - 1];
    const outerRank = rank - 1;
    const inStrides = new Array<number>(rank).fill(1);
    for (let i = rank - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1] * s.shape[i + 1];
    const outDims = s.perm.slice(0, outerRank).map((axis) => s.shape[axis]);
    const strideOfOutAxis = s.perm.slice(0, outerRank).map((axis) => inStrides[axis]);
    const out = backend.makeOutput(outShape, x.dtype);
    const src = int32View(backend, x);
    const dst = int32View(backend, out);
    const index = new Array<number>(outerRank).fill(0);
    const rowsOut = sizeOf(outDims);
    let srcOffset = 0;
    for (let row = 0; row < rowsOut; row++) {
      dst.set(src.subarray(srcOffset, srcOffset + inner), row * inner);
      // Odometer over the output's outer axes.
      for (let k = outerRank - 1; k >= 0; k--) {
        index[k]++;
        srcOffset += strideOfOutAxis[k];
        if (index[k] < outDims[k]) break;
        srcOffset -= strideOfOutAxis[k] * outDims[k];
        index[k] = 0;
      }
    }
    return out;
  }
  return undefined;
}

function transposeKernel(args: KernelArgs): TensorInfo {
  const x = args.inputs.x as TensorInfo;
  const perm = args.attrs.perm as number[];
  return fastTranspose(args, x, perm) ?? callStock('Transpose', args, args.inputs, args.attrs);
}

/** Transpose the last two axes of x (any rank ≥ 2). */
function swapLastAxes(args: KernelArgs, x: TensorInfo): TensorInfo {
  const rank = x.shape.length;
  const perm = x.shape.map((_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return fastTranspose(args, x, perm) ?? callStock('Transpose', args, { x }, { perm });
}

// ----------------------------------------------------------------------------------------------------------------
// BatchMatMul

function broadcastBatchShape(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Index of the batch `flat` (in the broadcast batch shape) into an operand's own batch shape. */
function operandBatchIndex(flat: number, outBatch: readonly number[], own: readonly number[]): number {
  let index = 0;
  let stride = 1;
  let rest = flat;
  const offset = outBatch.length - own.length;
  const coords = new Array<number>(outBatch.length);
  for (let i = outBatch.length - 1; i >= 0; i--) {
    coords[i] = rest % outBatch[i];
    rest = Math.floor(rest / outBatch[i]);
  }
  for (let i = own.length - 1; i >= 0; i--) {
    const c = own[i] === 1 ? 0 : coords[i + offset];
    index += c * stride;
    stride *= own[i];
  }
  return index;
}

function copyOf(args: KernelArgs, src: TensorInfo, start: number, shape: number[]): TensorInfo {
  const out = args.backend.makeOutput(shape, src.dtype);
  const n = sizeOf(shape);
  int32View(args.backend, out).set(int32View(args.backend, src).subarray(start, start + n));
  return out;
}

/**
 * One 2-D product op(a)·op(b) ([m, k]·[k, n]) from plain XNNPACK products and fast transposes, choosing the layout
 * that moves the fewest elements:
 * - A·Bᵀ: materialise Bᵀ (k·n moved) or compute (B·Aᵀ)ᵀ (m·k + m·n moved), whichever is smaller;
 * - Aᵀ·B: materialise Aᵀ (k·m moved);
 * - Aᵀ·Bᵀ = (B·A)ᵀ (m·n moved) or materialise both (k·m + k·n), whichever is smaller.
 */
function product2dWithTransposes(args: KernelArgs, a: TensorInfo, b: TensorInfo, transposeA: boolean,
  transposeB: boolean, m: number, k: number, n: number): TensorInfo {
  const temporaries: TensorInfo[] = [];
  const t = (x: TensorInfo): TensorInfo => {
    const y = swapLastAxes(args, x);
    temporaries.push(y);
    return y;
  };
  try {
    if (!transposeA && !transposeB) return matMul2d(args, a, b, false);
    if (transposeA && !transposeB) return matMul2d(args, t(a), b, false);
    if (!transposeA && transposeB) {
      if (k * n <= m * k + m * n) return matMul2d(args, a, t(b), true);
      const outT = matMul2d(args, b, t(a), true); // [n, m]
      temporaries.push(outT);
      return swapLastAxes(args, outT);
    }
    if (m * n <= k * m + k * n) {
      const outT = matMul2d(args, b, a, false); // B[n, k]·A[k, m] = [n, m]
      temporaries.push(outT);
      return swapLastAxes(args, outT);
    }
    return matMul2d(args, t(a), t(b), true);
  } finally {
    for (const x of temporaries) args.backend.disposeData(x.dataId);
  }
}

const batchMatMulExports = new WeakMap<object, (...args: unknown[]) => void>();

/**
 * out[i] = a[ia(i)]·b[ib(i)] for every (broadcast) batch i, each a plain [m, k]·[k, n] XNNPACK product run by the
 * wasm export `BatchMatMul` on ALIAS tensor ids: fresh ids registered (`wasm.tfjs.registerTensor`) at the byte
 * offsets of the slices inside a, b and out, so nothing is copied, and unregistered after the call
 * (`wasm.tfjs.disposeData`, which also drops the operator cached for the alias B id; it frees no memory — memory is
 * freed only by the JS-side `_free` of the owning tensor). Every alias B id is used once, so the id-keyed weight
 * cache can never be stale.
 */
function batchedProducts(backend: WasmBackendInternals, a: TensorInfo, b: TensorInfo, out: TensorInfo,
  outBatch: readonly number[], batchShapeA: readonly number[], batchShapeB: readonly number[],
  m: number, k: number, n: number): void {
  let run = batchMatMulExports.get(backend.wasm);
  if (run === undefined) {
    run = backend.wasm.cwrap('BatchMatMul', null,
      ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number']);
    batchMatMulExports.set(backend.wasm, run);
  }
  const offset = (info: TensorInfo) => (backend.dataIdMap.get(info.dataId) as { memoryOffset: number }).memoryOffset;
  const aBase = offset(a);
  const bBase = offset(b);
  const outBase = offset(out);
  const aShape = new Uint8Array(new Int32Array([1, m, k]).buffer);
  const bShape = new Uint8Array(new Int32Array([1, k, n]).buffer);
  const batch = sizeOf(outBatch);
  for (let i = 0; i < batch; i++) {
    const ia = operandBatchIndex(i, outBatch, batchShapeA);
    const ib = operandBatchIndex(i, outBatch, batchShapeB);
    const idA = backend.dataIdNextNumber++;
    const idB = backend.dataIdNextNumber++;
    const idOut = backend.dataIdNextNumber++;
    backend.wasm.tfjs.registerTensor(idA, m * k, aBase + 4 * ia * m * k);
    backend.wasm.tfjs.registerTensor(idB, k * n, bBase + 4 * ib * k * n);
    backend.wasm.tfjs.registerTensor(idOut, m * n, outBase + 4 * i * m * n);
    try {
      run(idA, aShape, 3, idB, bShape, 3, 0, 0, idOut);
    } finally {
      backend.wasm.tfjs.disposeData(idA);
      backend.wasm.tfjs.disposeData(idB);
      backend.wasm.tfjs.disposeData(idOut);
    }
  }
}

function batchMatMulKernel(args: KernelArgs): TensorInfo {
  const a = args.inputs.a as TensorInfo;
  const b = args.inputs.b as TensorInfo;
  const transposeA = args.attrs.transposeA === true;
  const transposeB = args.attrs.transposeB === true;
  const rankA = a.shape.length;
  const rankB = b.shape.length;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || rankA < 2 || rankB < 2
    || sizeOf(a.shape) === 0 || sizeOf(b.shape) === 0) {
    return callStock('BatchMatMul', args, args.inputs, args.attrs);
  }
  const m = transposeA ? a.shape[rankA - 1] : a.shape[rankA - 2];
  const kA = transposeA ? a.shape[rankA - 2] : a.shape[rankA - 1];
  const kB = transposeB ? b.shape[rankB - 1] : b.shape[rankB - 2];
  const n = transposeB ? b.shape[rankB - 2] : b.shape[rankB - 1];
  const batchShapeA = a.shape.slice(0, -2);
  const batchShapeB = b.shape.slice(0, -2);
  const outBatch = broadcastBatchShape(batchShapeA, batchShapeB);
  if (kA !== kB || outBatch === undefined) {
    return callStock('BatchMatMul', args, args.inputs, args.attrs); // let the stock kernel raise its error
  }
  const k = kA;
  const batchA = sizeOf(batchShapeA);
  const batchB = sizeOf(batchShapeB);
  const batch = sizeOf(outBatch);
  const outShape = [...outBatch, m, n];
  const temporaries: TensorInfo[] = [];
  try {
    if (batchA === 1 && batchB === 1) {
      const product2d = product2dWithTransposes(args, view(a, a.shape.slice(-2)), view(b, b.shape.slice(-2)),
        transposeA, transposeB, m, k, n);
      return view(product2d, outShape);
    }
    // Operands in [batch, rows, cols] layout with the contraction axis where a plain product wants it.
    let aMat = view(a, [batchA, transposeA ? k : m, transposeA ? m : k]);
    if (transposeA) {
      aMat = view(swapLastAxes(args, aMat), [batchA, m, k]);
      temporaries.push(aMat);
    }
    let bMat = view(b, [batchB, transposeB ? n : k, transposeB ? k : n]);
    if (transposeB) {
      bMat = view(swapLastAxes(args, bMat), [batchB, k, n]);
      temporaries.push(bMat);
    }
    if (batchB === 1) {
      // Every batch of A meets the same B: one product [batchA·M, K]·[K, N].
      // (batchB = 1 implies batch = batchA: broadcasting only adds size-1 axes.)
      return view(matMul2d(args, view(aMat, [batchA * m, k]), view(bMat, [k, n]), transposeB), outShape);
    }
    const out = args.backend.makeOutput(outShape, 'float32');
    try {
      batchedProducts(args.backend, aMat, bMat, out, outBatch, batchShapeA, batchShapeB, m, k, n);
    } catch (error) {
      args.backend.disposeData(out.dataId);
      throw error;
    }
    return out;
  } finally {
    for (const t of temporaries) args.backend.disposeData(t.dataId);
  }
}

// ----------------------------------------------------------------------------------------------------------------
// Sum

function sumKernel(args: KernelArgs): TensorInfo {
  const x = args.inputs.x as TensorInfo;
  const rank = x.shape.length;
  const axisAttr = args.attrs.axis as number | number[];
  const keepDims = args.attrs.keepDims === true;
  if (x.dtype !== 'float32' || rank < 2 || sizeOf(x.shape) === 0 || axisAttr == null
    || (Array.isArray(axisAttr) ? axisAttr : [axisAttr]).some((ax) => !Number.isInteger(ax))) {
    return callStock('Sum', args, args.inputs, args.attrs); // includes axis null (= all axes)
  }
  const axes = [...new Set((Array.isArray(axisAttr) ? axisAttr : [axisAttr]).map((ax) => (ax < 0 ? ax + rank : ax)))]
    .sort((p, q) => p - q);
  if (axes.some((ax) => !(ax >= 0 && ax < rank))) return callStock('Sum', args, args.inputs, args.attrs);
  const reduced = new Set(axes);
  const keptAxes = x.shape.map((_, i) => i).filter((i) => !reduced.has(i));
  const outShape = keepDims ? x.shape.map((d, i) => (reduced.has(i) ? 1 : d)) : keptAxes.map((i) => x.shape[i]);
  const trailing = axes.every((ax, i) => ax === rank - axes.length + i);
  if (trailing || keptAxes.length === 0) return callStock('Sum', args, args.inputs, args.attrs);
  const leading = axes.every((ax, i) => ax === i);
  if (leading) {
    const r = sizeOf(axes.map((ax) => x.shape[ax]));
    const c = sizeOf(keptAxes.map((ax) => x.shape[ax]));
    const ones = args.backend.makeOutput([1, r], 'float32');
    try {
      new Float32Array(args.backend.wasm.HEAPU8.buffer, args.backend.dataIdMap.get(ones.dataId)!.memoryOffset, r).fill(1);
      return view(matMul2d(args, ones, view(x, [r, c]), false), outShape);
    } finally {
      args.backend.disposeData(ones.dataId);
    }
  }
  // Middle axes: move them last with the fast transpose, then the stock trailing-axis sum.
  const perm = [...keptAxes, ...axes];
  const moved = fastTranspose(args, x, perm);
  if (moved === undefined) return callStock('Sum', args, args.inputs, args.attrs);
  try {
    const trailingAxes = axes.map((_, i) => keptAxes.length + i);
    const summed = callStock('Sum', args, { x: moved }, { axis: trailingAxes, keepDims: false });
    return view(summed, outShape);
  } finally {
    args.backend.disposeData(moved.dataId);
  }
}

// ----------------------------------------------------------------------------------------------------------------
// Registration

const FAST: Record<PatchedKernel, (args: KernelArgs) => TensorInfo> = {
  BatchMatMul: batchMatMulKernel,
  Transpose: transposeKernel,
  Sum: sumKernel,
};

/**
 * Check the tfjs-backend-wasm internals the fast kernels rely on (module comment, items 1–3). Returns a list of
 * problems (empty when all hold). Needs the 'wasm' backend to be registered and initialised.
 */
export function checkWasmInternals(): string[] {
  const problems: string[] = [];
  const version = (tf.version as Record<string, string>)['tfjs-core'];
  if (version !== WASM_KERNELS_TFJS_VERSION) {
    problems.push(`tfjs-core ${version} (fast kernels checked against ${WASM_KERNELS_TFJS_VERSION})`);
  }
  let backend: WasmBackendInternals | undefined;
  try {
    backend = tf.findBackend('wasm') as unknown as WasmBackendInternals | undefined;
  } catch {
    backend = undefined;
  }
  if (backend == null) return [...problems, "backend 'wasm' is not initialised"];
  if (!(backend.wasm?.HEAPU8 instanceof Uint8Array)) problems.push('backend.wasm.HEAPU8 missing');
  if (typeof backend.makeOutput !== 'function') problems.push('backend.makeOutput missing');
  if (typeof backend.dataIdNextNumber !== 'number') problems.push('backend.dataIdNextNumber missing');
  if (typeof backend.wasm?.cwrap !== 'function') problems.push('backend.wasm.cwrap missing');
  if (typeof backend.wasm?.tfjs?.registerTensor !== 'function' || typeof backend.wasm?.tfjs?.disposeData !== 'function') {
    problems.push('backend.wasm.tfjs.registerTensor/disposeData missing');
  }
  if (typeof (backend.wasm as unknown as Record<string, unknown>)?._BatchMatMul !== 'function') {
    problems.push('wasm export BatchMatMul missing');
  }
  if (typeof backend.disposeData !== 'function') problems.push('backend.disposeData missing');
  if (typeof backend.dataIdMap?.get !== 'function' || typeof backend.dataIdMap?.has !== 'function') {
    problems.push('backend.dataIdMap.get/has missing');
  }
  for (const name of PATCHED_KERNELS) {
    const config = stock.get(name) ?? tf.getKernel(name, 'wasm');
    if (config === undefined || typeof config.kernelFunc !== 'function') problems.push(`stock wasm kernel ${name} missing`);
  }
  if (problems.length > 0) return problems;
  // Layout: a tensor's bytes at dataIdMap.get(dataId).memoryOffset hold its values, dense and row-major.
  const probe = tf.tensor2d([[1.5, -2], [3, 4.25]]);
  try {
    const data = backend.dataIdMap.get(probe.dataId);
    if (data === undefined || typeof data.memoryOffset !== 'number') {
      problems.push('dataIdMap entry has no memoryOffset');
    } else {
      const values = Array.from(new Float32Array(backend.wasm.HEAPU8.buffer, data.memoryOffset, 4));
      if (values.join() !== '1.5,-2,3,4.25') problems.push(`heap layout differs: ${values.join()}`);
    }
    const out = backend.makeOutput([3], 'float32');
    const outData = backend.dataIdMap.get(out.dataId);
    if (outData === undefined || outData.refCount !== 1) problems.push('makeOutput does not register a refCount-1 tensor');
    backend.disposeData(out.dataId);
    if (backend.dataIdMap.has(out.dataId)) problems.push('disposeData does not free a refCount-1 tensor');
  } finally {
    probe.dispose();
  }
  return problems;
}

/** Whether the fast kernels are currently registered. */
export function wasmFastKernelsEnabled(): boolean {
  return enabled;
}

/**
 * Register (true) or restore (false) the fast wasm kernels. Safe to call repeatedly; affects backend 'wasm' only.
 * Enabling throws if the 'wasm' backend is not initialised or `checkWasmInternals` finds a difference (the
 * stock kernels then stay in place).
 */
export function setWasmFastKernels(enable: boolean): void {
  if (enable === enabled) return;
  if (enable) {
    for (const name of PATCHED_KERNELS) {
      if (!stock.has(name)) {
        const config = tf.getKernel(name, 'wasm');
        if (config !== undefined) stock.set(name, config);
      }
    }
    const problems = checkWasmInternals();
    if (problems.length > 0) {
      throw new Error(`wasm fast kernels: tfjs-backend-wasm internals differ from ${WASM_KERNELS_TFJS_VERSION}: `
        + problems.join('; '));
    }
    for (const name of PATCHED_KERNELS) {
      const original = stock.get(name) as KernelConfig;
      tf.unregisterKernel(name, 'wasm');
      tf.registerKernel({
        kernelName: name,
        backendName: 'wasm',
        // Keep the stock setup: it binds the wasm exports the stock kernel (called from ours) uses.
        setupFunc: original.setupFunc,
        kernelFunc: FAST[name] as unknown as KernelFunc,
      });
    }
    enabled = true;
  } else {
    for (const name of PATCHED_KERNELS) {
      tf.unregisterKernel(name, 'wasm');
      tf.registerKernel(stock.get(name) as KernelConfig);
    }
    enabled = false;
  }
}
