/**
 * A Hugging Face–layout model directory: config.json, model.safetensors, tokenizer.json (+ tokenizer_config.json).
 * Everything is checked before a model is built: missing files, an unknown architecture, tensors that do not match
 * config.json each raise a ModelDirError naming the file (and tensor).
 */
import { readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.ts';
import { findArchitecture, type ArchitectureEntry, type EncoderConfig } from '../models/registry.ts';
import type { BertBuildOptions } from '../models/bert/model.ts';
import { ModelDirError } from './errors.ts';
import { readSafetensors, type StoredTensor } from './safetensors.ts';
import { BertTokenizer } from './tokenizer.ts';
import { loadWeightsInto, type WeightLoadReport } from './weights.ts';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

/** A loaded model directory (weights as stored, not yet in a model). */
export interface ModelDir {
  /** Absolute path of the directory. */
  path: string;
  /** The registered architecture that reads this config (e.g. BERT). */
  architecture: ArchitectureEntry;
  /** The parsed config.json. */
  config: EncoderConfig;
  /** Checkpoint tensors by their stored names (PyTorch layout). */
  tensors: Map<string, StoredTensor>;
  /** The tokenizer from tokenizer.json. */
  tokenizer: BertTokenizer;
  /** tokenizer_config.json ({} if absent). */
  tokenizerConfig: Record<string, unknown>;
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ModelDirError('ERR_MODEL_FILE_MISSING', path, `cannot read (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelDirError('ERR_MODEL_CONFIG', path, `is not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

function requireFile(dir: string, file: string, hint = ''): string {
  const path = join(dir, file);
  if (!existsSync(path)) throw new ModelDirError('ERR_MODEL_FILE_MISSING', path, `missing: a model directory needs ${file}${hint}`);
  return path;
}

/** Checks the checkpoint against config.json before any model is built. */
function checkTensors(arch: ArchitectureEntry, config: EncoderConfig, tensors: Map<string, StoredTensor>, file: string, configFile: string): void {
  for (const [name, shape] of arch.requiredTensors(config)) {
    const found = arch.checkpointPrefixes.map((prefix) => `${prefix}${name}`).find((n) => tensors.has(n));
    const stored = found !== undefined ? tensors.get(found) : undefined;
    if (!stored) throw new ModelDirError('ERR_MODEL_SHAPE', file, `missing, but ${configFile} (num_hidden_layers ${config.numHiddenLayers}) needs it`, { tensor: name });
    if (stored.shape.length !== shape.length || stored.shape.some((s, i) => s !== shape[i])) {
      throw new ModelDirError('ERR_MODEL_SHAPE', file, `shape ${JSON.stringify(stored.shape)} does not match ${configFile}, which implies ${JSON.stringify(shape)}`, { tensor: found ?? name });
    }
    if (stored.values instanceof Int32Array) throw new ModelDirError('ERR_MODEL_SHAPE', file, `dtype ${stored.dtype} is not a floating-point weight`, { tensor: found ?? name });
  }
}

/**
 * Reads and checks a model directory.
 * @throws InvalidArgumentError if `dir` is not a string; ModelDirError naming the file: ERR_MODEL_FILE_MISSING
 *   (directory, config.json, model.safetensors, tokenizer.json), ERR_MODEL_ARCHITECTURE (not a supported encoder),
 *   ERR_MODEL_CONFIG (bad config field), ERR_SAFETENSORS (malformed weights), ERR_MODEL_SHAPE (tensor vs config).
 */
export async function loadModelDir(dir: string): Promise<ModelDir> {
  if (typeof dir !== 'string' || dir === '') throw new InvalidArgumentError('model.path', dir, 'a directory path');
  const path = resolve(dir);
  const st = await stat(path).catch(() => null);
  if (!st || !st.isDirectory()) throw new ModelDirError('ERR_MODEL_FILE_MISSING', path, 'is not a directory (expected a Hugging Face model directory)');
  const configFile = requireFile(path, CONFIG_FILE);
  const weightsFile = requireFile(path, WEIGHTS_FILE,
    existsSync(join(path, 'pytorch_model.bin')) ? ' (pytorch_model.bin is not read: convert it to safetensors)' : '');
  const tokenizerFile = requireFile(path, TOKENIZER_FILE);
  const rawConfig = await readJson(configFile);
  const architecture = findArchitecture(rawConfig, configFile);
  const config = architecture.parseConfig(rawConfig, configFile);
  const tokenizerJson = await readJson(tokenizerFile);
  const tokenizerConfigPath = join(path, TOKENIZER_CONFIG_FILE);
  const tokenizerConfig = existsSync(tokenizerConfigPath) ? await readJson(tokenizerConfigPath) as Record<string, unknown> : {};
  const tokenizer = new BertTokenizer(tokenizerJson, tokenizerConfig, { maxPositions: config.maxPositionEmbeddings, file: tokenizerFile });
  const { tensors } = await readSafetensors(weightsFile);
  checkTensors(architecture, config, tensors, weightsFile, configFile);
  return { path, architecture, config, tensors, tokenizer, tokenizerConfig };
}

/** A model built from a directory with its weights loaded. */
export interface LoadedEncoder {
  /** The directory read. */
  dir: ModelDir;
  /** The built model with the checkpoint's weights loaded. */
  model: tf.LayersModel;
  /** Which weights were loaded from the checkpoint, left fresh (e.g. a new head) or unused. */
  report: WeightLoadReport;
}

/**
 * Builds the directory's architecture with `options` and loads the checkpoint into it. A head (numLabels) or pooling
 * saved by ewtune (config `ewtune.pooling`, `id2label`) is the default when the options do not say.
 * @throws as {@link loadModelDir}, the builder (InvalidArgumentError) and loadWeightsInto (ERR_MODEL_SHAPE).
 */
export async function loadEncoder(dirOrPath: string | ModelDir, options: BertBuildOptions = {}): Promise<LoadedEncoder> {
  const dir = typeof dirOrPath === 'string' ? await loadModelDir(dirOrPath) : dirOrPath;
  const c = dir.config;
  const model = dir.architecture.build(c, {
    ...(c.pooling ? { pooling: c.pooling } : {}),
    ...(c.numLabels && options.output !== 'hidden' && options.output !== 'pooled' ? { numLabels: c.numLabels } : {}),
    ...options,
  });
  const report = loadWeightsInto(model, dir.tensors, dir.architecture, join(dir.path, WEIGHTS_FILE));
  return { dir, model, report };
}
