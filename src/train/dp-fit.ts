/**
 * dpFit: a model.fit()-shaped DP-SGD loop. Per step: sample (Poisson from the CSPRNG by default) → per-example
 * clipped sum (virtual batches) → + N(0, (σC)²) in float64 → ÷ expected batch size → the budget policy decides
 * (before anything is recorded or applied) → the ledger record is appended and made durable, the accountant
 * composes, the step hook runs → optimizer.applyGradients. Drives tfjs callbacks; model.stopTraining honoured.
 *
 * Crash safety: the record of a step is durable before its update is applied, so after a crash the ledger holds
 * at least as many steps as were applied (it can over-count by the one step in flight, never under-count).
 * Resuming = pass the same ledger (and restore the model from the user's checkpoint): the step count, the budget
 * and the accountant continue from the ledger's history.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, NonFiniteTrainingError } from '../errors.ts';
import { assertDelta, assertEpsilon, assertNoiseMultiplier, assertSampleRate, assertSteps } from '../validate.ts';
import { appendSegment, totalSteps } from '../accounting/segments.ts';
import type { StepSegment } from '../accounting/types.ts';
import { pldEpsilon } from '../accounting/pld/index.ts';
import { rdpEpsilon } from '../accounting/rdp/index.ts';
import { calibrateNoiseMultiplier } from '../accounting/calibrate.ts';
import { createNoiseSource } from '../dp/noise.ts';
import { validateClippingCall } from '../dp/per-example/index.ts';
import type { NoiseSource } from '../dp/noise.ts';
import { poissonSample, shuffledBatches } from '../dp/sampling.ts';
import { BudgetPolicy } from '../budget/index.ts';
import type { CertifiedEpsilonFn } from '../budget/index.ts';
import { DpCallbackList, numericLogs } from './callbacks.ts';
import { assertPositiveNumber, trainableVariables, validateModelAndData } from './checks.ts';
import { accountedNoiseMultiplier, dpStep } from './dp-step.ts';
import type { DpData, DpFitArgs, DpHistory, StepRecord, StopReason, TrainableModel } from './types.ts';

const OPTIMIZERS = ['sgd', 'adam', 'momentum', 'rmsprop', 'adagrad'] as const;

/** Default certified ε for the budget stop: PLD (upper bound, grid 1e-4) or RDP. */
export function defaultCertifiedEpsilon(accountant: 'pld' | 'rdp' = 'pld'): CertifiedEpsilonFn {
  return accountant === 'rdp'
    ? (segments, delta) => rdpEpsilon(segments, delta).epsilon
    : (segments, delta) => pldEpsilon(segments, delta).epsilon;
}

function resolveOptimizer(args: DpFitArgs): tf.Optimizer {
  const o = args.optimizer;
  if (o instanceof tf.Optimizer) return o;
  if (typeof o === 'string' && (OPTIMIZERS as readonly string[]).includes(o)) {
    const lr = args.learningRate ?? (o === 'sgd' || o === 'momentum' ? 0.01 : 0.001);
    assertPositiveNumber('learningRate', lr);
    switch (o) {
      case 'sgd': return tf.train.sgd(lr);
      case 'adam': return tf.train.adam(lr);
      case 'momentum': return tf.train.momentum(lr, 0.9);
      case 'rmsprop': return tf.train.rmsprop(lr);
      default: return tf.train.adagrad(lr);
    }
  }
  throw new InvalidArgumentError('optimizer', o, `a tf.Optimizer or one of ${OPTIMIZERS.join(', ')}`);
}

function resolveNoise(noise: DpFitArgs['noise']): NoiseSource {
  if (noise === undefined) return createNoiseSource('gaussian');
  if (noise === 'gaussian' || noise === 'hardened') return createNoiseSource(noise);
  if (noise !== null && typeof noise === 'object' && typeof (noise as NoiseSource).perturb === 'function') return noise;
  throw new InvalidArgumentError('noise', noise, "a NoiseSource or 'gaussian' | 'hardened'");
}

