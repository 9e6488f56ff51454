/**
 * Backend selection for ewtune.
 *
 * `initBackend('auto')` prefers the native TensorFlow backend when `@tensorflow/tfjs-node-gpu` or
 * `@tensorflow/tfjs-node` is installed (optional peers set up by `npm run setup:native`, see src/setup/native.ts;
 * detected at run time by dynamic import; nothing on that path assumes cpu or wasm) — the GPU build first when a GPU
 * is visible — else `@tensorflow/tfjs-backend-wasm` on one thread with the fast training kernels of
 * ./wasm-kernels.ts, else the pure-JS cpu backend. Returns the name of the active backend; {@link chooseBackend}
 * also says why ({@link BackendChoice}).
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { EwtuneError, InvalidArgumentError } from '../errors.ts';
import { gpuVisible } from '../setup/native.ts';
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

/** The native packages: the GPU build is preferred when a GPU is visible. */
const NATIVE_GPU_PACKAGE = '@tensorflow/tfjs-node-gpu';
const NATIVE_CPU_PACKAGE = '@tensorflow/tfjs-node';
const SETUP_HINT = 'run `npm run setup:native` (or `npx ewtune setup native [--gpu]`)';

/** Which backend {@link chooseBackend} selected, and why (for the run's first log line and its params). */
export interface BackendChoice {
  /** The active backend: 'tensorflow', 'wasm' or 'cpu'. */
  readonly name: 'tensorflow' | 'wasm' | 'cpu';
  /** The preference it was chosen for. */
  readonly preferred: BackendPreference;
  /** Where the work runs: 'gpu' only for the native GPU build with a visible GPU. */
  readonly device: 'gpu' | 'cpu';
  /** The npm package providing it (the native packages only). */
  readonly nativePackage?: string;
  /** One line: why this backend (and why not the ones before it in the 'auto' order). */
  readonly reason: string;
}

let lastChoice: BackendChoice | undefined;

/** The last choice made by {@link chooseBackend} / {@link initBackend} in this process, if any. */
export function lastBackendChoice(): BackendChoice | undefined {
  return lastChoice;
}

const requireHere = createRequire(import.meta.url);

function installed(name: string): boolean {
  try {
    requireHere.resolve(`${name}/package.json`);
    return true;
  } catch {
    return false;
  }
}

function firstLineOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0].slice(0, 200);
}

/** The native package already loaded in this process (two native packages cannot both register 'tensorflow'). */
let loadedNative: string | undefined;

/**
 * Load the native backend: tfjs-node-gpu when it is installed and a GPU is visible, else tfjs-node, else
 * tfjs-node-gpu on the CPU. Returns the package and device, or the reason it is unavailable.
 */
