/**
 * Finite-sample bounds around the first-order Edgeworth estimate (Wang, Gao, Zhang, Shen, Su 2022), using
 * the explicit uniform error bound Δ ≥ sup_x |F_n(x) − F̂_n(x)| of the first-order Edgeworth expansion of
 * Derumigny, Girard and Guyonvarch (DGG) for a standardised sum of n independent variables.
 *
 * Δ follows the reference implementation (HuaWang-wharton/EdgeworthAccountant, Edgeworth.py
 * `error_bound_edgeworth_1` and utils.py; read for the formula and constants, re-written here) exactly,
 * including its choice of moments: raw (not centred) moments of the per-step privacy loss,
 *   B = √E[L²], λ3 = E[L³]/B³, K3 = E|L|³/B³, K4 = E[L⁴]/B⁴, K̃3 = K3 + E|L|/B,
 *   T = 2π√n/K̃3, t0 = 1/π, ε_DGG = 0.1,
 *   Δ = Ω1 + Ω2 + Ω3 with
 *   Ω1 = 2∫_0^{t0} ½(1 − t + 0.54831t²)·e^{−(Tt)²/2}·f(Tt) dt + (1/π)∫_{t0}^∞ e^{−(Tt)²/2}/t·f(Tt) dt,
 *        f(u) = 1 + |λ3|/(6√n)·u³,
 *   Ω2 = 67.0415/T⁴ + 1.2187/T²,
 *   Ω3 = I31 + I32 + I33 (see the functions below).
 * For heterogeneous steps the moments are the per-step averages (1/n)Σ E[·], the non-identically-distributed
 * form of the same quantities (it reduces to the reference's iid case).
 *
 * Then δ(ε) ∈ [δ̂₁(ε) − Δ_Y − e^ε·Δ_X, δ̂₁(ε) + Δ_Y + e^ε·Δ_X] with δ̂₁ the first-order estimate (the bound is
 * about the first-order expansion, whatever order the point estimate uses). Since the true δ(ε) is
 * non-increasing: ε_upper = inf{ε : δ_upper(ε) ≤ δ} (null when δ_upper > δ everywhere: no upper bound exists,
 * always the case when δ < Δ_X + Δ_Y, i.e. the whole fine-tuning regime), ε_lower = sup{ε : δ_lower(ε) > δ}
 * (0 if none).
 */
import type { ComposedLoss, Cumulants } from './cumulants.ts';
import { edgeworthDeltaHat, edgeworthTail } from './expansion.ts';
import { firstCrossingBelow, lastCrossing, MAX_DOUBLINGS } from './conversion.ts';
import { integrate } from './quadrature.ts';

/** ε in DGG's Ω3 (the reference code's default). */
const DGG_EPS = 0.1;
const QUAD = { relTolerance: 1e-10, absTolerance: 1e-15 } as const;
/**
 * Scan resolution for the bound roots. Coarser than the estimate's on purpose: a missed excursion can only
 * make the answer more conservative (a smaller lower bound, or "no upper bound"), never invalid.
 */
const BOUND_SCAN_POINTS = 64;

/** Per-step moment summary the bound needs (averaged over the steps for heterogeneous histories). */
export interface ErrorBoundInputs {
  readonly steps: number;
  /** (1/n)Σ E[L^k], k = 1..4. */
  readonly meanRawMoments: readonly [number, number, number, number];
  readonly meanAbsMoment1: number;
  readonly meanAbsMoment3: number;
}

/** Standardised moments of the DGG bound. */
export interface StandardisedMoments {
  readonly lambda3: number;
  readonly K3: number;
  readonly K4: number;
  readonly K3tilde: number;
  readonly T: number;
}

export function standardisedMoments(m: ErrorBoundInputs): StandardisedMoments {
  const B = Math.sqrt(m.meanRawMoments[1]);
  const B3 = B * B * B;
  const lambda3 = m.meanRawMoments[2] / B3;
  const K3 = m.meanAbsMoment3 / B3;
  const K4 = m.meanRawMoments[3] / (B3 * B);
  const K3tilde = K3 + m.meanAbsMoment1 / B;
  const T = (2 * Math.PI * Math.sqrt(m.steps)) / K3tilde;
  return { lambda3, K3, K4, K3tilde, T };
}

