/**
 * Pessimistic "connect the dots" discretisation of one step's privacy-loss distribution
 * (Doroshenko, Ghazi, Kamath, Kumar, Manurangsi 2022, Algorithm 1; the default of dp_accounting).
 *
 * On the grid ε_i = i·h, i = ⌊ε_min/h⌋ … ⌈ε_max/h⌉, evaluate the exact one-step δ(ε_i) and build the
 * discrete PLD whose hockey-stick curve passes through every (ε_i, δ_i) and is linear in e^ε between them.
 * Since the true δ is convex in e^ε, the chord lies above it: the discrete PLD dominates the true one for
 * every ε (an upper bound), and it stays so under composition. δ(ε_max) is put on the +∞ atom; all mass below
 * ε_min sits on the lowest grid point. With a fixed gap h the masses are
 *   p_first = (1 − δ_1) + (δ_2 − δ_1)/(e^h − 1),
 *   p_i     = ((δ_{i+1} − δ_i) − e^h·(δ_i − δ_{i−1}))/(e^h − 1),
 *   p_last  = (δ_n − δ_{n−1})/(e^{−h} − 1),   p_∞ = δ_n,
 * negative rounding residues clipped to 0 (as dp_accounting does).
 */
import type { DiscretePld } from './pmf.ts';
import {
  connectDotsLossRange,
  stepDeltaForEpsilon,
  type SubsampledGaussianStep,
} from './subsampled-gaussian-loss.ts';

/** Build a connect-the-dots PMF from δ values on consecutive grid points lowerIndex … lowerIndex+n−1. */
export function connectDotsPmf(
  valueDiscretizationInterval: number,
  lowerIndex: number,
  deltas: Float64Array,
): DiscretePld {
  const h = valueDiscretizationInterval;
  const n = deltas.length;
  if (n === 0) throw new RangeError('connectDotsPmf needs at least one delta');
  const d = Float64Array.from(deltas);
  for (let i = 0; i < n; i++) {
    if (!(d[i] >= 0 && d[i] <= 1)) throw new RangeError(`delta[${i}]=${d[i]} not in [0, 1]`);
    if (i > 0 && d[i] > d[i - 1]) d[i] = d[i - 1]; // enforce non-increasing (rounding only)
  }
  const probs = new Float64Array(n);
  if (n === 1) {
    probs[0] = 1 - d[0];
    return { valueDiscretizationInterval: h, lowerIndex, probs, infinityMass: d[0] };
  }
  const em1 = Math.expm1(h); // e^h − 1
  const eh = Math.exp(h);
  probs[0] = 1 - d[0] + (d[1] - d[0]) / em1;
  for (let i = 1; i < n - 1; i++) probs[i] = (d[i + 1] - d[i] - eh * (d[i] - d[i - 1])) / em1;
  probs[n - 1] = (d[n - 1] - d[n - 2]) / Math.expm1(-h);
  for (let i = 0; i < n; i++) if (!(probs[i] > 0)) probs[i] = 0;
  return { valueDiscretizationInterval: h, lowerIndex, probs, infinityMass: d[n - 1] };
}

/** One step of the subsampled Gaussian in one direction, discretised pessimistically on the grid h. */
export function discretiseStep(
  step: SubsampledGaussianStep,
  valueDiscretizationInterval: number,
  logMassTruncationBound = -50,
): DiscretePld {
  const h = valueDiscretizationInterval;
  const { epsilonLower, epsilonUpper } = connectDotsLossRange(step, logMassTruncationBound);
  const lo = Math.floor(epsilonLower / h);
  const hi = Math.ceil(epsilonUpper / h);
  const n = hi - lo + 1;
  const deltas = new Float64Array(n);
  for (let i = 0; i < n; i++) deltas[i] = stepDeltaForEpsilon(step, (lo + i) * h);
  return trimZeroEnds(connectDotsPmf(h, lo, deltas));
}

/** Drop exact-zero masses at both ends (they carry nothing; shorter arrays make cheaper FFTs). */
export function trimZeroEnds(pld: DiscretePld): DiscretePld {
  const p = pld.probs;
  let a = 0;
  let b = p.length - 1;
  while (a < b && p[a] === 0) a++;
  while (b > a && p[b] === 0) b--;
  if (a === 0 && b === p.length - 1) return pld;
  return { ...pld, lowerIndex: pld.lowerIndex + a, probs: p.slice(a, b + 1) };
}
