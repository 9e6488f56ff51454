/**
 * Edgeworth expansion of the distribution of a sum with total cumulants K1..K4, and the privacy profile
 * δ̂(ε) it implies.
 *
 * s = √K2, z = (x − K1)/s, γ = K3/s³, He2 = z² − 1, He3 = z³ − 3z, He5 = z⁵ − 10z³ + 15z.
 *   order 1 (EW-Tune):  F̂(x) = Φ(z) − φ(z)·γ/6·He2(z)
 *   order 2:            additionally − φ(z)·[K4/(24s⁴)·He3(z) + γ²/72·He5(z)]
 * F̂ is not a distribution function (it need not be monotone nor stay in [0, 1]).
 *
 * The upper tail 1 − F̂ is never formed as a difference (it cancels below ~1e-8): it is
 * ½·erfc(z/√2) + φ(z)·correction(z), kept as factor·e^{logScale} with logScale = −z²/2 for z ≥ 0 (the erfc
 * part then uses the scaled erfcx), so that e^ε·tail is exp(ε + logScale)·factor and neither overflows nor
 * underflows prematurely.
 */
import erfc from '@stdlib/math-base-special-erfc';
import erfcx from '@stdlib/math-base-special-erfcx';
import { LOG_SQRT_2PI, SQRT2 } from '../numeric.ts';
import type { Cumulants } from './cumulants.ts';

/** Order of the Edgeworth expansion: 1 (κ3 term, EW-Tune) or 2 (adds the κ4 and κ3² terms). */
export type EdgeworthOrder = 1 | 2;

const INV_SQRT_2PI = Math.exp(-LOG_SQRT_2PI);

/** The tail 1 − F̂(x) as factor·exp(logScale). `factor` may be negative: the expansion is not a distribution. */
export interface ScaledTail {
  readonly factor: number;
  readonly logScale: number;
}

/** Correction polynomial c(z) with 1 − F̂ = ½erfc(z/√2) + φ(z)·c(z). */
function tailCorrection(z: number, gamma: number, k4Scaled: number, order: EdgeworthOrder): number {
  const z2 = z * z;
  let c = (gamma / 6) * (z2 - 1);
  if (order === 2) {
    c += (k4Scaled / 24) * z * (z2 - 3) + ((gamma * gamma) / 72) * z * (z2 * (z2 - 10) + 15);
  }
  return c;
}

/** 1 − F̂(x) in scaled form. A degenerate sum (K2 = 0, e.g. q so small that the loss underflows) is a point mass at K1. */
export function edgeworthTailScaled(x: number, K: Cumulants, order: EdgeworthOrder): ScaledTail {
  const [k1, k2, k3, k4] = K;
  if (!(k2 > 0)) return { factor: x < k1 ? 1 : 0, logScale: 0 };
  const s = Math.sqrt(k2);
  const z = (x - k1) / s;
  const gamma = k3 / (s * s * s);
  const k4Scaled = k4 / (k2 * k2);
  const c = tailCorrection(z, gamma, k4Scaled, order);
  if (z >= 0) {
    return { factor: 0.5 * erfcx(z / SQRT2) + c * INV_SQRT_2PI, logScale: -0.5 * z * z };
  }
  return { factor: 0.5 * erfc(z / SQRT2) + c * Math.exp(-0.5 * z * z - LOG_SQRT_2PI), logScale: 0 };
}

/** 1 − F̂(x). */
export function edgeworthTail(x: number, K: Cumulants, order: EdgeworthOrder): number {
  const t = edgeworthTailScaled(x, K, order);
  return t.factor === 0 ? 0 : t.factor * Math.exp(t.logScale);
}

/** F̂(x) (for inspection; the accountant only uses tails). */
export function edgeworthCdf(x: number, K: Cumulants, order: EdgeworthOrder): number {
  const [k1, k2, k3, k4] = K;
  if (!(k2 > 0)) return x < k1 ? 0 : 1;
  const s = Math.sqrt(k2);
  const z = (x - k1) / s;
  const c = tailCorrection(z, k3 / (s * s * s), k4 / (k2 * k2), order);
  return 0.5 * erfc(-z / SQRT2) - c * Math.exp(-0.5 * z * z - LOG_SQRT_2PI);
}

/** e^ε · (1 − F̂(ε)), computed as factor·exp(ε + logScale). */
export function expTimesTail(epsilon: number, K: Cumulants, order: EdgeworthOrder): number {
  const t = edgeworthTailScaled(epsilon, K, order);
  return t.factor === 0 ? 0 : t.factor * Math.exp(epsilon + t.logScale);
}

/**
 * δ̂(ε) = (1 − F̂_Y(ε)) − e^ε·(1 − F̂_X(ε)) for total cumulants of X (loss under the first distribution) and
 * Y (under the second). May be negative or non-monotone: it is an approximation.
 */
export function edgeworthDeltaHat(epsilon: number, X: Cumulants, Y: Cumulants, order: EdgeworthOrder): number {
  return edgeworthTail(epsilon, Y, order) - expTimesTail(epsilon, X, order);
}
