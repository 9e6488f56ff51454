/**
 * Gradient canaries for the one-run audit: M crafted training examples whose gradient is a fixed direction in a
 * designated coordinate block, each included in the training set independently with probability 1/2 (node:crypto).
 *
 * Construction (white-box, for a classifier `model` with one output of shape [B, K]):
 * - The audited model adds one input, a canary id (int32 [B, 1]; 0 for real examples, j + 1 for canary j), and one
 *   designated block: an Embedding(M + 1 → 1) table W initialised to zero, whose output is concatenated to the
 *   model's output ([B, K + 1]). Real examples read row 0 and their loss ignores the extra column.
 * - A canary example has all-zero model inputs and the per-example loss −g·W[j + 1] (g = canaryGradientNorm), which
 *   does not depend on the model's own output. Its gradient is therefore exactly −g·e_{j+1} in the block and 0 on every
 *   other weight: a Dirac canary (Steinke et al. 2023 §7, "gradient canaries"). Real examples have gradient 0 in the
 *   block. Canaries are ordinary rows of the training set: Poisson-sampled, clipped per example (to C when g > C),
 *   noised and averaged by the same DP step as the real data.
 * - Score of canary j: −Σ_t g̃_t[j + 1], the alignment of the privatised gradients (the released white-box view, all
 *   iterates) with the canary's direction; in ≈ C per step it was sampled + N(0, (σC)²) per step, out ≈ noise only.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.ts';
import { createSecureRandom, type RandomSource } from '../dp/csprng.ts';
import { resolveLoss } from '../dp/per-example/index.ts';
import type { BuiltinLossName, PerExampleLossFn } from '../dp/per-example/index.ts';
import type { DpData } from '../train/types.ts';

/** Name of the designated canary layer in the audited model. */
export const CANARY_BLOCK_LAYER = 'ewtune_audit_canary_block';
/** Name of the canary-id input of the audited model. */
export const CANARY_ID_INPUT = 'ewtune_audit_canary_id';

/**
 * Which of `count` canaries are included: each independently with probability 1/2, one random bit per canary from
 * `random` (default: the OS CSPRNG through node:crypto). 1 = included.
 */
export function drawInclusion(count: number, random: RandomSource = createSecureRandom()): Uint8Array {
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) {
    throw new InvalidArgumentError('canaries', count, 'a positive integer');
  }
  const out = new Uint8Array(count);
  for (let j = 0; j < count; j++) out[j] = random.uint32() & 1;
  return out;
}

/** The audited model and its designated block. */
export interface CanaryModel {
  /** Inputs: the model's inputs, then the canary id [B, 1] int32. Output: [B, K + 1]. Shares the model's layers. */
  readonly model: tf.LayersModel;
  /** Key of the block's variable in gradient maps (the LayerVariable name). */
  readonly blockVariable: string;
  /** K, the width of the original output. */
  readonly outputWidth: number;
  /** Disposes the canary block's weights only (the original model's layers stay alive). */
  dispose(): void;
}

/**
 * Wrap `model` (one output of shape [B, K]) with the canary block of `canaries` rows. The original model's layers
 * are shared, not copied: training the audited model trains them.
 * @throws InvalidArgumentError if the model has not exactly one output of rank 2, or a layer name clashes.
 */
export function withCanaryBlock(model: tf.LayersModel, canaries: number): CanaryModel {
  if (!(model instanceof tf.LayersModel)) throw new InvalidArgumentError('model', model, 'a tf.LayersModel');
  if (!Number.isSafeInteger(canaries) || canaries < 1) throw new InvalidArgumentError('canaries', canaries, 'a positive integer');
  if (model instanceof tf.Sequential && model.inputs.length === 0) {
    throw new InvalidArgumentError('model', model.name, 'a built model (give the first layer an inputShape)');
  }
  if (model.outputs.length !== 1 || model.outputs[0].shape.length !== 2 || typeof model.outputs[0].shape[1] !== 'number') {
    throw new InvalidArgumentError('model', model.name, 'a model with one output of shape [batch, K] (the audit appends a canary column to it)');
  }
  for (const layer of model.layers) {
    if (layer.name === CANARY_BLOCK_LAYER || layer.name === CANARY_ID_INPUT) {
      throw new InvalidArgumentError('model', model.name, `a model without a layer named ${layer.name} (reserved for the audit)`);
    }
  }
  const outputWidth = model.outputs[0].shape[1] as number;
  const id = tf.input({ shape: [1], dtype: 'int32', name: CANARY_ID_INPUT });
  const block = tf.layers.embedding({ inputDim: canaries + 1, outputDim: 1, embeddingsInitializer: 'zeros', name: CANARY_BLOCK_LAYER });
  const embedded = block.apply(id) as tf.SymbolicTensor;
  const column = tf.layers.reshape({ targetShape: [1], name: `${CANARY_BLOCK_LAYER}_column` }).apply(embedded) as tf.SymbolicTensor;
  const joined = tf.layers.concatenate({ axis: -1, name: `${CANARY_BLOCK_LAYER}_output` })
    .apply([model.outputs[0], column]) as tf.SymbolicTensor;
  const audited = tf.model({ inputs: [...model.inputs, id], outputs: joined, name: `${model.name}_audited` });
  const blockVariable = block.trainableWeights[0].name;
  return {
    model: audited,
    blockVariable,
    outputWidth,
    dispose() {
      block.dispose();
    },
  };
}

