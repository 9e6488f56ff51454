/**
 * Composition of discretised PLDs by FFT: the composed PMF of Σ_g count_g steps is the inverse FFT of
 * Π_g FFT(p_g)^{count_g}, each power taken in polar form in the frequency domain (one forward FFT per
 * distinct step, one inverse FFT in all).
 *
 * Window and wrap-around. The composed support has Σ count_g·(n_g − 1) + 1 points — far too many to hold;
 * a Chernoff bound on the composed loss, P(S ≥ u) ≤ exp(Σ count_g·K_g(λ) − λu) (K_g = log-MGF of step g,
 * bounded from above on coarse bins), gives a window [L, U] outside which each tail has mass ≤ τ/2. A
 * cyclic FFT of length N ≥ U − L + 1 then folds the outside mass back into the window: every window value
 * is the true value PLUS non-negative aliased mass (so the window alone never under-counts δ), and the
 * mass outside, ≤ τ, is added to the +∞ atom. τ = tailMassTruncation (default 1e-15, as dp_accounting).
 *
 * Two real sequences are packed into one complex FFT (the two add/remove directions share every transform).
 */
import FFT from 'fft.js';
import { EwtuneError } from '../../errors.ts';
import type { DiscretePld } from './pmf.ts';

/** `count` self-compositions of one discretised step. */
export interface PldPart {
  readonly pld: DiscretePld;
  readonly count: number;
}

/** What the composition did (for EpsilonResult details). */
export interface ComposeInfo {
  /** FFT length used. */
  readonly fftSize: number;
  /** Mass added to the +∞ atom for the truncated window (0 when the full support fitted). */
  readonly truncatedMass: number;
}

export interface ComposedPld extends DiscretePld {
  readonly info: ComposeInfo;
}

const LAMBDAS: Float64Array = (() => {
  const n = 46;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = 1e-3 * Math.pow(10, (9 * i) / (n - 1)); // 1e-3 … 1e6 (ratio 1.58), loss units
  return out;
})();

interface TailSummary {
  /** K⁺(λ_j) ≥ log E[e^{λ_j ℓ}] (finite part), λ_j = LAMBDAS[j]. */
  readonly upper: Float64Array;
  /** K⁻(λ_j) ≥ log E[e^{−λ_j ℓ}]. */
  readonly lower: Float64Array;
}

const summaries = new WeakMap<DiscretePld, TailSummary>();

/**
 * Upper bounds of the log-MGF at ±λ from coarse bins. Inside a bin [a, b] holding mass m with mean μ,
 * convexity of e^{λℓ} gives Σ p_i e^{λℓ_i} ≤ m·((b − μ)e^{λa} + (μ − a)e^{λb})/(b − a): a valid bound that
 * is tight to second order in the bin width (so the Chernoff window barely widens with the step count).
 */
function tailSummary(pld: DiscretePld): TailSummary {
  const cached = summaries.get(pld);
  if (cached) return cached;
  const h = pld.valueDiscretizationInterval;
  const p = pld.probs;
  const width = Math.max(1, Math.ceil(p.length / 512));
  const nb = Math.ceil(p.length / width);
  const logMass: number[] = [];
  const lo: number[] = [];
  const hi: number[] = [];
  const fracHi: number[] = []; // (μ − a)/(b − a) ∈ [0, 1]
  for (let b = 0; b < nb; b++) {
    let s = 0;
    let s1 = 0;
    const start = b * width;
    const end = Math.min(p.length, start + width);
    for (let i = start; i < end; i++) {
      s += p[i];
      s1 += p[i] * (i - start);
    }
    if (!(s > 0)) continue;
    const cells = end - 1 - start;
    logMass.push(Math.log(s));
    lo.push((pld.lowerIndex + start) * h);
    hi.push((pld.lowerIndex + end - 1) * h);
    fracHi.push(cells > 0 ? Math.min(1, Math.max(0, s1 / s / cells)) : 0);
  }
  const upper = new Float64Array(LAMBDAS.length);
  const lower = new Float64Array(LAMBDAS.length);
  const terms = new Float64Array(logMass.length);
  for (let j = 0; j < LAMBDAS.length; j++) {
    for (const sign of [1, -1]) {
      const lam = sign * LAMBDAS[j];
      let m = -Infinity;
      for (let k = 0; k < logMass.length; k++) {
        // log of chord value: mixture of e^{λa} (weight 1 − f) and e^{λb} (weight f)
        const ea = lam * lo[k];
        const eb = lam * hi[k];
        const f = fracHi[k];
        let t: number;
        if (f <= 0) t = ea;
        else if (f >= 1) t = eb;
        else {
          const x = Math.log1p(-f) + ea;
          const y = Math.log(f) + eb;
          t = x > y ? x + Math.log1p(Math.exp(y - x)) : y + Math.log1p(Math.exp(x - y));
        }
        terms[k] = logMass[k] + t;
        if (terms[k] > m) m = terms[k];
      }
      let acc = 0;
      for (let k = 0; k < logMass.length; k++) acc += Math.exp(terms[k] - m);
      const v = m === -Infinity ? -Infinity : m + Math.log(acc);
      if (sign > 0) upper[j] = v;
      else lower[j] = v;
    }
  }
  const out = { upper, lower };
  summaries.set(pld, out);
  return out;
}

