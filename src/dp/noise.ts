/**
 * Noise for the DP step, from `node:crypto` only (never the JavaScript engine's PRNG, never TF.js random ops).
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
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
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
  /** The noise mode. */
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
  /**
   * Optional: {@link perturb} written into `out` (length `values.length`) instead of a new array; returns `out`.
   * Lets a caller reuse one scratch buffer step after step (a fresh multi-MiB array costs page faults).
   */
  perturbInto?(values: ArrayLike<number>, std: number, out: Float64Array): Float64Array;
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
  /**
   * Gaussian mode: draw large requests ahead of time on a worker thread (default true; the main thread then only
   * scales and copies). With `false` all noise is drawn on the calling thread.
   */
  readonly prefetch?: boolean;
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

/** values.length, after the same argument check as assertFiniteValues (which perturbInto then runs in full). */
function lengthOf(values: ArrayLike<number>): number {
  if (values === null || typeof values !== 'object' || typeof values.length !== 'number') assertFiniteValues(values);
  return values.length;
}

/** `out` must be a Float64Array of `length` elements (call after assertFiniteValues). */
function assertOutput(out: unknown, length: number): asserts out is Float64Array {
  if (!(out instanceof Float64Array) || out.length !== length) {
    throw new InvalidArgumentError('out', out, `a Float64Array of length ${length}`);
  }
}

function assertGridBits(gridBits: unknown): asserts gridBits is number {
  if (typeof gridBits !== 'number' || !Number.isInteger(gridBits) || gridBits < 3 || gridBits > 24) {
    throw new InvalidArgumentError('gridBits', gridBits, 'an integer in [3, 24]');
  }
}

/**
 * Fill `out` with N(0, std²) by the Marsaglia polar method on 53-bit uniforms. The words are read straight from
 * the stream's buffer (same draws, same order as `2·random.uniform() − 1` twice per attempt: u = (hi·2²⁶ + lo)·2⁻⁵³
 * with hi = w₀ >>> 5, lo = w₁ >>> 6), only without a method call per word.
 */
export function fillGaussian(out: Float64Array, std: number, random: RandomStream): Float64Array {
  const n = out.length;
  const words = random.words;
  const end = words.length;
  let pos = random.position;
  let i = 0;
  while (i < n) {
    let u: number;
    let v: number;
    let r2: number;
    do {
      if (pos >= end) { random.refill(); pos = 0; }
      const a = words[pos++] >>> 5;
      if (pos >= end) { random.refill(); pos = 0; }
      const b = words[pos++] >>> 6;
      if (pos >= end) { random.refill(); pos = 0; }
      const c = words[pos++] >>> 5;
      if (pos >= end) { random.refill(); pos = 0; }
      const d = words[pos++] >>> 6;
      u = 2 * ((a * TWO_POW_26 + b) * INV_TWO_POW_53) - 1;
      v = 2 * ((c * TWO_POW_26 + d) * INV_TWO_POW_53) - 1;
      r2 = u * u + v * v;
    } while (r2 >= 1 || r2 === 0);
    const f = std * Math.sqrt((-2 * Math.log(r2)) / r2);
    out[i++] = u * f;
    if (i < n) out[i++] = v * f;
  }
  random.position = pos;
  return out;
}

const TWO_POW_26 = 67108864;
const INV_TWO_POW_53 = 1 / 9007199254740992;

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

// ---------------------------------------------------------------------------------------------------------------
// Secure gaussian mode: standard normals drawn ahead of time by worker threads.

/** Standard normals per chunk of the prefetch ring (512 KiB of float64). */
const PREFETCH_CHUNK = 65536;
/** Chunks in the ring per worker (4 MiB each: more than one step of a ~500k-parameter model). */
const PREFETCH_CHUNKS_PER_WORKER = 8;
/** Requests smaller than this are drawn on the calling thread (no worker is started for them); 4096 lets the ring
 * serve the 128×128 kernels of a small transformer too, not only the largest variables. */
const PREFETCH_MIN = 4096;
/** Most prefetch workers (beyond this, node:crypto and memory bandwidth, not cores, limit the rate). */
const MAX_PREFETCH_WORKERS = 8;

/**
 * Number of prefetch workers: `EWTUNE_NOISE_WORKERS` (an integer in [1, 8]) or availableParallelism() − 1, at least 1
 * and at most 4 (the calling thread draws too whenever the ring runs dry, so one core per worker is the useful most).
 */
export function prefetchWorkerCount(): number {
  const raw = process.env.EWTUNE_NOISE_WORKERS;
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > MAX_PREFETCH_WORKERS) {
      throw new InvalidArgumentError('EWTUNE_NOISE_WORKERS', raw, `an integer in [1, ${MAX_PREFETCH_WORKERS}]`);
    }
    return n;
  }
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

/**
 * The worker's source: the same fillGaussian (its compiled text) on its own node:crypto RandomStream equivalent,
 * filling its chunks (first, first + stride, …) of the ring with N(0, 1) whenever the main thread has emptied them
 * (flag 0 = empty, 1 = full).
 */
