/**
 * The BERT encoder (BertModel + optional BertForSequenceClassification-style head) as a tfjs-layers functional model.
 *
 * Contract (also in /work/coord/bert-api.md; the fine-tuning modes, LoRA and top-k caching rely on it):
 * - Built only from tf.layers.dense (through `options.linear`), tf.layers.embedding, tf.layers.layerNormalization,
 *   tf.layers.dropout, tf.layers.add and the weightless layers of ./layers.ts; every layer is called exactly once, so the
 *   DP step's vectorised per-example rules (Dense on 3-D inputs, Embedding, LayerNormalization) cover every weight.
 *   Position embeddings are an Embedding over position ids made by the weightless BertPositionIds layer.
 * - Layer names are the Hugging Face module paths without the `bert.` prefix (`embeddings.word_embeddings`,
 *   `encoder.layer.3.attention.self.query`, `encoder.layer.3.attention.output.LayerNorm`,
 *   `encoder.layer.3.intermediate.dense`, `encoder.layer.3.output.dense`, `pooler.dense`, head `classifier`), so
 *   checkpoint weights are found by layer name (../../model-dir/weights.ts).
 * - Every Linear is made by `options.linear({ name, units, useBias, activation })` (default tf.layers.dense with
 *   HF's normal(0, initializer_range) kernel init). A substitute (LoRA) must own weights named `.../kernel` ([in, out])
 *   and `.../bias`, which the loader fills; other weights it owns are left alone.
 * - Full model (fromLayer 0) inputs: [input_ids int32 [B,T], token_type_ids int32 [B,T], attention_mask float32 [B,T]].
 *   Top model (fromLayer s ≥ 1): [hidden_states float32 [B,T,d], attention_mask float32 [B,T]], runs layers s..N−1.
 *   Bottom model ({@link buildBertBottom}, toLayer s): full-model inputs → hidden states after layer s−1.
 * - Output: 'probabilities' (softmax over numLabels; the repo's losses take probabilities), 'pooled' [B,d] (mean over
 *   the mask, or the HF pooler's tanh(W·h_CLS) for 'cls'; not L2-normalised), or 'hidden' [B,T,d].
 * - Dropout rates from the config (hidden_dropout_prob after embeddings / attention output / FFN output and before the
 *   head; attention_probs_dropout_prob inside the attention core); `dropout: false` builds no dropout at all.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../../errors.ts';
import type { BertConfig } from './config.ts';
import { BertAttentionMaskBias, BertClsToken, BertMaskedMeanPooling, BertPositionIds, BertSelfAttentionCore } from './layers.ts';

/** Arguments every Linear layer is created with. `activation` is a tfjs activation name ('gelu', 'tanh', 'softmax'). */
export interface LinearArgs {
  /** Layer name: the Hugging Face module path (e.g. `encoder.layer.0.attention.self.query`). */
  name: string;
  /** Output width. */
  units: number;
  /** Whether the layer has a bias. */
  useBias: boolean;
  /** tfjs activation name; absent: linear. */
  activation?: string;
}

/** Makes one Linear layer; substitute to wrap Linears (e.g. LoRA). */
export type LinearFactory = (args: LinearArgs) => tf.layers.Layer;

/**
 * How a sequence becomes one vector: `mean` over the attention mask, or `cls` (the HF pooler on the [CLS] token).
 */
export type BertPooling = 'mean' | 'cls';
/** What the built model outputs: `probabilities` [B, numLabels], `pooled` [B, d] or `hidden` [B, T, d]. */
export type BertOutput = 'probabilities' | 'pooled' | 'hidden';

/** Options of {@link buildBert}. */
export interface BertBuildOptions {
  /** Sequence length T of the inputs; default null (any T ≤ max_position_embeddings). */
  sequenceLength?: number | null;
  /** 'mean' (masked mean of the last hidden states; default) or 'cls' (HF pooler: tanh(pooler.dense(h_CLS))). */
  pooling?: BertPooling;
  /** Classes of the `classifier` head (softmax); 0 or absent: no head. */
  numLabels?: number;
  /** Default 'probabilities' with a head, else 'pooled'. */
  output?: BertOutput;
  /** Dropout as configured (default true); false builds no dropout layers. */
  dropout?: boolean;
  /** Factory of every Linear layer (default: tf.layers.dense). */
  linear?: LinearFactory;
  /** First encoder layer of this model, s ∈ [0, N] (default 0: embeddings included). */
  fromLayer?: number;
  /** Model name (default 'bert'). */
  name?: string;
}

/** Options of {@link buildBertBottom}. */
export interface BertBottomOptions {
  /** Layers 0..toLayer−1 are included; toLayer ∈ [0, N]. */
  toLayer: number;
  /** Sequence length T of the inputs; default null (any T ≤ max_position_embeddings). */
  sequenceLength?: number | null;
  /** Dropout as configured (default true); false builds no dropout layers. */
  dropout?: boolean;
  /** Factory of every Linear layer (default: tf.layers.dense). */
  linear?: LinearFactory;
  /** Model name (default `bert_bottom_<toLayer>`). */
  name?: string;
}

