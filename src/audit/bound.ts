/**
 * The tail bound of the one-run privacy audit (Steinke, Nasr, Jagielski, "Privacy Auditing with One (1) Training
 * Run", NeurIPS 2023, arXiv:2305.08846; Theorem 5.2 and its Algorithm: "p_value_DP_audit" / "get_eps_audit").
 *
 * Setting: m canaries, each included in the training set independently with probability 1/2; the auditor guesses the
 * membership of r of them (abstaining on the rest) and v guesses are correct. If the training algorithm is (ε, δ)-DP
 * with respect to each canary, then
 *   P[W ≥ v] ≤ β + 2mδ·α,   β = P[Bin(r, q) ≥ v],   α = max_{1≤i≤v} P[v − i ≤ Bin(r, q) < v] / i,
 * with q = e^ε / (1 + e^ε) (the accuracy of ε-DP randomised response). The audit ε at confidence 1 − p is the largest ε
 * whose p-value stays below p: every ε below it is rejected, so the algorithm is NOT (ε, δ)-DP for those ε with
 * confidence 1 − p — an empirical LOWER bound on the ε the run satisfies.
 *
 * Everything is float64; the binomial probabilities are computed in log space (log-gamma binomial coefficients,
 * log-sum-exp tails), so tails far below 1e-308 do not underflow to a wrong 0 before they are combined.
 * Pure math: no tfjs, no randomness.
 */
import gammaln from '@stdlib/math-base-special-gammaln';
import { InvalidArgumentError } from '../errors.ts';

/** One audit outcome: m canaries, r guesses (non-abstentions), v correct ones. */
export interface AuditCounts {
  /** m: canaries, each included independently with probability 1/2. */
  readonly canaries: number;
  /** r ≤ m: guesses made (abstentions excluded). */
  readonly guesses: number;
  /** v ≤ r: correct guesses. */
  readonly correct: number;
}

function assertCounts(counts: AuditCounts): void {
  if (counts === null || typeof counts !== 'object') throw new InvalidArgumentError('counts', counts, 'an object { canaries, guesses, correct }');
  const { canaries: m, guesses: r, correct: v } = counts;
  if (typeof m !== 'number' || !Number.isSafeInteger(m) || m < 1) throw new InvalidArgumentError('canaries', m, 'a positive integer');
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r < 0 || r > m) throw new InvalidArgumentError('guesses', r, `an integer in [0, canaries = ${m}]`);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > r) throw new InvalidArgumentError('correct', v, `an integer in [0, guesses = ${r}]`);
}

function assertAuditDelta(delta: unknown): asserts delta is number {
  if (typeof delta !== 'number' || !Number.isFinite(delta) || delta < 0 || delta > 1) {
    throw new InvalidArgumentError('delta', delta, 'a number in [0, 1]');
  }
}

/** log(e^a + e^b) without overflow; −∞ is the identity. */
function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const hi = Math.max(a, b);
  return hi + Math.log1p(Math.exp(Math.min(a, b) - hi));
}

/** log C(n, k) by log-gamma. */
function logBinomialCoefficient(n: number, k: number): number {
  return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1);
}

/**
 * log q and log(1 − q) for q = 1 / (1 + e^(−ε)), without cancellation: log q = −log1p(e^(−ε)),
 * log(1 − q) = −ε − log1p(e^(−ε)).
 */
function logAccuracy(epsilon: number): { logQ: number; log1mQ: number } {
  const l = Math.log1p(Math.exp(-epsilon));
  return { logQ: -l, log1mQ: -epsilon - l };
}

/** log P[Bin(n, q) = k] for every k in [0, n] (float64). */
function logBinomialPmf(n: number, logQ: number, log1mQ: number): Float64Array {
  const out = new Float64Array(n + 1);
  for (let k = 0; k <= n; k++) {
    // 0·log(0) = 0: when q is 1 or 0 in float64 the terms with a zero exponent must not become NaN.
    const a = k === 0 ? 0 : k * logQ;
    const b = n - k === 0 ? 0 : (n - k) * log1mQ;
    out[k] = logBinomialCoefficient(n, k) + a + b;
  }
  return out;
}

/** The parts of the p-value (natural logs), for tests and reports. */
export interface AuditPValue {
  /** min(1, β + 2mδα). */
  readonly pValue: number;
  /** log β = log P[Bin(r, q) ≥ v]. */
  readonly logBeta: number;
  /** log α = log max_i P[v − i ≤ Bin(r, q) < v] / i (−∞ when v = 0). */
  readonly logAlpha: number;
}

/**
 * The p-value of observing at least `correct` correct guesses out of `guesses` under the null hypothesis that the
 * training run is (epsilon, delta)-DP for each of the `canaries` canaries (Steinke et al. 2023, Theorem 5.2).
 * @throws InvalidArgumentError for counts that are not integers with 0 ≤ v ≤ r ≤ m, m ≥ 1, ε < 0 or not finite,
 *   δ outside [0, 1].
 */
