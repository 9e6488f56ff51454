/**
 * A small transformer encoder built from tfjs-layers pieces the DP step vectorises: Embedding, PositionEmbedding,
 * Dense on 3-D inputs (q/k/v/output projections, FFN), LayerNormalization, plus a weightless attention core.
 * Pre-LN blocks: h = x + Wo·Attn(LN(x)); out = h + FFN(LN(h)). Classifier: encoder → LN → mean pooling → Dense.
 */
import * as tf from '@tensorflow/tfjs';

/** Configuration of the encoder. `modelDim` must be divisible by `numHeads`. */
export interface TransformerConfig {
  /** Token vocabulary size (ids in [0, vocabSize)). */
  vocabSize: number;
  /** Sequence length T. */
  sequenceLength: number;
  /** Model width d. */
  modelDim: number;
  /** Attention heads. */
  numHeads: number;
  /** Hidden width of the feed-forward network. */
  ffnDim: number;
  /** Encoder blocks (default 1). */
  numLayers?: number;
  /** Output classes of the classifier head (softmax). */
  numClasses: number;
  /** Causal (left-to-right) attention (default false). */
  causal?: boolean;
}

/** Arguments of {@link ScaledDotProductAttention}. */
export interface AttentionCoreArgs {
  numHeads: number;
  causal?: boolean;
  name?: string;
}

/**
 * Weightless multi-head attention core: inputs [q, k, v] of shape [B, T, d] (already projected); splits d into
 * `numHeads` heads, softmax(q·kᵀ/√(d/h))·v per head, merges the heads back to [B, T, d].
 */
export class ScaledDotProductAttention extends tf.layers.Layer {
  /** tfjs serialisation class name. */
  static className = 'ScaledDotProductAttention';
  /** Number of attention heads h (divides d). */
  readonly numHeads: number;
  /** Whether position t attends only to positions ≤ t. */
  readonly causal: boolean;

  constructor(args: AttentionCoreArgs) {
    super({ name: args.name });
    if (!Number.isInteger(args.numHeads) || args.numHeads < 1) throw new Error(`numHeads must be a positive integer; got ${args.numHeads}`);
    this.numHeads = args.numHeads;
    this.causal = args.causal ?? false;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      if (!Array.isArray(inputs) || inputs.length !== 3) throw new Error('ScaledDotProductAttention expects [q, k, v]');
      const [q, k, v] = inputs;
      const [B, T, d] = q.shape as [number, number, number];
      const h = this.numHeads;
      if (d % h !== 0) throw new Error(`model width ${d} is not divisible by numHeads ${h}`);
      const dh = d / h;
      const split = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, t.shape[1] as number, h, dh]), [0, 2, 1, 3]);
      let scores = tf.mul(tf.matMul(split(q), split(k), false, true), 1 / Math.sqrt(dh));
      if (this.causal) {
        const allowed = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
        scores = tf.add(scores, tf.mul(tf.sub(1, allowed), -1e9));
      }
      const heads = tf.matMul(tf.softmax(scores, -1), split(v));
      return tf.reshape(tf.transpose(heads, [0, 2, 1, 3]), [B, T, d]);
    });
  }

  override computeMask(): tf.Tensor | tf.Tensor[] {
    return null as unknown as tf.Tensor; // no mask propagation through attention
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), numHeads: this.numHeads, causal: this.causal };
  }
}
tf.serialization.registerClass(ScaledDotProductAttention);

/** Arguments of {@link PositionEmbedding}. */
export interface PositionEmbeddingArgs {
  sequenceLength: number;
  name?: string;
  trainable?: boolean;
}

/** Learned absolute position embeddings: x + P with P of shape [T, d] (T fixed). */
export class PositionEmbedding extends tf.layers.Layer {
  /** tfjs serialisation class name. */
  static className = 'PositionEmbedding';
  /** Sequence length T the learned position table covers. */
  readonly sequenceLength: number;
  /** The table P (read by the DP step's PositionEmbedding rule). */
  positionEmbeddings!: tf.LayerVariable;

  constructor(args: PositionEmbeddingArgs) {
    super({ name: args.name, trainable: args.trainable });
    this.sequenceLength = args.sequenceLength;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const d = shape[shape.length - 1] as number;
    this.positionEmbeddings = this.addWeight('position_embeddings', [this.sequenceLength, d], 'float32',
      tf.initializers.randomNormal({ mean: 0, stddev: 0.02 }));
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      return tf.add(x, this.positionEmbeddings.read());
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), sequenceLength: this.sequenceLength };
  }
}
tf.serialization.registerClass(PositionEmbedding);

