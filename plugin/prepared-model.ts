/**
 * The model of a run, whatever its kind, behind one shape runTraining uses: the model DP-SGD trains, its training
 * inputs, held-out evaluation, the params that describe it, and (for pre-trained encoders) the saver of the private
 * model. One adapter per model kind: the GloVe transformer-classifier (plugin/model.ts + plugin/data.ts) and the
 * pre-trained encoder (plugin/encoder.ts).
 */
import type * as tf from '@tensorflow/tfjs';
import type { SavedModelDir } from '../src/model-dir/index.ts';
import type { TrainingConfig } from './config.ts';
import { prepareData } from './data.ts';
import { prepareEncoderRun, type EncoderModelConfig } from './encoder.ts';
import { buildClassifier } from './model.ts';
import { scoreHeldOut } from './held-out.ts';
import type { Preflight } from './preflight.ts';

/**
 * Held-out scores (NaN-free: a split without examples is left out). Neither split is used for training or consumed by
 * the privacy ledger: the test split is held out of the private training data by a fixed hash split, and the
 * validation split is carved from the corpus before training.
 */
export interface Evaluation {
  /** Accuracy on the test split, in [0, 1]. */
  readonly test?: number;
  /** Mean sparse categorical cross-entropy (nats) on the test split. */
  readonly testLoss?: number;
  /** Accuracy on the validation split, in [0, 1] (corpora that have one). */
  readonly validation?: number;
  /** Mean sparse categorical cross-entropy (nats) on the validation split. */
  readonly validationLoss?: number;
}

export interface PreparedModel {
  readonly model: tf.LayersModel;
  readonly train: { readonly x: tf.Tensor | tf.Tensor[]; readonly y: tf.Tensor };
  /** MLflow params that describe the model and its inputs. */
  readonly params: Readonly<Record<string, string | number | boolean>>;
  /** Σ sizes of the trainable weights. */
  readonly trainableParams: number;
  /** Accuracy and loss of the current model on the held-out splits (inference mode). */
  evaluate(): Evaluation;
  /** Saves the private model with privacy.json (pre-trained encoders with model.save); else undefined. */
  readonly save?: (outDir: string, privacy: Record<string, unknown>) => Promise<SavedModelDir>;
  dispose(): void;
}

function countParams(model: tf.LayersModel): number {
  return model.trainableWeights.reduce((s, w) => s + w.shape.reduce((a: number, b) => a * (b as number), 1), 0);
}

/** Builds the configured model and its inputs (after the preflight's checks; the backend is already chosen). */
export async function prepareModel(config: TrainingConfig, preflight: Preflight, log: (line: string) => void): Promise<PreparedModel> {
  const m = config.model;
  if (m.kind === 'pretrained-encoder') return prepareEncoder(m, preflight, log);
  log('ewtune: loading the data and the pre-trained word embedding');
  const data = prepareData(config, preflight.texts);
  let model: tf.LayersModel;
  try {
    model = buildClassifier(config, data.vocabularySize, data.vectors);
  } catch (error) {
    data.dispose();
    throw error;
  }
  return {
    model, train: { x: data.train.ids, y: data.train.labels }, trainableParams: countParams(model),
    params: {
      max_tokens: config.data.maxTokens, vocabulary_size: data.vocabularySize, model_kind: m.kind,
      model_dim: m.dModel, heads: m.heads, ffn_dim: m.ffnDim, layers: m.layers, embedding: m.embedding, freeze_embedding: m.freezeEmbedding,
      // The pre-trained word vectors frozen, everything on top trained; or every weight (random or unfrozen embedding).
      finetune_mode: m.embedding === 'wink-glove-100d' && m.freezeEmbedding ? 'frozen-embedding' : 'full',
      trainable_params: countParams(model), total_params: model.countParams(),
    },
    evaluate() {
      const score = scoreHeldOut(model, data.test.ids, data.test.labels, 256);
      return score ? { test: score.accuracy, testLoss: score.loss } : {};
    },
    dispose() {
      model.dispose();
      data.dispose();
    },
  };
}

async function prepareEncoder(m: EncoderModelConfig, preflight: Preflight, log: (line: string) => void): Promise<PreparedModel> {
  log(`ewtune: loading the pre-trained encoder ${m.path} (fine-tuning mode ${m.finetune.mode}) and tokenizing the data`);
  const enc = await prepareEncoderRun(m, preflight.corpus, log);
  const s = enc.summary;
  log(`ewtune: ${s.trainableParams.toLocaleString('en')} of ${s.totalParams.toLocaleString('en')} parameters trainable (${m.finetune.mode}); `
    + `${enc.train.size} training examples of ${enc.sequenceLength} tokens`);
  const f = m.finetune;
  const params: Record<string, string | number | boolean> = {
    model_kind: m.kind, model_path: enc.modelDir.path, architecture: enc.modelDir.architecture.name, finetune_mode: f.mode,
    trainable_params: s.trainableParams, total_params: s.totalParams, pooling: m.pooling, max_length: m.maxLength,
    sequence_length: enc.sequenceLength, truncated_examples: enc.truncatedCount, dropout: m.dropout,
  };
  if (f.topK !== undefined) params.finetune_top_k = f.topK;
  if (f.cacheBottom !== undefined) params.finetune_cache_bottom = f.cacheBottom;
  if (f.lora) for (const [k, v] of Object.entries(f.lora)) params[`finetune_lora_${k}`] = Array.isArray(v) ? v.join(',') : v as string | number | boolean;
  return {
    model: enc.model, train: { x: enc.train.x, y: enc.train.y }, params, trainableParams: s.trainableParams,
    evaluate() {
      const test = scoreHeldOut(enc.model, enc.test.x, enc.test.y, m.inferenceBatchSize);
      const validation = scoreHeldOut(enc.model, enc.validation.x, enc.validation.y, m.inferenceBatchSize);
      return {
        ...(test ? { test: test.accuracy, testLoss: test.loss } : {}),
        ...(validation ? { validation: validation.accuracy, validationLoss: validation.loss } : {}),
      };
    },
    save: m.save ? (outDir, privacy) => enc.save(outDir, privacy) : undefined,
    dispose: () => enc.dispose(),
  };
}