/** Everything dpFit checks before any step (exported for tests and dpStep users). */
export interface ValidatedFit {
  readonly datasetSize: number;
  readonly sampleRate: number;
  readonly stepsPerEpoch: number;
  readonly epochs: number;
  readonly totalPlannedSteps: number;
  readonly dimension: number;
}

/** Validate the model, data and args; throws InvalidArgumentError naming the argument. */
export function validateFit(model: TrainableModel, data: DpData, args: DpFitArgs): ValidatedFit {
  if (model === null || typeof model !== 'object') throw new InvalidArgumentError('model', model, 'a model');
  if (data === null || typeof data !== 'object') throw new InvalidArgumentError('data', data, 'an object { x, y }');
  if (args === null || typeof args !== 'object') throw new InvalidArgumentError('args', args, 'an object');
  const { datasetSize, dimension } = validateModelAndData(model, data);

  assertPositiveNumber('l2NormClip', args.l2NormClip);
  if (args.target !== undefined) {
    if (args.noiseMultiplier !== undefined) {
      throw new InvalidArgumentError('target', args.target, 'absent when noiseMultiplier is given (give one of them)');
    }
    if (args.target === null || typeof args.target !== 'object') throw new InvalidArgumentError('target', args.target, 'an object');
    assertEpsilon(args.target.epsilon, 'target.epsilon');
    assertDelta(args.target.delta, 'target.delta');
    if (args.target.accountant !== undefined && args.target.accountant !== 'pld' && args.target.accountant !== 'rdp') {
      throw new InvalidArgumentError('target.accountant', args.target.accountant, "'pld' or 'rdp' (a certified accountant)");
    }
  } else {
    assertNoiseMultiplier(args.noiseMultiplier, 'noiseMultiplier');
  }
  const E = args.expectedBatchSize;
  if (typeof E !== 'number' || !Number.isFinite(E) || E <= 0) {
    throw new InvalidArgumentError('expectedBatchSize', E, 'a finite number > 0');
  }
  const sampleRate = E / datasetSize;
  assertSampleRate(sampleRate, 'sampleRate (expectedBatchSize / N)');
  if (args.maxPhysicalBatchSize !== undefined) assertSteps(args.maxPhysicalBatchSize, 'maxPhysicalBatchSize');
  if (args.sampler !== undefined && args.sampler !== 'poisson' && args.sampler !== 'shuffle') {
    throw new InvalidArgumentError('sampler', args.sampler, "'poisson' or 'shuffle'");
  }
  if (args.sampler === 'shuffle' && !Number.isInteger(E)) {
    throw new InvalidArgumentError('expectedBatchSize', E, "an integer for sampler 'shuffle'");
  }
  if (args.loss === undefined) throw new InvalidArgumentError('loss', args.loss, 'a loss name or function');
  // The clipper's own checks (loss, strategy, layers that mix examples), here so they run before any step.
  validateClippingCall(model, { l2NormClip: args.l2NormClip, loss: args.loss, strategy: args.strategy });
  if (args.epochs !== undefined) assertSteps(args.epochs, 'epochs');
  if (args.steps !== undefined) assertSteps(args.steps, 'steps');
  const b = args.budget;
  if (b !== undefined) {
    if (b === null || typeof b !== 'object') throw new InvalidArgumentError('budget', b, 'an object');
    if (b.epsilon !== undefined) {
      assertEpsilon(b.epsilon, 'budget.epsilon');
      assertDelta(b.delta, 'budget.delta');
    }
    if (b.accountant !== undefined && b.accountant !== 'pld' && b.accountant !== 'rdp') {
      throw new InvalidArgumentError('budget.accountant', b.accountant, "'pld' or 'rdp' (a certified accountant)");
    }
    if (b.maxSteps !== undefined) assertSteps(b.maxSteps, 'budget.maxSteps');
    if (b.maxEpochs !== undefined) assertSteps(b.maxEpochs, 'budget.maxEpochs');
  }
  if (args.delta !== undefined) assertDelta(args.delta, 'delta');
  if (args.onStep !== undefined && typeof args.onStep !== 'function') {
    throw new InvalidArgumentError('onStep', args.onStep, 'a function');
  }
  if (args.ledger !== undefined && (args.ledger === null || typeof args.ledger.appendStep !== 'function'
    || typeof args.ledger.segments !== 'function')) {
    throw new InvalidArgumentError('ledger', args.ledger, 'a StepLedger (appendStep, segments)');
  }
  const stepsPerEpoch = Math.ceil(datasetSize / E);
  const totalPlannedSteps = args.steps ?? (args.epochs ?? 1) * stepsPerEpoch;
  const epochs = Math.ceil(totalPlannedSteps / stepsPerEpoch);
  return { datasetSize, sampleRate, stepsPerEpoch, epochs, totalPlannedSteps, dimension };
}