export function auditPValue(counts: AuditCounts, epsilon: number, delta: number): AuditPValue {
  assertCounts(counts);
  if (typeof epsilon !== 'number' || !Number.isFinite(epsilon) || epsilon < 0) {
    throw new InvalidArgumentError('epsilon', epsilon, 'a finite number >= 0');
  }
  assertAuditDelta(delta);
  return pValueUnchecked(counts, epsilon, delta);
}

function pValueUnchecked(counts: AuditCounts, epsilon: number, delta: number): AuditPValue {
  const { canaries: m, guesses: r, correct: v } = counts;
  if (v === 0) return { pValue: 1, logBeta: 0, logAlpha: -Infinity };
  const { logQ, log1mQ } = logAccuracy(epsilon);
  const logPmf = logBinomialPmf(r, logQ, log1mQ);
  // β = Σ_{k ≥ v} pmf(k), summed from the smallest terms up.
  let logBeta = -Infinity;
  for (let k = r; k >= v; k--) logBeta = logAddExp(logBeta, logPmf[k]);
  // α = max_i (Σ_{j=1..i} pmf(v − j)) / i.
  let logCumulative = -Infinity;
  let logAlpha = -Infinity;
  for (let i = 1; i <= v; i++) {
    logCumulative = logAddExp(logCumulative, logPmf[v - i]);
    const candidate = logCumulative - Math.log(i);
    if (candidate > logAlpha) logAlpha = candidate;
  }
  const deltaTerm = delta === 0 || logAlpha === -Infinity ? 0 : Math.exp(logAlpha + Math.log(2 * m * delta));
  const pValue = Math.min(1, Math.exp(logBeta) + deltaTerm);
  return { pValue, logBeta, logAlpha };
}

/** Options of {@link epsilonLowerBound}. */
export interface EpsilonLowerBoundOptions {
  /** δ of the (ε, δ) claims tested, in [0, 1]. */
  readonly delta: number;
  /** Confidence 1 − p of the bound, in (0, 1) (default 0.95). */
  readonly confidence?: number;
  /** Bisection steps after bracketing (default 60: the bracket is then below 1e-16 of its start). */
  readonly iterations?: number;
}

/** The audit ε and the p-value at it. */
export interface EpsilonLowerBound {
  /** The largest ε (to the bisection's resolution, from below) whose p-value is < 1 − confidence; 0 if none. */
  readonly epsilon: number;
  /** The p-value at `epsilon` (< 1 − confidence unless epsilon is 0 and even ε = 0 is not rejected). */
  readonly pValue: number;
  /** Confidence of the bound, in (0, 1). */
  readonly confidence: number;
  /** δ of the (ε, δ) claims tested. */
  readonly delta: number;
}

/**
 * The one-run audit's ε lower bound at `confidence` (the paper's get_eps_audit): bracket [0, 1], widen the upper end
 * by 1 until its p-value reaches p = 1 − confidence, then bisect keeping p(lower) < p ≤ p(upper); returns the lower
 * end (conservative). 0 when even ε = 0 cannot be rejected.
 * @throws InvalidArgumentError for bad counts, δ outside [0, 1], confidence outside (0, 1), bad iterations.
 */
export function epsilonLowerBound(counts: AuditCounts, options: EpsilonLowerBoundOptions): EpsilonLowerBound {
  assertCounts(counts);
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options', options, 'an object { delta, confidence? }');
  assertAuditDelta(options.delta);
  const confidence = options.confidence ?? 0.95;
  if (typeof confidence !== 'number' || !(confidence > 0 && confidence < 1)) {
    throw new InvalidArgumentError('confidence', confidence, 'a number in (0, 1)');
  }
  const iterations = options.iterations ?? 60;
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > 200) {
    throw new InvalidArgumentError('iterations', iterations, 'an integer in [1, 200]');
  }
  const p = 1 - confidence;
  const delta = options.delta;
  const at = (eps: number) => pValueUnchecked(counts, eps, delta).pValue;
  let lo = 0;
  let hi = 1;
  // The p-value tends to 1 as ε → ∞ (q → 1), so this ends; 1e4 is far beyond any ε a finite m can certify.
  while (at(hi) < p) {
    lo = hi;
    hi += 1;
    if (hi > 1e4) break;
  }
  for (let i = 0; i < iterations; i++) {
    const mid = (lo + hi) / 2;
    if (at(mid) < p) lo = mid;
    else hi = mid;
  }
  return { epsilon: lo, pValue: at(lo), confidence, delta };
}

/**
 * The largest ε any outcome of `guesses` guesses among `canaries` canaries can certify (all guesses correct): what a
 * perfect attack (e.g. on a run with no noise) reaches. Useful to size M: the audit can never report more.
 */
export function maxAuditEpsilon(canaries: number, guesses: number, options: EpsilonLowerBoundOptions): number {
  return epsilonLowerBound({ canaries, guesses, correct: guesses }, options).epsilon;
}
