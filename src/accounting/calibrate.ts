/**
 * Noise calibration: the smallest noise multiplier σ whose ε (by the chosen accountant) is ≤ a target.
 *
 * Contract. Let ε(·) be the chosen accountant at its final settings (for PLD: the requested grid width
 * `valueDiscretizationInterval`, default 1e-4 — the same ε that `certifiedEpsilon`/the PLD accountant report).
 * The returned σ was evaluated with ε(·) and ε(σ) ≤ targetEpsilon — never above it. Unless σ =
 * minNoiseMultiplier, a point σ' with σ·(1 − relativeTolerance) ≤ σ' < σ was also evaluated with ε(·) and has
 * ε(σ') > targetEpsilon (returned as `lowerNoiseMultiplier`); an ε that is ∞/NaN counts as above the target.
 * "Smallest to 1e-4 relative" means exactly this pair. ε is non-increasing in σ for the certified
 * accountants, so every σ'' ≤ σ' also misses the target: σ·(1 − relativeTolerance) (hence σ·(1 − 2e-4) at the
 * default) is infeasible. The Edgeworth estimate need not be monotone: the returned σ still meets the target
 * (it was evaluated), but may not be the smallest.
 *
 * Search (all accountants): bracket [lo, hi] with ε(hi) ≤ target and ε(lo) > target (both evaluated, found
 * by doubling/halving from σ = 1), narrowed by a safeguarded secant step in (log σ, log ε) with paired probes
 * x·(1 ∓ tol/2) (falling back to bisection), until hi − lo ≤ relativeTolerance·hi; returns hi.
 *
 * PLD speed-up (the cost of one PLD ε is dominated by an FFT whose length scales with 1/h): the search above
 * runs on the coarse grid 16h (≈ 1/16 of the FFT; on nested grids the coarse connect-the-dots chord lies above
 * the fine one, so the coarse root is a slight over-estimate). A cheap model of the final-grid log ε — Richardson
 * extrapolation from the 16h and 8h grids, the pessimistic discretisation error being O(h²) — predicts the
 * final-grid root x* from the coarse root and slope d log ε / d log σ. The final grid is then evaluated at
 * x*·(1 ± PROBE_MARGIN·tol) — two evaluations when the prediction is good — and the loop keeps re-predicting
 * (secant on final-grid points; the model's slope when only one is known) until it holds the evaluated pair of
 * the contract, falling back to the plain search on the final grid after 8 evaluations. Coarse results only
 * choose where to evaluate: σ and σ' are always evaluated on the final grid, so the contract does not depend on
 * any property of the coarse grids.
 *
 * API for estimates: accountant 'pld' (default) and 'rdp' are certified. Calibrating by 'edgeworth' or 'gdp'
 * requires `allowEstimate: true` (otherwise InvalidArgumentError naming `allowEstimate`), and the result then
 * also carries `certifiedEpsilon`: the PLD upper bound at the returned σ (which may exceed the target).
 */
import { InvalidArgumentError, UnreachableTargetError } from '../errors.ts';
import { assertDelta, assertEpsilon, assertFiniteNumber, assertSampleRate, assertSteps } from '../validate.ts';
import { assertAccountantName, createAccountant, isCertified, type AccountantFactoryOptions } from './factory.ts';
import { DEFAULT_VALUE_DISCRETIZATION_INTERVAL } from './pld/epsilon.ts';
import type { AccountantName, BoundKind, EpsilonResult } from './types.ts';

/**
 * Options of {@link calibrateNoiseMultiplier}: the target (ε, δ), the sample rate and the length of the run, the
 * accountant and the search settings (defaults below).
 */
