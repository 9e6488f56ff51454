/**
 * Exact (ε, δ) of the composed Gaussian mechanism without subsampling (q = 1), which is μ-GDP with
 * μ = √(Σ count_i / σ_i²) (Balle & Wang 2018; Dong, Roth, Su 2019):
 *   δ(ε) = Φ(−ε/μ + μ/2) − e^ε · Φ(−ε/μ − μ/2).
 * δ is computed as exp(logSubExp(log Φ(−ε/μ + μ/2), ε + log Φ(−ε/μ − μ/2))) so that neither e^ε nor the tails
 * overflow/underflow; ε(δ) by bisection on a bracket [0, hi] (hi doubled until δ(hi) ≤ δ), to the last ulp.
 * Also the δ(ε) of μ-GDP, hence used by the GDP/CLT accountant.
 */
import { logNormCdf, logSubExp } from './numeric.ts';
import { assertDelta, assertFiniteNumber, assertNoiseMultiplier, assertSteps } from '../validate.ts';
import { InvalidArgumentError } from '../errors.ts';

function assertMu(mu: unknown, argument = 'mu'): asserts mu is number {
  assertFiniteNumber(argument, mu);
  if (!(mu > 0)) throw new InvalidArgumentError(argument, mu, 'a finite number > 0');
}

/** δ(ε) of μ-GDP (exact for the Gaussian mechanism of sensitivity/σ = μ). Any finite ε; μ > 0 finite. */
export function gaussianDelta(epsilon: number, mu: number): number {
  assertFiniteNumber('epsilon', epsilon);
  assertMu(mu);
  return gaussianDeltaUnchecked(epsilon, mu);
}

function gaussianDeltaUnchecked(epsilon: number, mu: number): number {
  const a = logNormCdf(-epsilon / mu + mu / 2);
  const b = epsilon + logNormCdf(-epsilon / mu - mu / 2);
  if (!(b < a)) return 0; // equal in exact arithmetic only in the limit; rounding can put b ≥ a when δ ≈ 0
  return Math.exp(logSubExp(a, b));
}

/**
 * Smallest ε ≥ 0 with δ(ε) ≤ delta for μ-GDP (0 if δ(0) = 2Φ(μ/2) − 1 ≤ delta). Bisection on a bracket; the
 * returned ε is the upper end of the final bracket, so δ(ε) ≤ delta holds for the computed δ(·).
 */
export function gaussianEpsilon(delta: number, mu: number): number {
  assertDelta(delta);
  assertMu(mu);
  if (gaussianDeltaUnchecked(0, mu) <= delta) return 0;
  let lo = 0;
  let hi = Math.max(1, mu);
  while (gaussianDeltaUnchecked(hi, mu) > delta) {
    lo = hi;
    hi *= 2;
    if (!Number.isFinite(hi)) return Infinity;
  }
  for (let it = 0; it < 2000; it++) {
    const mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    if (gaussianDeltaUnchecked(mid, mu) > delta) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** μ of the composition of Gaussian mechanisms (q = 1): √(Σ count_i / σ_i²). */
export function composedGaussianMu(parts: readonly { noiseMultiplier: number; count: number }[]): number {
  if (!Array.isArray(parts) || parts.length === 0) {
    throw new InvalidArgumentError('parts', parts, 'a non-empty array of { noiseMultiplier, count }');
  }
  let s = 0;
  for (const p of parts) {
    assertNoiseMultiplier(p.noiseMultiplier);
    assertSteps(p.count, 'count');
    s += p.count / (p.noiseMultiplier * p.noiseMultiplier);
  }
  return Math.sqrt(s);
}