interface Window {
  /** Σ count·lowerIndex: grid index of relative index 0. */
  readonly base: number;
  /** Relative index range kept [lo, hi]. */
  readonly lo: number;
  readonly hi: number;
  /** Whether anything was cut (then τ goes to +∞). */
  readonly truncated: boolean;
}

function chooseWindow(parts: readonly PldPart[], tau: number): Window {
  let base = 0;
  let fullHi = 0;
  const h = parts[0].pld.valueDiscretizationInterval;
  for (const { pld, count } of parts) {
    base += count * pld.lowerIndex;
    fullHi += count * (pld.probs.length - 1);
  }
  if (tau <= 0) return { base, lo: 0, hi: fullHi, truncated: false };
  const logTerm = Math.log(2 / tau);
  let upperLoss = Infinity;
  let lowerLoss = -Infinity;
  const sums = parts.map((p) => tailSummary(p.pld));
  for (let j = 0; j < LAMBDAS.length; j++) {
    const lam = LAMBDAS[j];
    let ku = 0;
    let kl = 0;
    for (let g = 0; g < parts.length; g++) {
      ku += parts[g].count * sums[g].upper[j];
      kl += parts[g].count * sums[g].lower[j];
    }
    const u = (ku + logTerm) / lam;
    const l = -(kl + logTerm) / lam;
    if (u < upperLoss) upperLoss = u;
    if (l > lowerLoss) lowerLoss = l;
  }
  // one grid cell of slack on each side against rounding of loss/h
  let hi = Number.isFinite(upperLoss) ? Math.ceil(upperLoss / h) - base + 1 : fullHi;
  let lo = Number.isFinite(lowerLoss) ? Math.floor(lowerLoss / h) - base - 1 : 0;
  if (hi > fullHi) hi = fullHi;
  if (lo < 0) lo = 0;
  if (lo > hi) lo = hi;
  return { base, lo, hi, truncated: lo > 0 || hi < fullHi };
}

const fftCache = new Map<number, FFT>();

/**
 * FFT plans are cached by size (building the twiddle table costs as much as a transform); only plans up to
 * 2^22 points are kept, at most three (a 2^22 plan holds ~70 MB of tables).
 */
function fftOfSize(n: number): FFT {
  let f = fftCache.get(n);
  if (!f) {
    f = new FFT(n);
    if (n <= 1 << 22) {
      if (fftCache.size >= 3) fftCache.delete(fftCache.keys().next().value as number);
      fftCache.set(n, f);
    }
  }
  return f;
}

function nextPow2(n: number): number {
  let p = 4;
  while (p < n) p *= 2;
  return p;
}

/** acc[k] ← acc[k] · (re + i·im)^count (or just the power when `first`), power taken in polar form. */
function powMul(acc: Float64Array, k: number, re: number, im: number, count: number, first: boolean): void {
  const r2 = re * re + im * im;
  let pr = 0;
  let pi = 0;
  if (r2 > 0) {
    const logMag = 0.5 * count * Math.log(r2);
    if (logMag > -745) {
      const mag = Math.exp(logMag);
      const th = count * Math.atan2(im, re);
      pr = mag * Math.cos(th);
      pi = mag * Math.sin(th);
    }
  }
  const j = 2 * k;
  if (first) {
    acc[j] = pr;
    acc[j + 1] = pi;
  } else {
    const ar = acc[j];
    const ai = acc[j + 1];
    acc[j] = ar * pr - ai * pi;
    acc[j + 1] = ar * pi + ai * pr;
  }
}

/**
 * Compose up to two independent families of parts (e.g. the remove and the add direction) in one pass.
 * Returns one composed PLD per family (second is null when `b` is null).
 */