/**
 * Train `model` with DP-SGD. See the module comment for the order of operations. Bad input throws
 * InvalidArgumentError before any step; budget / max-steps / max-epochs / stopTraining end the run normally with
 * `stopReason` set. An optimizer given by name is created and disposed by this call; an instance stays the caller's.
 *
 * @throws InvalidArgumentError before any step, naming the argument.
 * @throws NonFiniteTrainingError when training diverges: after a step whose batch had only non-finite losses or
 *   gradients (NaN training loss), or whose update made a weight NaN/∞. That step is already in the ledger.
 */
export async function dpFit(model: TrainableModel, data: DpData, args: DpFitArgs): Promise<DpHistory> {
  const v = validateFit(model, data, args);
  const noise = resolveNoise(args.noise);
  // An optimizer named in args is created here and disposed here (its slots: Adam's moments, SGD's scalar...);
  // an instance passed by the caller is the caller's (its state may be saved or reused after the call).
  const owned = !(args.optimizer instanceof tf.Optimizer);
  const optimizer = resolveOptimizer(args);
  try {
    return await fit(model, data, args, v, optimizer, noise);
  } finally {
    if (owned) disposeOptimizer(optimizer);
  }
}

/**
 * Why training cannot go on after a step, or undefined: every example of a non-empty batch had a non-finite loss or
 * gradient (the loss is NaN: the model's outputs overflowed), or a weight became NaN/∞ after the update. Privacy: the
 * weight check is post-processing of the noisy model; the loss check reads the loss dpFit already reports per step.
 */
function divergence(result: { batchSize: number; nonFiniteCount: number }, weights: tf.Variable[]): string | undefined {
  if (result.batchSize > 0 && result.nonFiniteCount === result.batchSize) {
    return `the training loss is NaN (all ${result.batchSize} examples of the batch had a non-finite loss or gradient)`;
  }
  const finite = tf.tidy(() => tf.stack(weights.map((w) => tf.all(tf.isFinite(w)))).dataSync());
  const bad = weights.filter((_, k) => !finite[k]).map((w) => w.name);
  if (bad.length > 0) return `the weights became non-finite (NaN/∞) after the update (${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ', ...' : ''})`;
  return undefined;
}

/**
 * optimizer.dispose(), then any tensor still held in its own fields: tfjs 4.22's MomentumOptimizer.dispose() does not
 * dispose the learning-rate scalar `c` of its SGD base class (one tensor per optimizer). Only for optimizers dpFit
 * created (nothing else holds their tensors).
 */
function disposeOptimizer(optimizer: tf.Optimizer): void {
  optimizer.dispose();
  for (const value of Object.values(optimizer)) {
    if (value instanceof tf.Tensor && !value.isDisposed) value.dispose();
  }
}

