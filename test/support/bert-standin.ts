/**
 * A stand-in for src/models/bert's builder (same layer types, names, inputs and options as /work/coord/bert-api.md),
 * used only until the real builder lands. Post-LN BERT: embeddings (word + position + token type, LayerNorm), N layers
 * of masked self-attention + FFN (erf GELU), masked mean pooling or [CLS] + pooler, softmax classifier.
 */
import * as tf from '@tensorflow/tfjs';
import type { LinearFactory } from '../../src/models/lora.ts';

export interface StandinConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
}

export interface StandinOptions {
  numLabels?: number;
  pooling?: 'mean' | 'cls';
  linear?: LinearFactory;
  fromLayer?: number;
  sequenceLength?: number | null;
  name?: string;
}

class PositionIds extends tf.layers.Layer {
  static className = 'StandinPositionIds';
  override computeOutputShape(s: tf.Shape | tf.Shape[]): tf.Shape { return s as tf.Shape; }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const ids = Array.isArray(inputs) ? inputs[0] : inputs;
    const [B, T] = ids.shape;
    return tf.tidy(() => tf.tile(tf.expandDims(tf.range(0, T, 1, 'int32'), 0), [B, 1]));
  }
}

class AttentionCore extends tf.layers.Layer {
  static className = 'StandinAttentionCore';
  constructor(readonly numHeads: number, name: string) { super({ name }); }
  override computeOutputShape(s: tf.Shape | tf.Shape[]): tf.Shape { return (s as tf.Shape[])[0]; }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [q, k, v, mask] = inputs as tf.Tensor[];
      const [B, T, d] = q.shape as [number, number, number];
      const h = this.numHeads;
      const dh = d / h;
      const split = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, T, h, dh]), [0, 2, 1, 3]);
      const bias = tf.reshape(tf.mul(tf.sub(1, mask), -1e4), [B, 1, 1, T]);
      const scores = tf.add(tf.mul(tf.matMul(split(q), split(k), false, true), 1 / Math.sqrt(dh)), bias);
      const ctx = tf.matMul(tf.softmax(scores, -1), split(v));
      return tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [B, T, d]);
    });
  }
}

class MaskedMean extends tf.layers.Layer {
  static className = 'StandinMaskedMean';
  override computeOutputShape(s: tf.Shape | tf.Shape[]): tf.Shape { const h = (s as tf.Shape[])[0]; return [h[0], h[2]]; }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [h, mask] = inputs as tf.Tensor[];
      const m = tf.expandDims(mask, 2);
      return tf.div(tf.sum(tf.mul(h, m), 1), tf.maximum(tf.sum(m, 1), 1e-9));
    });
  }
}

class ClsToken extends tf.layers.Layer {
  static className = 'StandinClsToken';
  override computeOutputShape(s: tf.Shape | tf.Shape[]): tf.Shape { const h = s as tf.Shape; return [h[0], h[2]]; }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const h = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => tf.reshape(tf.slice(h, [0, 0, 0], [-1, 1, -1]), [h.shape[0], h.shape[2] as number]));
  }
}

const defaultLinear: LinearFactory = (a) =>
  tf.layers.dense({ units: a.units, useBias: a.useBias, activation: a.activation as 'linear', name: a.name });