export interface CalibrationOptions {
  /** Target ε > 0 (natural-log units): the returned σ has ε(σ) ≤ targetEpsilon. */
  readonly targetEpsilon: number;
  /** δ ∈ (0, 1) at which ε is computed. */
  readonly delta: number;
  /** Poisson sample rate q ∈ (0, 1] of every step. */
  readonly sampleRate: number;
  /** Number of steps; give exactly one of `steps` and `epochs`. */
  readonly steps?: number;
  /** Epochs; steps = ceil(epochs / sampleRate). */
  readonly epochs?: number;
  /** Default 'pld'. 'edgeworth' and 'gdp' need `allowEstimate: true`. */
  readonly accountant?: AccountantName;
  /** Must be true to calibrate by an estimate (edgeworth, gdp). */
  readonly allowEstimate?: boolean;
  /** Edgeworth order (1 default, 2). */
  readonly order?: 1 | 2;
  /** PLD grid width (default 1e-4); also used for `certifiedEpsilon`. */
  readonly valueDiscretizationInterval?: number;
  /** RDP orders (default Opacus'). */
  readonly orders?: readonly number[];
  /** Relative width of the final bracket on σ (default 1e-4). */
  readonly relativeTolerance?: number;
  /** Lower end of the σ search range (default 0.1). */
  readonly minNoiseMultiplier?: number;
  /** Upper end of the σ search range (default 1000). */
  readonly maxNoiseMultiplier?: number;
  /**
   * With an estimate accountant: also compute `certifiedEpsilon` (PLD at the returned σ). Default true; false only
   * for a caller that certifies the σ itself (e.g. a sweep that certifies the final choice once).
   */
  readonly reportCertified?: boolean;
}

/**
 * The result of {@link calibrateNoiseMultiplier}: σ, its ε by the accountant used (and what kind of number it is), the
 * inputs it was calibrated for, and the search's evidence (`lowerNoiseMultiplier`, `iterations`).
 */
export interface CalibrationResult {
  /** The calibrated noise multiplier σ (ε(σ) ≤ targetEpsilon by `accountant`). */
  readonly noiseMultiplier: number;
  /** ε at σ by `accountant`. */
  readonly epsilon: number;
  /** What `epsilon` is: 'upper' for the certified accountants (pld, rdp), 'estimate' for edgeworth and gdp. */
  readonly kind: BoundKind;
  /** The accountant σ was calibrated by. */
  readonly accountant: AccountantName;
  /** The target ε of the call. */
  readonly targetEpsilon: number;
  /** The δ of the call. */
  readonly delta: number;
  /** The sample rate q of the call. */
  readonly sampleRate: number;
  /** Steps the calibration composed (from `steps`, or ⌈epochs / sampleRate⌉). */
  readonly steps: number;
  /** The accountant's full answer at σ (details included). */
  readonly result: EpsilonResult;
  /** When calibrated by an estimate: the certified PLD ε at σ. */
  readonly certifiedEpsilon?: EpsilonResult;
  /**
   * An evaluated σ' in [σ·(1 − relativeTolerance), σ) whose ε (same accountant, same final grid) exceeds the
   * target; absent when σ = minNoiseMultiplier.
   */
  readonly lowerNoiseMultiplier?: number;
  /** Number of ε evaluations (for PLD: coarse-grid and final-grid ones together). */
  readonly iterations: number;
  /** PLD: how many of `iterations` were on the final grid (the expensive ones). */
  readonly finalGridIterations?: number;
}

export const DEFAULT_RELATIVE_TOLERANCE = 1e-4;
export const DEFAULT_MIN_NOISE_MULTIPLIER = 0.1;
export const DEFAULT_MAX_NOISE_MULTIPLIER = 1000;

/** Resolve steps from `steps` or `epochs` (exactly one must be given). Throws InvalidArgumentError. */
export function resolveSteps(sampleRate: number, steps: number | undefined, epochs: number | undefined): number {
  if (steps !== undefined && epochs !== undefined) {
    throw new InvalidArgumentError('epochs', epochs, 'absent when steps is given (give exactly one of steps, epochs)');
  }
  if (steps !== undefined) {
    assertSteps(steps);
    return steps;
  }
  if (epochs === undefined) throw new InvalidArgumentError('steps', steps, 'a positive integer (or give epochs)');
  assertFiniteNumber('epochs', epochs);
  if (!(epochs > 0)) throw new InvalidArgumentError('epochs', epochs, 'a finite number > 0');
  const resolved = Math.ceil(epochs / sampleRate - 1e-9);
  assertSteps(resolved, 'steps (from epochs / sampleRate)');
  return resolved;
}

/** Coarse grid = COARSE_GRID_FACTOR·h (and h·COARSE_GRID_FACTOR/2 for the Richardson step); a power of 2 so grids nest. */
const COARSE_GRID_FACTOR = 16;
/** Use the coarse PLD phase only when the coarse grid stays this fine (else final-grid evaluations are cheap). */
const MAX_COARSE_GRID = 0.02;
/** Final-grid probes sit at x*·(1 ± PROBE_MARGIN·tol) around the predicted root x*. */
const PROBE_MARGIN = 0.2;
/** Final-grid evaluations the predictor may use before falling back to the plain search. */
const MAX_PREDICTED_PROBES = 8;