/** Upper limit beyond which ∫ u^k e^{−u²/2} du is negligible: u^9·e^{−u²/2} < 1e-300 there. */
const GAUSS_CUTOFF = 40;

function omega1(T: number, lambda3: number, n: number): number {
  const c = Math.abs(lambda3) / Math.sqrt(n) / 6;
  const t0 = 1 / Math.PI;
  const s1 = integrate((t) => {
    const u = T * t;
    return 0.5 * (1 - t + 0.54831 * t * t) * Math.exp(-0.5 * u * u) * (1 + c * u * u * u);
  }, 0, t0, QUAD);
  // Second part, substituted u = T·t: ∫_{T t0}^∞ e^{−u²/2}/u·(1 + c u³) du.
  const a = T * t0;
  const s2 = a >= GAUSS_CUTOFF ? 0 : integrate((u) => (Math.exp(-0.5 * u * u) / u) * (1 + c * u * u * u), a, GAUSS_CUTOFF, QUAD);
  return 2 * s1 + s2 / Math.PI;
}

function omega2(T: number): number {
  return 67.0415 / T ** 4 + 1.2187 / T ** 2;
}

function P1n(eps: number): number {
  return (144 + 48 * eps + 4 * eps * eps + (96 * Math.sqrt(2 * eps) + 32 * eps + 16 * Math.SQRT2 * eps ** 1.5)) / 576;
}

function e1(eps: number): number {
  return Math.exp(eps * eps * (1 / 6 + (2 * P1n(eps)) / (1 - 3 * eps) ** 2));
}

/**
 * DGG's R1n(t) (reference utils.py) is a polynomial in t: a5·t⁵ + a6·t⁶ + a7·t⁷ + a8·t⁸. Returns [a5, a6, a7, a8].
 * With k = K4/n, temp = 1/(1 − 3ε)², p = 1/24 + P1n(ε)/2·temp:
 *   R1n = (U11 + U12)/2·temp + e1(ε)·(t⁸K4²/(2n²)·p² + t⁷|λ3|K4/(6n^1.5)·p),
 *   U11 = t⁶/24·k^1.5 + t⁸/576·k², U12 = t⁵/6·k^1.25 + t⁶/36·k^1.5 + t⁷/72·k^1.75.
 */
function r1nCoefficients(eps: number, lambda3: number, K4: number, n: number): [number, number, number, number] {
  const k = K4 / n;
  const temp = 1 / (1 - 3 * eps) ** 2;
  const p = 1 / 24 + (P1n(eps) / 2) * temp;
  const e = e1(eps);
  const half = temp / 2;
  return [
    half * (k ** 1.25 / 6),
    half * (k ** 1.5 / 24 + k ** 1.5 / 36),
    half * (k ** 1.75 / 72) + (e * Math.abs(lambda3) * K4 * p) / 6 / n ** 1.5,
    half * ((k * k) / 576) + (e * K4 * K4 * p * p) / 2 / (n * n),
  ];
}

/** Oriented integral over [l, m] of a Gaussian-decaying integrand, truncated where it is negligible. */
function gaussianIntegral(f: (u: number) => number, l: number, m: number): number {
  const sign = m >= l ? 1 : -1;
  const lo = Math.min(l, m);
  const hi = Math.min(Math.max(l, m), Math.max(lo, GAUSS_CUTOFF));
  return sign * integrate(f, lo, hi, QUAD);
}

