/**
 * Argument checks and normalisation shared by the vectorised and the naive step. Everything here runs before any
 * tensor work; bad input raises InvalidArgumentError naming the argument.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../../errors.ts';
import { BUILTIN_LOSS_NAMES, resolveLoss } from './losses.ts';
import { assertPerExampleSafe, runGraph } from './graph.ts';
import type {
  ClippableModel, ClippedGradientOptions, ClippingStrategy, FunctionModel, ModelInput, PerExampleLossFn,
} from './types.ts';

const STRATEGIES: readonly ClippingStrategy[] = ['auto', 'ghost', 'materialise', 'naive'];
const INPUT_DTYPES = new Set(['float32', 'int32']);

/** One trainable variable: its name (the key of the result) and the tf.Variable read by the forward pass. */
export interface TrainableVariable {
  name: string;
  variable: tf.Variable;
}

/** A validated call. */
export interface PreparedCall {
  kind: 'layers' | 'function';
  model: ClippableModel;
  inputs: tf.Tensor[];
  y: tf.Tensor;
  batchSize: number;
  l2NormClip: number;
  loss: PerExampleLossFn;
  strategy: ClippingStrategy;
  trainable: TrainableVariable[];
}

export function isFunctionModel(model: unknown): model is FunctionModel {
  return (
    typeof model === 'object' && model !== null && !(model instanceof tf.LayersModel) &&
    Array.isArray((model as FunctionModel).variables) && typeof (model as FunctionModel).predict === 'function'
  );
}

/**
 * Runs the model's forward pass for the per-example loop: a tfjs-layers model in training mode, as the vectorised
 * pass does (graph.ts: dropout on, frozen BatchNormalization in inference mode, masks propagated as model.fit does);
 * a function model as written.
 */
export function forward(call: PreparedCall, inputs: tf.Tensor[]): tf.Tensor {
  if (call.kind === 'function') return (call.model as FunctionModel).predict(inputs[0]);
  return runGraph(call.model as tf.LayersModel, inputs, [], null).outputs[0];
}

/** What {@link validateClippingCall} found: everything about a call that does not depend on x and y. */
export interface ValidatedClipping {
  kind: PreparedCall['kind'];
  trainable: TrainableVariable[];
  /** Number of model inputs (tensors expected in x). */
  expectedInputs: number;
  l2NormClip: number;
  loss: PerExampleLossFn;
  strategy: ClippingStrategy;
}

/**
 * The checks of computeClippedGradients that do not need the batch: options (l2NormClip, loss, strategy) and the
 * model (a LayersModel with one output and trainable weights and no layer that mixes examples, or a function model).
 * Builds a Sequential that was never built. Runs before any tensor work.
 *
 * @throws InvalidArgumentError naming the argument.
 */
export function validateClippingCall(model: ClippableModel, options: ClippedGradientOptions): ValidatedClipping {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError('options', options, 'an object with l2NormClip and loss');
  }
  const { l2NormClip, loss } = options;
  if (typeof l2NormClip !== 'number' || !Number.isFinite(l2NormClip) || l2NormClip <= 0) {
    throw new InvalidArgumentError('l2NormClip', l2NormClip, 'a finite number > 0');
  }
  if (typeof loss !== 'function' && !BUILTIN_LOSS_NAMES.includes(loss)) {
    throw new InvalidArgumentError('loss', loss, `a function or one of ${BUILTIN_LOSS_NAMES.join(', ')}`);
  }
  const strategy = options.strategy ?? 'auto';
  if (!STRATEGIES.includes(strategy)) {
    throw new InvalidArgumentError('strategy', strategy, `one of ${STRATEGIES.join(', ')}`);
  }

  let kind: PreparedCall['kind'];
  let trainable: TrainableVariable[];
  let expectedInputs: number;
  if (model instanceof tf.LayersModel) {
    kind = 'layers';
    if (model instanceof tf.Sequential && !(model as unknown as { model?: unknown }).model) {
      // A Sequential builds its inner functional model lazily (as its own call()/predict() would do).
      if (model.inputs.length === 0) {
        throw new InvalidArgumentError('model', model.name, 'a built model (give the first layer an inputShape)');
      }
      model.build();
    }
    if (model.outputs.length !== 1) {
      throw new InvalidArgumentError('model', model.name, `a model with one output (has ${model.outputs.length})`);
    }
    trainable = model.trainableWeights.map((w) => ({ name: w.name, variable: w.read() as tf.Variable }));
    expectedInputs = model.inputs.length;
  } else if (isFunctionModel(model)) {
    kind = 'function';
    trainable = model.variables.filter((v) => v.trainable).map((v) => ({ name: v.name, variable: v }));
    expectedInputs = 1;
  } else {
    throw new InvalidArgumentError('model', model, 'a tf.LayersModel or { variables: tf.Variable[], predict(x) }');
  }
  if (trainable.length === 0) {
    throw new InvalidArgumentError('model', kind === 'layers' ? (model as tf.LayersModel).name : 'function model',
      'a model with at least one trainable variable');
  }
  if (kind === 'layers') assertPerExampleSafe(model as tf.LayersModel);
  return { kind, trainable, expectedInputs, l2NormClip, loss: resolveLoss(loss), strategy };
}