/** One evaluated point of the search. */
interface Probe {
  readonly x: number;
  readonly r: EpsilonResult;
}

/** End state: `hi` meets the target; `lo` misses it and lo.x ≥ hi.x·(1 − tol), or `lo` is null and hi.x = min. */
interface Bracket {
  readonly hi: Probe;
  readonly lo: Probe | null;
}

interface SearchContext {
  readonly evaluate: (noiseMultiplier: number) => EpsilonResult;
  readonly meets: (r: EpsilonResult) => boolean;
  readonly targetEpsilon: number;
  readonly min: number;
  readonly max: number;
  readonly tol: number;
  /** Called when ε at `max` misses the target. */
  readonly unreachable: (atMax: Probe) => never;
}

/**
 * Bracket-and-secant search (see the module comment), optionally seeded with evaluated points (hi meets the
 * target, lo does not, lo.x < hi.x). Without seeds it starts at σ = 1 (clamped to [min, max]).
 */
function bracketSearch(ctx: SearchContext, seed: { hi?: Probe | null; lo?: Probe | null } = {}): Bracket {
  const { meets, min, max, tol } = ctx;
  const probe = (x: number): Probe => ({ x, r: ctx.evaluate(x) });
  let hi = seed.hi ?? null;
  let lo = seed.lo ?? null;
  if (!hi && !lo) {
    const p = probe(Math.min(Math.max(1, min), max));
    if (meets(p.r)) hi = p;
    else lo = p;
  }
  while (!lo) {
    const h = hi as Probe;
    if (h.x <= min) return { hi: h, lo: null };
    const p = probe(Math.max(h.x / 2, min));
    if (meets(p.r)) hi = p;
    else lo = p;
  }
  while (!hi) {
    if (lo.x >= max) ctx.unreachable(lo);
    const p = probe(Math.min(lo.x * 2, max));
    if (meets(p.r)) hi = p;
    else lo = p;
  }
  // Safeguarded secant in (log σ, log ε) with paired probes; invariant: meets(hi), !meets(lo).
  // Each interpolated point x is followed by a probe at x·(1 ∓ tol/2) on the other side of the target, which
  // closes the bracket as soon as the interpolation lands within tol/2 of the root. A round that does not halve
  // the bracket is followed by a plain bisection step, so convergence is never slower than bisection's.
  const logTarget = Math.log(ctx.targetEpsilon);
  const half = 0.5 * tol;
  let bisectNext = false;
  while (lo.x < hi.x * (1 - tol)) {
    const width = hi.x - lo.x;
    let x = Math.sqrt(lo.x * hi.x);
    const gLo = Math.log(lo.r.epsilon) - logTarget;
    const gHi = Math.log(hi.r.epsilon) - logTarget;
    if (!bisectNext && Number.isFinite(gLo) && Number.isFinite(gHi) && gLo > gHi) {
      const t = gLo / (gLo - gHi);
      const logX = Math.log(lo.x) + t * (Math.log(hi.x) - Math.log(lo.x));
      x = Math.min(Math.max(Math.exp(logX), lo.x + 1e-3 * width), hi.x - 1e-3 * width);
    }
    const p = probe(x);
    if (meets(p.r)) {
      hi = p;
      const y = x * (1 - half);
      if (!bisectNext && y > lo.x) {
        const py = probe(y);
        if (meets(py.r)) hi = py;
        else lo = py;
      }
    } else {
      lo = p;
      const y = x * (1 + half);
      if (!bisectNext && y < hi.x) {
        const py = probe(y);
        if (meets(py.r)) hi = py;
        else lo = py;
      }
    }
    bisectNext = !bisectNext && hi.x - lo.x > 0.5 * width;
  }
  return { hi, lo };
}

/** d log ε / d log σ through two probes (NaN unless both ε are finite and positive and the σ differ). */
function logSlope(a: Probe, b: Probe): number {
  const s = (Math.log(a.r.epsilon) - Math.log(b.r.epsilon)) / (Math.log(a.x) - Math.log(b.x));
  return Number.isFinite(s) ? s : Number.NaN;
}

const hasLogEpsilon = (p: Probe): boolean => Number.isFinite(p.r.epsilon) && p.r.epsilon > 0;

