/**
 * Our own forward pass over a tfjs-layers model graph, node by node in topological order, so that supported layers
 * can be recomputed with probes (rules.ts) and everything else is called as tfjs would call it.
 *
 * Mirrors Container.runInternalGraph of @tensorflow/tfjs-layers 4.22.0 (dist/engine/container.js) and relies on
 * these internals of that pinned version: `container.nodesByDepth` (depth → Node[]; higher depth runs first),
 * `container.inputs` / `container.outputs` (SymbolicTensor with a numeric `id`), Node's `outboundLayer`,
 * `inputTensors`, `outputTensors`, `callArgs`, and `layer.call(inputs, kwargs)` / `layer.computeMask(...)` on
 * concrete tensors. A Sequential's graph lives in its inner functional model `sequential.model`. Nested models
 * (a LayersModel used as a layer) are walked recursively.
 *
 * Two differences from runInternalGraph (model.apply), both as tfjs's own executor does it for model.predict and
 * model.fit (dist/engine/executor.js):
 * - Masks: a layer's output mask is computed only when the layer supports masking (`supportsMasking`); otherwise
 *   it is dropped (model.apply instead throws "does not support masking, but was passed an inputMask" for e.g. a
 *   Dense after an Embedding with maskZero). The mask reaches each layer's call in kwargs.mask.
 * - Training mode: the per-example pass is a training pass. Every layer is called with `training: true` (dropout
 *   on, as in model.fit), except BatchNormalization, which only gets here frozen (trainable = false, see
 *   assertPerExampleSafe) and then runs in inference mode on its moving statistics (Keras' rule for frozen BN;
 *   tfjs's fit would run it on batch statistics). A `training` value the model's author passed explicitly when
 *   calling the layer is kept.
 *   Dropout masks come from TF.js's own random ops (tf.dropout), not from node:crypto: they are not privacy noise.
 *   Each example's mask is independent of the data, so per-example sensitivity (‖clip(g_i)‖ ≤ C) is unchanged and
 *   the DP guarantee holds whatever the masks are.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../../errors.ts';
import { LAYER_RULES } from './rules.ts';
import type { LayerRecord, RuleContext, WeightVariable } from './rules.ts';
import type { TrainableVariable } from './prepare.ts';

type Mask = tf.Tensor | null;

interface SymbolicLike { id: number }
interface NodeLike {
  outboundLayer: tf.layers.Layer;
  inputTensors: SymbolicLike[];
  outputTensors: SymbolicLike[];
  callArgs?: Record<string, unknown>;
}
interface GraphLike {
  inputs: SymbolicLike[];
  outputs: SymbolicLike[];
  nodesByDepth: Record<string, NodeLike[]>;
}

/** The functional graph behind a LayersModel (a Sequential delegates to `.model`). */
function graphOf(model: tf.LayersModel): GraphLike {
  const inner = (model as unknown as { model?: tf.LayersModel }).model;
  const g = (model instanceof tf.Sequential && inner ? inner : model) as unknown as GraphLike;
  if (!g.nodesByDepth || !g.inputs || !g.outputs) {
    throw new Error(`ewtune: cannot read the graph of model ${model.name} (tfjs-layers internals changed?)`);
  }
  return g;
}

function nodesInOrder(g: GraphLike): NodeLike[] {
  const depths = Object.keys(g.nodesByDepth).map((k) => parseInt(k, 10)).sort((a, b) => b - a);
  return depths.flatMap((d) => g.nodesByDepth[d]);
}

/** How many times each layer is called across the model and its nested models (shared layers are > 1). */
export function countLayerCalls(model: tf.LayersModel, counts = new Map<tf.layers.Layer, number>()): Map<tf.layers.Layer, number> {
  for (const node of nodesInOrder(graphOf(model))) {
    const layer = node.outboundLayer;
    counts.set(layer, (counts.get(layer) ?? 0) + 1);
    if (layer instanceof tf.LayersModel) countLayerCalls(layer, counts);
  }
  return counts;
}

/** The rule context of the per-example pass: always a training pass (rules with dropout honour `training`). */
export interface StepRuleContext extends RuleContext {
  readonly training: boolean;
}

/** State of one vectorised forward pass. */
export interface WalkState {
  rule: StepRuleContext;
  trainableNames: Set<string>;
  callCounts: Map<tf.layers.Layer, number>;
  records: LayerRecord[];
  /** Layers whose trainable weights need the per-example loop, with those weights. */
  fallback: Map<string, TrainableVariable[]>;
}

const BATCH_NORMALIZATION = 'BatchNormalization';

function isBatchNormalization(layer: tf.layers.Layer): boolean {
  return layer.getClassName() === BATCH_NORMALIZATION;
}