export function composeParts(
  a: readonly PldPart[],
  b: readonly PldPart[] | null,
  tailMassTruncation = 1e-15,
  maxFftSize = 1 << 24,
): [ComposedPld, ComposedPld | null] {
  const families = b ? [a, b] : [a];
  for (const fam of families) {
    if (fam.length === 0) throw new RangeError('composeParts needs at least one part per family');
  }
  const windows = families.map((fam) => chooseWindow(fam, tailMassTruncation));
  let need = 0;
  for (let f = 0; f < families.length; f++) {
    need = Math.max(need, windows[f].hi - windows[f].lo + 1);
    for (const part of families[f]) need = Math.max(need, part.pld.probs.length);
  }
  const n = nextPow2(need);
  if (n > maxFftSize) {
    throw new EwtuneError(
      'ERR_PLD_TOO_LARGE',
      `PLD composition needs an FFT of ${n} points (limit ${maxFftSize}); use a larger valueDiscretizationInterval`,
    );
  }
  const fft = fftOfSize(n);
  const n2 = 2 * n;
  const accs = families.map(() => new Float64Array(n2));
  const started = families.map(() => false);

  // Forward transforms: pack two real inputs per complex FFT.
  const items: { fam: number; part: PldPart }[] = [];
  families.forEach((fam, f) => fam.forEach((part) => items.push({ fam: f, part })));
  const input = new Float64Array(n2);
  const out = new Float64Array(n2);
  for (let t = 0; t < items.length; t += 2) {
    const x = items[t];
    const y = t + 1 < items.length ? items[t + 1] : null;
    input.fill(0);
    const px = x.part.pld.probs;
    for (let i = 0; i < px.length; i++) input[2 * i] = px[i];
    if (y) {
      const py = y.part.pld.probs;
      for (let i = 0; i < py.length; i++) input[2 * i + 1] = py[i];
    }
    fft.transform(out, input);
    const accX = accs[x.fam];
    const firstX = !started[x.fam];
    started[x.fam] = true;
    if (!y) {
      for (let k = 0; k < n; k++) powMul(accX, k, out[2 * k], out[2 * k + 1], x.part.count, firstX);
      continue;
    }
    const accY = accs[y.fam];
    const firstY = !started[y.fam];
    started[y.fam] = true;
    // Unpack the two real spectra: X[k] = (Z[k] + conj Z[−k])/2, Y[k] = (Z[k] − conj Z[−k])/(2i).
    for (let k = 0; k < n; k++) {
      const m = k === 0 ? 0 : n - k;
      const zr = out[2 * k];
      const zi = out[2 * k + 1];
      const wr = out[2 * m];
      const wi = out[2 * m + 1];
      powMul(accX, k, 0.5 * (zr + wr), 0.5 * (zi - wi), x.part.count, firstX);
      powMul(accY, k, 0.5 * (zi + wi), 0.5 * (wr - zr), y.part.count, firstY);
    }
  }

  // One inverse transform for both families: acc_a + i·acc_b.
  if (accs.length === 2) {
    const A = accs[0];
    const B = accs[1];
    for (let k = 0; k < n2; k += 2) {
      input[k] = A[k] - B[k + 1];
      input[k + 1] = A[k + 1] + B[k];
    }
  } else {
    input.set(accs[0]);
  }
  fft.inverseTransform(out, input);

  const results = families.map((fam, f) => {
    const w = windows[f];
    const len = w.hi - w.lo + 1;
    const probs = new Float64Array(len);
    const offset = f; // real part for family 0, imaginary part for family 1
    let pos = w.lo % n; // circular position of relative index w.lo (w.lo ≥ 0)
    for (let j = 0; j < len; j++) {
      const v = out[2 * pos + offset];
      probs[j] = v > 0 ? v : 0; // FFT round-off below zero: clip (only raises δ)
      if (++pos === n) pos = 0;
    }
    let logSurvive = 0; // log Π (1 − inf_g)^{count_g}
    for (const { pld, count } of fam) logSurvive += count * Math.log1p(-pld.infinityMass);
    const truncatedMass = w.truncated ? tailMassTruncation : 0;
    const infinityMass = Math.min(1, -Math.expm1(logSurvive) + truncatedMass);
    const composed: ComposedPld = {
      valueDiscretizationInterval: fam[0].pld.valueDiscretizationInterval,
      lowerIndex: w.base + w.lo,
      probs,
      infinityMass,
      info: { fftSize: n, truncatedMass },
    };
    return composed;
  });
  return [results[0], results.length > 1 ? results[1] : null];
}