/**
 * Final-grid refinement from a predicted root `x0` and a slope guess `slope` = d log ε / d log σ (< 0):
 * probe x*·(1 + m) (expected to meet the target) and x*·(1 − m) (expected to miss it), m = PROBE_MARGIN·tol,
 * re-predicting x* from the final-grid points after every probe: by secant across the bracket once both sides
 * are known; else from the final-grid point nearest the target, with the secant slope of two final-grid
 * points, or (one point only) the slope of the cheap model `modelLogEpsilon` between that point and the
 * predicted root when the step is longer than 2·tol. A probe on the wrong side doubles m for the next one.
 * Falls back to `bracketSearch` after MAX_PREDICTED_PROBES probes.
 */
function predictedSearch(ctx: SearchContext, x0: number, slope: number, modelLogEpsilon?: (x: number) => number): Bracket {
  const { meets, min, max, tol } = ctx;
  const logTarget = Math.log(ctx.targetEpsilon);
  const seen: Probe[] = [];
  let hi: Probe | null = null;
  let lo: Probe | null = null;
  let misses = 0;
  const oneSided = (): number => {
    const finite = seen.filter(hasLogEpsilon);
    if (finite.length === 0) {
      if (seen.length === 0) return x0;
      // Only ∞ answers so far (all below the root): step up.
      return (lo as Probe).x * (1 + 0.05 * 2 ** misses);
    }
    finite.sort((a, b) => Math.abs(Math.log(a.r.epsilon) - logTarget) - Math.abs(Math.log(b.r.epsilon) - logTarget));
    const anchor = finite[0];
    const gap = logTarget - Math.log(anchor.r.epsilon);
    let s = finite.length >= 2 ? logSlope(finite[0], finite[1]) : Number.NaN;
    if (!(s < 0)) {
      s = slope;
      if (modelLogEpsilon && Math.abs(gap / s) > 2 * tol) {
        const guess = anchor.x * Math.exp(gap / s);
        const sm = (modelLogEpsilon(guess) - modelLogEpsilon(anchor.x)) / (Math.log(guess) - Math.log(anchor.x));
        if (sm < 0 && Number.isFinite(sm)) s = sm;
      }
    }
    return anchor.x * Math.exp(gap / s);
  };
  for (let n = 0; ; n++) {
    if (hi && lo && lo.x >= hi.x * (1 - tol)) return { hi, lo };
    if (hi && !lo && hi.x <= min) return { hi, lo: null };
    if (lo && !hi && lo.x >= max) ctx.unreachable(lo);
    if (n >= MAX_PREDICTED_PROBES) return bracketSearch(ctx, { hi, lo });
    const m = PROBE_MARGIN * tol * 2 ** Math.min(misses, 20);
    let x: number;
    let expectMeets: boolean;
    if (hi && lo) {
      const width = hi.x - lo.x;
      let xStar = Math.sqrt(lo.x * hi.x);
      if (hasLogEpsilon(lo) && hasLogEpsilon(hi) && lo.r.epsilon > hi.r.epsilon) {
        const t = (Math.log(lo.r.epsilon) - logTarget) / (Math.log(lo.r.epsilon) - Math.log(hi.r.epsilon));
        xStar = Math.exp(Math.log(lo.x) + t * (Math.log(hi.x) - Math.log(lo.x)));
      }
      const a = xStar * (1 - m);
      const b = xStar * (1 + m);
      // Probe the side that closes the bracket at once if it lands as expected; else the upper one first.
      if (a >= hi.x * (1 - tol)) {
        x = a;
        expectMeets = false;
      } else {
        x = b;
        expectMeets = true;
      }
      x = Math.min(Math.max(x, lo.x + 1e-3 * width), hi.x - 1e-3 * width);
    } else if (!hi) {
      const xStar = oneSided();
      x = Math.min(Math.max(xStar * (1 + m), lo ? lo.x * (1 + m) : 0), max);
      expectMeets = true;
    } else {
      const xStar = oneSided();
      x = Math.max(Math.min(xStar * (1 - m), hi.x * (1 - m)), min);
      expectMeets = false;
    }
    if (!(Number.isFinite(x) && x > 0)) return bracketSearch(ctx, { hi, lo });
    const p: Probe = { x, r: ctx.evaluate(x) };
    seen.push(p);
    const ok = meets(p.r);
    if (ok) {
      if (!hi || x < hi.x) hi = p;
    } else if (!lo || x > lo.x) lo = p;
    misses = ok === expectMeets ? 0 : misses + 1;
  }
}

/** Raised inside the coarse phase when the coarse grid cannot reach the target (the final grid decides). */
class CoarseUnreachable extends Error {}