function assertConfig(config: Omit<TransformerConfig, 'vocabSize' | 'numClasses'>): void {
  for (const key of ['sequenceLength', 'modelDim', 'numHeads', 'ffnDim'] as const) {
    const v = config[key];
    if (!Number.isInteger(v) || v < 1) throw new Error(`${key} must be a positive integer; got ${v}`);
  }
  if (config.modelDim % config.numHeads !== 0) {
    throw new Error(`modelDim (${config.modelDim}) must be divisible by numHeads (${config.numHeads})`);
  }
}

/** One pre-LN encoder block applied to a symbolic [B, T, d] tensor. */
export function transformerEncoderBlock(
  x: tf.SymbolicTensor, config: Pick<TransformerConfig, 'modelDim' | 'numHeads' | 'ffnDim' | 'causal'>, prefix: string,
): tf.SymbolicTensor {
  const d = config.modelDim;
  const ln1 = tf.layers.layerNormalization({ name: `${prefix}_ln1` }).apply(x) as tf.SymbolicTensor;
  const q = tf.layers.dense({ units: d, name: `${prefix}_query` }).apply(ln1) as tf.SymbolicTensor;
  const k = tf.layers.dense({ units: d, name: `${prefix}_key` }).apply(ln1) as tf.SymbolicTensor;
  const v = tf.layers.dense({ units: d, name: `${prefix}_value` }).apply(ln1) as tf.SymbolicTensor;
  const attended = new ScaledDotProductAttention({ numHeads: config.numHeads, causal: config.causal, name: `${prefix}_attention` })
    .apply([q, k, v]) as tf.SymbolicTensor;
  const projected = tf.layers.dense({ units: d, name: `${prefix}_attention_output` }).apply(attended) as tf.SymbolicTensor;
  const h = tf.layers.add({ name: `${prefix}_residual1` }).apply([x, projected]) as tf.SymbolicTensor;
  const ln2 = tf.layers.layerNormalization({ name: `${prefix}_ln2` }).apply(h) as tf.SymbolicTensor;
  const hidden = tf.layers.dense({ units: config.ffnDim, activation: 'relu', name: `${prefix}_ffn1` }).apply(ln2) as tf.SymbolicTensor;
  const ffn = tf.layers.dense({ units: d, name: `${prefix}_ffn2` }).apply(hidden) as tf.SymbolicTensor;
  return tf.layers.add({ name: `${prefix}_residual2` }).apply([h, ffn]) as tf.SymbolicTensor;
}

/** Token classifier: ids [B, T] → Embedding + PositionEmbedding → encoder blocks → LN → mean pool → softmax. */
export function createTransformerClassifier(config: TransformerConfig): tf.LayersModel {
  assertConfig(config);
  const ids = tf.input({ shape: [config.sequenceLength], dtype: 'int32', name: 'token_ids' });
  let x = tf.layers.embedding({ inputDim: config.vocabSize, outputDim: config.modelDim, name: 'token_embedding' })
    .apply(ids) as tf.SymbolicTensor;
  x = new PositionEmbedding({ sequenceLength: config.sequenceLength, name: 'position_embedding' }).apply(x) as tf.SymbolicTensor;
  for (let l = 0; l < (config.numLayers ?? 1); l++) x = transformerEncoderBlock(x, config, `encoder${l}`);
  x = tf.layers.layerNormalization({ name: 'final_ln' }).apply(x) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling1d({ name: 'mean_pool' }).apply(x) as tf.SymbolicTensor;
  const probs = tf.layers.dense({ units: config.numClasses, activation: 'softmax', name: 'classifier' })
    .apply(pooled) as tf.SymbolicTensor;
  return tf.model({ inputs: ids, outputs: probs, name: 'transformer_classifier' });
}

/**
 * One encoder block on float inputs [B, T, d] with a mean-pool + softmax head: the "transformer block" of the
 * DP-step benchmarks (no embedding, so the block's own cost dominates).
 */
export function createTransformerBlockModel(
  config: Pick<TransformerConfig, 'sequenceLength' | 'modelDim' | 'numHeads' | 'ffnDim' | 'numClasses' | 'causal'>,
): tf.LayersModel {
  assertConfig(config);
  const input = tf.input({ shape: [config.sequenceLength, config.modelDim], name: 'block_input' });
  const block = transformerEncoderBlock(input, config, 'block');
  const pooled = tf.layers.globalAveragePooling1d({ name: 'mean_pool' }).apply(block) as tf.SymbolicTensor;
  const probs = tf.layers.dense({ units: config.numClasses, activation: 'softmax', name: 'classifier' })
    .apply(pooled) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: probs, name: 'transformer_block' });
}