function defaultLinear(initializerRange: number): LinearFactory {
  return ({ name, units, useBias, activation }) => tf.layers.dense({
    name, units, useBias,
    activation: activation as Parameters<typeof tf.layers.dense>[0]['activation'],
    kernelInitializer: tf.initializers.truncatedNormal({ stddev: initializerRange }),
  });
}

interface BuildContext {
  config: BertConfig;
  linear: LinearFactory;
  dropout: boolean;
}

function apply(layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]): tf.SymbolicTensor {
  return layer.apply(x) as tf.SymbolicTensor;
}

function dropoutLayer(ctx: BuildContext, x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
  const rate = ctx.config.hiddenDropoutProb;
  return ctx.dropout && rate > 0 ? apply(tf.layers.dropout({ rate, name }), x) : x;
}

function layerNorm(ctx: BuildContext, x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
  return apply(tf.layers.layerNormalization({ axis: -1, epsilon: ctx.config.layerNormEps, name }), x);
}

function embeddings(ctx: BuildContext, ids: tf.SymbolicTensor, types: tf.SymbolicTensor): tf.SymbolicTensor {
  const c = ctx.config;
  const init = () => tf.initializers.truncatedNormal({ stddev: c.initializerRange });
  const word = apply(tf.layers.embedding({ inputDim: c.vocabSize, outputDim: c.hiddenSize, embeddingsInitializer: init(), name: 'embeddings.word_embeddings' }), ids);
  const positionIds = apply(new BertPositionIds({ name: 'embeddings.position_ids' }), ids);
  const position = apply(tf.layers.embedding({ inputDim: c.maxPositionEmbeddings, outputDim: c.hiddenSize, embeddingsInitializer: init(), name: 'embeddings.position_embeddings' }), positionIds);
  const type = apply(tf.layers.embedding({ inputDim: c.typeVocabSize, outputDim: c.hiddenSize, embeddingsInitializer: init(), name: 'embeddings.token_type_embeddings' }), types);
  const sum = apply(tf.layers.add({ name: 'embeddings.sum' }), [word, position, type]);
  return dropoutLayer(ctx, layerNorm(ctx, sum, 'embeddings.LayerNorm'), 'embeddings.dropout');
}

/** Encoder layer i (BertLayer): self-attention + output (residual, LN), intermediate (GELU), output (residual, LN). */
function encoderLayer(ctx: BuildContext, x: tf.SymbolicTensor, maskBias: tf.SymbolicTensor, i: number): tf.SymbolicTensor {
  const c = ctx.config;
  const p = `encoder.layer.${i}`;
  const d = c.hiddenSize;
  const q = apply(ctx.linear({ name: `${p}.attention.self.query`, units: d, useBias: true }), x);
  const k = apply(ctx.linear({ name: `${p}.attention.self.key`, units: d, useBias: true }), x);
  const v = apply(ctx.linear({ name: `${p}.attention.self.value`, units: d, useBias: true }), x);
  const context = apply(new BertSelfAttentionCore({
    numHeads: c.numAttentionHeads, attentionDropout: ctx.dropout ? c.attentionProbsDropoutProb : 0, name: `${p}.attention.self.core`,
  }), [q, k, v, maskBias]);
  let a = apply(ctx.linear({ name: `${p}.attention.output.dense`, units: d, useBias: true }), context);
  a = dropoutLayer(ctx, a, `${p}.attention.output.dropout`);
  a = layerNorm(ctx, apply(tf.layers.add({ name: `${p}.attention.output.residual` }), [a, x]), `${p}.attention.output.LayerNorm`);
  const hidden = apply(ctx.linear({ name: `${p}.intermediate.dense`, units: c.intermediateSize, useBias: true, activation: c.hiddenAct }), a);
  let o = apply(ctx.linear({ name: `${p}.output.dense`, units: d, useBias: true }), hidden);
  o = dropoutLayer(ctx, o, `${p}.output.dropout`);
  return layerNorm(ctx, apply(tf.layers.add({ name: `${p}.output.residual` }), [o, a]), `${p}.output.LayerNorm`);
}

function checkSequenceLength(config: BertConfig, T: number | null | undefined): number | null {
  if (T === undefined || T === null) return null;
  if (!Number.isInteger(T) || T < 1 || T > config.maxPositionEmbeddings) {
    throw new InvalidArgumentError('sequenceLength', T, `an integer in [1, ${config.maxPositionEmbeddings}] (max_position_embeddings)`);
  }
  return T;
}

function checkLayerIndex(config: BertConfig, name: string, s: number): void {
  if (!Number.isInteger(s) || s < 0 || s > config.numHiddenLayers) {
    throw new InvalidArgumentError(name, s, `an integer in [0, ${config.numHiddenLayers}] (num_hidden_layers)`);
  }
}

function context(config: BertConfig, linear: LinearFactory | undefined, dropout: boolean | undefined): BuildContext {
  if (linear !== undefined && typeof linear !== 'function') throw new InvalidArgumentError('linear', linear, 'a function');
  return { config, linear: linear ?? defaultLinear(config.initializerRange), dropout: dropout ?? true };
}

