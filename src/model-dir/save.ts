/**
 * Saves a (fine-tuned) encoder as a Hugging Face–layout model directory that ewtune (loadModelDir / loadEncoder) and
 * Hugging Face tools read: config.json, model.safetensors (HF names, Linear weights [out, in], F32; with a head the
 * names of BertForSequenceClassification: `bert.` prefix and `classifier.*`), the tokenizer files (and LICENSE /
 * NOTICE) copied from the source directory, and privacy.json as the caller gives it.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.ts';
import type { ArchitectureEntry, EncoderConfig } from '../models/registry.ts';
import { ModelDirError } from './errors.ts';
import { CONFIG_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE } from './load.ts';
import { writeSafetensors, type TensorToWrite } from './safetensors.ts';
import { collectWeights, type MergedWeightsHook } from './weights.ts';

/** privacy.json's file name. */
export const PRIVACY_FILE = 'privacy.json';

/** Files copied from the source directory when present (tokenizer, licence record). */
const COPIED_FILES = [TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, 'vocab.txt', 'special_tokens_map.json', 'LICENSE', 'NOTICE'];

/** Hooks of {@link saveModelDir}. */
export interface SaveHooks {
  /**
   * Asked for every layer with a kernel: return the [in, out] kernel (and bias) to save instead of the layer's own,
   * e.g. LoRA's merged W + scale·B·A; null/undefined saves the layer's weights. Returned tensors are disposed by the saver.
   */
  mergedWeights?: MergedWeightsHook;
}

/** What to save. */
export interface SaveModelOptions {
  /** The model, or the models of a split (bottom + top): every layer's weights are saved under its HF name. */
  model: tf.LayersModel | readonly tf.LayersModel[];
  /** The config the model was built from (config.json is written from it). */
  config: EncoderConfig;
  /** The architecture that names and lays out the weights (e.g. BERT). */
  architecture: ArchitectureEntry;
  /** Directory whose tokenizer.json (+ tokenizer_config.json, vocab.txt, LICENSE, NOTICE) is copied. */
  tokenizerFrom: string;
  /** Pooling the model uses (recorded as config `ewtune.pooling`). */
  pooling: 'mean' | 'cls';
  /** Class names of the head (id2label), default LABEL_0…; only with a `classifier` layer. */
  labels?: readonly string[];
  /** Written to privacy.json as given (the final ε, δ, σ, q, steps, accountant of the run); omitted if undefined. */
  privacy?: Record<string, unknown>;
  /** Hooks that change what is saved (e.g. LoRA adapters merged into the base kernels). */
  hooks?: SaveHooks;
}

/** The written directory and its files. */
export interface SavedModelDir {
  path: string;
  files: string[];
}

/**
 * Writes the model directory `outDir` (created if needed; files of the same names are replaced).
 * @throws InvalidArgumentError naming the option; ModelDirError (ERR_MODEL_FILE_MISSING) if tokenizerFrom has no
 *   tokenizer.json, (ERR_MODEL_SHAPE) if the models do not hold every tensor config.json implies.
 */
export async function saveModelDir(outDir: string, options: SaveModelOptions): Promise<SavedModelDir> {
  if (typeof outDir !== 'string' || outDir === '') throw new InvalidArgumentError('outDir', outDir, 'a directory path');
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options', options, 'an object');
  const models = Array.isArray(options.model) ? options.model as readonly tf.LayersModel[] : [options.model as tf.LayersModel];
  if (models.length === 0) throw new InvalidArgumentError('model', options.model, 'a model or a non-empty list of models');
  if (options.pooling !== 'mean' && options.pooling !== 'cls') throw new InvalidArgumentError('pooling', options.pooling, "'mean' or 'cls'");
  if (options.privacy !== undefined && (options.privacy === null || typeof options.privacy !== 'object')) {
    throw new InvalidArgumentError('privacy', options.privacy, 'an object (written to privacy.json)');
  }
  const source = resolve(options.tokenizerFrom);
  if (!existsSync(join(source, TOKENIZER_FILE))) {
    throw new ModelDirError('ERR_MODEL_FILE_MISSING', join(source, TOKENIZER_FILE), 'missing: tokenizerFrom must be a directory with tokenizer.json');
  }
  const arch = options.architecture;
  const weights = new Map<string, TensorToWrite>();
  let numLabels = 0;
  for (const model of models) {
    const head = model.layers.find((l) => l.name === 'classifier');
    if (head) numLabels = (head.getWeights()[0].shape[1] as number);
  }
  const hasHead = numLabels > 0;
  for (const model of models) {
    for (const [name, w] of collectWeights(model, arch, options.hooks?.mergedWeights, hasHead)) weights.set(name, { dtype: 'F32', ...w });
  }
  const prefix = hasHead ? arch.checkpointPrefixes.find((p) => p !== '') ?? '' : '';
  for (const name of arch.requiredTensors(options.config).keys()) {
    if (!weights.has(`${prefix}${name}`)) {
      throw new ModelDirError('ERR_MODEL_SHAPE', join(resolve(outDir), WEIGHTS_FILE), 'no layer of the given model(s) holds it (pass every model of a split)', { tensor: name });
    }
  }
  if (options.labels !== undefined && (!hasHead || options.labels.length !== numLabels)) {
    throw new InvalidArgumentError('labels', options.labels, hasHead ? `${numLabels} class names (the head's units)` : 'absent for a model without a classifier');
  }

  const config: Record<string, unknown> = { ...arch.configToJson(options.config), architectures: [arch.savedArchitecture(hasHead)] };
  delete config.id2label;
  delete config.label2id;
  delete config.num_labels;
  if (hasHead) {
    const labels = options.labels ?? Array.from({ length: numLabels }, (_, i) => `LABEL_${i}`);
    config.id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
    config.label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
  }
  config.ewtune = { pooling: options.pooling, headActivation: hasHead ? 'softmax' : null };

  const path = resolve(outDir);
  await mkdir(path, { recursive: true });
  const files: string[] = [];
  await writeFile(join(path, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
  files.push(CONFIG_FILE);
  await writeSafetensors(join(path, WEIGHTS_FILE), weights, { format: 'pt' });
  files.push(WEIGHTS_FILE);
  for (const f of COPIED_FILES) {
    if (existsSync(join(source, f)) && resolve(source) !== path) { await copyFile(join(source, f), join(path, f)); files.push(f); }
  }
  if (options.privacy !== undefined) {
    await writeFile(join(path, PRIVACY_FILE), `${JSON.stringify(options.privacy, null, 2)}\n`);
    files.push(PRIVACY_FILE);
  }
  return { path, files };
}
