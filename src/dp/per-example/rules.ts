/**
 * Per-layer rules of the vectorised step: each supported layer type is recomputed with our own ops so a probe can
 * sit on its pre-activation output, and yields a LayerRecord that turns (activations A, output gradients G) into
 * per-example squared norms and the clipped sum Σ_i c_i·g_i.
 *
 * tfjs-layers internals relied on (pinned @tensorflow/tfjs-layers 4.22.0, read in dist/layers/*.js):
 * - Dense: `kernel`, `bias` (LayerVariable | null), `activation` (object with apply()); call = act(x·W + b) on
 *   the last axis of an input of any rank.
 * - Embedding: `embeddings`, `inputDim`; call = gather(E, cast(x, int32)) reshaped to [...x.shape, outputDim].
 * - LayerNormalization: `axis` (number[] after build), `epsilon`, `scale`/`center` flags, `gamma`, `beta`;
 *   call = (x − mean)/√(var + ε)·γ + β over `axis`.
 * - ewtune's PositionEmbedding (src/models/transformer.ts): `positionEmbeddings` [T, d]; call = x + P.
 */
import * as tf from '@tensorflow/tfjs';
import type { ClippingStrategy } from './types.ts';
import type { ProbeSet } from './probes.ts';
import { clippedSumOfStacked } from './naive.ts';
import { MAX_MATERIALISED_FLOATS, rowSquares, scaleRows, zeroRows } from './row-ops.ts';

export { MAX_MATERIALISED_FLOATS } from './row-ops.ts';
import { loraRule } from './lora-rule.ts';

/** The LayerVariable surface we use (tfjs-layers' LayerVariable is not exported as a type from the tfjs bundle). */
export interface WeightVariable {
  name: string;
  read(): tf.Tensor;
}

/** What a rule produces for one layer call. */
export interface LayerRecord {
  layerName: string;
  /** Per-example squared gradient norms over this layer's trainable weights, float32 [B]. Call inside a tidy. */
  squaredNorms(): tf.Tensor1D;
  /** [variable name, Σ_i c_i g_i] for the layer's trainable weights. Call inside a tidy, after squaredNorms(). */
  clippedSums(factors: tf.Tensor1D, finite: tf.Tensor1D | null): Array<[string, tf.Tensor]>;
}

export interface RuleContext {
  probes: ProbeSet;
  strategy: ClippingStrategy;
  /** Whether a weight gets a gradient (trainable in the model being stepped). */
  isTrainable(w: WeightVariable | null | undefined): w is WeightVariable;
  batchSize: number;
}

export interface LayerRule {
  /** Whether this rule computes `layer` on `input` exactly (else the layer falls back to the per-example loop). */
  supports(layer: tf.layers.Layer, input: tf.Tensor): boolean;
  forward(layer: tf.layers.Layer, input: tf.Tensor, ctx: RuleContext): { output: tf.Tensor; record: LayerRecord };
}

/** The probe's gradient reshaped, or zeros when the loss does not reach the layer. */
function gradientOf(ctx: RuleContext, id: number, shape: number[]): tf.Tensor {
  const g = ctx.probes.gradient(id);
  return g ? tf.reshape(g, shape) : tf.zeros(shape);
}

/**
 * Whether ghost norms are preferred over materialised per-example gradients for a Dense layer on sequences.
 * Per example, ghost norms cost ~T²(d_in + d_out) multiply-adds for the Grams AAᵀ, GGᵀ plus ~T·d_in·d_out for the
 * clipped sum Aᵀ·diag(c)·G; materialised ones cost ~T·d_in·d_out for A_iᵀG_i, after which the clipped sum is a
 * cheap [1, B]·[B, d_in·d_out] product. Materialising is therefore never more work; `auto` takes it unless the
 * stack of B·d_in·d_out floats exceeds {@link MAX_MATERIALISED_FLOATS} (then the smaller of the norm costs decides).
 */
export function preferGhost(strategy: ClippingStrategy, T: number, dIn: number, dOut: number, batchSize = 1): boolean {
  if (strategy === 'ghost') return true;
  if (strategy === 'materialise') return false;
  if (batchSize * dIn * dOut <= MAX_MATERIALISED_FLOATS) return false;
  return T * T * (dIn + dOut) <= T * dIn * dOut;
}

/**
 * A [B, …] per-example stack computed once in squaredNorms() and reused by clippedSums(): kept (a clone owned by
 * the probe set, freed with it) because squaredNorms() runs inside a tidy.
 */
function cached(ctx: RuleContext, compute: () => tf.Tensor): () => tf.Tensor {
  let kept: tf.Tensor | null = null;
  return () => {
    if (kept === null || kept.isDisposed) kept = ctx.probes.own(compute());
    return kept;
  };
}

interface DenseLike extends tf.layers.Layer {
  kernel: WeightVariable;
  bias: WeightVariable | null;
  activation: { apply(x: tf.Tensor): tf.Tensor } | null;
}

