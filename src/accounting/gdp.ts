/**
 * GDP/CLT accountant: the central-limit approximation of Bu, Dong, Long, Su (2020) for Poisson-subsampled
 * Gaussian steps, as Opacus' `compute_eps_poisson`: T steps at (q, σ) are treated as μ-GDP with
 * μ = q·√(T·(e^{1/σ²} − 1)); heterogeneous segments: μ = √(Σ T_i q_i² (e^{1/σ_i²} − 1)). ε from δ by a bracketed
 * root search on the μ-GDP δ(ε) (analytic-gaussian.ts).
 *
 * It is an ESTIMATE (kind 'estimate'), never a guarantee: it can under-state ε several-fold at small q and few
 * steps (0.16× the tight PLD value on the reference grid). Use it only for comparison.
 */
import type { DeltaResult, EpsilonResult, PrivacyAccountant, StepSegment } from './types.ts';
import { SegmentHistory, validateSegment } from './segments.ts';
import { assertDelta, assertEpsilon } from '../validate.ts';
import { InvalidArgumentError } from '../errors.ts';
import { gaussianDelta, gaussianEpsilon } from './analytic-gaussian.ts';

function validateSegments(segments: readonly StepSegment[]): void {
  if (!Array.isArray(segments)) throw new InvalidArgumentError('segments', segments, 'an array of step segments');
  for (const s of segments) validateSegment(s);
}

/** μ of the CLT approximation: √(Σ T_i q_i² (e^{1/σ_i²} − 1)); +∞ if e^{1/σ²} overflows. */
export function gdpMu(segments: readonly StepSegment[]): number {
  validateSegments(segments);
  let s = 0;
  for (const seg of segments) {
    const sigma = seg.noiseMultiplier;
    s += seg.count * seg.sampleRate * seg.sampleRate * Math.expm1(1 / (sigma * sigma));
  }
  return Math.sqrt(s);
}

/** ε estimate for δ (0 for an empty history). */
export function gdpEpsilon(segments: readonly StepSegment[], delta: number): EpsilonResult {
  validateSegments(segments);
  assertDelta(delta);
  const mu = gdpMu(segments);
  const epsilon = mu === 0 ? 0 : mu === Infinity ? Infinity : gaussianEpsilon(delta, mu);
  return { accountant: 'gdp', epsilon, delta, kind: 'estimate', details: { mu, method: 'clt-poisson' } };
}

/** δ estimate for ε ≥ 0. */
export function gdpDelta(segments: readonly StepSegment[], epsilon: number): DeltaResult {
  validateSegments(segments);
  assertEpsilon(epsilon, 'epsilon', true);
  const mu = gdpMu(segments);
  const delta = mu === 0 ? 0 : mu === Infinity ? 1 : gaussianDelta(epsilon, mu);
  return { accountant: 'gdp', delta, epsilon, kind: 'estimate', details: { mu, method: 'clt-poisson' } };
}

/** GDP/CLT accountant (name 'gdp', kind 'estimate'). */
export class GdpAccountant extends SegmentHistory implements PrivacyAccountant {
  readonly name = 'gdp' as const;
  readonly kind = 'estimate' as const;

  /** μ of the composed history. */
  get mu(): number {
    return gdpMu(this.segments);
  }

  getEpsilon(delta: number): EpsilonResult {
    return gdpEpsilon(this.segments, delta);
  }

  getDelta(epsilon: number): DeltaResult {
    return gdpDelta(this.segments, epsilon);
  }

  fresh(): GdpAccountant {
    return new GdpAccountant();
  }
}
