/**
 * Rényi DP of ONE step of the Poisson-subsampled Gaussian mechanism (add/remove adjacency),
 * ε_RDP(α) = log A_α / (α − 1) with A_α = E_{z∼μ0}[((1 − q) + q·μ1(z)/μ0(z))^α], μ0 = N(0, σ²), μ1 = N(1, σ²)
 * (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism", §3.3).
 *
 * - Integer α: the exact binomial sum A_α = Σ_{i=0}^{α} C(α,i) q^i (1−q)^{α−i} exp((i² − i)/(2σ²)), in log space.
 * - Fractional α: the two-series formula. With z0 = σ² log(1/q − 1) + ½ and j = α − i,
 *     A_α = Σ_{i≥0} C(α,i) [ q^i (1−q)^j e^{(i²−i)/(2σ²)} Φ((z0 − i)/σ) + q^j (1−q)^i e^{(j²−j)/(2σ²)} Φ((j − z0)/σ) ]
 *   (the integrals over z ≤ z0 and z ≥ z0). C(α, i) is negative for every other i > ⌊α⌋ + 1, so the series is
 *   summed with signs (as Opacus/TF Privacy do), in a signed log-space accumulator.
 *
 * Convergence test of the fractional series (no fixed cut-off). For i > α both term magnitudes are strictly
 * decreasing in i: |C(α,i+1)|/|C(α,i)| = (i − α)/(i + 1) < 1, and the remaining factor of each term equals a
 * constant times the Mills ratio R(x) = Φ(−x)/φ(x) at x = (i − z0)/σ (resp. (z0 − j)/σ), which is decreasing in
 * x. The signs of C(α, i) alternate for i > α. So after the term i = n (n > α) the tail is an alternating series
 * with decreasing terms and |tail| ≤ |s0_{n+1}| + |s1_{n+1}| < |s0_n| + |s1_n|. We stop at the first n with
 * n > α, both magnitudes below their predecessors (checked, not assumed), and |s0_n| + |s1_n| ≤ 1e-14 · |A|
 * (A ≥ 1 always). The magnitudes decay only polynomially (~ n^{−α−2}), so for α near 1 and q near ½ this can
 * take ~10⁴–10⁵ terms; it always terminates.
 *
 * Option `fractionalSeries: 'dp-accounting'` reproduces dp_accounting's value instead: it sums |terms|
 * (a conservative over-estimate of A_α), stops when both log-terms decrease and are 30 nats below the running
 * total, and gives +∞ (order excluded) if that has not happened after 1000 terms — dp_accounting's rule.
 */
import { logAddExp, logNormCdf } from '../numeric.ts';
import { assertNoiseMultiplier, assertSampleRate } from '../../validate.ts';
import { InvalidArgumentError } from '../../errors.ts';
import { assertOrders } from './orders.ts';

/** How A_α is summed at fractional orders. */
export type FractionalSeries = 'signed' | 'dp-accounting';

export interface RdpComputeOptions {
  /** 'signed' (default): accurate signed series; 'dp-accounting': dp_accounting's conservative |term| sum. */
  readonly fractionalSeries?: FractionalSeries;
}

/** Relative truncation tolerance of the signed fractional series (see the module comment). */
export const FRACTIONAL_SERIES_RELATIVE_TOLERANCE = 1e-14;
const LOG_REL_TOL = Math.log(FRACTIONAL_SERIES_RELATIVE_TOLERANCE);
const DP_ACCOUNTING_MAX_TERMS = 1000;

export function assertFractionalSeries(value: unknown, argument = 'fractionalSeries'): asserts value is FractionalSeries {
  if (value !== 'signed' && value !== 'dp-accounting') {
    throw new InvalidArgumentError(argument, value, "'signed' or 'dp-accounting'");
  }
}

/** log A_α for integer α ≥ 2, 0 < q < 1 (exact binomial sum). */
export function logAInteger(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const inv2s2 = 1 / (2 * sigma * sigma);
  let logA = -Infinity;
  let logBinom = 0; // log C(α, 0)
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log((alpha - i + 1) / i);
    const s = logBinom + i * logQ + (alpha - i) * log1mQ + (i * i - i) * inv2s2;
    logA = logAddExp(logA, s);
  }
  return logA;
}

/** Signed number kept as (sign, log|value|). */
interface SignedLog {
  sign: number;
  log: number;
}

