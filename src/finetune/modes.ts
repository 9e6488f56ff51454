/**
 * Private fine-tuning modes of a BERT-family classifier (`model.finetune`): which parameters DP-SGD trains.
 *
 * - `full`: every weight (optionally without the word embeddings).
 * - `top-k`: the last k encoder layers, the pooler (if any) and the head; the embeddings and layers 0..N−k−1 frozen.
 *   Optionally the frozen bottom is run once per example and its outputs cached (see {@link cacheBottomOutputs}).
 * - `lora`: rank-r adapters (src/models/lora.ts) on the target Linear layers (default query, value), the base frozen,
 *   the head trainable — DP-LoRA (Yu et al. 2022, "Differentially private fine-tuning of language models").
 * - `bitfit`: every bias, every LayerNorm γ/β and the head (Ben Zaken et al. 2022; DP: Yu et al. 2022, Bu et al.).
 * - `head`: the classifier only (linear probe); with `cacheBottom` the whole encoder runs once per example and the
 *   probe trains on the cached last hidden states.
 *
 * Every mode's trainable parameters have vectorised per-example rules (Dense on 3-D inputs, LayerNorm, Embedding,
 * LoraDense), so computeClippedGradients needs no per-example loop. Frozen layers (e.g. the word embeddings in every
 * mode but `full`) have no trainable weight, so the DP step calls them as plain layers: no probe, no record, no
 * per-example work.
 *
 * Layer names are the Hugging Face module paths of src/models/bert (`embeddings.word_embeddings`,
 * `encoder.layer.{i}.…`, `pooler.dense`, `classifier`); a second architecture with the same naming scheme works as is.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.ts';
import { LoraDense, isLoraTarget, loraLinearFactory } from '../models/lora.ts';
import type { LinearFactory, LoraFactoryOptions } from '../models/lora.ts';

/** The fine-tuning modes. */
export type FinetuneMode = 'full' | 'top-k' | 'lora' | 'bitfit' | 'head';

/** The fine-tuning modes, in the order the documentation lists them. */
export const FINETUNE_MODES: readonly FinetuneMode[] = ['full', 'top-k', 'lora', 'bitfit', 'head'];

/** `model.finetune`. */
export interface FinetuneConfig {
  /** Which parameters DP-SGD trains. */
  mode: FinetuneMode;
  /** `top-k`: the number k of trainable top encoder layers, 0 ≤ k ≤ N (k = 0: pooler + head). Required for top-k. */
  topK?: number;
  /**
   * `top-k` and `head`: run the frozen bottom (embeddings + layers 0..N−k−1; for `head` all N layers) once per
   * example, without dropout, and train the top model on its cached hidden states. Default false. Memory:
   * examples × T × d float32 values.
   */
  cacheBottom?: boolean;
  /** `lora`: rank, alpha, dropout, targets (default query, value), trainBias. */
  lora?: LoraFactoryOptions;
  /** `full`: also train the word embeddings. Default true. */
  trainWordEmbeddings?: boolean;
}

/** What a mode made trainable. */
export interface TrainableSummary {
  /** The fine-tuning mode. */
  mode: FinetuneMode;
  /** Names of the trainable tf variables (the keys of computeClippedGradients' clippedSum). */
  trainableWeights: string[];
  /** Layers with at least one trainable weight. */
  trainableLayers: string[];
  /** Σ sizes of the trainable weights. */
  trainableParams: number;
  /** Σ sizes of all weights (trainable and frozen, LoRA base included). */
  totalParams: number;
}

const LAYER_INDEX = /^encoder\.layer\.(\d+)\./;
const HEAD = 'classifier';
const POOLER = 'pooler.dense';
const WORD_EMBEDDINGS = 'embeddings.word_embeddings';

/** The encoder layer index of a layer name (`encoder.layer.3.output.dense` → 3), or null outside the encoder. */
export function encoderLayerIndex(name: string): number | null {
  const m = LAYER_INDEX.exec(name);
  return m ? Number(m[1]) : null;
}

/** N, the number of encoder layers, from the layer names (max index + 1; works on full and top models). */
export function countEncoderLayers(model: tf.LayersModel): number {
  let n = 0;
  for (const l of model.layers) {
    const i = encoderLayerIndex(l.name);
    if (i !== null) n = Math.max(n, i + 1);
  }
  return n;
}