export function prepareCall(
  model: ClippableModel, x: ModelInput, y: tf.Tensor, options: ClippedGradientOptions,
): PreparedCall {
  const { kind, trainable, expectedInputs, l2NormClip, loss, strategy } = validateClippingCall(model, options);
  const inputs = Array.isArray(x) ? x : [x];
  if (inputs.length !== expectedInputs || !inputs.every((t) => t instanceof tf.Tensor)) {
    throw new InvalidArgumentError('x', describe(x), `${expectedInputs} tensor(s), one per model input`);
  }
  if (!(y instanceof tf.Tensor)) throw new InvalidArgumentError('y', y, 'a tf.Tensor');
  for (const t of inputs) {
    if (t.isDisposed) throw new InvalidArgumentError('x', 'disposed tensor', 'a live tensor');
    if (!INPUT_DTYPES.has(t.dtype)) throw new InvalidArgumentError('x', t.dtype, 'of dtype float32 or int32');
    if (t.rank < 1) throw new InvalidArgumentError('x', t.shape, 'a tensor with a batch axis (rank >= 1)');
  }
  if (y.isDisposed) throw new InvalidArgumentError('y', 'disposed tensor', 'a live tensor');
  if (!INPUT_DTYPES.has(y.dtype)) throw new InvalidArgumentError('y', y.dtype, 'of dtype float32 or int32');
  const batchSize = inputs[0].shape[0];
  for (const t of inputs) {
    if (t.shape[0] !== batchSize) throw new InvalidArgumentError('x', describe(x), 'inputs with equal batch sizes');
  }
  if (y.rank < 1 || y.shape[0] !== batchSize) {
    throw new InvalidArgumentError('y', y.shape, `a tensor whose batch size equals x's (${batchSize})`);
  }
  return {
    kind, model, inputs, y, batchSize, l2NormClip, loss, strategy, trainable,
  };
}

function describe(x: unknown): unknown {
  if (x instanceof tf.Tensor) return x.shape;
  if (Array.isArray(x)) return x.map((t) => (t instanceof tf.Tensor ? t.shape : typeof t));
  return x;
}

/** Checks the per-example loss shape [B]; returns it as float32. */
export function checkPerExampleLoss(losses: tf.Tensor, batchSize: number): tf.Tensor1D {
  if (losses.rank !== 1 || losses.shape[0] !== batchSize) {
    throw new InvalidArgumentError('loss', losses.shape, `a function returning per-example losses of shape [${batchSize}]`);
  }
  return losses as tf.Tensor1D;
}

/** Clip factors c_i = min(1, C/‖g_i‖) in float64 (0 for non-finite norms) and the non-finite mask. */
export function clipFactors(norms: Float64Array, l2NormClip: number): { factors: Float32Array; finite: boolean[]; nonFiniteCount: number } {
  const factors = new Float32Array(norms.length);
  const finite: boolean[] = [];
  let nonFiniteCount = 0;
  for (let i = 0; i < norms.length; i++) {
    const n = norms[i];
    const ok = Number.isFinite(n);
    finite.push(ok);
    if (!ok) {
      nonFiniteCount++;
      factors[i] = 0;
    } else {
      // Rounded down to float32 so that c_i·‖g_i‖ ≤ C holds after the cast too.
      const c = n > l2NormClip ? l2NormClip / n : 1;
      let f = Math.fround(c);
      if (f > c) f = Math.fround(f * (1 - 2 ** -23));
      factors[i] = f;
    }
  }
  return { factors, finite, nonFiniteCount };
}