/** Builds the full model (fromLayer 0: [input_ids, token_type_ids, attention_mask]) or the top from layer s. */
export function buildStandinBert(c: StandinConfig, o: StandinOptions = {}): tf.LayersModel {
  const T = o.sequenceLength ?? null;
  const linear = o.linear ?? defaultLinear;
  const d = c.hiddenSize;
  const s = o.fromLayer ?? 0;
  const mask = tf.input({ shape: [T], dtype: 'float32', name: 'attention_mask' });
  let inputs: tf.SymbolicTensor[];
  let x: tf.SymbolicTensor;
  const ln = (name: string, t: tf.SymbolicTensor) =>
    tf.layers.layerNormalization({ epsilon: c.layerNormEps, name }).apply(t) as tf.SymbolicTensor;
  if (s === 0) {
    const ids = tf.input({ shape: [T], dtype: 'int32', name: 'input_ids' });
    const types = tf.input({ shape: [T], dtype: 'int32', name: 'token_type_ids' });
    inputs = [ids, types, mask];
    const w = tf.layers.embedding({ inputDim: c.vocabSize, outputDim: d, name: 'embeddings.word_embeddings' }).apply(ids) as tf.SymbolicTensor;
    const posIds = new PositionIds({ name: 'embeddings.position_ids' }).apply(ids) as tf.SymbolicTensor;
    const p = tf.layers.embedding({ inputDim: c.maxPositionEmbeddings, outputDim: d, name: 'embeddings.position_embeddings' }).apply(posIds) as tf.SymbolicTensor;
    const t = tf.layers.embedding({ inputDim: c.typeVocabSize, outputDim: d, name: 'embeddings.token_type_embeddings' }).apply(types) as tf.SymbolicTensor;
    x = ln('embeddings.LayerNorm', tf.layers.add({ name: 'embeddings.sum' }).apply([w, p, t]) as tf.SymbolicTensor);
  } else {
    const hidden = tf.input({ shape: [T, d], dtype: 'float32', name: 'hidden_states' });
    inputs = [hidden, mask];
    x = hidden;
  }
  const lin = (name: string, units: number, t: tf.SymbolicTensor, activation?: string) =>
    linear({ name, units, useBias: true, activation }).apply(t) as tf.SymbolicTensor;
  for (let i = s; i < c.numHiddenLayers; i++) {
    const pre = `encoder.layer.${i}`;
    const q = lin(`${pre}.attention.self.query`, d, x);
    const k = lin(`${pre}.attention.self.key`, d, x);
    const v = lin(`${pre}.attention.self.value`, d, x);
    const att = new AttentionCore(c.numAttentionHeads, `${pre}.attention.self.core`).apply([q, k, v, mask]) as tf.SymbolicTensor;
    const ao = lin(`${pre}.attention.output.dense`, d, att);
    const h = ln(`${pre}.attention.output.LayerNorm`, tf.layers.add({ name: `${pre}.attention.output.add` }).apply([ao, x]) as tf.SymbolicTensor);
    const inter = lin(`${pre}.intermediate.dense`, c.intermediateSize, h, 'gelu');
    const out = lin(`${pre}.output.dense`, d, inter);
    x = ln(`${pre}.output.LayerNorm`, tf.layers.add({ name: `${pre}.output.add` }).apply([out, h]) as tf.SymbolicTensor);
  }
  let pooled: tf.SymbolicTensor;
  if (o.pooling === 'cls') {
    pooled = lin('pooler.dense', d, new ClsToken({ name: 'pooler.cls' }).apply(x) as tf.SymbolicTensor, 'tanh');
  } else {
    pooled = new MaskedMean({ name: 'pooler.mean' }).apply([x, mask]) as tf.SymbolicTensor;
  }
  const probs = lin('classifier', o.numLabels ?? 2, pooled, 'softmax');
  return tf.model({ inputs, outputs: probs, name: o.name ?? 'bert_standin' });
}

/** The frozen bottom: [input_ids, token_type_ids, attention_mask] → hidden states after layer toLayer − 1. */
export function buildStandinBottom(c: StandinConfig, toLayer: number, o: StandinOptions = {}): tf.LayersModel {
  const full = buildStandinBert({ ...c, numHiddenLayers: toLayer }, { ...o, fromLayer: 0 });
  const last = toLayer === 0 ? 'embeddings.LayerNorm' : `encoder.layer.${toLayer - 1}.output.LayerNorm`;
  return tf.model({ inputs: full.inputs, outputs: full.getLayer(last).output as tf.SymbolicTensor, name: 'bert_standin_bottom' });
}
