/**
 * From a privacy profile δ(ε) to ε(δ), robust to the non-monotone, sometimes negative, δ̂ of the Edgeworth
 * expansion (EDGEWORTH.md: several crossings, exact zeros far out; the reference code's unbracketed fsolve
 * returns negative ε or non-roots in 12 of 160 grid cells).
 *
 * Conservative last crossing: ε(δ) = sup{ε ≥ 0 : δ(ε) > δ}. Find `hi` by doubling from 1 until δ(hi) ≤ δ
 * (and an optional guard, an upper envelope of δ beyond hi, is ≤ δ too), scan a uniform grid on [0, hi],
 * bisect the last bracket to float64 resolution; 0 if δ(ε) ≤ δ on the whole grid.
 */

/** Grid points of the scan on [0, hi]. */
export const SCAN_POINTS = 512;
/** hi stops doubling at 2^MAX_DOUBLINGS; if δ(hi) > δ there, ε is reported as +∞ (no finite ε found). */
export const MAX_DOUBLINGS = 40;

export interface LastCrossingOptions {
  /**
   * An upper envelope g ≥ f that is non-increasing beyond the point where it drops to ≤ δ (for the Edgeworth
   * δ̂: the tail of Y, valid while the tail of X is non-negative). hi doubles until g(hi) ≤ δ as well, so a
   * late re-crossing of f is not missed.
   */
  readonly guard?: (epsilon: number) => number;
  readonly scanPoints?: number;
}

/** Bisect a bracket with f(lo) > δ ≥ f(hi) down to adjacent float64 values; returns hi (the conservative end). */
function bisect(f: (x: number) => number, delta: number, lo: number, hi: number): number {
  for (let i = 0; i < 200; i++) {
    const mid = 0.5 * (lo + hi);
    if (!(mid > lo && mid < hi)) break;
    if (f(mid) > delta) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** sup{ε ≥ 0 : f(ε) > δ} by the conservative last-crossing rule; 0 if none; +∞ if f stays above δ. */
export function lastCrossing(f: (epsilon: number) => number, delta: number, options: LastCrossingOptions = {}): number {
  const guard = options.guard;
  const n = options.scanPoints ?? SCAN_POINTS;
  let hi = 1;
  let doublings = 0;
  while (f(hi) > delta || (guard !== undefined && guard(hi) > delta)) {
    if (++doublings > MAX_DOUBLINGS) return Infinity;
    hi *= 2;
  }
  let last = -1;
  for (let i = n - 1; i >= 0; i--) {
    if (f((hi * i) / n) > delta) {
      last = i;
      break;
    }
  }
  if (last < 0) return 0;
  return bisect(f, delta, (hi * last) / n, (hi * (last + 1)) / n);
}

/**
 * inf{ε ∈ [0, limit] : f(ε) ≤ δ}, scanning a grid and bisecting the first bracket; null if f > δ on the
 * whole grid. Used for upper bounds: the true δ(ε) is non-increasing, so any ε where an upper bound on it is
 * ≤ δ certifies (ε, δ), and the smallest such ε is the best.
 */
export function firstCrossingBelow(
  f: (epsilon: number) => number,
  delta: number,
  limit: number,
  scanPoints = SCAN_POINTS,
): number | null {
  if (f(0) <= delta) return 0;
  for (let i = 1; i <= scanPoints; i++) {
    const x = (limit * i) / scanPoints;
    if (f(x) <= delta) return bisect(f, delta, (limit * (i - 1)) / scanPoints, x);
  }
  return null;
}
