/**
 * The pre-trained encoder path of `ewtune train` (model.kind "pretrained-encoder"): wires the configuration to the
 * engine — the model directory (src/model-dir), the architecture registry and fine-tuning modes (src/finetune), the
 * model's own tokenizer — and nothing more. What it returns is what runTraining needs: the model DP-SGD trains, its
 * training inputs, held-out accuracy, and the saver of the private model.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { EwtuneError } from '../src/errors.ts';
import type { LabelledCorpus, LabelledExample } from '../src/data/labelled.ts';
import { cacheBottomOutputs, createFinetuneModel, loraMergedWeights, modelDirBuilder, type FinetuneConfig, type TrainableSummary } from '../src/finetune/index.ts';
import { loadModelDir, saveModelDir, pretrainedModelPath, PRETRAINED_MODELS, type ModelDir, type SavedModelDir } from '../src/model-dir/index.ts';
import { ConfigError } from './config.ts';

/** `model` when `kind` is "pretrained-encoder". */
export interface EncoderModelConfig {
  kind: 'pretrained-encoder';
  /** A Hugging Face model directory, or the id of a model `ewtune models fetch` installs (e.g. "minilm"). */
  path: string;
  finetune: FinetuneConfig;
  /** Sentence representation for the head: masked mean of the last hidden states, or the pooler on [CLS]. */
  pooling: 'mean' | 'cls';
  /** Tokens per example (truncated keeping [SEP]; padded to the longest example of each split, at most this). */
  maxLength: number;
  /** Dropout as configured in config.json, in training mode during the DP step (per-example masks). */
  dropout: boolean;
  /** Classes of the head; default the corpus' label list (must equal it when given). */
  numClasses?: number;
  /** Save the fine-tuned model (artifacts/model/ in the run directory: Hugging Face layout + privacy.json). */
  save: boolean;
  /** Batch size of the one-off forward pass that caches the frozen bottom (cacheBottom) and of evaluation. */
  inferenceBatchSize: number;
}

/** Encoded examples: the model's inputs (after the cached bottom, when there is one) and the labels. */
export interface EncoderSplit {
  readonly x: tf.Tensor[];
  readonly y: tf.Tensor1D;
  readonly size: number;
}

/** A pre-trained encoder prepared for one DP fine-tuning run. */
export interface EncoderRun {
  /** The model DP-SGD trains (the top model when the frozen bottom is cached). */
  readonly model: tf.LayersModel;
  readonly summary: TrainableSummary;
  readonly modelDir: ModelDir;
  readonly train: EncoderSplit;
  readonly validation: EncoderSplit;
  readonly test: EncoderSplit;
  /** Tokens per example of the training inputs (the longest training example, at most maxLength). */
  readonly sequenceLength: number;
  /** Training examples cut at maxLength. */
  readonly truncatedCount: number;
  /** Accuracy of the current model on a split (inference mode); NaN for an empty split. */
  accuracy(split: EncoderSplit): number;
  /** Writes the private model as a Hugging Face directory (LoRA merged) with `privacy` as privacy.json. */
  save(outDir: string, privacy: Record<string, unknown>): Promise<SavedModelDir>;
  dispose(): void;
}

/** The directory of `model.path`: a registered pre-trained id (fetched into the cache) or a path. */
export function resolveModelPath(path: string): string {
  if (PRETRAINED_MODELS.has(path)) {
    const dir = pretrainedModelPath(path);
    if (!existsSync(dir)) {
      throw new EwtuneError('ERR_MODEL_NOT_FETCHED', `/model/path "${path}" is not in the cache (${dir}): run \`npx ewtune models fetch ${path}\` first`);
    }
    return dir;
  }
  return resolve(path);
}

/** Labels of the corpus must fit the head; checked before anything is built. */
function checkLabels(corpus: LabelledCorpus, numLabels: number): void {
  for (const split of ['train', 'validation', 'test'] as const) {
    const bad = corpus[split].find((e) => !Number.isInteger(e.label) || e.label < 0 || e.label >= numLabels);
    if (bad) throw new ConfigError('/data', [`${bad.id}: label ${bad.label} is outside the head's ${numLabels} classes (${corpus.labels.join(', ')})`]);
  }
}

