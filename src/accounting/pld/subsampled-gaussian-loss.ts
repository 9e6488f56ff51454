/**
 * Privacy loss of ONE step of the Poisson-subsampled Gaussian mechanism (sensitivity 1, noise standard
 * deviation σ = noiseMultiplier, sampling rate q), in both add/remove directions, in closed form.
 *
 * Facts (as in dp_accounting's `GaussianPrivacyLoss`, re-derived here):
 * - REMOVE: μ_upper = (1−q)·N(0,σ²) + q·N(−1,σ²), μ_lower = N(0,σ²); the loss at x is
 *   ℓ(x) = log(1 − q + q·e^{L(x)}) with L(x) = (−½ − x)/σ² (the un-subsampled Gaussian loss).
 * - ADD: μ_upper = N(0,σ²), μ_lower = (1−q)·N(0,σ²) + q·N(1,σ²); ℓ(x) = −log(1 − q + q·e^{−L(x)}) with
 *   L(x) = (½ − x)/σ².
 * - Both losses are decreasing in x, so the hockey-stick divergence δ(ε) = ∫ [μ_upper − e^ε μ_lower]_+ is a
 *   CDF difference at the loss inverse. Written through the Gaussian-mechanism curve
 *   δ_G(ε') = Φ(1/(2σ) − ε'σ) − e^{ε'}·Φ(−1/(2σ) − ε'σ):
 *     REMOVE: δ(ε) = 1 − e^ε for ε ≤ log(1−q), else q·δ_G(L), L = log(1 + (e^ε − 1)/q);
 *     ADD:    δ(ε) = 0 for ε ≥ −log(1−q), else (1 − (1−q)e^ε)·δ_G(L), L = −log(1 + (e^{−ε} − 1)/q).
 *   δ_G is evaluated in log space (logΦ) so tiny tails keep their relative precision.
 */
import erfcinv from '@stdlib/math-base-special-erfcinv';
import { logAddExp, logNormCdf, logSubExp, normCdf } from '../numeric.ts';

/** Adjacency direction of the add/remove-one relation (which neighbour plays μ_upper). */
export type PldDirection = 'remove' | 'add';

export const PLD_DIRECTIONS: readonly PldDirection[] = ['remove', 'add'];

/** One step of the Poisson-subsampled Gaussian, seen from one adjacency direction. */
export interface SubsampledGaussianStep {
  readonly sampleRate: number;
  readonly noiseMultiplier: number;
  readonly direction: PldDirection;
}

/** Standard normal quantile Φ⁻¹(p) for p ∈ (0, 1), accurate in the lower tail. */
export function normQuantile(p: number): number {
  return -Math.SQRT2 * erfcinv(2 * p);
}

/** δ of the (non-subsampled) Gaussian mechanism with sensitivity 1 and std σ at privacy-loss level ε'. */
export function gaussianMechanismDelta(lossLevel: number, noiseMultiplier: number): number {
  if (lossLevel === Infinity) return 0;
  if (lossLevel === -Infinity) return 1;
  const s = noiseMultiplier;
  const a = 0.5 / s - lossLevel * s;
  const b = -0.5 / s - lossLevel * s;
  if (a > -20 && lossLevel < 700) {
    // Direct form: Φ(a) ≥ 2e-89 here, and the cancellation in Φ(a) − e^{ε'}Φ(b) costs at most a factor
    // ~σ|b| of relative precision (Mills ratio), so this is as accurate as the log form and faster.
    const d = normCdf(a) - Math.exp(lossLevel) * normCdf(b);
    return Math.min(1, Math.max(0, d));
  }
  const logA = logNormCdf(a);
  const logB = lossLevel + logNormCdf(b);
  if (!(logA > logB)) return 0; // rounding at the far tail: δ_G is ≥ 0 and here below float resolution
  const d = Math.exp(logSubExp(logA, logB));
  return Math.min(1, Math.max(0, d));
}

/** log(1 + (e^ε − 1)/q): the un-subsampled loss whose REMOVE-subsampled image is ε (ε > log(1−q)). */
function removeInnerLoss(epsilon: number, q: number): number {
  if (q === 1) return epsilon;
  if (epsilon > 1) return epsilon - Math.log(q) + Math.log1p(-(1 - q) * Math.exp(-epsilon));
  return Math.log1p(Math.expm1(epsilon) / q);
}

/** −log(1 + (e^{−ε} − 1)/q): the un-subsampled loss whose ADD-subsampled image is ε (ε < −log(1−q)). */
function addInnerLoss(epsilon: number, q: number): number {
  if (q === 1) return epsilon;
  if (epsilon < -1) return epsilon + Math.log(q) - Math.log1p(-(1 - q) * Math.exp(epsilon));
  return -Math.log1p(Math.expm1(-epsilon) / q);
}

/** Exact one-step hockey-stick divergence δ(ε) of the subsampled Gaussian in the given direction. */
export function stepDeltaForEpsilon(step: SubsampledGaussianStep, epsilon: number): number {
  const q = step.sampleRate;
  const s = step.noiseMultiplier;
  if (step.direction === 'remove') {
    if (q < 1 && epsilon <= Math.log1p(-q)) return -Math.expm1(epsilon);
    return Math.min(1, q * gaussianMechanismDelta(removeInnerLoss(epsilon, q), s));
  }
  if (q < 1 && epsilon >= -Math.log1p(-q)) return 0;
  const weight = q === 1 ? 1 : 1 - (1 - q) * Math.exp(epsilon);
  return Math.min(1, Math.max(0, weight * gaussianMechanismDelta(addInnerLoss(epsilon, q), s)));
}

/** Privacy loss ℓ(x) at output x (decreasing in x). */
export function stepPrivacyLoss(step: SubsampledGaussianStep, x: number): number {
  const q = step.sampleRate;
  const s2 = step.noiseMultiplier * step.noiseMultiplier;
  if (step.direction === 'remove') {
    const inner = (-0.5 - x) / s2;
    if (q === 1) return inner;
    return logAddExp(Math.log1p(-q), Math.log(q) + inner);
  }
  const inner = (0.5 - x) / s2;
  if (q === 1) return inner;
  return -logAddExp(Math.log1p(-q), Math.log(q) - inner);
}

/**
 * Range of losses the discretisation covers: the losses at the output truncation points where each
 * Gaussian component keeps all but ½·e^{logMassTruncationBound} of its mass in each tail (dp_accounting's
 * rule, default bound −50). Mass outside is not lost: connect-the-dots puts δ(ε_max) on +∞ and the mass
 * below ε_min on the lowest grid point.
 */
export function connectDotsLossRange(
  step: SubsampledGaussianStep,
  logMassTruncationBound = -50,
): { epsilonLower: number; epsilonUpper: number } {
  const z = normQuantile(0.5 * Math.exp(logMassTruncationBound)) * step.noiseMultiplier; // < 0
  let lowerX = z;
  let upperX = -z;
  if (step.direction === 'add') upperX += 1;
  else lowerX -= 1;
  return { epsilonUpper: stepPrivacyLoss(step, lowerX), epsilonLower: stepPrivacyLoss(step, upperX) };
}
