/** Public types of the DP training loop (dpFit / dpStep). */
import type * as tf from '@tensorflow/tfjs';
import type { ClippableModel, ClippingStrategy, BuiltinLossName, PerExampleLossFn } from '../dp/per-example/index.ts';
import type { NoiseMode, NoiseSource } from '../dp/noise.ts';
import type { SamplerName } from '../dp/sampling.ts';
import type { StepSegment } from '../accounting/types.ts';
import type { CertifiedEpsilonFn } from '../budget/index.ts';

/** A model dpFit can train: a tfjs-layers model, or a core-ops `{ variables, predict }` model. */
export type TrainableModel = ClippableModel & { stopTraining?: boolean };

/** Training data: x (one tensor or one per model input) and y, first axis = examples. */
export interface DpData {
  readonly x: tf.Tensor | tf.Tensor[];
  readonly y: tf.Tensor;
}

/** Why a run ended. */
export type StopReason = 'completed' | 'budget' | 'max-steps' | 'max-epochs' | 'stopTraining';

/** What is recorded (durably, before the update) for one step. */
export interface StepRecord {
  /** 0-based index of this step over the whole (possibly resumed) run. */
  readonly step: number;
  readonly sampleRate: number;
  /** The noise multiplier the accountant must use (effective one in hardened mode). */
  readonly noiseMultiplier: number;
  readonly count: 1;
  readonly sampler: SamplerName;
  readonly adjacency: 'add-remove';
  readonly noiseMode: NoiseMode;
  readonly noiseSecure: boolean;
  readonly l2NormClip: number;
  readonly expectedBatchSize: number;
  readonly batchSize: number;
}

/**
 * Where step records go. `appendStep` must resolve only once the record is durable (fsync): dpFit awaits it
 * BEFORE applying the update. `steps` is the number of steps already recorded (resume continues from it).
 * src/accounting/ledger.ts's PrivacyLedger implements it (its appendStep takes the fields it knows and ignores the rest).
 */
export interface StepLedger {
  /** Records one step durably; dpFit awaits the result before it applies the step's update. */
  appendStep(record: StepRecord): Promise<unknown> | unknown;
  /**
   * Optional stop record, written only when the budget is exhausted (reason 'budget'): a ledger may refuse steps
   * after a stop record, and the other reasons (completed, max-steps, stopTraining) can be resumed.
   */
  appendStop?(record: { reason: StopReason; steps: number; epsilon?: number }): Promise<unknown> | unknown;
  /** The same as a synchronous call taking the reason text (PrivacyLedger.appendStopSync). Used if appendStop is absent. */
  appendStopSync?(reason: string): unknown;
  /** Recorded history (run-length encoded), used to resume the count and the accountant. */
  segments(): readonly StepSegment[];
}

/** Information passed to the step hook after a step's record is durable and before its update is applied. */
export interface StepInfo {
  readonly step: number;
  readonly epoch: number;
  readonly sampleRate: number;
  readonly noiseMultiplier: number;
  readonly expectedBatchSize: number;
  /** Realised (Poisson) batch size. */
  readonly batchSize: number;
  /** Mean per-example loss over the realised batch (NaN for an empty batch). */
  readonly lossMean: number;
  readonly nonFiniteCount: number;
  /** With an ε budget: steps of this (q, σ) still allowed by the budget, this one included. */
  readonly budgetRemainingSteps?: number;
  /** ε estimate after this step (from the `accountant`, when one is given). */
  readonly epsilonEstimate?: number;
}