async function fit(model: TrainableModel, data: DpData, args: DpFitArgs, v: ValidatedFit, optimizer: tf.Optimizer,
  noise: NoiseSource): Promise<DpHistory> {
  const callbacks = new DpCallbackList(args.callbacks);
  const sampler = args.sampler ?? 'poisson';
  const { sampleRate, datasetSize } = v;
  const noiseMultiplier = args.target === undefined ? args.noiseMultiplier as number
    : calibrateNoiseMultiplier({ targetEpsilon: args.target.epsilon, delta: args.target.delta, sampleRate,
      steps: v.totalPlannedSteps, accountant: args.target.accountant ?? 'pld' }).noiseMultiplier;
  const accountedSigma = accountedNoiseMultiplier(noise, noiseMultiplier, args.l2NormClip, v.dimension);
  const budget = args.target !== undefined && args.budget?.epsilon === undefined
    ? { ...args.budget, epsilon: args.target.epsilon, delta: args.target.delta, accountant: args.target.accountant }
    : args.budget;
  const delta = args.delta ?? budget?.delta;

  let segments: StepSegment[] = args.ledger ? [...args.ledger.segments()]
    : args.accountant ? [...args.accountant.segments] : [];
  if (args.accountant && args.accountant.steps === 0) {
    for (const s of segments) args.accountant.compose(s, s.count);
  } else if (args.accountant && args.accountant.steps < totalSteps(segments)) {
    throw new InvalidArgumentError('accountant', args.accountant.steps,
      `empty or holding the ledger's ${totalSteps(segments)} steps`);
  }
  const policy = budget?.epsilon !== undefined ? new BudgetPolicy({
    epsilon: budget.epsilon, delta: budget.delta as number, horizon: v.totalPlannedSteps,
    certifiedEpsilon: budget.certifiedEpsilon ?? defaultCertifiedEpsilon(budget.accountant),
  }) : undefined;

  const history: Record<string, number[]> = {};
  const epochsRun: number[] = [];
  let stepsTaken = 0;
  let stopReason: StopReason = 'completed';
  const fallback = new Set<string>();
  const stoppable = model as { stopTraining?: boolean };
  // An uncompiled tf.Sequential has no inner model yet and refuses stopTraining: build it (no compile needed).
  if (model instanceof tf.Sequential) {
    try {
      stoppable.stopTraining = false;
    } catch {
      model.build();
    }
  }
  stoppable.stopTraining = false;

  const weights = trainableVariables(model);
  callbacks.setModel(model);
  callbacks.setParams({ epochs: v.epochs, steps: v.stepsPerEpoch, samples: datasetSize, batchSize: args.expectedBatchSize,
    doValidation: false, metrics: ['loss', 'epsilon'] });
  await callbacks.onTrainBegin({});

  outer: for (let epoch = 0; epoch < v.epochs; epoch++) {
    if (budget?.maxEpochs !== undefined && epoch >= budget.maxEpochs) {
      stopReason = 'max-epochs';
      break;
    }
    await callbacks.onEpochBegin(epoch, {});
    const shuffled = sampler === 'shuffle' ? shuffledBatches(datasetSize, args.expectedBatchSize).batches : undefined;
    const stepsThisEpoch = Math.min(v.stepsPerEpoch, v.totalPlannedSteps - epoch * v.stepsPerEpoch);
    let lossSum = 0;
    let lossCount = 0;
    let lastEstimate: number | undefined;
    let stopAfterEpoch = false;
    for (let batch = 0; batch < stepsThisEpoch; batch++) {
      const recorded = totalSteps(segments);
      if (budget?.maxSteps !== undefined && recorded >= budget.maxSteps) {
        stopReason = 'max-steps';
        stopAfterEpoch = true;
        break;
      }
      const decision = policy?.decide(segments, { sampleRate, noiseMultiplier: accountedSigma });
      if (decision !== undefined && !decision.allow) {
        stopReason = 'budget';
        stopAfterEpoch = true;
        break;
      }
      const indices = shuffled ? shuffled[batch] : poissonSample(datasetSize, sampleRate);
      await callbacks.onBatchBegin(batch, { batch, size: indices.length });
      let estimate: number | undefined;
      const result = await dpStep(model, data, indices, {
        l2NormClip: args.l2NormClip, loss: args.loss, strategy: args.strategy,
        maxPhysicalBatchSize: args.maxPhysicalBatchSize, noiseMultiplier, expectedBatchSize: args.expectedBatchSize,
        noise, optimizer,
        beforeApply: async (b) => {
          const record: StepRecord = {
            step: recorded, sampleRate, noiseMultiplier: accountedSigma, count: 1, sampler, adjacency: 'add-remove',
            noiseMode: noise.mode, noiseSecure: noise.secure, l2NormClip: args.l2NormClip,
            expectedBatchSize: args.expectedBatchSize, batchSize: b.batchSize,
          };
          if (args.ledger) await args.ledger.appendStep(record);
          segments = appendSegment(segments, { sampleRate, noiseMultiplier: accountedSigma, count: 1 });
          if (args.accountant) {
            args.accountant.compose({ sampleRate, noiseMultiplier: accountedSigma }, 1);
            if (delta !== undefined) estimate = args.accountant.getEpsilon(delta).epsilon;
          }
          const used = b.batchSize - b.nonFiniteCount;
          await args.onStep?.({
            step: recorded, epoch, sampleRate, noiseMultiplier: accountedSigma,
            expectedBatchSize: args.expectedBatchSize, batchSize: b.batchSize,
            lossMean: used > 0 ? b.lossSum / used : NaN, nonFiniteCount: b.nonFiniteCount,
            budgetRemainingSteps: decision?.remaining, epsilonEstimate: estimate,
          });
        },
      });
      stepsTaken++;
      for (const name of result.fallbackLayers) fallback.add(name);
      if (Number.isFinite(result.lossMean)) {
        lossSum += result.lossMean * result.batchSize;
        lossCount += result.batchSize;
      }
      lastEstimate = estimate ?? lastEstimate;
      await callbacks.onBatchEnd(batch, numericLogs({
        batch, size: result.batchSize, loss: result.lossMean, epsilon: estimate, step: recorded,
        nonFiniteCount: result.nonFiniteCount, sampleRate, noiseMultiplier: accountedSigma,
      }));
      const diverged = divergence(result, weights);
      if (diverged !== undefined) {
        throw new NonFiniteTrainingError(recorded, `training diverged at step ${recorded}: ${diverged}. `
          + `Lower the learning rate${args.learningRate !== undefined ? ` (${args.learningRate})` : ''} or l2NormClip `
          + `(${args.l2NormClip}); the step was recorded in the ledger before it was applied.`);
      }
      if (stoppable.stopTraining) {
        stopReason = 'stopTraining';
        stopAfterEpoch = true;
        break;
      }
    }
    const epochLogs = numericLogs({ loss: lossCount > 0 ? lossSum / lossCount : NaN, epsilon: lastEstimate });
    epochsRun.push(epoch);
    for (const [k, val] of Object.entries(epochLogs)) (history[k] ??= []).push(val);
    await callbacks.onEpochEnd(epoch, epochLogs);
    if (stopAfterEpoch) break outer;
    if (stoppable.stopTraining) {
      stopReason = 'stopTraining';
      break;
    }
  }

  const certified = policy && totalSteps(segments) > 0 ? policy.epsilonOf(segments) : policy ? 0 : undefined;
  const estimate = args.accountant && delta !== undefined ? args.accountant.getEpsilon(delta).epsilon : undefined;
  if (stopReason === 'budget' && args.ledger) {
    const steps = totalSteps(segments);
    if (args.ledger.appendStop) await args.ledger.appendStop({ reason: stopReason, steps, epsilon: certified });
    else args.ledger.appendStopSync?.(`budget: epsilon ${certified} at delta ${budget?.delta} after ${steps} steps; `
      + `one more step would exceed the budget epsilon ${budget?.epsilon}`);
  }
  await callbacks.onTrainEnd(numericLogs({ epsilon: estimate, epsilonCertified: certified }));
  return {
    epoch: epochsRun, history, stopReason, stepsTaken, totalSteps: totalSteps(segments),
    epsilon: { estimate, certified, delta }, sampler, fallbackLayers: [...fallback], noiseMultiplier,
    accountedNoiseMultiplier: accountedSigma,
  };
}