function addSigned(acc: SignedLog, sign: number, logMag: number): void {
  if (logMag === -Infinity) return;
  if (acc.sign === 0 || acc.log === -Infinity) {
    acc.sign = sign;
    acc.log = logMag;
    return;
  }
  if (acc.sign === sign) {
    acc.log = logAddExp(acc.log, logMag);
    return;
  }
  // opposite signs: |acc| − |term|
  if (acc.log > logMag) {
    acc.log = acc.log + Math.log1p(-Math.exp(logMag - acc.log));
  } else if (acc.log < logMag) {
    acc.log = logMag + Math.log1p(-Math.exp(acc.log - logMag));
    acc.sign = sign;
  } else {
    acc.sign = 0;
    acc.log = -Infinity;
  }
}

/** log A_α for fractional α > 1, 0 < q < 1 (two-series formula; see the module comment). */
export function logAFractional(q: number, sigma: number, alpha: number, mode: FractionalSeries = 'signed'): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const z0 = sigma * sigma * (log1mQ - logQ) + 0.5;
  const inv2s2 = 1 / (2 * sigma * sigma);
  const a0: SignedLog = { sign: 0, log: -Infinity };
  const a1: SignedLog = { sign: 0, log: -Infinity };
  let logBinom = 0; // log |C(α, i)|
  let binomSign = 1;
  let lastS0 = -Infinity;
  let lastS1 = -Infinity;
  for (let i = 0; ; i++) {
    if (i > 0) {
      const f = alpha - i + 1;
      logBinom += Math.log(Math.abs(f) / i);
      if (f < 0) binomSign = -binomSign;
    }
    const j = alpha - i;
    const logS0 = logBinom + i * logQ + j * log1mQ + (i * i - i) * inv2s2 + logNormCdf((z0 - i) / sigma);
    const logS1 = logBinom + j * logQ + i * log1mQ + (j * j - j) * inv2s2 + logNormCdf((j - z0) / sigma);
    if (mode === 'signed') {
      addSigned(a0, binomSign, logS0);
      addSigned(a1, binomSign, logS1);
      const total: SignedLog = { sign: a0.sign, log: a0.log };
      addSigned(total, a1.sign, a1.log);
      if (i > alpha && logS0 <= lastS0 && logS1 <= lastS1) {
        // A_α ≥ 1 > 0 in exact arithmetic; a non-positive partial sum in the alternating tail means the
        // float64 sum has lost all precision — refuse rather than loop or return a wrong value.
        if (total.sign <= 0) {
          throw new RangeError(`RDP series for q=${q}, sigma=${sigma}, alpha=${alpha} lost precision (A_alpha <= 0)`);
        }
        if (logAddExp(logS0, logS1) <= total.log + LOG_REL_TOL) return total.log;
      }
    } else {
      a0.log = logAddExp(a0.log, logS0);
      a1.log = logAddExp(a1.log, logS1);
      const total = logAddExp(a0.log, a1.log);
      if (logS0 < lastS0 && logS1 < lastS1 && Math.max(logS0, logS1) < total - 30) return total;
      if (i + 1 >= DP_ACCOUNTING_MAX_TERMS) return Infinity;
    }
    lastS0 = logS0;
    lastS1 = logS1;
  }
}

/** RDP of one step at a single order α > 1 (no argument checks; callers validate). */
export function rdpOfOneStep(q: number, sigma: number, alpha: number, mode: FractionalSeries = 'signed'): number {
  if (alpha === Infinity) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  const logA = Number.isInteger(alpha) ? logAInteger(q, sigma, alpha) : logAFractional(q, sigma, alpha, mode);
  return logA / (alpha - 1);
}

/**
 * RDP of ONE step of the Poisson-subsampled Gaussian mechanism at each order (q = 1: α/(2σ²) exactly).
 * Throws InvalidArgumentError (naming the argument) for q ∉ (0, 1], σ ≤ 0, NaN/∞, or an order ≤ 1.
 */
export function rdpOfSubsampledGaussian(
  sampleRate: number,
  noiseMultiplier: number,
  orders: readonly number[],
  options: RdpComputeOptions = {},
): Float64Array {
  assertSampleRate(sampleRate);
  assertNoiseMultiplier(noiseMultiplier);
  assertOrders(orders);
  const mode = options.fractionalSeries ?? 'signed';
  assertFractionalSeries(mode);
  const out = new Float64Array(orders.length);
  for (let k = 0; k < orders.length; k++) out[k] = rdpOfOneStep(sampleRate, noiseMultiplier, orders[k], mode);
  return out;
}
