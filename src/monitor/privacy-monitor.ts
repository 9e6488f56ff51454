/**
 * Live privacy curve of a training run. After each step it answers, synchronously and cheaply:
 * the Edgeworth ε at the target δ (estimate), the Edgeworth δ at the target ε (estimate) and the RDP ε
 * (upper bound); at least every `certifiedEveryFraction` of the planned steps, and at the end, it asks the
 * certified accountant (PLD upper bound) — asynchronously, so training does not wait for it.
 */
import { EdgeworthAccountant } from '../accounting/edgeworth/index.ts';
import { RdpAccountant } from '../accounting/rdp/index.ts';
import type { DeltaResult, EpsilonResult, StepSegment } from '../accounting/types.ts';
import { assertDelta, assertEpsilon, assertSteps } from '../validate.ts';
import { InvalidArgumentError } from '../errors.ts';
import type { CertifiedEvaluator } from './certified-evaluator.ts';

/** Options of {@link PrivacyMonitor}. */
export interface PrivacyMonitorOptions {
  /** δ at which ε is reported. */
  readonly delta: number;
  /** ε at which δ is reported (the budget's other axis); omit to skip `deltaEdgeworth`. */
  readonly targetEpsilon?: number;
  /** Planned number of steps (sets the certified checkpoints). */
  readonly plannedSteps: number;
  /** Certified ε at least every this fraction of the planned steps; default 0.01. */
  readonly certifiedEveryFraction?: number;
  /** Edgeworth order, 1 (default) or 2. */
  readonly edgeworthOrder?: 1 | 2;
  /** Where the certified ε is computed (e.g. {@link WorkerCertifiedEvaluator}). */
  readonly certified: CertifiedEvaluator;
  /** Called when a certified ε for `step` arrives (possibly after later steps were taken). */
  readonly onCertified?: (step: number, result: EpsilonResult) => void;
  /** Called once if the certified accountant fails (training goes on; the failure is reported). */
  readonly onCertifiedError?: (step: number, error: Error) => void;
}

export interface StepPrivacy {
  readonly step: number;
  readonly epsilonEdgeworth: EpsilonResult;
  readonly deltaEdgeworth?: DeltaResult;
  readonly epsilonRdp: EpsilonResult;
  /** Whether a certified ε was requested for this step. */
  readonly certifiedRequested: boolean;
}

/**
 * The live privacy curve of a run: `record()` composes one step and returns, synchronously, the Edgeworth ε at the
 * target δ and δ at the target ε (estimates) and the RDP ε (upper bound); certified PLD ε values are computed by the
 * certified evaluator (`options.certified`) at step 1, every `certifiedEveryFraction` of the planned steps and at `finish()`, and
 * delivered to `onCertified`. The constructor throws {@link InvalidArgumentError} for an invalid δ, target ε,
 * plannedSteps or certifiedEveryFraction.
 */
export class PrivacyMonitor {
  readonly #edgeworth: EdgeworthAccountant;
  readonly #rdp = new RdpAccountant();
  readonly #interval: number;
  readonly #inflight = new Set<Promise<void>>();
  #lastCertified: { step: number; result: EpsilonResult } | undefined;
  #certifiedRequestedAt = 0;
  #errorReported = false;

  constructor(private readonly options: PrivacyMonitorOptions) {
    assertDelta(options.delta);
    if (options.targetEpsilon !== undefined) assertEpsilon(options.targetEpsilon);
    assertSteps(options.plannedSteps, 'plannedSteps');
    const fraction = options.certifiedEveryFraction ?? 0.01;
    if (!(fraction > 0 && fraction <= 1)) throw new InvalidArgumentError('certifiedEveryFraction', fraction, 'in (0, 1]');
    this.#interval = Math.max(1, Math.floor(options.plannedSteps * fraction));
    this.#edgeworth = new EdgeworthAccountant({ order: options.edgeworthOrder ?? 1 });
  }

  /** Steps composed so far. */
  get steps(): number {
    return this.#edgeworth.steps;
  }

  /** The composed history, run-length encoded. */
  get segments(): readonly StepSegment[] {
    return this.#edgeworth.segments;
  }

  /** Edgeworth ε (estimate) of the steps so far at any δ (e.g. for an ε–δ curve), from the composed cumulants. */
  edgeworthEpsilon(delta: number): EpsilonResult {
    return this.#edgeworth.getEpsilon(delta);
  }

  /** Compose the steps of a resumed run (from its ledger) without emitting per-step metrics. */
  resume(segments: readonly StepSegment[]): void {
    for (const s of segments) {
      this.#edgeworth.compose(s, s.count);
      this.#rdp.compose(s, s.count);
    }
  }

  /** Record one step that was taken; returns the step's privacy metrics. */
  record(step: { sampleRate: number; noiseMultiplier: number }): StepPrivacy {
    this.#edgeworth.compose(step, 1);
    this.#rdp.compose(step, 1);
    const n = this.#edgeworth.steps;
    const epsilonEdgeworth = this.#edgeworth.getEpsilon(this.options.delta);
    const deltaEdgeworth = this.options.targetEpsilon !== undefined ? this.#edgeworth.getDelta(this.options.targetEpsilon) : undefined;
    const epsilonRdp = this.#rdp.getEpsilon(this.options.delta);
    const certifiedRequested = n === 1 || n % this.#interval === 0;
    if (certifiedRequested) this.#requestCertified(n);
    return { step: n, epsilonEdgeworth, deltaEdgeworth, epsilonRdp, certifiedRequested };
  }

  #requestCertified(step: number): void {
    this.#certifiedRequestedAt = step;
    const segments = this.#edgeworth.segments.map((s) => ({ ...s }));
    const p: Promise<void> = this.options.certified
      .epsilon(segments, this.options.delta)
      .then(
        (result) => {
          if (!this.#lastCertified || this.#lastCertified.step <= step) this.#lastCertified = { step, result };
          this.options.onCertified?.(step, result);
        },
        (error: unknown) => {
          if (!this.#errorReported) {
            this.#errorReported = true;
            this.options.onCertifiedError?.(step, error instanceof Error ? error : new Error(String(error)));
          }
        },
      )
      .finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
  }

  /** Wait for every pending certified answer, computing one for the final step if needed; returns the final ε's. */
  async finish(): Promise<{ steps: number; edgeworth?: EpsilonResult; rdp?: EpsilonResult; certified?: EpsilonResult }> {
    const n = this.#edgeworth.steps;
    if (n > 0 && this.#certifiedRequestedAt !== n) this.#requestCertified(n);
    while (this.#inflight.size > 0) await Promise.all([...this.#inflight]);
    if (n === 0) return { steps: 0 };
    return {
      steps: n,
      edgeworth: this.#edgeworth.getEpsilon(this.options.delta),
      rdp: this.#rdp.getEpsilon(this.options.delta),
      certified: this.#lastCertified?.step === n ? this.#lastCertified.result : undefined,
    };
  }
}