/**
 * PLD calibration with a coarse-grid phase (see the module comment). `fine` evaluates on the final grid h;
 * only its answers decide the returned bracket.
 */
function pldSearch(fine: SearchContext, h: number, coarseEvaluate: (noiseMultiplier: number, interval: number) => EpsilonResult): Bracket {
  const F = COARSE_GRID_FACTOR;
  const hCoarse = F * h;
  const hMedium = (F / 2) * h;
  const coarse: SearchContext = {
    ...fine,
    evaluate: (x) => coarseEvaluate(x, hCoarse),
    unreachable: () => {
      throw new CoarseUnreachable();
    },
  };
  let c: Bracket;
  try {
    c = bracketSearch(coarse);
  } catch (err) {
    if (!(err instanceof CoarseUnreachable)) throw err;
    const atMax: Probe = { x: fine.max, r: fine.evaluate(fine.max) };
    if (!fine.meets(atMax.r)) fine.unreachable(atMax);
    return bracketSearch(fine, { hi: atMax });
  }
  if (!c.lo) {
    // The coarse grid meets the target at min already; so does the final grid unless the grids disagree.
    const atMin: Probe = { x: fine.min, r: fine.evaluate(fine.min) };
    if (fine.meets(atMin.r)) return { hi: atMin, lo: null };
    return bracketSearch(fine, { lo: atMin });
  }
  const anchor = c.hi;
  // Model of log ε on the final grid: Richardson extrapolation ε(k·h) ≈ ε₀ + c·k²h² from k = F and F/2 to k = 1
  // (NaN when unusable). Cheap: two coarse-grid evaluations per σ, cached.
  const coarseAt = new Map<number, number>([[anchor.x, anchor.r.epsilon]]);
  const modelCache = new Map<number, number>();
  const modelLogEpsilon = (x: number): number => {
    const cached = modelCache.get(x);
    if (cached !== undefined) return cached;
    let ec = coarseAt.get(x);
    if (ec === undefined) ec = coarseEvaluate(x, hCoarse).epsilon;
    const em = coarseEvaluate(x, hMedium).epsilon;
    let v = Number.NaN;
    if (Number.isFinite(em) && em > 0) {
      const extrapolated = em - ((ec - em) / (F * F - (F * F) / 4)) * ((F * F) / 4 - 1);
      v = Math.log(Number.isFinite(extrapolated) && extrapolated > 0 ? extrapolated : em);
    }
    modelCache.set(x, v);
    return v;
  };
  let slope = logSlope(c.lo, c.hi);
  if (!(slope < 0)) {
    const y = anchor.x * 0.98;
    slope = logSlope({ x: y, r: coarse.evaluate(y) }, anchor);
    if (!(slope < 0)) slope = -1;
  }
  const predicted = hasLogEpsilon(anchor) ? modelLogEpsilon(anchor.x) : Number.NaN;
  const x0 = Number.isFinite(predicted) ? anchor.x * Math.exp((Math.log(fine.targetEpsilon) - predicted) / slope) : anchor.x;
  return predictedSearch(fine, Math.min(Math.max(x0, fine.min), fine.max), slope, modelLogEpsilon);
}