function omega3(s: StandardisedMoments, n: number): number {
  const { T, lambda3, K3, K3tilde, K4 } = s;
  const eps = DGG_EPS;
  const l = Math.sqrt(2 * eps) * (n / K4) ** 0.25;
  const m = T / Math.PI;
  const [a5, a6, a7, a8] = r1nCoefficients(eps, lambda3, K4, n);
  // I31: closed terms + 0.32636·∫_0^l u e^{−u²/2} R1n(u) du
  const i31 =
    ((0.327 * K4) / n) * (1 / 12 + 1 / 4 / (1 - 3 * eps) ** 2) +
    (0.036278 * e1(eps) * lambda3 * lambda3) / n +
    0.32636 *
      gaussianIntegral(
        (u) => {
          const u2 = u * u;
          return u2 * u2 * u2 * Math.exp(-0.5 * u2) * (a5 + u * (a6 + u * (a7 + u * a8)));
        },
        0,
        l,
      );
  // I32 = K3/(3√n)·J2, J2 = (1/T)∫_l^m Φ_t(u/T)·u³·exp(−u²/2·(1 − 0.198324|u|K̃3/√n − √(K4/n))) du, Φ_t(t) = 0.16318/|t|.
  const rootK4n = Math.sqrt(K4 / n);
  const cubic = (0.198324 * K3tilde) / Math.sqrt(n);
  const j2 = integrate(
    (u) => 0.16318 * u * u * Math.exp(-0.5 * u * u * (1 - cubic * Math.abs(u) - rootK4n)),
    l,
    m,
    QUAD,
  );
  const i32 = (K3 / 3 / Math.sqrt(n)) * j2;
  // I33 = λ3/(3√n)·J1, J1 = 0.16318·∫_l^m u² e^{−u²/2} du
  const j1 = 0.16318 * gaussianIntegral((u) => u * u * Math.exp(-0.5 * u * u), l, m);
  const i33 = (lambda3 / 3 / Math.sqrt(n)) * j1;
  return i31 + i32 + i33;
}

/**
 * DGG's uniform bound Δ on |F_n − F̂_n| for the first-order Edgeworth expansion of a sum of n steps, as the
 * reference code computes it. +∞ (never NaN) where the bound's integrals diverge.
 */
export function uniformEdgeworthError(m: ErrorBoundInputs): number {
  const n = m.steps;
  const s = standardisedMoments(m);
  const value = omega1(s.T, s.lambda3, n) + omega2(s.T) + omega3(s, n);
  return Number.isNaN(value) ? Infinity : value;
}

/** Finite-sample interval around the first-order estimate, for one direction. */
export interface DirectionBounds {
  /** Δ for X and for Y. */
  readonly deltaX: number;
  readonly deltaY: number;
}

export function directionErrorBounds(x: ComposedLoss, y: ComposedLoss): DirectionBounds {
  return { deltaX: uniformEdgeworthError(x), deltaY: uniformEdgeworthError(y) };
}

/** Lower and upper bounds on the true δ(ε) of one direction, from the first-order estimate and Δ. */
export function deltaBounds(epsilon: number, X: Cumulants, Y: Cumulants, b: DirectionBounds): { lower: number; upper: number } {
  const d = edgeworthDeltaHat(epsilon, X, Y, 1);
  const spread = b.deltaY + Math.exp(epsilon) * b.deltaX;
  return { lower: d - spread, upper: d + spread };
}

/**
 * ε bounds of one direction at δ: upper = inf{ε ≥ 0 : δ_upper(ε) ≤ δ} or null (none exists); lower =
 * sup{ε ≥ 0 : δ_lower(ε) > δ} (0 if none).
 */
export function epsilonBounds(delta: number, X: Cumulants, Y: Cumulants, b: DirectionBounds): { lower: number; upper: number | null } {
  if (!Number.isFinite(b.deltaX) || !Number.isFinite(b.deltaY)) return { lower: 0, upper: null };
  const lowerFn = (e: number) => edgeworthDeltaHat(e, X, Y, 1) - b.deltaY - Math.exp(e) * b.deltaX;
  const upperFn = (e: number) => edgeworthDeltaHat(e, X, Y, 1) + b.deltaY + Math.exp(e) * b.deltaX;
  // δ_lower ≤ δ̂₁ ≤ tail_Y: the same guard as for the estimate.
  const lower = lastCrossing(lowerFn, delta, { guard: (e) => edgeworthTail(e, Y, 1) - b.deltaY, scanPoints: BOUND_SCAN_POINTS });
  // Scan range for the upper bound: beyond H where e^H·(Δ_X − tail_X(H)) ≥ 1 (≥ δ), δ_upper(ε) ≥ tail_Y + Δ_Y +
  // e^ε(Δ_X − tail_X(ε)) > δ for all ε ≥ H (tail_Y + Δ_Y ≥ 0 when Δ bounds the error; tail_X decreases), so no
  // crossing lies beyond H.
  let H = 1;
  let k = 0;
  while (Math.exp(H) * (b.deltaX - edgeworthTail(H, X, 1)) < 1 && k++ < MAX_DOUBLINGS) H *= 2;
  const upper = firstCrossingBelow(upperFn, delta, H, BOUND_SCAN_POINTS);
  return { lower: Math.max(0, lower), upper };
}
