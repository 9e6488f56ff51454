/**
 * Noise for the DP step, from `node:crypto` only (never `Math.random`, never `tf.random*`).
 *
 * Three modes:
 * - `'gaussian'` (default): continuous Gaussian N(0, std²) in float64 by the Marsaglia polar method on 53-bit
 *   uniforms from `crypto.randomFillSync`. {@link addNoise} adds it to the float32 clipped sum in float64 and
 *   casts once.
 * - `'hardened'`: protection against floating-point attacks on the noise (Mironov, "On significance of the least
 *   significant bits for differential privacy", CCS 2012). Following the idea of Google's "Secure Noise
 *   Generation" (google/differential-privacy, common_docs): the input is snapped to a power-of-two grid Λ and
 *   integer noise on that grid is added, so every output is an exact multiple of Λ and the noise support has no
 *   data-dependent holes. The integer noise is the discrete Gaussian N_Z(0, s²), sampled exactly with integer
 *   arithmetic only (Canonne, Kamath, Steinke, "The Discrete Gaussian for Differential Privacy", NeurIPS 2020,
 *   Algorithms 1–3; here with Laplace scale t = s, which their rejection step allows for any t > 0).
 *   Construction and proof of the sensitivity slack: see {@link hardenedGrid} and {@link sensitivitySlack}.
 * - `'insecure-seeded'`: deterministic, from an AES-256-CTR keystream keyed by SHA-256 of a seed — tests only;
 *   `secure === false` so the ledger records it.
 */
import { InvalidArgumentError } from '../errors.ts';
import { createInsecureSeededRandom, createSecureRandom } from './csprng.ts';
import type { RandomStream, Seed } from './csprng.ts';

/** The noise modes. */
export type NoiseMode = 'gaussian' | 'hardened' | 'insecure-seeded';

/** The grid of the hardened mode for one noise std. */
export interface HardenedGrid {
  /** Grid spacing Λ, a power of two. */
  readonly resolution: number;
  /** Integer discrete-Gaussian parameter s (in grid units); the noise is s·Λ·(standard discrete Gaussian). */
  readonly scale: number;
  /** The std actually applied, s·Λ ≥ the requested std (relative excess < 2^(1-gridBits)). */
  readonly appliedStd: number;
}

/** A generator of privacy noise. */
export interface NoiseSource {
  readonly mode: NoiseMode;
  /** True unless the source is the seeded test stream. */
  readonly secure: boolean;
  /**
   * `n` noise values with standard deviation `std` (float64). In hardened mode they are exact multiples of
   * `hardenedGrid(std).resolution` (discrete Gaussian on the grid).
   */
  gaussian(n: number, std: number): Float64Array;
  /**
   * `values + noise` in float64. In hardened mode the values are first snapped to the grid (round to nearest
   * multiple of Λ) and the output is an exact multiple of Λ. Non-finite values are refused.
   */
  perturb(values: ArrayLike<number>, std: number): Float64Array;
  /** A plain description for ledgers and logs. */
  describe(): NoiseDescription;
}

/** What a ledger records about the noise. */
export interface NoiseDescription {
  readonly mode: NoiseMode;
  readonly secure: boolean;
  readonly generator: string;
  readonly gridBits?: number;
}

/** Options of {@link createNoiseSource}. */
export interface NoiseOptions {
  /** Seed of the `'insecure-seeded'` mode (required there, refused elsewhere). */
  readonly seed?: Seed;
  /** Must be `true` to obtain the seeded mode under any name other than `'insecure-seeded'`. */
  readonly insecure?: boolean;
  /** Hardened mode: s ∈ (2^(gridBits−1), 2^gridBits] grid units per std; default 22, range [3, 24]. */
  readonly gridBits?: number;
}

/** Default number of grid points per noise std (as a power of two) in hardened mode. */
export const DEFAULT_GRID_BITS = 22;

function assertStd(std: unknown, allowZero: boolean): asserts std is number {
  if (typeof std !== 'number' || !Number.isFinite(std) || std < 0 || (!allowZero && std === 0)) {
    throw new InvalidArgumentError('std', std, allowZero ? 'a finite number >= 0' : 'a finite number > 0');
  }
}

function assertCount(n: unknown): asserts n is number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgumentError('n', n, 'a non-negative integer');
  }
}

