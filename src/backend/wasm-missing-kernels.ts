/**
 * Kernels that `@tensorflow/tfjs-backend-wasm` 4.22.0 does not have but training needs.
 *
 * `UnsortedSegmentSum` is the gradient of `Gather`, i.e. of every trainable Embedding: without it a model with a
 * trainable embedding cannot be trained on wasm at all (`Kernel 'UnsortedSegmentSum' not registered for backend
 * 'wasm'`). It is a scatter-add with no arithmetic worth vectorising, so it runs on the host: read the inputs
 * (`backend.readSync`, public), allocate the output with `backend.makeOutput` and write it through the heap view at
 * `dataIdMap.get(dataId).memoryOffset` — the same internals src/backend/wasm-kernels.ts relies on and checks.
 * Registered only where no kernel of that name exists (a later tfjs that ships one keeps its own).
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

interface WasmHost {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: string): TensorInfo;
  readSync(dataId: object): ArrayLike<number>;
}

const unsortedSegmentSum: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const numSegments = (attrs as { numSegments: number }).numSegments;
  if (x.dtype !== 'float32' && x.dtype !== 'int32') throw new Error(`UnsortedSegmentSum (wasm): unsupported dtype ${x.dtype}`);
  const host = backend as unknown as WasmHost;
  const values = host.readSync(x.dataId);
  const ids = host.readSync(segmentIds.dataId);
  const rows = ids.length;
  const inner = rows === 0 ? 0 : values.length / rows;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = host.makeOutput(outShape, x.dtype);
  const offset = (host.dataIdMap.get(out.dataId) as { memoryOffset: number }).memoryOffset;
  const size = numSegments * inner;
  // The heap view is taken after the allocation (the wasm memory may have grown).
  const target = x.dtype === 'float32'
    ? new Float32Array(host.wasm.HEAPU8.buffer, offset, size)
    : new Int32Array(host.wasm.HEAPU8.buffer, offset, size);
  target.fill(0);
  for (let r = 0; r < rows; r++) {
    const id = ids[r];
    if (id < 0 || id >= numSegments) continue; // tf semantics: out-of-range ids are dropped
    const from = r * inner;
    const to = id * inner;
    for (let j = 0; j < inner; j++) target[to + j] += values[from + j];
  }
  return out;
};

/** Register the missing kernels for backend 'wasm' (idempotent). */
export function registerMissingWasmKernels(): void {
  if (tf.getKernel('UnsortedSegmentSum', 'wasm') === undefined) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum });
  }
}