/**
 * Checks a `model.finetune` object (before any work).
 * @throws InvalidArgumentError naming the field: unknown mode, topK not an integer in [0, numLayers], fields of
 *   another mode, bad LoRA options.
 */
export function validateFinetuneConfig(config: FinetuneConfig, numLayers: number): void {
  if (config === null || typeof config !== 'object') {
    throw new InvalidArgumentError('model.finetune', config, `an object with mode one of ${FINETUNE_MODES.join(', ')}`);
  }
  if (!FINETUNE_MODES.includes(config.mode)) {
    throw new InvalidArgumentError('model.finetune.mode', config.mode, `one of ${FINETUNE_MODES.join(', ')}`);
  }
  if (config.mode === 'top-k') {
    const k = config.topK;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k > numLayers) {
      throw new InvalidArgumentError('model.finetune.topK', k, `an integer in [0, ${numLayers}] (the encoder has ${numLayers} layers)`);
    }
  } else if (config.topK !== undefined) {
    throw new InvalidArgumentError('model.finetune.topK', config.topK, 'set only with mode top-k');
  }
  if (config.cacheBottom !== undefined) {
    if (config.mode !== 'top-k' && config.mode !== 'head') {
      throw new InvalidArgumentError('model.finetune.cacheBottom', config.cacheBottom, 'set only with mode top-k or head');
    }
    if (typeof config.cacheBottom !== 'boolean') throw new InvalidArgumentError('model.finetune.cacheBottom', config.cacheBottom, 'a boolean');
  }
  if (config.mode !== 'lora' && config.lora !== undefined) {
    throw new InvalidArgumentError('model.finetune.lora', config.lora, 'set only with mode lora');
  }
  if (config.mode === 'lora') {
    loraLinearFactory(config.lora ?? {}); // validates rank, alpha, dropout, targets
    if (config.lora?.targets?.some((t) => isLoraTarget(HEAD, [t]))) {
      throw new InvalidArgumentError('model.finetune.lora.targets', config.lora.targets,
        `free of the head "${HEAD}" (the head trains fully in mode lora)`);
    }
  }
  if (config.mode !== 'full' && config.trainWordEmbeddings !== undefined) {
    throw new InvalidArgumentError('model.finetune.trainWordEmbeddings', config.trainWordEmbeddings, 'set only with mode full');
  }
}

/** The `linear` option for the encoder builder: the LoRA factory in `lora` mode, undefined (plain Dense) otherwise. */
export function linearFactoryFor(config: FinetuneConfig): LinearFactory | undefined {
  return config.mode === 'lora' ? loraLinearFactory(config.lora ?? {}) : undefined;
}

interface WeightOwner extends tf.layers.Layer {
  bias?: unknown;
  beta?: unknown;
  loraA?: unknown;
  loraB?: unknown;
}

type LayerVar = tf.layers.Layer['trainableWeights'][number];

/** Whether weight `w` of `layer` trains under `config` (N encoder layers). */
function trains(layer: WeightOwner, w: LayerVar, config: FinetuneConfig, numLayers: number): boolean {
  const name = layer.name;
  if (name === HEAD) return true;
  const cls = layer.getClassName();
  switch (config.mode) {
    case 'full':
      return name !== WORD_EMBEDDINGS || config.trainWordEmbeddings !== false;
    case 'head':
      return false;
    case 'bitfit':
      return cls === 'LayerNormalization' || w === layer.bias || w === layer.beta;
    case 'lora':
      // LoraDense's frozen base is not among its trainable weights; its bias trains only with lora.trainBias.
      return layer instanceof LoraDense && (w === layer.loraA || w === layer.loraB || (layer.trainBias && w === layer.bias));
    case 'top-k': {
      if (name === POOLER) return true;
      const i = encoderLayerIndex(name);
      return i !== null && i >= numLayers - (config.topK as number);
    }
  }
}