function callLayer(layer: tf.layers.Layer, inputs: tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor[] {
  const out = layer.call(inputs.length === 1 ? inputs[0] : inputs, kwargs as tf.serialization.ConfigDict);
  return Array.isArray(out) ? out : [out];
}

function computeLayer(
  layer: tf.layers.Layer, inputs: tf.Tensor[], masks: Mask[], kwargs: Record<string, unknown>, st: WalkState | null,
): { outputs: tf.Tensor[]; masks: Mask[] } {
  if (layer instanceof tf.LayersModel) return runGraph(layer, inputs, masks, st);
  const single = inputs.length === 1;
  const outputMasks = (): Mask[] => {
    if (!layer.supportsMasking) return [];
    const m = layer.computeMask(single ? inputs[0] : inputs, (single ? masks[0] : masks) as tf.Tensor);
    return Array.isArray(m) ? m : [m ?? null];
  };
  if (st === null) return { outputs: callLayer(layer, inputs, kwargs), masks: outputMasks() };
  const trainable = layer.trainableWeights.filter((w) => st.trainableNames.has(w.name));
  if (trainable.length === 0) return { outputs: callLayer(layer, inputs, kwargs), masks: outputMasks() };
  const rule = LAYER_RULES.get(layer.getClassName());
  if (rule && single && st.callCounts.get(layer) === 1 && rule.supports(layer, inputs[0])) {
    const { output, record } = rule.forward(layer, inputs[0], st.rule);
    st.records.push(record);
    return { outputs: [output], masks: outputMasks() };
  }
  st.fallback.set(layer.name, trainable.map((w) => ({ name: w.name, variable: w.read() as tf.Variable })));
  return { outputs: callLayer(layer, inputs, kwargs), masks: outputMasks() };
}

/**
 * Runs `model` on concrete inputs in training mode (see the module comment); returns its outputs and output masks.
 * With `st` null every layer is called as tfjs calls it (the per-example loop's forward pass); with a WalkState the
 * supported layers are recomputed by their rules (the vectorised pass).
 */
export function runGraph(model: tf.LayersModel, inputs: tf.Tensor[], masks: Mask[], st: WalkState | null): { outputs: tf.Tensor[]; masks: Mask[] } {
  const g = graphOf(model);
  const computed = new Map<number, [tf.Tensor, Mask]>();
  g.inputs.forEach((s, i) => computed.set(s.id, [inputs[i], masks[i] ?? null]));
  for (const node of nodesInOrder(g)) {
    const layer = node.outboundLayer;
    if (layer.getClassName() === 'InputLayer') continue;
    const data = node.inputTensors.map((s) => computed.get(s.id));
    if (data.some((d) => d === undefined)) continue;
    const xs = data.map((d) => d![0]);
    const ms = data.map((d) => d![1]);
    // A copy: runInternalGraph writes the mask into node.callArgs itself, we leave the model untouched.
    const kwargs: Record<string, unknown> = { ...(node.callArgs ?? {}) };
    if (kwargs.mask == null) kwargs.mask = xs.length === 1 ? ms[0] : ms;
    if (typeof kwargs.training !== 'boolean') kwargs.training = !isBatchNormalization(layer);
    const out = computeLayer(layer, xs, ms, kwargs, st);
    node.outputTensors.forEach((s, i) => computed.set(s.id, [out.outputs[i], out.masks[i] ?? null]));
  }
  const outputs = g.outputs.map((s) => {
    const c = computed.get(s.id);
    if (!c) throw new Error(`ewtune: could not compute output ${s.id} of model ${model.name}`);
    return c;
  });
  return { outputs: outputs.map((c) => c[0]), masks: outputs.map((c) => c[1]) };
}

/**
 * Refuses, before any work, layers that would break per-example sensitivity: a BatchNormalization layer that is
 * trainable (or called with training: true) normalises each example by statistics of the whole batch, so example
 * i's output, loss and gradient depend on the other examples and clipping g_i no longer bounds what one example can
 * change. Frozen ones (layer.trainable = false, or inside a model with trainable = false) run in inference mode.
 *
 * @throws InvalidArgumentError (argument `model`) naming the layer.
 */
export function assertPerExampleSafe(model: tf.LayersModel, ancestorsTrainable = true): void {
  const trainable = ancestorsTrainable && model.trainable;
  for (const node of nodesInOrder(graphOf(model))) {
    const layer = node.outboundLayer;
    if (layer instanceof tf.LayersModel) {
      assertPerExampleSafe(layer, trainable);
      continue;
    }
    if (!isBatchNormalization(layer)) continue;
    const frozen = !trainable || !layer.trainable;
    if (!frozen || node.callArgs?.training === true) {
      throw new InvalidArgumentError('model', `layer ${layer.name} (BatchNormalization${frozen ? ', called with training: true' : ''})`,
        'free of BatchNormalization layers in training mode: batch statistics mix the examples of a batch, so one '
        + "example's gradient depends on the others and per-example clipping no longer bounds its sensitivity (DP-SGD "
        + 'needs per-example gradients). Freeze the layer (layer.trainable = false) to run it in inference mode on its '
        + 'moving statistics, or use LayerNormalization');
    }
  }
}

export type { WeightVariable };
