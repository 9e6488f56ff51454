/**
 * Checkpoint tensors ↔ model weights, by layer name (the architecture's map, src/models/registry.ts). A weight is
 * addressed by its layer and its local name (the last segment of the tfjs weight name: kernel, bias, gamma, beta,
 * embeddings), so substitute layers (LoRA) that keep `kernel`/`bias` are filled too, and their other weights are left.
 */
import * as tf from '@tensorflow/tfjs';
import type { ArchitectureEntry } from '../models/registry.ts';
import { ModelDirError } from './errors.ts';
import type { StoredTensor } from './safetensors.ts';

/** What loadWeightsInto did. */
export interface WeightLoadReport {
  /** tfjs weight names filled from the checkpoint. */
  loaded: string[];
  /** tfjs weight names with no checkpoint tensor (left at their initialiser: a new head, LoRA factors). */
  missing: string[];
  /** Checkpoint tensors no weight of this model took (other layers of a split model, buffers such as position_ids). */
  unused: string[];
}

/** A layer weight as tfjs-layers' LayerVariable exposes it. */
interface LayerWeight {
  readonly originalName: string;
  readonly name: string;
  readonly shape: number[];
  read(): tf.Tensor;
  write(value: tf.Tensor): unknown;
}

/** The local name of a weight ('encoder.layer.0.attention.self.query/kernel' → 'kernel'). */
export function localWeightName(w: { originalName: string }): string {
  const parts = w.originalName.split('/');
  return parts[parts.length - 1].replace(/_\d+$/, '');
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Fills the model's weights from checkpoint tensors (PyTorch layout; Linear weights transposed once here).
 * Works on a full, top or bottom model: only the layers present are filled.
 * @throws ModelDirError (ERR_MODEL_SHAPE) naming the tensor when its shape does not match the layer's weight.
 */
export function loadWeightsInto(
  model: tf.LayersModel, tensors: ReadonlyMap<string, StoredTensor>, architecture: ArchitectureEntry, file = 'model.safetensors',
): WeightLoadReport {
  const report: WeightLoadReport = { loaded: [], missing: [], unused: [] };
  const used = new Set<string>();
  for (const layer of model.layers) {
    for (const w of layer.weights as unknown as LayerWeight[]) {
      const where = architecture.locate(layer.name, localWeightName(w));
      const name = where?.names.find((n) => tensors.has(n));
      if (!where || name === undefined) { report.missing.push(w.name); continue; }
      const stored = tensors.get(name)!;
      const expected = where.transpose ? [...w.shape].reverse() : w.shape;
      if (!sameShape(stored.shape, expected)) {
        throw new ModelDirError('ERR_MODEL_SHAPE', file,
          `shape ${JSON.stringify(stored.shape)} does not match layer ${layer.name} (${localWeightName(w)} needs ${JSON.stringify(expected)}${where.transpose ? ' as [out, in]' : ''})`,
          { tensor: name });
      }
      tf.tidy(() => {
        let t = tf.tensor(stored.values, stored.shape, 'float32');
        if (where.transpose) t = tf.transpose(t);
        w.write(t);
      });
      used.add(name);
      report.loaded.push(w.name);
    }
  }
  for (const name of tensors.keys()) if (!used.has(name)) report.unused.push(name);
  return report;
}

/** Per-Linear override of what is saved (LoRA: the merged W + scale·BA), see {@link collectWeights}. */
export type MergedWeightsHook = (layer: tf.layers.Layer) => { kernel: tf.Tensor; bias?: tf.Tensor } | null | undefined;

/**
 * The model's weights under checkpoint names, PyTorch layout (Linear kernels transposed back to [out, in]), float32.
 * `hasHead` (default: this model has a `classifier` layer) picks the names of a model with a head (all models of a
 * split must agree). `mergedWeights`, when given, is asked for every layer that has a kernel; tensors it returns are disposed here.
 */
export function collectWeights(
  model: tf.LayersModel, architecture: ArchitectureEntry, mergedWeights?: MergedWeightsHook,
  hasHead = model.layers.some((l) => l.name === 'classifier'),
): Map<string, { shape: number[]; values: Float32Array }> {
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  const put = (layerName: string, local: string, t: tf.Tensor): void => {
    const name = architecture.saveName(layerName, local, hasHead);
    if (name === null) return;
    const transpose = architecture.locate(layerName, local)?.transpose ?? false;
    const stored = tf.tidy(() => (transpose ? tf.transpose(t) : tf.clone(t)));
    out.set(name, { shape: stored.shape, values: Float32Array.from(stored.dataSync() as Float32Array) });
    stored.dispose();
  };
  for (const layer of model.layers) {
    const weights = layer.weights as unknown as LayerWeight[];
    const hasKernel = weights.some((w) => localWeightName(w) === 'kernel');
    const merged = hasKernel && mergedWeights ? mergedWeights(layer) : null;
    if (merged) {
      try {
        put(layer.name, 'kernel', merged.kernel);
        const bias = merged.bias ?? weights.find((w) => localWeightName(w) === 'bias')?.read();
        if (bias) put(layer.name, 'bias', bias);
      } finally {
        merged.kernel.dispose();
        merged.bias?.dispose();
      }
      continue;
    }
    for (const w of weights) {
      const local = localWeightName(w);
      if (['kernel', 'bias', 'gamma', 'beta', 'embeddings'].includes(local)) put(layer.name, local, w.read());
    }
  }
  return out;
}