/**
 * Sets the `trainable` flags of a built classifier for a mode and reports what trains. For `lora` the model must
 * have been built with {@link linearFactoryFor}'s factory (LoraDense layers on the targets). For `top-k` with a
 * cached bottom, pass the top model (built from layer N − k): all its layers train.
 *
 * @param numLayers N, the encoder depth (default: from the layer names; pass it for a top model whose lower
 *   layers are absent, to keep `topK` relative to the full encoder).
 * @throws InvalidArgumentError for a bad config (see {@link validateFinetuneConfig}), a model without a
 *   `classifier` layer, `lora` without LoraDense layers, or LoRA targets matching no layer.
 */
export function applyFinetuneMode(model: tf.LayersModel, config: FinetuneConfig, numLayers = countEncoderLayers(model)): TrainableSummary {
  validateFinetuneConfig(config, numLayers);
  if (!model.layers.some((l) => l.name === HEAD)) {
    throw new InvalidArgumentError('model', model.name, `a classifier with a head layer named "${HEAD}"`);
  }
  if (config.mode === 'lora') {
    const adapters = model.layers.filter((l) => l instanceof LoraDense);
    if (adapters.length === 0) {
      throw new InvalidArgumentError('model', model.name, 'built with the LoRA linear factory (linearFactoryFor(config)) for mode lora');
    }
    const targets = config.lora?.targets;
    if (targets) {
      for (const t of targets) {
        if (!adapters.some((l) => isLoraTarget(l.name, [t]))) {
          throw new InvalidArgumentError('model.finetune.lora.targets', t, 'the name of Linear layers of the model');
        }
      }
    }
  }
  model.trainable = true;
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    layer.trainable = true; // resets every weight of the layer to trainable
    const all = layer.trainableWeights;
    const keep = all.map((w) => trains(layer as WeightOwner, w, config, numLayers));
    if (!keep.some(Boolean)) {
      layer.trainable = false;
      continue;
    }
    all.forEach((w, k) => { if (!keep[k]) w.trainable = false; });
  }
  return summarise(model, config.mode);
}

/** The trainable summary of a model as it stands. */
export function summarise(model: tf.LayersModel, mode: FinetuneMode): TrainableSummary {
  const trainable = model.trainableWeights;
  const size = (w: LayerVar) => w.shape.reduce((a: number, b) => a * (b as number), 1);
  return {
    mode,
    trainableWeights: trainable.map((w) => w.name),
    trainableLayers: model.layers.filter((l) => l.trainableWeights.length > 0).map((l) => l.name),
    trainableParams: trainable.reduce((s, w) => s + size(w), 0),
    totalParams: model.weights.reduce((s, w) => s + size(w), 0),
  };
}

/**
 * What builds an encoder classifier: the architecture module (e.g. src/models/bert) adapted to this interface, so
 * the modes are written once for every architecture.
 */
export interface EncoderBuilder {
  /** N, the number of encoder layers. */
  readonly numLayers: number;
  /**
   * The classifier (fromLayer 0: inputs [input_ids, token_type_ids, attention_mask]) or its top from layer s
   * (inputs [hidden_states, attention_mask]), every Linear built by `linear` when given.
   */
  build(options: { fromLayer?: number; linear?: LinearFactory }): tf.LayersModel;
  /** The bottom: the full model's inputs → hidden states after layer toLayer − 1 (after the embeddings for 0). */
  buildBottom(options: { toLayer: number }): tf.LayersModel;
  /** Fills a (full, top or bottom) model with the pre-trained weights; layers the checkpoint lacks keep their init. */
  loadWeights(model: tf.LayersModel): void;
}

/** A classifier prepared for private fine-tuning. */
export interface FinetuneModel {
  /** The model DP-SGD trains (the top model when the bottom is cached). */
  model: tf.LayersModel;
  /** The frozen bottom (top-k / head with cacheBottom), else null. Run it with {@link cacheBottomOutputs}. */
  bottom: tf.LayersModel | null;
  /** What is trainable and how many parameters. */
  summary: TrainableSummary;
}

/**
 * Builds the classifier for a mode from an {@link EncoderBuilder}, loads the pre-trained weights and sets the
 * trainable flags. `top-k` with `cacheBottom` returns the top model (layers N−k..N−1, pooler, head) and the frozen
 * bottom model (embeddings, layers 0..N−k−1); `head` with `cacheBottom` the head-only top model (pooling, frozen
 * pooler, classifier) and the whole encoder as the bottom.
 *
 * @throws InvalidArgumentError for a bad config (before anything is built).
 */
