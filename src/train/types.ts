/** Public types of the DP training loop (dpFit / dpStep). */
import type * as tf from '@tensorflow/tfjs';
import type { ClippableModel, ClippingStrategy, BuiltinLossName, PerExampleLossFn } from '../dp/per-example/index.ts';
import type { NoiseMode, NoiseSource } from '../dp/noise.ts';
import type { SamplerName } from '../dp/sampling.ts';
import type { StepSegment } from '../accounting/types.ts';
import type { CertifiedEpsilonFn } from '../budget/index.ts';

/** A model dpFit can train: a tfjs-layers model, or a core-ops `{ variables, predict }` model. */
export type TrainableModel = ClippableModel & {
  /** Set to true (e.g. from a callback) to stop after the current step, as tfjs' model.stopTraining. */
  stopTraining?: boolean;
};

/** Training data: x (one tensor or one per model input) and y, first axis = examples. */
export interface DpData {
  /** Inputs: one tensor, or one per model input; first axis = examples (N). */
  readonly x: tf.Tensor | tf.Tensor[];
  /** Targets, first axis = examples (N), e.g. integer class ids [N] for sparseCategoricalCrossentropy. */
  readonly y: tf.Tensor;
}

/** Why a run ended. */
export type StopReason = 'completed' | 'budget' | 'max-steps' | 'max-epochs' | 'stopTraining';

/** What is recorded (durably, before the update) for one step. */
export interface StepRecord {
  /** 0-based index of this step over the whole (possibly resumed) run. */
  readonly step: number;
  /** Poisson sample rate q of the step. */
  readonly sampleRate: number;
  /** The noise multiplier the accountant must use (effective one in hardened mode). */
  readonly noiseMultiplier: number;
  /** One step per record. */
  readonly count: 1;
  /**
   * How the batch was drawn: 'poisson' (accounted as such) or 'shuffle' (recorded, not a valid Poisson guarantee).
   */
  readonly sampler: SamplerName;
  /** Neighbouring datasets differ by adding or removing one example. */
  readonly adjacency: 'add-remove';
  /** The noise source's mode ('gaussian', 'hardened', or the tests-only 'insecure-seeded'). */
  readonly noiseMode: NoiseMode;
  /** Whether the noise came from a CSPRNG (false only for the tests-only insecure mode). */
  readonly noiseSecure: boolean;
  /** Per-example clipping bound C. */
  readonly l2NormClip: number;
  /** Expected logical batch size (q·N). */
  readonly expectedBatchSize: number;
  /** Realised (Poisson) batch size of the step. */
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
  /** 0-based index of the step over the whole (possibly resumed) run. */
  readonly step: number;
  /** 0-based epoch of this call. */
  readonly epoch: number;
  /** Poisson sample rate q of the step. */
  readonly sampleRate: number;
  /** The accounted noise multiplier σ of the step. */
  readonly noiseMultiplier: number;
  /** Expected logical batch size (q·N). */
  readonly expectedBatchSize: number;
  /** Realised (Poisson) batch size. */
  readonly batchSize: number;
  /** Mean per-example loss over the realised batch (NaN for an empty batch). */
  readonly lossMean: number;
  /** Examples whose gradient was non-finite (they contributed zero). */
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
  readonly target?: {
    /** Target ε > 0 (natural-log units). */
    readonly epsilon: number;
    /** δ ∈ (0, 1) of the target. */
    readonly delta: number;
    /** Certified accountant for the calibration: 'pld' (default) or 'rdp'. */
    readonly accountant?: 'pld' | 'rdp';
  };
  /** An optimizer instance or the name of a tf.train optimizer ('sgd', 'adam', ...) with `learningRate`. */
  readonly optimizer: tf.Optimizer | 'sgd' | 'adam' | 'momentum' | 'rmsprop' | 'adagrad';
  /** Learning rate for a named optimizer; default 0.01 for 'sgd' and 'momentum', 0.001 otherwise. */
  readonly learningRate?: number;
  /**
   * A built-in loss name (Keras semantics, on probabilities) or a per-example loss function returning shape [B].
   */
  readonly loss: BuiltinLossName | PerExampleLossFn;
  /**
   * How per-example gradients are clipped: 'auto' (default), 'ghost', 'materialise' or 'naive' (see the README's dpFit table).
   */
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
  /** ε budget > 0: the step whose certified ε at `delta` would exceed it is never taken. */
  readonly epsilon?: number;
  /** δ ∈ (0, 1) at which the budget's ε is certified (required with `epsilon`). */
  readonly delta?: number;
  /** Certified accountant for the stop: 'pld' (default) or 'rdp'. */
  readonly accountant?: 'pld' | 'rdp';
  /** Override of the certified ε function (must return an upper bound). */
  readonly certifiedEpsilon?: CertifiedEpsilonFn;
  /** Cap on the total number of steps in the history (resumed ones included); a stop, not an error. */
  readonly maxSteps?: number;
  /** Cap on the epochs of this call; a stop, not an error. */
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
  /** Epochs run (0-based), as model.fit's History. */
  readonly epoch: number[];
  /** Per-epoch logs: mean `loss` and, with an accountant, `epsilon`. */
  readonly history: Record<string, number[]>;
  /** Why training ended (a stop is not an error). */
  readonly stopReason: StopReason;
  /** Steps taken in this call. */
  readonly stepsTaken: number;
  /** Total steps in the ledger/accountant history (resumed ones included). */
  readonly totalSteps: number;
  /** The final ε's. */
  readonly epsilon: {
    /** Final ε estimate from `accountant` at `delta`, when one was given. */
    readonly estimate?: number;
    /** Final certified ε (upper bound) at the budget's δ, when a budget was given. */
    readonly certified?: number;
    /** The δ of these ε. */
    readonly delta?: number;
  };
  /** The noise multiplier used (calibrated when `target` was given) and the one accounted (hardened: effective). */
  readonly noiseMultiplier: number;
  /** The noise multiplier the accountant used (the effective one in hardened mode). */
  readonly accountedNoiseMultiplier: number;
  /** The batch sampler used. */
  readonly sampler: SamplerName;
  /** Layers whose per-example gradients went through the naive loop (empty when fully vectorised). */
  readonly fallbackLayers: string[];
}