async function tryNative(): Promise<{ ok: true; nativePackage: string; device: 'gpu' | 'cpu'; detail: string } | { ok: false; reason: string }> {
  const gpuInstalled = installed(NATIVE_GPU_PACKAGE);
  const cpuInstalled = installed(NATIVE_CPU_PACKAGE);
  if (!gpuInstalled && !cpuInstalled) return { ok: false, reason: `native backend not set up (${NATIVE_CPU_PACKAGE} not installed; ${SETUP_HINT})` };
  const gpu = gpuInstalled ? gpuVisible() : { visible: false, reason: `${NATIVE_GPU_PACKAGE} not installed` };
  const order: string[] = [];
  if (gpuInstalled && gpu.visible) order.push(NATIVE_GPU_PACKAGE);
  if (cpuInstalled) order.push(NATIVE_CPU_PACKAGE);
  if (gpuInstalled && !gpu.visible) order.push(NATIVE_GPU_PACKAGE);
  const failures: string[] = [];
  // libtensorflow's INFO lines (oneDNN, CPU features) on stderr at load; warnings and errors still print.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
  for (const name of loadedNative !== undefined ? [loadedNative] : order) {
    try {
      await import(name);
      loadedNative = name;
    } catch (err) {
      failures.push(`${name} failed to load: ${firstLineOf(err)}`);
      continue;
    }
    if (tf.findBackend('tensorflow') == null) {
      failures.push(`${name} registered 'tensorflow' on another copy of @tensorflow/tfjs-core`);
      continue;
    }
    try {
      if (!(await tf.setBackend('tensorflow'))) {
        failures.push(`${name}: backend 'tensorflow' did not initialise`);
        continue;
      }
    } catch (err) {
      failures.push(`${name}: ${firstLineOf(err)}`);
      continue;
    }
    const device = name === NATIVE_GPU_PACKAGE && gpu.visible ? 'gpu' : 'cpu';
    const detail = name === NATIVE_GPU_PACKAGE ? (gpu.visible ? `GPU: ${gpu.reason}` : `no GPU visible (${gpu.reason}), TensorFlow on CPU`)
      : gpuInstalled ? `${NATIVE_GPU_PACKAGE} not used: ${gpu.reason}` : `CPU build; ${NATIVE_GPU_PACKAGE} not set up`;
    return { ok: true, nativePackage: name, device, detail };
  }
  return { ok: false, reason: `${failures.join('; ')} (${SETUP_HINT})` };
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
 * Select and initialise a backend; resolves to its name ('tensorflow', 'wasm' or 'cpu'). Same as
 * {@link chooseBackend}, without the reason.
 */
export async function initBackend(preferred: BackendPreference = 'auto', options: BackendOptions = {}): Promise<string> {
  return (await chooseBackend(preferred, options)).name;
}

/**
 * Select and initialise a backend and say why. An explicitly requested backend that cannot be initialised is an
 * error (EwtuneError ERR_BACKEND_UNAVAILABLE; for 'tensorflow' the message says what is missing and what to run);
 * 'auto' falls back tensorflow (the GPU build when set up and a GPU is visible) → wasm → cpu. The wasm and cpu
 * backends work whatever state the native one is in. Throws InvalidArgumentError for an unknown preference.
 */
export async function chooseBackend(preferred: BackendPreference = 'auto', options: BackendOptions = {}): Promise<BackendChoice> {
  if (!['auto', 'tensorflow', 'wasm', 'cpu'].includes(preferred)) {
    throw new InvalidArgumentError('preferred', preferred, "one of 'auto', 'tensorflow', 'wasm', 'cpu'");
  }
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options', options, 'an object');
  const fastKernels = options.fastKernels ?? true;
  if (typeof fastKernels !== 'boolean') throw new InvalidArgumentError('options.fastKernels', fastKernels, 'a boolean');
  const unavailable = (name: string, why = '') => new EwtuneError('ERR_BACKEND_UNAVAILABLE',
    `backend '${name}' could not be initialised${why ? `: ${why}` : ''}`);
  const record = (choice: BackendChoice): BackendChoice => {
    lastChoice = choice;
    return choice;
  };
  if (preferred === 'tensorflow' || preferred === 'auto') {
    const native = await tryNative();
    if (native.ok) {
      return record({
        name: 'tensorflow', preferred, device: native.device, nativePackage: native.nativePackage,
        reason: `${preferred === 'auto' ? 'auto: ' : ''}${native.nativePackage} (${native.detail})`,
      });
    }
    if (preferred === 'tensorflow') throw unavailable('tensorflow', native.reason);
    if (await tryWasm(fastKernels)) {
      return record({ name: 'wasm', preferred, device: 'cpu', reason: `auto: ${native.reason}; wasm${fastKernels ? ' with fast kernels' : ''}` });
    }
    if (await tf.setBackend('cpu')) {
      return record({ name: 'cpu', preferred, device: 'cpu', reason: `auto: ${native.reason}; wasm did not initialise; pure-JS cpu` });
    }
    throw unavailable('cpu');
  }
  if (preferred === 'wasm') {
    if (await tryWasm(fastKernels)) return record({ name: 'wasm', preferred, device: 'cpu', reason: `requested wasm${fastKernels ? ' with fast kernels' : ''}` });
    throw unavailable('wasm');
  }
  if (await tf.setBackend('cpu')) return record({ name: 'cpu', preferred, device: 'cpu', reason: 'requested cpu' });
  throw unavailable('cpu');
}
