/**
 * Registry of encoder architectures: config.json (`model_type` / `architectures`) → config parser, builders and the
 * checkpoint weight-name map. A second architecture (e.g. DistilBERT) is one new file exporting an
 * {@link ArchitectureEntry} beside ./bert/architecture.ts, plus one line in {@link ARCHITECTURES}.
 */
import type * as tf from '@tensorflow/tfjs';
import { ModelDirError } from '../model-dir/errors.ts';
import { BERT_ARCHITECTURE } from './bert/architecture.ts';
import type { BertBottomOptions, BertBuildOptions } from './bert/model.ts';

/** The fields every encoder config has (architecture configs extend it). */
export interface EncoderConfig {
  /** `model_type` of config.json. */
  modelType: string;
  /** Model width d. */
  hiddenSize: number;
  /** Number of encoder layers N. */
  numHiddenLayers: number;
  /** Largest sequence length. */
  maxPositionEmbeddings: number;
  /** Labels of a saved classification head, if any. */
  numLabels: number | undefined;
  /** Pooling recorded by ewtune at save time, if any. */
  pooling: 'mean' | 'cls' | undefined;
  /** config.json as read. */
  raw: Record<string, unknown>;
}

/** Where a model weight lives in a checkpoint. */
export interface CheckpointLocation {
  /** Names to try, in order (e.g. with and without the `bert.` prefix). */
  names: string[];
  /** Whether the stored tensor is a PyTorch Linear weight [out, in] (transposed to tfjs's [in, out]). */
  transpose: boolean;
}

/** One architecture. */
export interface ArchitectureEntry<C extends EncoderConfig = EncoderConfig> {
  /** Short name ('bert'). */
  name: string;
  /** `model_type` values handled. */
  modelTypes: readonly string[];
  /** `architectures` entries handled (HF class names). */
  architectures: readonly string[];
  /** Parses and validates config.json. @throws ModelDirError naming the file and field. */
  parseConfig(json: unknown, file: string): C;
  /** Serialises a config back (fields not understood are kept). */
  configToJson(config: C): Record<string, unknown>;
  /**
   * Builds the full model (or the top from `options.fromLayer`) for `config`; throws InvalidArgumentError for invalid options.
   */
  build(config: C, options?: BertBuildOptions): tf.LayersModel;
  /** Builds the frozen bottom (embeddings and layers before `options.toLayer`) whose outputs feed the top model. */
  buildBottom(config: C, options: BertBottomOptions): tf.LayersModel;
  /** The checkpoint tensor of a layer's weight (local name: kernel, bias, gamma, beta, embeddings), or null. */
  locate(layerName: string, localWeight: string): CheckpointLocation | null;
  /** The name to save a layer's weight under (`hasHead`: the model has a classifier, HF ...ForSequenceClassification). */
  saveName(layerName: string, localWeight: string, hasHead: boolean): string | null;
  /** Prefixes a checkpoint may put before the names of {@link requiredTensors} ('' and 'bert.' for BERT). */
  checkpointPrefixes: readonly string[];
  /** Tensors (unprefixed names) a checkpoint must hold for the config, with their stored shapes. */
  requiredTensors(config: C): Map<string, number[]>;
  /** HF `architectures` value to save (with / without a classification head). */
  savedArchitecture(hasHead: boolean): string;
}

/** Known architectures, in lookup order. */
export const ARCHITECTURES: readonly ArchitectureEntry[] = [BERT_ARCHITECTURE as unknown as ArchitectureEntry];

/**
 * The architecture of a config.json object.
 * @throws ModelDirError (ERR_MODEL_ARCHITECTURE) naming the file, the model_type / architectures found and the supported ones.
 */
export function findArchitecture(json: unknown, file: string): ArchitectureEntry {
  const raw = (json !== null && typeof json === 'object' ? json : {}) as { model_type?: unknown; architectures?: unknown };
  const archs = Array.isArray(raw.architectures) ? raw.architectures.filter((a): a is string => typeof a === 'string') : [];
  for (const entry of ARCHITECTURES) {
    if (typeof raw.model_type === 'string' ? entry.modelTypes.includes(raw.model_type) : archs.some((a) => entry.architectures.includes(a))) {
      return entry;
    }
  }
  const supported = ARCHITECTURES.map((a) => `model_type ${a.modelTypes.join('/')}`).join(', ');
  throw new ModelDirError('ERR_MODEL_ARCHITECTURE', file,
    `model_type ${JSON.stringify(raw.model_type)} (architectures ${JSON.stringify(archs)}) is not a supported encoder; supported: ${supported}`);
}