function prefetchWorkerSource(): string {
  return `'use strict';
const { workerData } = require('node:worker_threads');
const { randomFillSync } = require('node:crypto');
const TWO_POW_26 = ${TWO_POW_26};
const INV_TWO_POW_53 = 1 / ${2 ** 53};
const fillGaussian = ${fillGaussian.toString()};
const words = new Uint32Array(${2 ** 18});
const bytes = new Uint8Array(words.buffer);
const random = { words, position: words.length, refill() { randomFillSync(bytes); this.position = 0; } };
const { values, flags, chunk, chunks, first, stride } = workerData;
const data = new Float64Array(values);
const state = new Int32Array(flags);
for (let j = first; ; j = j + stride < chunks ? j + stride : first) {
  while (Atomics.load(state, j) !== 0) Atomics.wait(state, j, 1);
  fillGaussian(data.subarray(j * chunk, (j + 1) * chunk), 1, random);
  Atomics.store(state, j, 1);
  Atomics.notify(state, j);
}
`;
}

/**
 * A ring of standard normals in shared memory, refilled by W worker threads (node:crypto there too; worker k fills
 * chunks k, k + W, …), so that the main thread's cost of noise is mostly a copy and a multiply while the sampling
 * runs on other cores. Started on the first large request. The calling thread never waits: when the next chunk is
 * not full yet it draws that part itself from its own node:crypto stream, so the rate is the workers' plus its own
 * and a stalled or failed worker costs nothing but speed. Each ring value is handed out once (its chunk is zeroed
 * before it is released for refilling).
 *
 * Distribution (why mixing sources is sound): every output is std·z for a z that is a fresh N(0, 1) float64 draw of
 * the same polar-method code on node:crypto words, used once. Which source supplies a position depends only on
 * timing (whether a chunk is full), and a chunk's fill time is independent of the values it holds — in rejection
 * sampling the accepted pairs are independent of how many proposals were rejected — so the outputs are i.i.d.
 * N(0, std²) (in the float64 sense of fillGaussian) exactly as with a single thread.
 */
class GaussianPrefetcher {
  private workers: Worker[] = [];
  private failed = false;
  private readonly workerCount: number;
  private readonly chunks: number;
  private readonly data: Float64Array;
  private readonly state: Int32Array;
  private chunk = 0;
  private offset = 0;

  constructor(workerCount: number) {
    this.workerCount = workerCount;
    this.chunks = PREFETCH_CHUNKS_PER_WORKER * workerCount;
    this.data = new Float64Array(new SharedArrayBuffer(PREFETCH_CHUNK * this.chunks * 8));
    this.state = new Int32Array(new SharedArrayBuffer(this.chunks * 4));
  }

  /** Whether requests can be served (false once a worker failed). */
  get available(): boolean {
    return !this.failed;
  }

  /** Number of worker threads. */
  get size(): number {
    return this.workerCount;
  }

  private start(): boolean {
    if (this.workers.length > 0) return true;
    try {
      for (let k = 0; k < this.workerCount; k++) {
        const worker = new Worker(prefetchWorkerSource(), {
          eval: true,
          workerData: {
            values: this.data.buffer, flags: this.state.buffer, chunk: PREFETCH_CHUNK, chunks: this.chunks,
            first: k, stride: this.workerCount,
          },
        });
        worker.unref();
        worker.on('error', () => { this.failed = true; });
        worker.on('exit', () => { this.failed = true; });
        this.workers.push(worker);
      }
      return true;
    } catch {
      this.failed = true;
      return false;
    }
  }

  /**
   * Blocks until the next ⌈values / chunk⌉ chunks of the ring (at most all of them) are full, or `timeoutMs` passes;
   * true when they are. For tests and warm-up: a wait on the ring's own flags, not a guess of how long sampling takes.
   */
  waitFull(values: number, timeoutMs: number): boolean {
    if (this.failed || !this.start()) return false;
    const deadline = performance.now() + timeoutMs;
    const count = Math.min(this.chunks, Math.ceil(values / PREFETCH_CHUNK));
    for (let c = 0; c < count; c++) {
      const j = (this.chunk + c) % this.chunks;
      while (Atomics.load(this.state, j) !== 1) {
        const left = deadline - performance.now();
        if (left <= 0 || this.failed) return false;
        Atomics.wait(this.state, j, 0, Math.min(left, 100));
      }
    }
    return true;
  }

