/**
 * {@link EncoderBuilder}s from the architecture registry (src/models/registry.ts): any registered architecture
 * (BERT today) with a config and, optionally, a checkpoint (a model directory's tensors).
 */
import type * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.ts';
import type { ArchitectureEntry, EncoderConfig } from '../models/registry.ts';
import type { BertPooling } from '../models/bert/model.ts';
import type { ModelDir } from '../model-dir/load.ts';
import type { StoredTensor } from '../model-dir/safetensors.ts';
import { loadWeightsInto } from '../model-dir/weights.ts';
import type { EncoderBuilder } from './modes.ts';

/** Build options shared by the full, top and bottom models. */
export interface ClassifierBuildOptions {
  /** Classes of the `classifier` head (≥ 1). */
  numLabels: number;
  /** Default 'mean' (or what the directory's config records). */
  pooling?: BertPooling;
  /** Sequence length T; default null (any T ≤ max positions). */
  sequenceLength?: number | null;
  /** Dropout layers as configured (default true; they run in training mode during the DP step). */
  dropout?: boolean;
}

/**
 * A builder for `architecture` with `config`; `tensors` (a checkpoint, PyTorch layout, Hugging Face names) fill every
 * model it builds — null leaves the builder's own initialisation (random weights).
 * @throws InvalidArgumentError for numLabels not a positive integer.
 */
export function architectureBuilder<C extends EncoderConfig>(
  architecture: ArchitectureEntry<C>, config: C, options: ClassifierBuildOptions,
  tensors: ReadonlyMap<string, StoredTensor> | null = null, file = 'model.safetensors',
): EncoderBuilder {
  if (options === null || typeof options !== 'object' || !Number.isInteger(options.numLabels) || options.numLabels < 1) {
    throw new InvalidArgumentError('numLabels', options?.numLabels, 'a positive integer (classes of the head)');
  }
  const shared = { sequenceLength: options.sequenceLength, dropout: options.dropout };
  const entry = architecture as unknown as ArchitectureEntry;
  return {
    numLayers: config.numHiddenLayers,
    build: ({ fromLayer, linear }) => architecture.build(config, {
      ...shared, numLabels: options.numLabels, pooling: options.pooling ?? config.pooling ?? 'mean', fromLayer, linear,
    }),
    buildBottom: ({ toLayer }) => architecture.buildBottom(config, { ...shared, toLayer }),
    loadWeights(model: tf.LayersModel) {
      if (tensors) loadWeightsInto(model, tensors, entry, file);
    },
  };
}

/** A builder for a loaded model directory (its architecture, config and checkpoint). */
export function modelDirBuilder(dir: ModelDir, options: ClassifierBuildOptions): EncoderBuilder {
  return architectureBuilder(dir.architecture, dir.config, options, dir.tensors, `${dir.path}/model.safetensors`);
}