const denseRule: LayerRule = {
  supports: (layer) => (layer as DenseLike).kernel !== undefined,
  forward(layer, input, ctx) {
    const dense = layer as DenseLike;
    const B = ctx.batchSize;
    const x = input.dtype === 'float32' ? input : tf.cast(input, 'float32');
    const kernel = dense.kernel.read();
    const [dIn, dOut] = kernel.shape;
    const T = x.size / (B * dIn);
    let z = tf.matMul(tf.reshape(x, [-1, dIn]), kernel);
    if (dense.bias) z = tf.add(z, dense.bias.read());
    z = tf.reshape(z, [...x.shape.slice(0, -1), dOut]);
    const { output: zp, id } = ctx.probes.attach(z);
    const output = dense.activation ? dense.activation.apply(zp) : zp;
    const kernelVar = ctx.isTrainable(dense.kernel) ? dense.kernel : null;
    const biasVar = ctx.isTrainable(dense.bias) ? dense.bias : null;
    const ghost = T === 1 || preferGhost(ctx.strategy, T, dIn, dOut, B);
    // Materialised with a trainable bias: A gets a column of ones, so A_iᵀG_i has Σ_t g_t (the bias gradient) as
    // its last row — kernel and bias per-example gradients from one batched product, no separate sum over T.
    const biasRow = !ghost && kernelVar !== null && biasVar !== null;
    const A = kernelVar ? ctx.probes.own(biasRow
      ? tf.concat([tf.reshape(x, [B, T, dIn]), tf.ones([B, T, 1])], 2)
      : tf.reshape(x, [B, T, dIn])) : null;
    const biasRows = cached(ctx, () => tf.sum(gradientOf(ctx, id, [B, T, dOut]), 1));
    let materialised: tf.Tensor | null = null;
    const record: LayerRecord = {
      layerName: layer.name,
      squaredNorms() {
        const G = gradientOf(ctx, id, [B, T, dOut]);
        let sq: tf.Tensor = tf.zeros([B]);
        if (kernelVar && A) {
          if (T === 1) {
            sq = tf.add(sq, tf.mul(rowSquares(A), rowSquares(G)));
          } else if (ghost) {
            const aat = tf.matMul(A, A, false, true);
            const ggt = tf.matMul(G, G, false, true);
            sq = tf.add(sq, tf.sum(tf.mul(aat, ggt), [1, 2]));
          } else {
            materialised = ctx.probes.own(tf.matMul(A, G, true, false));
            sq = tf.add(sq, rowSquares(materialised));
          }
        }
        if (biasVar && !biasRow) sq = tf.add(sq, rowSquares(T === 1 ? tf.reshape(G, [B, dOut]) : biasRows()));
        return sq as tf.Tensor1D;
      },
      clippedSums(factors, finite) {
        const out: Array<[string, tf.Tensor]> = [];
        if (kernelVar && A) {
          if (materialised && biasRow && biasVar) {
            const both = clippedSumOfStacked(materialised, factors, finite);
            out.push([kernelVar.name, tf.slice(both, [0, 0], [dIn, dOut])]);
            out.push([biasVar.name, tf.reshape(tf.slice(both, [dIn, 0], [1, dOut]), [dOut])]);
            return out;
          }
          if (materialised) {
            out.push([kernelVar.name, clippedSumOfStacked(materialised, factors, finite)]);
          } else {
            const G = zeroRows(gradientOf(ctx, id, [B, T, dOut]), finite);
            const ac = scaleRows(zeroRows(A, finite), factors);
            out.push([kernelVar.name,
              tf.matMul(tf.reshape(ac, [B * T, dIn]), tf.reshape(G, [B * T, dOut]), true, false)]);
          }
        }
        if (biasVar) {
          const rows = T === 1 ? gradientOf(ctx, id, [B, dOut]) : biasRows();
          out.push([biasVar.name, clippedSumOfStacked(rows, factors, finite)]);
        }
        return out;
      },
    };
    return { output, record };
  },
};

interface EmbeddingLike extends tf.layers.Layer {
  embeddings: WeightVariable;
  inputDim: number;
}

const embeddingRule: LayerRule = {
  supports: (layer) => (layer as EmbeddingLike).embeddings !== undefined,
  forward(layer, input, ctx) {
    const emb = layer as EmbeddingLike;
    const B = ctx.batchSize;
    const table = emb.embeddings.read();
    const d = table.shape[1] as number;
    const ids = input.dtype === 'int32' ? input : tf.cast(input, 'int32');
    const T = ids.size / B;
    const gathered = tf.reshape(tf.gather(table, tf.reshape(ids, [ids.size])), [...ids.shape, d]);
    const { output, id } = ctx.probes.attach(gathered);
    const tableVar = ctx.isTrainable(emb.embeddings) ? emb.embeddings : null;
    const idRows = tableVar ? ctx.probes.own(tf.reshape(ids, [B, T])) : null;
    const record: LayerRecord = {
      layerName: layer.name,
      squaredNorms() {
        if (!tableVar || !idRows) return tf.zeros([B]);
        const G = gradientOf(ctx, id, [B, T, d]);
        if (T === 1) return rowSquares(G);
        // Rows with equal ids add up before squaring: ‖g‖² = Σ_tt' [id_t = id_t'] g_t·g_t'.
        const same = tf.cast(tf.equal(tf.expandDims(idRows, 2), tf.expandDims(idRows, 1)), 'float32');
        return tf.sum(tf.mul(same, tf.matMul(G, G, false, true)), [1, 2]) as tf.Tensor1D;
      },
      clippedSums(factors, finite) {
        if (!tableVar || !idRows) return [];
        const G = scaleRows(zeroRows(gradientOf(ctx, id, [B, T, d]), finite), factors);
        return [[tableVar.name,
          tf.unsortedSegmentSum(tf.reshape(G, [B * T, d]), tf.reshape(idRows, [B * T]), emb.inputDim)]];
      },
    };
    return { output, record };
  },
};