  /**
   * Writes std·z for fresh standard normals z into out[from..]: from full ring chunks, and through `drawHere` (the
   * calling thread's own stream) wherever the next chunk is not full yet. Returns the index reached (out.length
   * unless a worker failed — the caller draws the rest itself).
   */
  fill(out: Float64Array, std: number, drawHere: (part: Float64Array) => void, from = 0): number {
    if (this.failed || !this.start()) return from;
    let i = from;
    const n = out.length;
    while (i < n) {
      if (this.failed) return i;
      const j = this.chunk;
      if (Atomics.load(this.state, j) !== 1) {
        // Not full yet: draw one chunk's worth here instead of waiting (the ring keeps filling meanwhile).
        const take = Math.min(n - i, PREFETCH_CHUNK);
        drawHere(out.subarray(i, i + take));
        i += take;
        continue;
      }
      const base = j * PREFETCH_CHUNK;
      const take = Math.min(n - i, PREFETCH_CHUNK - this.offset);
      const src = this.data;
      for (let k = 0, at = base + this.offset; k < take; k++, at++) {
        out[i + k] = std * src[at];
        src[at] = 0;
      }
      i += take;
      prefetchedValues += take;
      this.offset += take;
      if (this.offset === PREFETCH_CHUNK) {
        this.offset = 0;
        this.chunk = (j + 1) % this.chunks;
        Atomics.store(this.state, j, 0);
        Atomics.notify(this.state, j);
      }
    }
    return i;
  }
}

let prefetcherInstance: GaussianPrefetcher | undefined;
let prefetchedValues = 0;

/** How many noise values the prefetch workers have served in this process (diagnostics and tests). */
export function prefetchedNoiseCount(): number {
  return prefetchedValues;
}

/**
 * Starts the shared prefetch workers and waits until at least `values` standard normals (capped at the ring's size)
 * are ready, at most `timeoutMs` (default 30 s); true when they are. Optional: a training loop needs no call (the
 * first large request starts the workers); useful before a benchmark or in a test that checks the workers serve.
 */
export function prefetchNoise(values: number, timeoutMs = 30_000): boolean {
  assertCount(values);
  return sharedPrefetcher().waitFull(values, timeoutMs);
}

/** The shared prefetch ring's capacity in values (its worker count × 8 chunks of 65,536). */
export function prefetchCapacity(): number {
  return sharedPrefetcher().size * PREFETCH_CHUNKS_PER_WORKER * PREFETCH_CHUNK;
}

/**
 * One prefetch ring (and its worker threads) per process, shared by every secure Gaussian source: its values are
 * independent N(0, 1) draws from node:crypto, each handed out once, so sharing changes no distribution, and a
 * training loop that creates a noise source per call does not leave threads behind each time.
 */
function sharedPrefetcher(): GaussianPrefetcher {
  prefetcherInstance ??= new GaussianPrefetcher(prefetchWorkerCount());
  return prefetcherInstance;
}

class ContinuousGaussianSource implements NoiseSource {
  readonly mode: NoiseMode;
  readonly secure: boolean;
  private readonly random: RandomStream;
  private readonly prefetcher: GaussianPrefetcher | null;

  constructor(mode: NoiseMode, random: RandomStream, prefetch = false) {
    this.mode = mode;
    this.random = random;
    this.secure = random.secure;
    this.prefetcher = prefetch ? sharedPrefetcher() : null;
  }

  /** N(0, std²) into `out`: large requests from the prefetch worker (if any), the rest on this thread. */
  private draw(out: Float64Array, std: number): Float64Array {
    let from = 0;
    if (this.prefetcher !== null && this.prefetcher.available && out.length >= PREFETCH_MIN) {
      from = this.prefetcher.fill(out, std, (part) => fillGaussian(part, std, this.random));
    }
    if (from < out.length) fillGaussian(from === 0 ? out : out.subarray(from), std, this.random);
    return out;
  }

  gaussian(n: number, std: number): Float64Array {
    assertCount(n);
    assertStd(std, true);
    return this.draw(new Float64Array(n), std);
  }

  perturb(values: ArrayLike<number>, std: number): Float64Array {
    return this.perturbInto(values, std, new Float64Array(lengthOf(values)));
  }

  perturbInto(values: ArrayLike<number>, std: number, out: Float64Array): Float64Array {
    assertFiniteValues(values);
    assertStd(std, true);
    assertOutput(out, values.length);
    this.draw(out, std);
    for (let i = 0; i < out.length; i++) out[i] += values[i];
    return out;
  }

  describe(): NoiseDescription {
    return {
      mode: this.mode,
      secure: this.secure,
      generator: this.secure ? `node:crypto randomFillSync + polar method (float64)${this.prefetcher ? `, prefetched by ${this.prefetcher.size} worker thread${this.prefetcher.size === 1 ? '' : 's'} (calling thread draws too when the ring is empty)` : ''}`
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
    return this.perturbInto(values, std, new Float64Array(lengthOf(values)));
  }

  perturbInto(values: ArrayLike<number>, std: number, out: Float64Array): Float64Array {
    assertFiniteValues(values);
    assertOutput(out, values.length);
    const { resolution, scale } = hardenedGrid(std, this.gridBits);
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
  if (mode === 'gaussian') return new ContinuousGaussianSource('gaussian', createSecureRandom(), options.prefetch ?? true);
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