export function createFinetuneModel(builder: EncoderBuilder, config: FinetuneConfig): FinetuneModel {
  validateFinetuneConfig(config, builder.numLayers);
  const N = builder.numLayers;
  if ((config.mode === 'top-k' || config.mode === 'head') && config.cacheBottom) {
    const s = config.mode === 'head' ? N : N - (config.topK as number);
    const bottom = builder.buildBottom({ toLayer: s });
    builder.loadWeights(bottom);
    bottom.trainable = false;
    const model = builder.build({ fromLayer: s });
    builder.loadWeights(model);
    return { model, bottom, summary: applyFinetuneMode(model, config, N) };
  }
  const model = builder.build({ linear: linearFactoryFor(config) });
  builder.loadWeights(model);
  return { model, bottom: null, summary: applyFinetuneMode(model, config, N) };
}

/**
 * Runs the frozen bottom once over a dataset, in batches of `batchSize`, without gradients (inference mode), and
 * returns the top model's inputs [hidden_states [N, T, d], attention_mask [N, T]] (new tensors; the caller disposes).
 *
 * Why caching keeps the DP guarantee: the bottom's weights are the public pre-trained ones and never change, so the
 * bottom is a fixed, data-independent function h = f(x_i) applied to each example on its own. DP-SGD on the top
 * parameters θ sees example i only through ∇_θ ℓ(top_θ(f(x_i)), y_i), which is clipped per example and noised
 * exactly as if the top were trained on inputs f(x_i); adding or removing one example changes one cached row, i.e.
 * the neighbouring-dataset relation is the same before and after the fixed per-example map, so the (ε, δ) of the
 * accountant holds for the released top parameters. (It would not hold if the bottom were trained, or if a
 * preprocessing step mixed examples, e.g. batch statistics; neither happens here: the bottom runs in inference mode,
 * LayerNorm normalises within a token.) The noise and clipping apply to the top's gradients only; the bottom has
 * none. The cost is memory: examples × T × d float32 values (e.g. 4,000 × 64 × 384 × 4 B ≈ 393 MB).
 *
 * @throws InvalidArgumentError for a batchSize that is not a positive integer, or inputs of unequal length.
 */
export function cacheBottomOutputs(bottom: tf.LayersModel, inputs: tf.Tensor[], batchSize = 32): [tf.Tensor, tf.Tensor] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidArgumentError('batchSize', batchSize, 'a positive integer');
  if (inputs.length !== bottom.inputs.length) {
    throw new InvalidArgumentError('inputs', inputs.length, `${bottom.inputs.length} tensors (the bottom model's inputs)`);
  }
  const n = inputs[0].shape[0];
  if (inputs.some((t) => t.shape[0] !== n)) throw new InvalidArgumentError('inputs', inputs.map((t) => t.shape), 'tensors with equal first dimensions');
  const maskIndex = bottom.inputs.findIndex((s) => s.name.startsWith('attention_mask'));
  if (maskIndex < 0) throw new InvalidArgumentError('bottom', bottom.name, 'a model with an attention_mask input');
  const parts: tf.Tensor[] = [];
  try {
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      parts.push(tf.tidy(() => {
        const batch = inputs.map((t) => tf.slice(t, start, size));
        return bottom.apply(batch, { training: false }) as tf.Tensor;
      }));
    }
    const hidden = parts.length === 1 ? parts[0].clone() : tf.concat(parts, 0);
    return [hidden, inputs[maskIndex].clone()];
  } finally {
    tf.dispose(parts);
  }
}

/**
 * The merged-weights hook for saving (saveModelDir's `hooks.mergedWeights`): for a LoraDense, its kernel with the
 * adapter folded in (W + (alpha/r)·A·B, [in, out]) and its bias; null for any other layer (saved as is). The caller
 * (the saver) disposes the returned tensors.
 */
export function loraMergedWeights(layer: tf.layers.Layer): { kernel: tf.Tensor; bias?: tf.Tensor } | null {
  if (!(layer instanceof LoraDense)) return null;
  const kernel = layer.merge();
  return layer.bias ? { kernel, bias: layer.bias.read().clone() } : { kernel };
}