function assertFiniteValues(values: ArrayLike<number>): void {
  if (values === null || typeof values !== 'object' || typeof values.length !== 'number') {
    throw new InvalidArgumentError('values', values, 'an array of numbers');
  }
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new InvalidArgumentError(`values[${i}]`, values[i], 'finite (the clipped sum must not contain NaN/Inf)');
    }
  }
}

function assertGridBits(gridBits: unknown): asserts gridBits is number {
  if (typeof gridBits !== 'number' || !Number.isInteger(gridBits) || gridBits < 3 || gridBits > 24) {
    throw new InvalidArgumentError('gridBits', gridBits, 'an integer in [3, 24]');
  }
}

/** Fill `out` with N(0, std²) by the Marsaglia polar method on 53-bit uniforms. */
export function fillGaussian(out: Float64Array, std: number, random: RandomStream): Float64Array {
  const n = out.length;
  let i = 0;
  while (i < n) {
    let u: number;
    let v: number;
    let r2: number;
    do {
      u = 2 * random.uniform() - 1;
      v = 2 * random.uniform() - 1;
      r2 = u * u + v * v;
    } while (r2 >= 1 || r2 === 0);
    const f = std * Math.sqrt((-2 * Math.log(r2)) / r2);
    out[i++] = u * f;
    if (i < n) out[i++] = v * f;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Hardened mode: exact discrete Gaussian with integer arithmetic (CKS 2020).

/**
 * The grid of the hardened mode: Λ = 2^(⌈log₂ std⌉ − gridBits) and s = ⌈std / Λ⌉, so s ∈ (2^(gridBits−1), 2^gridBits]
 * (an integer) and the applied noise std s·Λ exceeds the requested one by less than one grid step.
 */
export function hardenedGrid(std: number, gridBits: number = DEFAULT_GRID_BITS): HardenedGrid {
  assertStd(std, false);
  assertGridBits(gridBits);
  let exponent = Math.ceil(Math.log2(std)) - gridBits;
  let resolution = 2 ** exponent;
  // Guard against log2 rounding: keep std / Λ in (2^(gridBits−1), 2^gridBits].
  while (std / resolution > 2 ** gridBits) resolution = 2 ** ++exponent;
  while (std / resolution <= 2 ** (gridBits - 1)) resolution = 2 ** --exponent;
  const scale = Math.ceil(std / resolution);
  return { resolution, scale, appliedStd: scale * resolution };
}

/**
 * Sensitivity slack of the hardened mode: snapping the clipped sum S to the grid, round(S) = S + e(S) with every
 * |e_i| ≤ Λ/2, so for neighbours S and S' = S + g (‖g‖₂ ≤ C):
 * ‖round(S') − round(S)‖₂ ≤ ‖g‖₂ + ‖e(S') − e(S)‖₂ ≤ C + Λ·√d (each |e_i(S') − e_i(S)| ≤ Λ).
 * Returns the slack Λ·√d (same unit as C) for the grid of noise std `std` and dimension `dim`.
 */
export function sensitivitySlack(std: number, dim: number, gridBits: number = DEFAULT_GRID_BITS): number {
  if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 1) {
    throw new InvalidArgumentError('dim', dim, 'a positive integer');
  }
  return hardenedGrid(std, gridBits).resolution * Math.sqrt(dim);
}

/**
 * The noise multiplier an accountant must use for the hardened mode: (applied std) / (C + Λ√d), where the
 * requested std is noiseMultiplier·l2NormClip. This is the Gaussian mechanism with sensitivity C + Λ√d; the
 * multivariate discrete Gaussian with integer-valued sensitivity satisfies the same concentrated-DP bound as the
 * continuous one and its (ε, δ) curve exceeds the continuous one by at most an additive δ term that CKS 2020
 * bound by ~10·Σ_k exp(−2π²s²·k/(k+1)) per coordinate — below 1e−300 for s ≥ 2^(gridBits−1) ≥ 4, i.e. nil.
 */
export function effectiveNoiseMultiplier(noiseMultiplier: number, l2NormClip: number, dim: number,
  gridBits: number = DEFAULT_GRID_BITS): number {
  if (typeof noiseMultiplier !== 'number' || !Number.isFinite(noiseMultiplier) || noiseMultiplier <= 0) {
    throw new InvalidArgumentError('noiseMultiplier', noiseMultiplier, 'a finite number > 0');
  }
  if (typeof l2NormClip !== 'number' || !Number.isFinite(l2NormClip) || l2NormClip <= 0) {
    throw new InvalidArgumentError('l2NormClip', l2NormClip, 'a finite number > 0');
  }
  const std = noiseMultiplier * l2NormClip;
  const grid = hardenedGrid(std, gridBits);
  return grid.appliedStd / (l2NormClip + sensitivitySlack(std, dim, gridBits));
}

/** Exact Bernoulli(a / b) for integers 0 ≤ a ≤ b ≤ 2^53. */
function bernoulliRatio(random: RandomStream, a: number, b: number): boolean {
  return random.uniformInt(b) < a;
}

/** Exact Bernoulli(exp(−a/b)) for integers 0 ≤ a ≤ b (CKS Algorithm 1, γ ∈ [0, 1]). */
function bernoulliExpSmall(random: RandomStream, a: number, b: number): boolean {
  let k = 1;
  // A_k ~ Bernoulli(γ/k) = Bernoulli(a/b) ∧ Bernoulli(1/k).
  while (bernoulliRatio(random, a, b) && bernoulliRatio(random, 1, k)) k++;
  return (k & 1) === 1;
}

/** Exact Bernoulli(exp(−(q + r/b))) for integers q ≥ 0, 0 ≤ r < b. */
function bernoulliExp(random: RandomStream, q: number, r: number, b: number): boolean {
  for (let i = 0; i < q; i++) if (!bernoulliExpSmall(random, 1, 1)) return false;
  return bernoulliExpSmall(random, r, b);
}

/** Exact discrete Laplace with scale t (integer ≥ 1): P(y) ∝ exp(−|y|/t) (CKS Algorithm 2 with s = 1). */
function discreteLaplace(random: RandomStream, t: number): number {
  for (;;) {
    const u = random.uniformInt(t);
    if (!bernoulliExpSmall(random, u, t)) continue;
    let v = 0;
    while (bernoulliExpSmall(random, 1, 1)) v++;
    const x = u + t * v;
    const negative = (random.uint32() & 1) === 1;
    if (negative && x === 0) continue;
    return negative ? -x : x;
  }
}

const MAX_EXACT_SQUARE_ROOT = 94906265; // floor(sqrt(2^53))

/**
 * Exact discrete Gaussian N_Z(0, s²) for an integer s ≤ 2^24 (CKS Algorithm 3 with t = s): propose Y from the
 * discrete Laplace of scale s, accept with probability exp(−(|Y| − s)² / (2s²)).
 */
export function discreteGaussian(random: RandomStream, s: number): number {
  const den = 2 * s * s; // ≤ 2^49
  for (;;) {
    const y = discreteLaplace(random, s);
    const m = Math.abs(Math.abs(y) - s);
    let q: number;
    let r: number;
    if (m <= MAX_EXACT_SQUARE_ROOT) {
      const num = m * m; // exact: < 2^53
      q = Math.floor(num / den);
      r = num - q * den;
    } else {
      const num = BigInt(m) * BigInt(m);
      const d = BigInt(den);
      q = Number(num / d);
      r = Number(num % d);
    }
    if (bernoulliExp(random, q, r, den)) return y;
  }
}

// ---------------------------------------------------------------------------------------------------------------

class ContinuousGaussianSource implements NoiseSource {
  readonly mode: NoiseMode;
  readonly secure: boolean;
  private readonly random: RandomStream;

  constructor(mode: NoiseMode, random: RandomStream) {
    this.mode = mode;
    this.random = random;
    this.secure = random.secure;
  }

  gaussian(n: number, std: number): Float64Array {
    assertCount(n);
    assertStd(std, true);
    return fillGaussian(new Float64Array(n), std, this.random);
  }

  perturb(values: ArrayLike<number>, std: number): Float64Array {
    assertFiniteValues(values);
    assertStd(std, true);
    const out = fillGaussian(new Float64Array(values.length), std, this.random);
    for (let i = 0; i < out.length; i++) out[i] += values[i];
    return out;
  }

  describe(): NoiseDescription {
    return {
      mode: this.mode,
      secure: this.secure,
      generator: this.secure ? 'node:crypto randomFillSync + polar method (float64)'
        : 'INSECURE seeded AES-256-CTR keystream + polar method (float64)',
    };
  }
}

class HardenedSource implements NoiseSource {
  readonly mode: NoiseMode = 'hardened';
  readonly secure = true;
  private readonly random: RandomStream;
  readonly gridBits: number;

  constructor(random: RandomStream, gridBits: number) {
    this.random = random;
    this.gridBits = gridBits;
  }

  gaussian(n: number, std: number): Float64Array {
    assertCount(n);
    const { resolution, scale } = hardenedGrid(std, this.gridBits);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = discreteGaussian(this.random, scale) * resolution;
    return out;
  }

  perturb(values: ArrayLike<number>, std: number): Float64Array {
    assertFiniteValues(values);
    const { resolution, scale } = hardenedGrid(std, this.gridBits);
    const out = new Float64Array(values.length);
    for (let i = 0; i < out.length; i++) {
      // values[i] / Λ is exact (power of two); the sum of two integers below 2^53 is exact; × Λ is exact.
      const k = Math.round(values[i] / resolution) + discreteGaussian(this.random, scale);
      if (!Number.isSafeInteger(k)) {
        throw new InvalidArgumentError(`values[${i}]`, values[i], `below 2^53 grid steps (Λ = ${resolution})`);
      }
      out[i] = k * resolution;
    }
    return out;
  }

  describe(): NoiseDescription {
    return {
      mode: 'hardened',
      secure: true,
      generator: 'node:crypto; snapped to power-of-two grid + exact discrete Gaussian (Canonne-Kamath-Steinke 2020)',
      gridBits: this.gridBits,
    };
  }
}

/**
 * Create a noise source. `mode` defaults to `'gaussian'`. The deterministic test mode needs a `seed` and is only
 * granted when it is named insecure: mode `'insecure-seeded'`, or mode `'seeded'` with `{ insecure: true }`
 * (otherwise InvalidArgumentError). A seed passed to a secure mode is refused.
 */
export function createNoiseSource(mode: NoiseMode | 'seeded' = 'gaussian', options: NoiseOptions = {}): NoiseSource {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError('options', options, 'an object');
  }
  const seeded = mode === 'insecure-seeded' || mode === 'seeded';
  if (seeded) {
    if (mode !== 'insecure-seeded' && options.insecure !== true) {
      throw new InvalidArgumentError('options.insecure', options.insecure,
        `true to use a seeded (deterministic, non-private) noise mode "${mode}"; or name the mode "insecure-seeded"`);
    }
    if (options.seed === undefined) {
      throw new InvalidArgumentError('options.seed', options.seed, 'given for the insecure-seeded mode');
    }
    return new ContinuousGaussianSource('insecure-seeded',
      createInsecureSeededRandom(options.seed, { insecure: true }));
  }
  if (options.seed !== undefined) {
    throw new InvalidArgumentError('options.seed', options.seed,
      `absent for the secure mode "${String(mode)}" (a seeded stream is only available as mode "insecure-seeded")`);
  }
  if (mode === 'gaussian') return new ContinuousGaussianSource('gaussian', createSecureRandom());
  if (mode === 'hardened') {
    const gridBits = options.gridBits ?? DEFAULT_GRID_BITS;
    assertGridBits(gridBits);
    return new HardenedSource(createSecureRandom(), gridBits);
  }
  throw new InvalidArgumentError('mode', mode, "one of 'gaussian', 'hardened', 'insecure-seeded'");
}

/**
 * Add noise of standard deviation `std` to a float32 gradient sum: the sum is widened to float64, the noise is
 * added in float64 and the result is cast to float32 once. (In hardened mode the float64 result is an exact
 * multiple of Λ; the final float32 cast is a fixed post-processing of it.)
 */
export function addNoise(sum: Float32Array, std: number, source: NoiseSource): Float32Array {
  if (!(sum instanceof Float32Array)) throw new InvalidArgumentError('sum', sum, 'a Float32Array');
  if (source === null || typeof source !== 'object' || typeof source.perturb !== 'function') {
    throw new InvalidArgumentError('source', source, 'a NoiseSource');
  }
  return Float32Array.from(source.perturb(sum, std));
}