function tokenInputs(T: number | null): { ids: tf.SymbolicTensor; types: tf.SymbolicTensor; mask: tf.SymbolicTensor } {
  return {
    ids: tf.input({ shape: [T], dtype: 'int32', name: 'input_ids' }),
    types: tf.input({ shape: [T], dtype: 'int32', name: 'token_type_ids' }),
    mask: tf.input({ shape: [T], dtype: 'float32', name: 'attention_mask' }),
  };
}

/**
 * Builds the encoder (or its top from layer `fromLayer`) with pooling and an optional classification head.
 * Weights are fresh (HF-style normal init); fill them with loadWeightsInto (src/model-dir).
 * @throws InvalidArgumentError naming the option (sequenceLength, numLabels, fromLayer, pooling, output, linear).
 */
export function buildBert(config: BertConfig, options: BertBuildOptions = {}): tf.LayersModel {
  const T = checkSequenceLength(config, options.sequenceLength);
  const fromLayer = options.fromLayer ?? 0;
  checkLayerIndex(config, 'fromLayer', fromLayer);
  const numLabels = options.numLabels ?? 0;
  if (!Number.isInteger(numLabels) || numLabels < 0) throw new InvalidArgumentError('numLabels', numLabels, 'an integer ≥ 0');
  const pooling = options.pooling ?? 'mean';
  if (pooling !== 'mean' && pooling !== 'cls') throw new InvalidArgumentError('pooling', pooling, "'mean' or 'cls'");
  const output = options.output ?? (numLabels > 0 ? 'probabilities' : 'pooled');
  if (!['probabilities', 'pooled', 'hidden'].includes(output)) throw new InvalidArgumentError('output', output, "'probabilities', 'pooled' or 'hidden'");
  if (output === 'probabilities' && numLabels === 0) throw new InvalidArgumentError('numLabels', numLabels, "≥ 1 for output 'probabilities'");
  const ctx = context(config, options.linear, options.dropout);

  let inputs: tf.SymbolicTensor[];
  let x: tf.SymbolicTensor;
  let mask: tf.SymbolicTensor;
  if (fromLayer === 0) {
    const t = tokenInputs(T);
    inputs = [t.ids, t.types, t.mask];
    mask = t.mask;
    x = embeddings(ctx, t.ids, t.types);
  } else {
    x = tf.input({ shape: [T, config.hiddenSize], dtype: 'float32', name: 'hidden_states' });
    mask = tf.input({ shape: [T], dtype: 'float32', name: 'attention_mask' });
    inputs = [x, mask];
  }
  if (fromLayer < config.numHiddenLayers) {
    const maskBias = apply(new BertAttentionMaskBias({ name: 'encoder.attention_mask_bias' }), mask);
    for (let i = fromLayer; i < config.numHiddenLayers; i++) x = encoderLayer(ctx, x, maskBias, i);
  }
  let out = x;
  if (output !== 'hidden') {
    if (pooling === 'mean') {
      out = apply(new BertMaskedMeanPooling({ name: 'pooling.mean' }), [x, mask]);
    } else {
      const cls = apply(new BertClsToken({ name: 'pooler.cls_token' }), x);
      out = apply(ctx.linear({ name: 'pooler.dense', units: config.hiddenSize, useBias: true, activation: 'tanh' }), cls);
    }
    if (output === 'probabilities') {
      out = dropoutLayer(ctx, out, 'classifier.dropout');
      out = apply(ctx.linear({ name: 'classifier', units: numLabels, useBias: true, activation: 'softmax' }), out);
    }
  }
  return tf.model({ inputs, outputs: out, name: options.name ?? (fromLayer > 0 ? `bert_top_${fromLayer}` : 'bert') });
}

/**
 * The frozen bottom of a top-k split: embeddings + encoder layers 0..toLayer−1 → hidden states [B, T, d]. Inputs as
 * the full model. Its outputs are a public function of the input alone, so they can be computed once per example and
 * cached; the top model ({@link buildBert} with fromLayer = toLayer) takes them with the attention mask.
 * @throws InvalidArgumentError naming toLayer / sequenceLength / linear.
 */
export function buildBertBottom(config: BertConfig, options: BertBottomOptions): tf.LayersModel {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options', options, 'an object with toLayer');
  checkLayerIndex(config, 'toLayer', options.toLayer);
  const T = checkSequenceLength(config, options.sequenceLength);
  const ctx = context(config, options.linear, options.dropout);
  const t = tokenInputs(T);
  let x = embeddings(ctx, t.ids, t.types);
  if (options.toLayer > 0) {
    const maskBias = apply(new BertAttentionMaskBias({ name: 'encoder.attention_mask_bias' }), t.mask);
    for (let i = 0; i < options.toLayer; i++) x = encoderLayer(ctx, x, maskBias, i);
  }
  return tf.model({ inputs: [t.ids, t.types, t.mask], outputs: x, name: options.name ?? `bert_bottom_${options.toLayer}` });
}
