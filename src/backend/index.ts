/**
 * Backend selection for ewtune.
 *
 * `initBackend('auto')` prefers the native TensorFlow backend when `@tensorflow/tfjs-node-gpu` or
 * `@tensorflow/tfjs-node` is installed (optional peers, detected at run time by dynamic import; nothing on that path
 * assumes cpu or wasm), else `@tensorflow/tfjs-backend-wasm` on one thread with the fast training kernels of
 * ./wasm-kernels.ts, else the pure-JS cpu backend. Returns the name of the active backend.
 */
import * as tf from '@tensorflow/tfjs';
import { EwtuneError, InvalidArgumentError } from '../errors.ts';
import { setWasmFastKernels } from './wasm-kernels.ts';

import { registerMissingWasmKernels } from './wasm-missing-kernels.ts';
export { registerMissingWasmKernels } from './wasm-missing-kernels.ts';
export { checkWasmInternals, setWasmFastKernels, wasmFastKernelsEnabled, WASM_KERNELS_TFJS_VERSION } from './wasm-kernels.ts';

/** Which backend to use. */
export type BackendPreference = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

/** Options of {@link initBackend}. */
export interface BackendOptions {
  /** WASM only: register the fast training kernels (default true). */
  readonly fastKernels?: boolean;
}

/** The native packages, in order of preference. */
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

async function importOptional(name: string): Promise<boolean> {
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}

async function tryNative(): Promise<boolean> {
  for (const name of NATIVE_PACKAGES) {
    if (await importOptional(name)) {
      try {
        // The native package registers backend 'tensorflow' on import.
        if (await tf.setBackend('tensorflow')) return true;
      } catch {
        // not registered (e.g. a second copy of tfjs-core): try the next package
      }
    }
  }
  return false;
}

let wasmModule: typeof import('@tensorflow/tfjs-backend-wasm') | undefined;

async function tryWasm(fastKernels: boolean): Promise<boolean> {
  try {
    wasmModule ??= await import('@tensorflow/tfjs-backend-wasm');
  } catch {
    return false;
  }
  if (tf.findBackend('wasm') == null) {
    // One thread: WASM threads in Node need SharedArrayBuffer workers and are slower for small ops.
    wasmModule.setThreadsCount(1);
  }
  // Emscripten's Node glue installs process 'uncaughtException'/'unhandledRejection' handlers that rethrow, turning
  // any later unhandled error of the host application into a crash; remove the ones it adds during initialisation.
  const before = {
    uncaughtException: new Set(process.listeners('uncaughtException')),
    unhandledRejection: new Set(process.listeners('unhandledRejection')),
  };
  try {
    if (!(await tf.setBackend('wasm'))) return false;
    await tf.ready();
  } finally {
    for (const l of process.listeners('uncaughtException')) if (!before.uncaughtException.has(l)) process.off('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection')) if (!before.unhandledRejection.has(l)) process.off('unhandledRejection', l);
  }
  registerMissingWasmKernels();
  setWasmFastKernels(fastKernels);
  return true;
}

/**
 * Select and initialise a backend; resolves to its name ('tensorflow', 'wasm' or 'cpu').
 * An explicitly requested backend that cannot be initialised is an error (EwtuneError ERR_BACKEND_UNAVAILABLE);
 * 'auto' falls back tensorflow → wasm → cpu.
 */
export async function initBackend(preferred: BackendPreference = 'auto', options: BackendOptions = {}): Promise<string> {
  if (!['auto', 'tensorflow', 'wasm', 'cpu'].includes(preferred)) {
    throw new InvalidArgumentError('preferred', preferred, "one of 'auto', 'tensorflow', 'wasm', 'cpu'");
  }
  const fastKernels = options.fastKernels ?? true;
  if (typeof fastKernels !== 'boolean') throw new InvalidArgumentError('options.fastKernels', fastKernels, 'a boolean');
  const unavailable = (name: string) => new EwtuneError('ERR_BACKEND_UNAVAILABLE',
    `backend '${name}' could not be initialised${name === 'tensorflow' ? ' (install @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu 4.22.0)' : ''}`);
  switch (preferred) {
    case 'tensorflow':
      if (await tryNative()) return tf.getBackend();
      throw unavailable('tensorflow');
    case 'wasm':
      if (await tryWasm(fastKernels)) return tf.getBackend();
      throw unavailable('wasm');
    case 'cpu':
      if (await tf.setBackend('cpu')) return tf.getBackend();
      throw unavailable('cpu');
    default:
      if (await tryNative()) return tf.getBackend();
      if (await tryWasm(fastKernels)) return tf.getBackend();
      if (await tf.setBackend('cpu')) return tf.getBackend();
      throw unavailable('cpu');
  }
}
