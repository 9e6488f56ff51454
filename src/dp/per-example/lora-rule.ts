/**
 * Per-example rule of LoraDense (src/models/lora.ts): z = x·W + b + s·u·B with u = x̃·A, x̃ = x (⊙ dropout mask),
 * s = alpha/r, W and b frozen. With G = ∂L/∂z [B, T, out] from the probe on z and H = G·Bᵀ [B, T, r]:
 *
 *   ∂B_i = s·u_iᵀ G_i   [r, out]        ∂A_i = s·x̃_iᵀ H_i   [in, r]        (∂b_i = Σ_t G_i,t when the bias trains)
 *
 * Materialised (the default: the stacks are B·r·(in + out) floats, tiny for small r, and cost T·r·(in + out) per
 * example against T²·(in + out + 2r) for ghost norms) or ghost norms ‖s·uᵀG‖² = s²·Σ_tt' (uuᵀ)_tt'(GGᵀ)_tt' (same for
 * A with x̃ and H) under strategy `ghost` or when the stacks exceed the memory cap. Clipped sums by book-keeping:
 * s·(c⊙u)ᵀG and s·(c⊙x̃)ᵀH over all B·T rows, or c-weighted sums of the materialised stacks. The frozen kernel and bias
 * cost nothing beyond the forward matmul. A LoraDense whose base kernel was made trainable is not supported here
 * (it falls back to the per-example loop).
 *
 * This module imports no values from rules.ts (which registers it), so either may be imported first.
 */
import * as tf from '@tensorflow/tfjs';
import type { LayerRecord, LayerRule, RuleContext, WeightVariable } from './rules.ts';
import { clippedSumOfStacked } from './naive.ts';
import { MAX_MATERIALISED_FLOATS, rowSquares, scaleRows, zeroRows } from './row-ops.ts';

/** The LoraDense surface this rule reads (structural, so the rule does not import the model module). */
interface LoraLike extends tf.layers.Layer {
  kernel: WeightVariable & { trainable: boolean };
  bias: WeightVariable | null;
  loraA: WeightVariable;
  loraB: WeightVariable;
  scale: number;
  units: number;
  activation: { apply(x: tf.Tensor): tf.Tensor } | null;
  dropoutMask(shape: number[], training: boolean): tf.Tensor | null;
}

/**
 * Largest materialised per-example stack (B·r·(in + out) floats) that `auto` materialises: the Dense rule's cap.
 */
export const MAX_LORA_MATERIALISED_FLOATS = MAX_MATERIALISED_FLOATS;

/** Σ_tt' (XXᵀ)_tt'(YYᵀ)_tt' per example = ‖X_iᵀY_i‖²_F without forming X_iᵀY_i. */
function ghostSquares(X: tf.Tensor3D, Y: tf.Tensor3D): tf.Tensor1D {
  return tf.sum(tf.mul(tf.matMul(X, X, false, true), tf.matMul(Y, Y, false, true)), [1, 2]) as tf.Tensor1D;
}

/** Whether the LoRA layer uses ghost norms. */
export function loraPrefersGhost(strategy: RuleContext['strategy'], batchSize: number, dIn: number, rank: number, dOut: number): boolean {
  if (strategy === 'ghost') return true;
  if (strategy === 'materialise') return false;
  return batchSize * rank * (dIn + dOut) > MAX_LORA_MATERIALISED_FLOATS;
}

