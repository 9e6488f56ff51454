/**
 * Shared vocabulary of the accounting engine. Pure data, no tfjs.
 *
 * One DP-SGD step is a Poisson-subsampled Gaussian mechanism: each example joins the batch with
 * probability `sampleRate` (q), the clipped sum gets N(0, (noiseMultiplier·C)²) noise. A training run is
 * a sequence of such steps; steps with the same (q, σ) are run-length encoded as a `StepSegment`.
 */

/**
 * The accountants ewtune implements: Edgeworth (estimate), RDP and PLD (certified upper bounds), GDP/CLT (estimate).
 */
export type AccountantName = 'edgeworth' | 'rdp' | 'pld' | 'gdp';

/** What an ε (or δ) means: an approximation, a certified upper bound, or a certified lower bound. */
export type BoundKind = 'estimate' | 'upper' | 'lower';

/** `count` consecutive steps of the Poisson-subsampled Gaussian with rate q and noise multiplier σ. */
export interface StepSegment {
  /** Poisson sample rate q ∈ (0, 1]: each example joins a step's batch with this probability. */
  readonly sampleRate: number;
  /** Noise multiplier σ > 0: the noise standard deviation in units of the clipping bound C. */
  readonly noiseMultiplier: number;
  /** Number of consecutive steps (a positive integer). */
  readonly count: number;
}

/**
 * ε for a given δ, with what it means (`kind`) and which accountant computed it. ε is ≥ 0 and may be `Infinity` (no finite ε at this δ).
 */
export interface EpsilonResult {
  /** The accountant that computed the answer. */
  readonly accountant: AccountantName;
  /** ε (natural-log units); `Infinity` when no finite ε exists at this δ. */
  readonly epsilon: number;
  /** The δ the ε is for. */
  readonly delta: number;
  /** An estimate, a certified upper bound or a certified lower bound. */
  readonly kind: BoundKind;
  /** Accountant-specific extras (e.g. the RDP order used, the Edgeworth order, finite-sample bounds). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** δ for a given ε, in [0, 1], with what it means (`kind`) and which accountant computed it. */
export interface DeltaResult {
  /** The accountant that computed the answer. */
  readonly accountant: AccountantName;
  /** δ, a probability in [0, 1]. */
  readonly delta: number;
  /** The ε the δ is for. */
  readonly epsilon: number;
  /** An estimate, a certified upper bound or a certified lower bound. */
  readonly kind: BoundKind;
  /** Accountant-specific extras. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * A privacy accountant over a run-length encoded history of steps.
 * `compose` validates its arguments before touching state (a bad call leaves the accountant unchanged).
 */
export interface PrivacyAccountant {
  /** Which accountant this is. */
  readonly name: AccountantName;
  /** The certified kind of this accountant's ε answers ('upper' for RDP and PLD, 'estimate' for Edgeworth, GDP). */
  readonly kind: BoundKind;
  /**
   * Adds `count` (default 1, a positive integer) steps of the Poisson-subsampled Gaussian with sample rate q =
   * `step.sampleRate` ∈ (0, 1] and noise multiplier σ = `step.noiseMultiplier` > 0.
   * @throws {@link InvalidArgumentError} naming the argument when q, σ or count is invalid; the history is then unchanged.
   */
  compose(step: { sampleRate: number; noiseMultiplier: number }, count?: number): void;
  /**
   * ε of the composed history at `delta` ∈ (0, 1) (0 for an empty history).
   * @throws {@link InvalidArgumentError} (`delta`) when δ is not in (0, 1).
   */
  getEpsilon(delta: number): EpsilonResult;
  /**
   * δ of the composed history at `epsilon` ≥ 0.
   * @throws {@link InvalidArgumentError} (`epsilon`) when ε is negative or not finite.
   */
  getDelta(epsilon: number): DeltaResult;
  /** Total number of steps composed (not the number of segments). */
  readonly steps: number;
  /** The composed history, run-length encoded (consecutive equal (q, σ) merged). */
  readonly segments: readonly StepSegment[];
  /** A fresh accountant of the same kind and options with no history. */
  fresh(): PrivacyAccountant;
}