function encodeSplit(dir: ModelDir, items: readonly LabelledExample[], maxLength: number): { ids: tf.Tensor[]; y: tf.Tensor1D; truncated: number; length: number } {
  if (items.length === 0) {
    return { ids: [tf.zeros([0, 1], 'int32'), tf.zeros([0, 1], 'int32'), tf.zeros([0, 1])], y: tf.zeros([0], 'int32') as tf.Tensor1D, truncated: 0, length: 0 };
  }
  const pairs = items.some((e) => e.textPair !== undefined) ? items.map((e) => e.textPair ?? '') : undefined;
  const batch = dir.tokenizer.encodeBatch(items.map((e) => e.text), { ...(pairs ? { textPairs: pairs } : {}), maxLength, padTo: 'longest' });
  return {
    ids: [batch.inputIds, batch.tokenTypeIds, batch.attentionMask],
    y: tf.tensor1d(items.map((e) => e.label), 'int32'),
    truncated: batch.truncatedCount,
    length: batch.inputIds.shape[1],
  };
}

/**
 * Loads the model directory, builds the classifier for the fine-tuning mode with the pre-trained weights, tokenizes
 * the corpus with the model's tokenizer and, for a cached bottom, runs the frozen bottom once over every split (a
 * fixed public function of each example: see src/finetune/modes.ts, cacheBottomOutputs, for why that keeps the
 * guarantee).
 * @throws ModelDirError naming the file (missing, not BERT-family, mismatching weights), InvalidArgumentError naming
 *   the model.finetune field, ConfigError for a label outside the head's classes — all before any training.
 */
export async function prepareEncoderRun(config: EncoderModelConfig, corpus: LabelledCorpus, log: (line: string) => void): Promise<EncoderRun> {
  const numLabels = corpus.labels.length;
  if (config.numClasses !== undefined && config.numClasses !== numLabels) {
    throw new ConfigError('/model/numClasses', [`/model/numClasses (${config.numClasses}) differs from the ${numLabels} classes of the data (${corpus.labels.join(', ')})`]);
  }
  checkLabels(corpus, numLabels);
  const modelDir = await loadModelDir(resolveModelPath(config.path));
  const builder = modelDirBuilder(modelDir, { numLabels, pooling: config.pooling, sequenceLength: null, dropout: config.dropout });
  const prepared = createFinetuneModel(builder, config.finetune);
  const owned: tf.Tensor[] = [];
  const splits: Record<'train' | 'validation' | 'test', EncoderSplit> = {} as never;
  let truncatedCount = 0;
  let sequenceLength = 0;
  try {
    for (const name of ['train', 'validation', 'test'] as const) {
      const encoded = encodeSplit(modelDir, corpus[name], config.maxLength);
      if (name === 'train') {
        truncatedCount = encoded.truncated;
        sequenceLength = encoded.length;
      }
      let x = encoded.ids;
      if (prepared.bottom && corpus[name].length > 0) {
        x = cacheBottomOutputs(prepared.bottom, encoded.ids, config.inferenceBatchSize);
        tf.dispose(encoded.ids);
      } else if (prepared.bottom) {
        tf.dispose(encoded.ids);
        x = [];
      }
      owned.push(...x, encoded.y);
      splits[name] = { x, y: encoded.y, size: corpus[name].length };
    }
  } catch (error) {
    tf.dispose(owned);
    prepared.model.dispose();
    prepared.bottom?.dispose();
    throw error;
  }
  if (truncatedCount > 0) log(`ewtune: ${truncatedCount} training examples longer than maxLength ${config.maxLength} were truncated (keeping [SEP])`);
  if (prepared.bottom) log(`ewtune: frozen bottom (${prepared.bottom.layers.length} layers) run once per example and cached`);

  const model = prepared.model;
  return {
    model, summary: prepared.summary, modelDir, ...splits, sequenceLength, truncatedCount,
    accuracy(split) {
      if (split.size === 0) return NaN;
      let correct = 0;
      for (let start = 0; start < split.size; start += config.inferenceBatchSize) {
        const size = Math.min(config.inferenceBatchSize, split.size - start);
        correct += tf.tidy(() => {
          const inputs = split.x.map((t) => tf.slice(t, start, size));
          const predicted = tf.argMax(model.predict(inputs) as tf.Tensor, -1);
          return tf.sum(tf.equal(predicted, tf.slice(split.y, start, size))).dataSync()[0];
        });
      }
      return correct / split.size;
    },
    save(outDir, privacy) {
      return saveModelDir(outDir, {
        model: prepared.bottom ? [prepared.bottom, model] : model,
        config: modelDir.config, architecture: modelDir.architecture, tokenizerFrom: modelDir.path,
        pooling: config.pooling, labels: corpus.labels, privacy, hooks: { mergedWeights: loraMergedWeights },
      });
    },
    dispose() {
      tf.dispose(owned);
      model.dispose();
      prepared.bottom?.dispose();
    },
  };
}