export const loraRule: LayerRule = {
  supports(layer) {
    const l = layer as LoraLike;
    return l.loraA !== undefined && l.loraB !== undefined && l.kernel !== undefined && !l.kernel.trainable;
  },
  forward(layer, input, ctx) {
    const lora = layer as LoraLike;
    const B = ctx.batchSize;
    const s = lora.scale;
    const x = input.dtype === 'float32' ? input : tf.cast(input, 'float32');
    const A = lora.loraA.read();
    const Bm = lora.loraB.read();
    const [dIn, r] = A.shape as [number, number];
    const dOut = Bm.shape[1] as number;
    const T = x.size / (B * dIn);
    // Training-mode dropout of the adapter input, when the step runs in training mode.
    const training = (ctx as RuleContext & { training?: boolean }).training === true;
    const mask = lora.dropoutMask(x.shape, training);
    const flat = tf.reshape(x, [-1, dIn]);
    const dropped = mask ? tf.reshape(tf.mul(x, mask), [-1, dIn]) : flat;
    const u = tf.matMul(dropped, A);
    let z = tf.matMul(flat, lora.kernel.read());
    if (lora.bias) z = tf.add(z, lora.bias.read());
    z = tf.add(z, tf.mul(tf.matMul(u, Bm), s));
    z = tf.reshape(z, [...x.shape.slice(0, -1), dOut]);
    const { output: zp, id } = ctx.probes.attach(z);
    const output = lora.activation ? lora.activation.apply(zp) : zp;

    const aVar = ctx.isTrainable(lora.loraA) ? lora.loraA : null;
    const bVar = ctx.isTrainable(lora.loraB) ? lora.loraB : null;
    const biasVar = ctx.isTrainable(lora.bias) ? lora.bias : null;
    const ghost = loraPrefersGhost(ctx.strategy, B, dIn, r, dOut);
    const xRows = aVar ? ctx.probes.own(tf.reshape(dropped, [B, T, dIn]) as tf.Tensor3D) : null;
    const uRows = bVar ? ctx.probes.own(tf.reshape(u, [B, T, r]) as tf.Tensor3D) : null;
    const bKept = aVar ? ctx.probes.own(Bm) : null;

    // Everything derived from G is formed once (in squaredNorms) and kept for clippedSums.
    let G: tf.Tensor3D | null = null;
    let H: tf.Tensor3D | null = null;
    let gradA: tf.Tensor | null = null;
    let gradB: tf.Tensor | null = null;
    let gradBias: tf.Tensor | null = null;
    const prepare = () => {
      if (G !== null) return;
      const g = ctx.probes.gradient(id);
      G = ctx.probes.own((g ? tf.reshape(g, [B, T, dOut]) : tf.zeros([B, T, dOut])) as tf.Tensor3D);
      if (aVar && bKept) H = ctx.probes.own(tf.reshape(tf.matMul(tf.reshape(G, [B * T, dOut]), bKept, false, true), [B, T, r]) as tf.Tensor3D);
      if (!ghost) {
        if (aVar && xRows && H) gradA = ctx.probes.own(tf.mul(tf.matMul(xRows, H, true, false), s));
        if (bVar && uRows) gradB = ctx.probes.own(tf.mul(tf.matMul(uRows, G, true, false), s));
      }
      if (biasVar) gradBias = ctx.probes.own(tf.sum(G, 1));
    };

    const record: LayerRecord = {
      layerName: layer.name,
      squaredNorms() {
        prepare();
        let sq: tf.Tensor = tf.zeros([B]);
        if (aVar && xRows && H) sq = tf.add(sq, gradA ? rowSquares(gradA) : tf.mul(ghostSquares(xRows, H), s * s));
        if (bVar && uRows && G) sq = tf.add(sq, gradB ? rowSquares(gradB) : tf.mul(ghostSquares(uRows, G), s * s));
        if (gradBias) sq = tf.add(sq, rowSquares(gradBias));
        return sq as tf.Tensor1D;
      },
      clippedSums(factors, finite) {
        prepare();
        const out: Array<[string, tf.Tensor]> = [];
        const bookKept = (left: tf.Tensor3D, right: tf.Tensor3D): tf.Tensor => {
          const lc = scaleRows(zeroRows(left, finite), factors);
          const rz = zeroRows(right, finite);
          const [, , dl] = left.shape;
          const [, , dr] = right.shape;
          return tf.mul(tf.matMul(tf.reshape(lc, [B * T, dl]), tf.reshape(rz, [B * T, dr]), true, false), s);
        };
        if (aVar && xRows && H) {
          out.push([aVar.name, gradA ? clippedSumOfStacked(gradA, factors, finite) : bookKept(xRows, H)]);
        }
        if (bVar && uRows && G) {
          out.push([bVar.name, gradB ? clippedSumOfStacked(gradB, factors, finite) : bookKept(uRows, G)]);
        }
        if (biasVar && gradBias) out.push([biasVar.name, clippedSumOfStacked(gradBias, factors, finite)]);
        return out;
      },
    };
    return { output, record };
  },
};