/** Arguments of {@link dpFit} (shaped like model.fit's). */
export interface DpFitArgs {
  /** Number of epochs (one epoch = ⌈N / expectedBatchSize⌉ steps). Give epochs or steps (default 1 epoch). */
  readonly epochs?: number;
  /** Total number of steps (overrides epochs). */
  readonly steps?: number;
  /** Expected (logical) batch size; sampleRate q = expectedBatchSize / N. */
  readonly expectedBatchSize: number;
  /** Largest physical micro-batch; a logical batch is split into micro-batches (one privacy step). */
  readonly maxPhysicalBatchSize?: number;
  /** Per-example clipping bound C > 0. */
  readonly l2NormClip: number;
  /** σ > 0. Give exactly one of `noiseMultiplier` and `target`. */
  readonly noiseMultiplier?: number;
  /**
   * Calibrate σ for this target over the planned steps (certified PLD by default; calibrateNoiseMultiplier
   * guarantees ε(σ) ≤ target). Unless `budget.epsilon` is given, the target also becomes the budget stop.
   */
  readonly target?: { readonly epsilon: number; readonly delta: number; readonly accountant?: 'pld' | 'rdp' };
  /** An optimizer instance or the name of a tf.train optimizer ('sgd', 'adam', ...) with `learningRate`. */
  readonly optimizer: tf.Optimizer | 'sgd' | 'adam' | 'momentum' | 'rmsprop' | 'adagrad';
  readonly learningRate?: number;
  readonly loss: BuiltinLossName | PerExampleLossFn;
  readonly strategy?: ClippingStrategy;
  /** tfjs callbacks (tf.Callback / CustomCallback instances or plain objects with onBatchEnd etc.). */
  readonly callbacks?: DpCallback | DpCallback[];
  /** Durable step ledger (awaited before each update). */
  readonly ledger?: StepLedger;
  /**
   * Budget: no step is taken whose certified ε at `delta` would exceed `epsilon`; `maxSteps` caps the total number
   * of steps in the history (resumed ones included), `maxEpochs` the epochs of this call. A stop, not an error.
   */
  readonly budget?: DpBudget;
  /**
   * An accountant for ε in logs (composed after each durable record and queried once per step at `delta`): use a
   * cheap one (Edgeworth, GDP) here; the certified budget stop does not need it.
   */
  readonly accountant?: import('../accounting/types.ts').PrivacyAccountant;
  /** δ used for the logged estimate (default budget.delta). */
  readonly delta?: number;
  /** 'poisson' (default) or 'shuffle' (warned; recorded as 'shuffle'). */
  readonly sampler?: SamplerName;
  /** A NoiseSource or a secure mode name (default 'gaussian'). */
  readonly noise?: NoiseSource | 'gaussian' | 'hardened';
  /** Step hook: called after the record is durable and before the update is applied. */
  readonly onStep?: (info: StepInfo) => void | Promise<void>;
}

/** The budget of a run (see DpFitArgs.budget). */
export interface DpBudget {
  readonly epsilon?: number;
  readonly delta?: number;
  /** Certified accountant for the stop: 'pld' (default) or 'rdp'. */
  readonly accountant?: 'pld' | 'rdp';
  /** Override of the certified ε function (must return an upper bound). */
  readonly certifiedEpsilon?: CertifiedEpsilonFn;
  readonly maxSteps?: number;
  readonly maxEpochs?: number;
}

/** A callback accepted by dpFit: tfjs BaseCallback-like or a plain object of hooks. */
export interface DpCallback {
  /**
   * Called once before training with `{ epochs, steps (per epoch), samples, batchSize, doValidation, metrics }`.
   */
  setParams?(params: Record<string, unknown>): void;
  /** Called once before training with the model being trained. */
  setModel?(model: unknown): void;
  /** Called once before the first step. */
  onTrainBegin?(logs?: Record<string, number>): unknown;
  /** Called once after the last step, with the final `epsilon` (estimate) and `epsilonCertified` when known. */
  onTrainEnd?(logs?: Record<string, number>): unknown;
  /** Called at the start of each epoch (0-based). */
  onEpochBegin?(epoch: number, logs?: Record<string, number>): unknown;
  /** Called after each epoch (0-based) with the epoch's mean `loss` and the last `epsilon` estimate. */
  onEpochEnd?(epoch: number, logs?: Record<string, number>): unknown;
  /** Called before each step with the batch index in the epoch and the sampled batch `size`. */
  onBatchBegin?(batch: number, logs?: Record<string, number>): unknown;
  /**
   * Called after each step (its record durable, its update applied) with numeric logs: `loss`, `size`, `step` (0-based),
   * `sampleRate`, `noiseMultiplier` (the accounted σ), `nonFiniteCount`, and `epsilon` when an accountant is given.
   */
  onBatchEnd?(batch: number, logs?: Record<string, number>): unknown;
}

/** What dpFit returns (History-like). */
export interface DpHistory {
  readonly epoch: number[];
  readonly history: Record<string, number[]>;
  readonly stopReason: StopReason;
  /** Steps taken in this call. */
  readonly stepsTaken: number;
  /** Total steps in the ledger/accountant history (resumed ones included). */
  readonly totalSteps: number;
  readonly epsilon: { readonly estimate?: number; readonly certified?: number; readonly delta?: number };
  /** The noise multiplier used (calibrated when `target` was given) and the one accounted (hardened: effective). */
  readonly noiseMultiplier: number;
  readonly accountedNoiseMultiplier: number;
  readonly sampler: SamplerName;
  readonly fallbackLayers: string[];
}
