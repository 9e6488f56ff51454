/**
 * Shared vocabulary of the accounting engine. Pure data, no tfjs.
 *
 * One DP-SGD step is a Poisson-subsampled Gaussian mechanism: each example joins the batch with
 * probability `sampleRate` (q), the clipped sum gets N(0, (noiseMultiplier·C)²) noise. A training run is
 * a sequence of such steps; steps with the same (q, σ) are run-length encoded as a `StepSegment`.
 */

export type AccountantName = 'edgeworth' | 'rdp' | 'pld' | 'gdp';

/** What an ε (or δ) means: an approximation, a certified upper bound, or a certified lower bound. */
export type BoundKind = 'estimate' | 'upper' | 'lower';

/** `count` consecutive steps of the Poisson-subsampled Gaussian with rate q and noise multiplier σ. */
export interface StepSegment {
  readonly sampleRate: number;
  readonly noiseMultiplier: number;
  readonly count: number;
}

export interface EpsilonResult {
  readonly accountant: AccountantName;
  readonly epsilon: number;
  readonly delta: number;
  readonly kind: BoundKind;
  /** Accountant-specific extras (e.g. the RDP order used, the Edgeworth order, finite-sample bounds). */
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface DeltaResult {
  readonly accountant: AccountantName;
  readonly delta: number;
  readonly epsilon: number;
  readonly kind: BoundKind;
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * A privacy accountant over a run-length encoded history of steps.
 * `compose` validates its arguments before touching state (a bad call leaves the accountant unchanged).
 */
export interface PrivacyAccountant {
  readonly name: AccountantName;
  /** The certified kind of this accountant's ε answers ('upper' for RDP and PLD, 'estimate' for Edgeworth, GDP). */
  readonly kind: BoundKind;
  compose(step: { sampleRate: number; noiseMultiplier: number }, count?: number): void;
  getEpsilon(delta: number): EpsilonResult;
  getDelta(epsilon: number): DeltaResult;
  /** Total number of steps composed (not the number of segments). */
  readonly steps: number;
  readonly segments: readonly StepSegment[];
  /** A fresh accountant of the same kind and options with no history. */
  fresh(): PrivacyAccountant;
}