/** Calibrate σ; see the module comment for the guarantee. */
export function calibrateNoiseMultiplier(options: CalibrationOptions): CalibrationResult {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', options, 'an object');
  const { targetEpsilon, delta, sampleRate } = options;
  assertEpsilon(targetEpsilon, 'targetEpsilon');
  assertDelta(delta);
  assertSampleRate(sampleRate);
  const steps = resolveSteps(sampleRate, options.steps, options.epochs);
  const accountant = options.accountant ?? 'pld';
  assertAccountantName(accountant);
  if (!isCertified(accountant) && options.allowEstimate !== true) {
    throw new InvalidArgumentError(
      'allowEstimate',
      options.allowEstimate,
      `true to calibrate by the '${accountant}' estimate (its ε is not a guarantee; use 'pld' or 'rdp' otherwise)`,
    );
  }
  const relativeTolerance = options.relativeTolerance ?? DEFAULT_RELATIVE_TOLERANCE;
  assertFiniteNumber('relativeTolerance', relativeTolerance);
  if (!(relativeTolerance > 0 && relativeTolerance < 1)) {
    throw new InvalidArgumentError('relativeTolerance', relativeTolerance, 'in (0, 1)');
  }
  const minNoiseMultiplier = options.minNoiseMultiplier ?? DEFAULT_MIN_NOISE_MULTIPLIER;
  const maxNoiseMultiplier = options.maxNoiseMultiplier ?? DEFAULT_MAX_NOISE_MULTIPLIER;
  assertFiniteNumber('minNoiseMultiplier', minNoiseMultiplier);
  assertFiniteNumber('maxNoiseMultiplier', maxNoiseMultiplier);
  if (!(minNoiseMultiplier > 0)) throw new InvalidArgumentError('minNoiseMultiplier', minNoiseMultiplier, 'a finite number > 0');
  if (!(maxNoiseMultiplier > minNoiseMultiplier)) {
    throw new InvalidArgumentError('maxNoiseMultiplier', maxNoiseMultiplier, `a finite number > minNoiseMultiplier (${minNoiseMultiplier})`);
  }
  const factoryOptions: AccountantFactoryOptions = {
    ...(options.order !== undefined ? { order: options.order } : {}),
    ...(options.valueDiscretizationInterval !== undefined ? { valueDiscretizationInterval: options.valueDiscretizationInterval } : {}),
    ...(options.orders !== undefined ? { orders: options.orders } : {}),
  };
  // Constructing once validates the accountant options before any work.
  const template = createAccountant(accountant, factoryOptions);

  let iterations = 0;
  let finalGridIterations = 0;
  const evaluate = (noiseMultiplier: number): EpsilonResult => {
    iterations += 1;
    finalGridIterations += 1;
    const acc = template.fresh();
    acc.compose({ sampleRate, noiseMultiplier }, steps);
    return acc.getEpsilon(delta);
  };
  const coarseEvaluate = (noiseMultiplier: number, valueDiscretizationInterval: number): EpsilonResult => {
    iterations += 1;
    const acc = createAccountant('pld', { valueDiscretizationInterval });
    acc.compose({ sampleRate, noiseMultiplier }, steps);
    return acc.getEpsilon(delta);
  };
  const ctx: SearchContext = {
    evaluate,
    // A non-finite ε (no answer) counts as "above target": the safe side.
    meets: (r) => Number.isFinite(r.epsilon) && r.epsilon <= targetEpsilon,
    targetEpsilon,
    min: minNoiseMultiplier,
    max: maxNoiseMultiplier,
    tol: relativeTolerance,
    unreachable: (atMax) => {
      throw new UnreachableTargetError(
        `targetEpsilon=${targetEpsilon} is unreachable by '${accountant}' with sampleRate=${sampleRate}, steps=${steps}, ` +
          `delta=${delta}: epsilon at maxNoiseMultiplier=${maxNoiseMultiplier} is ${atMax.r.epsilon}`,
      );
    },
  };
  const h = options.valueDiscretizationInterval ?? DEFAULT_VALUE_DISCRETIZATION_INTERVAL;
  const usePldCoarse = accountant === 'pld' && COARSE_GRID_FACTOR * h <= MAX_COARSE_GRID;
  const { hi, lo } = usePldCoarse ? pldSearch(ctx, h, coarseEvaluate) : bracketSearch(ctx);

  // The guarantee, checked on the returned σ and on σ' (both evaluated with the final accountant).
  if (!ctx.meets(hi.r)) {
    throw new UnreachableTargetError(`internal: calibrated sigma=${hi.x} has epsilon=${hi.r.epsilon} > target ${targetEpsilon}`);
  }
  if (lo ? ctx.meets(lo.r) || !(lo.x < hi.x && lo.x >= hi.x * (1 - relativeTolerance)) : hi.x !== minNoiseMultiplier) {
    throw new UnreachableTargetError(`internal: calibration bracket [${lo?.x}, ${hi.x}] does not certify minimality`);
  }
  const noiseMultiplier = hi.x;
  const result = hi.r;
  let certifiedEpsilon: EpsilonResult | undefined;
  if (!isCertified(accountant) && options.reportCertified !== false) {
    const pld = createAccountant('pld', factoryOptions);
    pld.compose({ sampleRate, noiseMultiplier }, steps);
    certifiedEpsilon = pld.getEpsilon(delta);
  }
  return {
    noiseMultiplier,
    epsilon: result.epsilon,
    kind: result.kind,
    accountant,
    targetEpsilon,
    delta,
    sampleRate,
    steps,
    result,
    ...(certifiedEpsilon ? { certifiedEpsilon } : {}),
    ...(lo ? { lowerNoiseMultiplier: lo.x } : {}),
    iterations,
    ...(accountant === 'pld' ? { finalGridIterations } : {}),
  };
}
