/**
 * RDP → (ε, δ) conversions, minimised over the available orders.
 *
 * - 'improved' (default; Balle, Barthe, Gaboardi, Hsu, Sato 2020, "Hypothesis testing interpretations and Rényi
 *   DP", Thm 21; the conversion of Opacus and dp_accounting):
 *     ε(α) = rdp(α) + log((α − 1)/α) − (log δ + log α)/(α − 1),
 *     log δ(α) = (α − 1)(rdp(α) − ε + log((α − 1)/α)) − log α.
 * - 'classic' (Mironov 2017, Prop. 3; TF Privacy before 2020): ε(α) = rdp(α) − log δ/(α − 1),
 *   log δ(α) = (α − 1)(rdp(α) − ε).
 * Both also use, as dp_accounting does, the bound via KL ≤ D_α (Bretagnolle–Huber): δ(ε ≥ 0) ≤ √(1 − e^{−rdp(α)}),
 * so ε = 0 whenever δ ≥ √(1 − e^{−rdp(α)}) for some α. ε is reported ≥ 0. Every answer is an upper bound.
 */
import { InvalidArgumentError } from '../../errors.ts';

export type RdpConversion = 'improved' | 'classic';

export function assertConversion(value: unknown, argument = 'conversion'): asserts value is RdpConversion {
  if (value !== 'improved' && value !== 'classic') {
    throw new InvalidArgumentError(argument, value, "'improved' or 'classic'");
  }
}

export interface OrderChoice {
  /** The bound (ε or δ). */
  readonly value: number;
  /** The order α that attains it (NaN if no order gives a finite bound). */
  readonly order: number;
  /** Index of that order in the orders array (−1 if none). */
  readonly index: number;
}

function epsilonAtOrder(alpha: number, rdp: number, logDelta: number, conversion: RdpConversion): number {
  if (!(rdp < Infinity) || alpha === Infinity) return Infinity;
  if (conversion === 'classic') return rdp - logDelta / (alpha - 1);
  return rdp + Math.log1p(-1 / alpha) - (logDelta + Math.log(alpha)) / (alpha - 1);
}

/**
 * Smallest ε over the orders such that the RDP curve implies (ε, δ)-DP. Arrays must have equal length
 * (checked). RDP values must be ≥ 0 or +∞.
 */
export function epsilonFromRdp(
  orders: readonly number[],
  rdp: ArrayLike<number>,
  delta: number,
  conversion: RdpConversion = 'improved',
): OrderChoice {
  if (orders.length !== rdp.length) {
    throw new InvalidArgumentError('rdp', rdp.length, `an array as long as orders (${orders.length})`);
  }
  const logDelta = Math.log(delta);
  let best = Infinity;
  let bestIdx = -1;
  for (let k = 0; k < orders.length; k++) {
    const r = rdp[k];
    // KL route: δ ≥ √(1 − e^{−r}) ⇔ δ² + expm1(−r) ≥ 0 ⇒ ε = 0 is valid.
    const eps = delta * delta + Math.expm1(-r) >= 0 ? 0 : epsilonAtOrder(orders[k], r, logDelta, conversion);
    if (eps < best) {
      best = eps;
      bestIdx = k;
    }
  }
  if (bestIdx < 0) return { value: Infinity, order: NaN, index: -1 };
  return { value: Math.max(0, best), order: orders[bestIdx], index: bestIdx };
}

/** Smallest δ over the orders such that the RDP curve implies (ε, δ)-DP (ε ≥ 0); capped at 1. */
export function deltaFromRdp(
  orders: readonly number[],
  rdp: ArrayLike<number>,
  epsilon: number,
  conversion: RdpConversion = 'improved',
): OrderChoice {
  if (orders.length !== rdp.length) {
    throw new InvalidArgumentError('rdp', rdp.length, `an array as long as orders (${orders.length})`);
  }
  let bestLog = 0; // δ ≤ 1 always
  let bestIdx = -1;
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k];
    const r = rdp[k];
    if (!(r < Infinity)) continue;
    let logD = r > 0 ? 0.5 * Math.log(-Math.expm1(-r)) : -Infinity; // KL route
    if (a < Infinity) {
      const viaOrder =
        conversion === 'classic'
          ? (a - 1) * (r - epsilon)
          : (a - 1) * (r - epsilon + Math.log1p(-1 / a)) - Math.log(a);
      if (viaOrder < logD) logD = viaOrder;
    }
    if (logD < bestLog) {
      bestLog = logD;
      bestIdx = k;
    }
  }
  return { value: Math.min(1, Math.exp(bestLog)), order: bestIdx < 0 ? NaN : orders[bestIdx], index: bestIdx };
}
