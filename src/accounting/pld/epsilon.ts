/**
 * Pure PLD queries over a run-length encoded step history: ε for δ and δ for ε, certified upper bounds.
 *
 * Pipeline per adjacency direction (remove, add): discretise each distinct (q, σ) step pessimistically
 * (connect the dots, grid h), compose all steps by FFT (each distinct step raised to its count in the
 * frequency domain), read δ(ε) / ε(δ) off the discrete PLD. Add/remove adjacency = the worse direction.
 *
 * Caches (bounded LRU): one-step PLDs per (q, σ, h, direction) and composed PLDs per (history, h), so the
 * budget policy's bisection over step counts and calibration's search over σ reuse work.
 */
import { EwtuneError, InvalidArgumentError } from '../../errors.ts';
import type { DeltaResult, EpsilonResult, StepSegment } from '../types.ts';
import { groupSegments, validateSegment } from '../segments.ts';
import { assertDelta, assertEpsilon } from '../../validate.ts';
import { discretiseStep } from './discretise.ts';
import { composeParts, type ComposedPld, type PldPart } from './compose.ts';
import { pmfDeltaForEpsilon, pmfEpsilonForDelta, type DiscretePld } from './pmf.ts';
import type { PldDirection } from './subsampled-gaussian-loss.ts';

/** Options of the PLD accountant. */
export interface PldOptions {
  /** Grid width h of the discretised privacy loss (default 1e-4, as dp_accounting's PLDAccountant). */
  readonly valueDiscretizationInterval?: number;
}

/**
 * Default width h = 1e-4 of the PLD's privacy-loss grid (pessimistic discretisation): the certified ε of ewtune's
 * PLD accountant, calibration and budget stop, unless `valueDiscretizationInterval` is given.
 */
export const DEFAULT_VALUE_DISCRETIZATION_INTERVAL = 1e-4;
/** Tail mass cut from the composed window (goes to δ), as dp_accounting's default. */
export const TAIL_MASS_TRUNCATION = 1e-15;
/** ln of the per-tail Gaussian mass beyond the one-step discretisation range (dp_accounting's −50). */
export const LOG_MASS_TRUNCATION_BOUND = -50;
/**
 * Largest FFT the accountant will attempt (2^23 complex points: ≈ 128 MB per buffer). Beyond it the grid is
 * coarsened (h doubled until the composition fits): the answer stays a certified upper bound, only looser,
 * and `details.valueDiscretizationInterval` reports the h actually used.
 */
export const MAX_FFT_SIZE = 1 << 23;

/** The composed PLD of a history, both directions (add is null when every step has q = 1: symmetric). */
export interface ComposedHistory {
  readonly remove: ComposedPld;
  readonly add: ComposedPld | null;
  readonly valueDiscretizationInterval: number;
}

/** Diagnostics attached to PLD answers. */
export interface PldDetails {
  /** Grid width h actually used (larger than requested only when the FFT would exceed MAX_FFT_SIZE). */
  readonly valueDiscretizationInterval: number;
  /** Present when h had to be coarsened: the h that was asked for. */
  readonly requestedValueDiscretizationInterval?: number;
  /** Mass of the composed +∞ atoms (discretisation range tails + window truncation), already inside δ. */
  readonly infinityMass: number;
  /** The window-truncation part of infinityMass (τ when the composed window was cut, else 0). */
  readonly truncatedMass: number;
  /** Which adjacency direction gave the larger ε (or δ). */
  readonly dominatingDirection: PldDirection;
  readonly epsilonRemove?: number;
  readonly epsilonAdd?: number;
  readonly deltaRemove?: number;
  readonly deltaAdd?: number;
  readonly fftSize: number;
}

class Lru<V> {
  readonly #map = new Map<string, { value: V; weight: number }>();
  #weight = 0;
  constructor(
    readonly maxEntries: number,
    readonly maxWeight: number,
  ) {}
  get(key: string): V | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    this.#map.delete(key);
    this.#map.set(key, e);
    return e.value;
  }
  set(key: string, value: V, weight: number): void {
    const old = this.#map.get(key);
    if (old) {
      this.#weight -= old.weight;
      this.#map.delete(key);
    }
    this.#map.set(key, { value, weight });
    this.#weight += weight;
    while (this.#map.size > 1 && (this.#map.size > this.maxEntries || this.#weight > this.maxWeight)) {
      const [k, e] = this.#map.entries().next().value as [string, { value: V; weight: number }];
      this.#map.delete(k);
      this.#weight -= e.weight;
    }
  }
  clear(): void {
    this.#map.clear();
    this.#weight = 0;
  }
}

// Weights count float64 entries: ≤ 8M doubles (64 MB) of one-step PLDs, ≤ 16M (128 MB) of composed ones.
const stepCache = new Lru<DiscretePld>(64, 8_000_000);
const composedCache = new Lru<ComposedHistory>(16, 16_000_000);

/** Empty the PLD caches (tests, memory pressure). */
export function clearPldCaches(): void {
  stepCache.clear();
  composedCache.clear();
}

function resolveInterval(options: PldOptions | undefined): number {
  const h = options?.valueDiscretizationInterval ?? DEFAULT_VALUE_DISCRETIZATION_INTERVAL;
  if (typeof h !== 'number' || !Number.isFinite(h) || !(h > 0 && h <= 1)) {
    throw new InvalidArgumentError('valueDiscretizationInterval', h, 'a finite number in (0, 1]');
  }
  return h;
}

