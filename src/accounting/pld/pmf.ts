/**
 * A discretised privacy-loss distribution (one adjacency direction): mass `probs[i]` at loss
 * (lowerIndex + i)·h, plus `infinityMass` at +∞. Queries follow the hockey-stick identity
 *   δ(ε) = infinityMass + Σ_{ℓ_i > ε} p_i·(1 − e^{ε − ℓ_i}).
 */

export interface DiscretePld {
  /** Grid width h (valueDiscretizationInterval). */
  readonly valueDiscretizationInterval: number;
  /** Grid index of probs[0]: its loss is lowerIndex·h. */
  readonly lowerIndex: number;
  /** Finite masses on consecutive grid points (non-negative). */
  readonly probs: Float64Array;
  /** Mass at +∞ (counts fully into δ for every ε), including truncated tails. */
  readonly infinityMass: number;
}

/** δ(ε) of a discretised PLD (exact for the discrete distribution). */
export function pmfDeltaForEpsilon(pld: DiscretePld, epsilon: number): number {
  const h = pld.valueDiscretizationInterval;
  const p = pld.probs;
  // first index with loss > ε
  let start = Math.floor(epsilon / h) - pld.lowerIndex + 1;
  if (start < 0) start = 0;
  // guard against floating rounding of ε/h: step back while the previous point is still > ε
  while (start > 0 && (pld.lowerIndex + start - 1) * h > epsilon) start--;
  while (start < p.length && (pld.lowerIndex + start) * h <= epsilon) start++;
  let upperMass = 0;
  let lowerMass = 0; // Σ p_i e^{ε − ℓ_i}, accumulated relative to ε to avoid overflow
  for (let i = p.length - 1; i >= start; i--) {
    const pi = p[i];
    if (pi === 0) continue;
    upperMass += pi;
    lowerMass += pi * Math.exp(epsilon - (pld.lowerIndex + i) * h);
  }
  const d = pld.infinityMass + Math.max(0, upperMass - lowerMass);
  return Math.min(1, d);
}

/**
 * Smallest ε ≥ 0 with δ(ε) ≤ delta for the discrete PLD (∞ when the +∞ atom alone exceeds delta).
 * Between two grid points δ(ε) = U − e^ε·L with U, L the masses (and e^{−ℓ}-weighted masses) above, so the
 * crossing is solved exactly: ε = log((U − delta)/L).
 */
export function pmfEpsilonForDelta(pld: DiscretePld, delta: number): number {
  if (pld.infinityMass > delta) return Infinity;
  const h = pld.valueDiscretizationInterval;
  const p = pld.probs;
  let upper = pld.infinityMass;
  let lower = 0;
  for (let i = p.length - 1; i >= 0; i--) {
    const loss = (pld.lowerIndex + i) * h;
    if (upper > delta && lower > 0 && Math.log((upper - delta) / lower) >= loss) break;
    const pi = p[i];
    if (pi === 0) continue;
    upper += pi;
    lower += Math.exp(-loss) * pi;
    if (upper >= delta && lower === 0) return Math.max(0, loss);
  }
  if (upper <= lower + delta) return 0;
  return Math.log((upper - delta) / lower);
}

/** Total finite mass Σ p_i (diagnostic). */
export function pmfFiniteMass(pld: DiscretePld): number {
  let s = 0;
  for (let i = 0; i < pld.probs.length; i++) s += pld.probs[i];
  return s;
}
