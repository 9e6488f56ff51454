/**
 * Weightless layers of the BERT encoder. They carry no weights, so the DP step (src/dp/per-example/graph.ts) calls
 * them as they are and needs no rule for them; every weighted piece of the encoder is a stock Dense, Embedding or
 * LayerNormalization layer. GELU is tfjs-layers' 'gelu' activation, which in @tensorflow/tfjs-layers 4.22.0
 * (dist/activations.js, class Gelu) is the exact x·Φ(x) = x·(1 + erf(x/√2))/2, as PyTorch's nn.GELU().
 */
import * as tf from '@tensorflow/tfjs';

/** Additive mask of masked keys: (1 − mask)·MASK_BIAS. Softmax gives masked keys weight exp(−1e9) = 0 in float32. */
export const MASK_BIAS = -1e9;

type Inputs = tf.Tensor | tf.Tensor[];

function first(inputs: Inputs): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

function firstShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
  return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
}

/** Position ids 0..T−1 for ids [B, T] (int32 [B, T]); feeds the `embeddings.position_embeddings` Embedding. */
export class BertPositionIds extends tf.layers.Layer {
  static className = 'BertPositionIds';
  constructor(args: { name?: string } = {}) { super(args); }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape { return firstShape(inputShape); }
  override call(inputs: Inputs): tf.Tensor {
    return tf.tidy(() => {
      const [B, T] = first(inputs).shape;
      return tf.tile(tf.expandDims(tf.range(0, T, 1, 'int32'), 0), [B, 1]);
    });
  }
  override computeMask(): tf.Tensor { return null as unknown as tf.Tensor; }
}
tf.serialization.registerClass(BertPositionIds);

/** Attention mask [B, T] (1 = token, 0 = padding) → additive bias [B, 1, 1, T] for the attention scores. */
export class BertAttentionMaskBias extends tf.layers.Layer {
  static className = 'BertAttentionMaskBias';
  constructor(args: { name?: string } = {}) { super(args); }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = firstShape(inputShape);
    return [s[0], 1, 1, s[1]];
  }
  override call(inputs: Inputs): tf.Tensor {
    return tf.tidy(() => {
      const m = tf.cast(first(inputs), 'float32');
      const [B, T] = m.shape;
      return tf.reshape(tf.mul(tf.sub(1, m), MASK_BIAS), [B, 1, 1, T]);
    });
  }
  override computeMask(): tf.Tensor { return null as unknown as tf.Tensor; }
}
tf.serialization.registerClass(BertAttentionMaskBias);

/** Arguments of {@link BertSelfAttentionCore}. */
export interface BertSelfAttentionCoreArgs {
  numHeads: number;
  /** Dropout rate on the attention probabilities in training mode (default 0). */
  attentionDropout?: number;
  name?: string;
}

/**
 * Weightless multi-head attention core of BertSelfAttention: inputs [q, k, v, maskBias] with q, k, v [B, T, d]
 * (already projected) and maskBias [B, 1, 1, T] additive; per head softmax(q·kᵀ/√dₕ + maskBias), dropout on the
 * probabilities when `kwargs.training` is true (as tf.layers.dropout decides), times v; heads merged to [B, T, d].
 * Uses explicit transposes rather than matMul's transpose flags (much faster on stock wasm).
 */
export class BertSelfAttentionCore extends tf.layers.Layer {
  static className = 'BertSelfAttentionCore';
  readonly numHeads: number;
  readonly attentionDropout: number;

  constructor(args: BertSelfAttentionCoreArgs) {
    super({ name: args.name });
    if (!Number.isInteger(args.numHeads) || args.numHeads < 1) throw new Error(`numHeads must be a positive integer; got ${args.numHeads}`);
    this.numHeads = args.numHeads;
    this.attentionDropout = args.attentionDropout ?? 0;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape { return firstShape(inputShape); }

  override call(inputs: Inputs, kwargs: Record<string, unknown> = {}): tf.Tensor {
    return tf.tidy(() => {
      if (!Array.isArray(inputs) || inputs.length !== 4) throw new Error('BertSelfAttentionCore expects [q, k, v, maskBias]');
      const [q, k, v, maskBias] = inputs;
      const [B, T, d] = q.shape as [number, number, number];
      const h = this.numHeads;
      if (d % h !== 0) throw new Error(`width ${d} is not divisible by numHeads ${h}`);
      const dh = d / h;
      const heads = (t: tf.Tensor, perm: number[]) => tf.transpose(tf.reshape(t, [B, T, h, dh]), perm);
      // q [B,h,T,dh] · kᵀ [B,h,dh,T]
      const scores = tf.add(tf.mul(tf.matMul(heads(q, [0, 2, 1, 3]), heads(k, [0, 2, 3, 1])), 1 / Math.sqrt(dh)), maskBias);
      let probs = tf.softmax(scores, -1);
      const training = kwargs.training == null ? false : Boolean(kwargs.training);
      if (training && this.attentionDropout > 0) probs = tf.dropout(probs, this.attentionDropout);
      const context = tf.matMul(probs, heads(v, [0, 2, 1, 3]));
      return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [B, T, d]);
    });
  }

  override computeMask(): tf.Tensor { return null as unknown as tf.Tensor; }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), numHeads: this.numHeads, attentionDropout: this.attentionDropout };
  }
}
tf.serialization.registerClass(BertSelfAttentionCore);

/** Inputs [hidden [B, T, d], mask [B, T]] → Σₜ mₜ·hₜ / max(Σₜ mₜ, 1e-9), [B, d] (sentence-transformers' mean pooling). */
export class BertMaskedMeanPooling extends tf.layers.Layer {
  static className = 'BertMaskedMeanPooling';
  constructor(args: { name?: string } = {}) { super(args); }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = firstShape(inputShape);
    return [s[0], s[2]];
  }
  override call(inputs: Inputs): tf.Tensor {
    return tf.tidy(() => {
      if (!Array.isArray(inputs) || inputs.length !== 2) throw new Error('BertMaskedMeanPooling expects [hidden, mask]');
      const [hidden, mask] = inputs;
      const m = tf.expandDims(tf.cast(mask, 'float32'), -1);
      return tf.div(tf.sum(tf.mul(hidden, m), 1), tf.maximum(tf.sum(m, 1), 1e-9));
    });
  }
  override computeMask(): tf.Tensor { return null as unknown as tf.Tensor; }
}
tf.serialization.registerClass(BertMaskedMeanPooling);

/** Hidden states [B, T, d] → the first ([CLS]) token's [B, d]. */
export class BertClsToken extends tf.layers.Layer {
  static className = 'BertClsToken';
  constructor(args: { name?: string } = {}) { super(args); }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = firstShape(inputShape);
    return [s[0], s[2]];
  }
  override call(inputs: Inputs): tf.Tensor {
    return tf.tidy(() => {
      const x = first(inputs);
      return tf.reshape(tf.slice(x, [0, 0, 0], [x.shape[0], 1, x.shape[2] as number]), [x.shape[0], x.shape[2] as number]);
    });
  }
  override computeMask(): tf.Tensor { return null as unknown as tf.Tensor; }
}
tf.serialization.registerClass(BertClsToken);