/**
 * The per-example loss of the audited model: the user's loss on the first K columns for real rows, −g·(column K)
 * for canary rows. Labels arrive as rows [label values..., canaryFlag] (see {@link buildAuditData}).
 */
export function canaryAwareLoss(loss: BuiltinLossName | PerExampleLossFn, layout: LabelLayout, outputWidth: number,
  canaryGradientNorm: number): PerExampleLossFn {
  const base = resolveLoss(loss);
  if (typeof base !== 'function') throw new InvalidArgumentError('loss', loss, 'a built-in loss name or a per-example loss function');
  return (yTrue, yPred) => tf.tidy(() => {
    const batch = yPred.shape[0];
    const labels = tf.cast(tf.reshape(tf.slice(yTrue, [0, 0], [-1, layout.width]), [batch, ...layout.shape]), layout.dtype);
    const isCanary = tf.greater(tf.reshape(tf.slice(yTrue, [0, layout.width], [-1, 1]), [batch]), 0.5);
    const predictions = tf.slice(yPred, [0, 0], [-1, outputWidth]);
    const canaryColumn = tf.reshape(tf.slice(yPred, [0, outputWidth], [-1, 1]), [batch]);
    const real = tf.reshape(base(labels, predictions), [batch]);
    return tf.where(isCanary, tf.mul(canaryColumn, -canaryGradientNorm), real);
  });
}

/** How the original labels are packed in the audited label rows. */
export interface LabelLayout {
  /** Per-example shape of y ([] for class labels). */
  readonly shape: number[];
  /** Number of values per example (product of shape). */
  readonly width: number;
  readonly dtype: 'float32' | 'int32';
}

/** The audited training set: real rows then the included canaries' rows. */
export interface AuditData extends DpData {
  readonly x: tf.Tensor[];
  readonly y: tf.Tensor2D;
  readonly layout: LabelLayout;
  /** Number of real rows (they come first). */
  readonly realSize: number;
  /** canaryRows[i − realSize] = the canary index j of row i (the included canaries, ascending). */
  readonly canaryRows: Int32Array;
  dispose(): void;
}

/**
 * Real data plus one all-zero-input row per included canary, with the canary-id input and the packed labels.
 * @throws InvalidArgumentError for data that is not { x: tensor(s), y: tensor } with one batch size, or y of dtype
 *   other than float32/int32.
 */
export function buildAuditData(data: DpData, included: Uint8Array, modelInputs: number): AuditData {
  if (data === null || typeof data !== 'object') throw new InvalidArgumentError('data', data, 'an object { x, y }');
  const xs = Array.isArray(data.x) ? data.x : [data.x];
  if (xs.length !== modelInputs || !xs.every((t) => t instanceof tf.Tensor)) {
    throw new InvalidArgumentError('data.x', xs.length, `${modelInputs} tensor(s), one per model input`);
  }
  if (!(data.y instanceof tf.Tensor)) throw new InvalidArgumentError('data.y', data.y, 'a tf.Tensor');
  const n = data.y.shape[0];
  if (!xs.every((t) => t.shape[0] === n)) throw new InvalidArgumentError('data.x', xs.map((t) => t.shape[0]), `tensors with ${n} rows (as data.y)`);
  if (data.y.dtype !== 'float32' && data.y.dtype !== 'int32') throw new InvalidArgumentError('data.y', data.y.dtype, 'of dtype float32 or int32');
  const canaryRows = Int32Array.from([...included.keys()].filter((j) => included[j] === 1));
  const c = canaryRows.length;
  const shape = data.y.shape.slice(1);
  const width = shape.reduce((a, b) => a * b, 1);
  const layout: LabelLayout = { shape, width, dtype: data.y.dtype };
  const built = tf.tidy(() => {
    const x = xs.map((t) => (c === 0 ? t.clone() : tf.concat([t, tf.zeros([c, ...t.shape.slice(1)], t.dtype)], 0)));
    const ids = new Int32Array(n + c);
    for (let i = 0; i < c; i++) ids[n + i] = canaryRows[i] + 1;
    x.push(tf.tensor2d(ids, [n + c, 1], 'int32'));
    const realLabels = tf.concat([tf.cast(tf.reshape(data.y, [n, width]), 'float32'), tf.zeros([n, 1])], 1);
    const canaryLabels = tf.concat([tf.zeros([c, width]), tf.ones([c, 1])], 1);
    const y = (c === 0 ? realLabels : tf.concat([realLabels, canaryLabels], 0)) as tf.Tensor2D;
    return { x, y };
  });
  return {
    x: built.x, y: built.y, layout, realSize: n, canaryRows,
    dispose() {
      tf.dispose([...built.x, built.y]);
    },
  };
}