interface LayerNormLike extends tf.layers.Layer {
  axis: number | number[];
  epsilon: number;
  scale: boolean;
  center: boolean;
  gamma: WeightVariable | null;
  beta: WeightVariable | null;
}

const layerNormRule: LayerRule = {
  supports(layer, input) {
    const ln = layer as LayerNormLike;
    const axis = Array.isArray(ln.axis) ? ln.axis : [ln.axis];
    return axis.length === 1 && (axis[0] === input.rank - 1 || axis[0] === -1) && input.dtype === 'float32';
  },
  forward(layer, input, ctx) {
    const ln = layer as LayerNormLike;
    const B = ctx.batchSize;
    const d = input.shape[input.rank - 1];
    const T = input.size / (B * d);
    const { mean, variance } = tf.moments(input, -1, true);
    const normalised = tf.mul(tf.sub(input, mean), tf.rsqrt(tf.add(variance, ln.epsilon)));
    let y = normalised;
    if (ln.scale && ln.gamma) y = tf.mul(y, ln.gamma.read());
    if (ln.center && ln.beta) y = tf.add(y, ln.beta.read());
    const { output, id } = ctx.probes.attach(y);
    const gammaVar = ln.scale && ctx.isTrainable(ln.gamma) ? ln.gamma : null;
    const betaVar = ln.center && ctx.isTrainable(ln.beta) ? ln.beta : null;
    const xHat = gammaVar ? ctx.probes.own(tf.reshape(normalised, [B, T, d])) : null;
    // Per-example gradients are [B, d]: Σ_t g_t ⊙ x̂_t for γ and Σ_t g_t for β; formed once, zeroed rows of
    // non-finite examples are handled by clippedSumOfStacked.
    const gammaRows = cached(ctx, () => tf.sum(tf.mul(gradientOf(ctx, id, [B, T, d]), xHat!), 1));
    const betaRows = cached(ctx, () => tf.sum(gradientOf(ctx, id, [B, T, d]), 1));
    const record: LayerRecord = {
      layerName: layer.name,
      squaredNorms() {
        let sq: tf.Tensor = tf.zeros([B]);
        if (gammaVar && xHat) sq = tf.add(sq, rowSquares(gammaRows()));
        if (betaVar) sq = tf.add(sq, rowSquares(betaRows()));
        return sq as tf.Tensor1D;
      },
      clippedSums(factors, finite) {
        const out: Array<[string, tf.Tensor]> = [];
        if (gammaVar && xHat) out.push([gammaVar.name, clippedSumOfStacked(gammaRows(), factors, finite)]);
        if (betaVar) out.push([betaVar.name, clippedSumOfStacked(betaRows(), factors, finite)]);
        return out;
      },
    };
    return { output, record };
  },
};

interface PositionEmbeddingLike extends tf.layers.Layer {
  positionEmbeddings: WeightVariable;
}

const positionEmbeddingRule: LayerRule = {
  supports(layer, input) {
    const p = (layer as PositionEmbeddingLike).positionEmbeddings;
    if (!p || input.rank !== 3) return false;
    const shape = p.read().shape;
    return shape[0] === input.shape[1] && shape[1] === input.shape[2];
  },
  forward(layer, input, ctx) {
    const pe = layer as PositionEmbeddingLike;
    const B = ctx.batchSize;
    const { output, id } = ctx.probes.attach(tf.add(input, pe.positionEmbeddings.read()));
    const table = ctx.isTrainable(pe.positionEmbeddings) ? pe.positionEmbeddings : null;
    const shape = [B, input.shape[1] as number, input.shape[2] as number];
    const record: LayerRecord = {
      layerName: layer.name,
      // The per-example gradient of P is the output gradient itself.
      squaredNorms: () => (table ? rowSquares(gradientOf(ctx, id, shape)) : tf.zeros([B])),
      clippedSums: (factors, finite) =>
        (table ? [[table.name, clippedSumOfStacked(gradientOf(ctx, id, shape), factors, finite)]] : []),
    };
    return { output, record };
  },
};

/** Rules by tfjs class name (Layer.getClassName()). */
export const LAYER_RULES: ReadonlyMap<string, LayerRule> = new Map([
  ['Dense', denseRule],
  ['Embedding', embeddingRule],
  ['LayerNormalization', layerNormRule],
  ['PositionEmbedding', positionEmbeddingRule],
  ['LoraDense', loraRule],
]);
