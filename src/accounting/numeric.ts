/**
 * Float64 special functions shared by the accountants. Normal tails go through erfc / erfcx from stdlib
 * (well-tested ports of the Cephes/Sun routines) so that far tails keep full relative precision; logs of
 * tails use the scaled erfcx to avoid underflow.
 */
import erfc from '@stdlib/math-base-special-erfc';
import erfcx from '@stdlib/math-base-special-erfcx';

export const SQRT2 = Math.SQRT2;
export const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** Standard normal density φ(z). */
export function normPdf(z: number): number {
  return Math.exp(-0.5 * z * z - LOG_SQRT_2PI);
}

/** Standard normal CDF Φ(z), accurate in the lower tail. */
export function normCdf(z: number): number {
  return 0.5 * erfc(-z / SQRT2);
}

/** Standard normal upper tail 1 − Φ(z) = Φ(−z), accurate in the upper tail. */
export function normSf(z: number): number {
  return 0.5 * erfc(z / SQRT2);
}

/** log Φ(z), finite for all finite z (uses erfcx for z ≪ 0). */
export function logNormCdf(z: number): number {
  if (z > -5) return Math.log(normCdf(z));
  // Φ(z) = ½ erfc(−z/√2) = ½ erfcx(−z/√2) · exp(−z²/2)
  return Math.log(0.5 * erfcx(-z / SQRT2)) - 0.5 * z * z;
}

/** log(1 − Φ(z)). */
export function logNormSf(z: number): number {
  return logNormCdf(-z);
}

/** log(e^a + e^b) without overflow. */
export function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log1p(Math.exp(-Math.abs(a - b)));
}

/** log(e^a − e^b) for a ≥ b; −∞ when equal. */
export function logSubExp(a: number, b: number): number {
  if (b > a) throw new RangeError(`logSubExp needs a >= b; got a=${a}, b=${b}`);
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  const d = b - a;
  // log(1 − e^d), d < 0: choose the accurate branch
  return a + (d > -Math.LN2 ? Math.log(-Math.expm1(d)) : Math.log1p(-Math.exp(d)));
}

/** log Σ exp(x_i). */
export function logSumExp(xs: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < xs.length; i++) if (xs[i] > m) m = xs[i];
  if (m === -Infinity || m === Infinity) return m;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += Math.exp(xs[i] - m);
  return m + Math.log(s);
}