function validateSegments(segments: readonly StepSegment[]): void {
  if (!Array.isArray(segments)) throw new InvalidArgumentError('segments', segments, 'an array of step segments');
  for (const s of segments) {
    if (s === null || typeof s !== 'object') throw new InvalidArgumentError('segments', s, 'step segments');
    validateSegment(s);
  }
}

/** One-step PLD (cached per q, σ, h, direction). */
export function stepPld(sampleRate: number, noiseMultiplier: number, direction: PldDirection, h: number): DiscretePld {
  const key = `${sampleRate}|${noiseMultiplier}|${h}|${direction}`;
  let pld = stepCache.get(key);
  if (!pld) {
    pld = discretiseStep({ sampleRate, noiseMultiplier, direction }, h, LOG_MASS_TRUNCATION_BOUND);
    stepCache.set(key, pld, pld.probs.length);
  }
  return pld;
}

/**
 * Compose a (validated, non-empty) history into its discrete PLD, both directions. Cached per
 * (grouped history, h). When the FFT would exceed MAX_FFT_SIZE, h is doubled until it fits (the result's
 * valueDiscretizationInterval says which h was used).
 */
export function composeHistory(segments: readonly StepSegment[], h: number): ComposedHistory {
  let interval = h;
  for (let attempt = 0; ; attempt++) {
    try {
      return composeAt(segments, interval);
    } catch (err) {
      if (!(err instanceof EwtuneError && err.code === 'ERR_PLD_TOO_LARGE') || attempt >= 30) throw err;
      interval *= 2;
    }
  }
}

function composeAt(segments: readonly StepSegment[], h: number): ComposedHistory {
  const groups = groupSegments(segments).sort((a, b) =>
    a.sampleRate !== b.sampleRate ? a.sampleRate - b.sampleRate : a.noiseMultiplier - b.noiseMultiplier,
  );
  const key = `${h}#` + groups.map((g) => `${g.sampleRate}|${g.noiseMultiplier}|${g.count}`).join(';');
  const hit = composedCache.get(key);
  if (hit) return hit;
  const symmetric = groups.every((g) => g.sampleRate === 1);
  const removeParts: PldPart[] = groups.map((g) => ({
    pld: stepPld(g.sampleRate, g.noiseMultiplier, 'remove', h),
    count: g.count,
  }));
  const addParts: PldPart[] | null = symmetric
    ? null
    : groups.map((g) => ({ pld: stepPld(g.sampleRate, g.noiseMultiplier, 'add', h), count: g.count }));
  const [remove, add] = composeParts(removeParts, addParts, TAIL_MASS_TRUNCATION, MAX_FFT_SIZE);
  const out: ComposedHistory = { remove, add, valueDiscretizationInterval: h };
  composedCache.set(key, out, remove.probs.length + (add ? add.probs.length : 0));
  return out;
}

/** A query answered in both directions of a composed history: the larger answer and the details that go with it. */
function queryBothDirections(
  segments: readonly StepSegment[],
  options: PldOptions | undefined,
  names: readonly [string, string],
  query: (pld: DiscretePld) => number,
): { value: number; details: PldDetails & Readonly<Record<string, unknown>> } {
  const h = resolveInterval(options);
  if (segments.length === 0) {
    return { value: 0, details: { valueDiscretizationInterval: h, infinityMass: 0, truncatedMass: 0, dominatingDirection: 'remove', fftSize: 0 } };
  }
  const c = composeHistory(segments, h);
  const usedH = c.valueDiscretizationInterval;
  const remove = query(c.remove);
  const add = c.add ? query(c.add) : remove;
  const addWins = c.add !== null && add > remove;
  const dom = addWins ? c.add! : c.remove;
  return {
    value: Math.max(remove, add),
    details: {
      valueDiscretizationInterval: usedH,
      ...(usedH !== h ? { requestedValueDiscretizationInterval: h } : {}),
      infinityMass: dom.infinityMass,
      truncatedMass: dom.info.truncatedMass,
      dominatingDirection: addWins ? 'add' : 'remove',
      [names[0]]: remove,
      [names[1]]: add,
      fftSize: c.remove.info.fftSize,
    },
  };
}

/**
 * Certified upper bound on ε at `delta` for the history (add/remove adjacency, Poisson-subsampled Gaussian
 * steps). An empty history gives ε = 0. Pure (apart from the caches).
 */
export function pldEpsilon(
  segments: readonly StepSegment[],
  delta: number,
  options?: PldOptions,
): EpsilonResult & { readonly details: PldDetails } {
  validateSegments(segments);
  assertDelta(delta, 'delta');
  const { value, details } = queryBothDirections(segments, options, ['epsilonRemove', 'epsilonAdd'], (pld) => pmfEpsilonForDelta(pld, delta));
  return { accountant: 'pld', kind: 'upper', delta, epsilon: value, details };
}

/** Certified upper bound on δ at `epsilon` (≥ 0) for the history. An empty history gives δ = 0. */
export function pldDelta(
  segments: readonly StepSegment[],
  epsilon: number,
  options?: PldOptions,
): DeltaResult & { readonly details: PldDetails } {
  validateSegments(segments);
  assertEpsilon(epsilon, 'epsilon', true);
  const { value, details } = queryBothDirections(segments, options, ['deltaRemove', 'deltaAdd'], (pld) => pmfDeltaForEpsilon(pld, epsilon));
  return { accountant: 'pld', kind: 'upper', epsilon, delta: value, details };
}
