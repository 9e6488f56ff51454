/**
 * Noise calibration: the smallest noise multiplier σ whose ε (by the chosen accountant) is ≤ a target.
 *
 * Contract: the returned σ has been evaluated and its ε is ≤ targetEpsilon — never above it. The search keeps
 * a bracket [lo, hi] with ε(hi) ≤ target (evaluated) and ε(lo) > target, narrows it by a safeguarded secant
 * step in (log σ, log ε) (falling back to bisection), and returns hi once
 * (hi − lo) ≤ relativeTolerance·hi. ε is monotone (non-increasing) in σ for the certified accountants, so hi is
 * then the smallest such σ to that relative precision. The Edgeworth estimate need not be monotone: the
 * returned σ still meets the target (it was evaluated), but may not be the smallest.
 *
 * API for estimates: accountant 'pld' (default) and 'rdp' are certified. Calibrating by 'edgeworth' or 'gdp'
 * requires `allowEstimate: true` (otherwise InvalidArgumentError naming `allowEstimate`), and the result then
 * also carries `certifiedEpsilon`: the PLD upper bound at the returned σ (which may exceed the target).
 */
import { InvalidArgumentError, UnreachableTargetError } from '../errors.ts';
import { assertDelta, assertEpsilon, assertFiniteNumber, assertSampleRate, assertSteps } from '../validate.ts';
import { assertAccountantName, createAccountant, isCertified, type AccountantFactoryOptions } from './factory.ts';
import type { AccountantName, BoundKind, EpsilonResult } from './types.ts';

export interface CalibrationOptions {
  readonly targetEpsilon: number;
  readonly delta: number;
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
}

export interface CalibrationResult {
  /** The calibrated noise multiplier σ (ε(σ) ≤ targetEpsilon by `accountant`). */
  readonly noiseMultiplier: number;
  /** ε at σ by `accountant`. */
  readonly epsilon: number;
  readonly kind: BoundKind;
  readonly accountant: AccountantName;
  readonly targetEpsilon: number;
  readonly delta: number;
  readonly sampleRate: number;
  readonly steps: number;
  /** The accountant's full answer at σ (details included). */
  readonly result: EpsilonResult;
  /** When calibrated by an estimate: the certified PLD ε at σ. */
  readonly certifiedEpsilon?: EpsilonResult;
  /** Number of ε evaluations. */
  readonly iterations: number;
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
  const evaluate = (noiseMultiplier: number): EpsilonResult => {
    iterations += 1;
    const acc = template.fresh();
    acc.compose({ sampleRate, noiseMultiplier }, steps);
    return acc.getEpsilon(delta);
  };
  // A non-finite ε (no answer) counts as "above target": the safe side.
  const meets = (r: EpsilonResult): boolean => Number.isFinite(r.epsilon) && r.epsilon <= targetEpsilon;

  // Bracket: hi meets the target (evaluated), lo does not (or lo = minNoiseMultiplier is never reached).
  let hi = Math.min(Math.max(1, minNoiseMultiplier), maxNoiseMultiplier);
  let hiResult = evaluate(hi);
  let lo: number;
  let loResultEps = Number.NaN;
  const evaluateEpsilonAtLo = (): number => loResultEps;
  if (meets(hiResult)) {
    lo = hi;
    for (;;) {
      if (lo <= minNoiseMultiplier) return finish(minNoiseMultiplier, hiResult);
      const next = Math.max(lo / 2, minNoiseMultiplier);
      const r = evaluate(next);
      if (!meets(r)) {
        lo = next;
        loResultEps = r.epsilon;
        break;
      }
      hi = next;
      hiResult = r;
      lo = next;
    }
  } else {
    lo = hi;
    for (;;) {
      if (hi >= maxNoiseMultiplier) {
        throw new UnreachableTargetError(
          `targetEpsilon=${targetEpsilon} is unreachable by '${accountant}' with sampleRate=${sampleRate}, steps=${steps}, ` +
            `delta=${delta}: epsilon at maxNoiseMultiplier=${maxNoiseMultiplier} is ${hiResult.epsilon}`,
        );
      }
      const next = Math.min(hi * 2, maxNoiseMultiplier);
      const r = evaluate(next);
      lo = hi;
      loResultEps = hiResult.epsilon;
      hi = next;
      hiResult = r;
      if (meets(r)) break;
    }
  }
  // Safeguarded secant in (log σ, log ε) with paired probes; invariant: meets(ε(hi)), !meets(ε(lo)).
  // Each interpolated point x is followed by a probe at x·(1 ∓ tol/2) on the other side of the target, which
  // closes the bracket as soon as the interpolation lands within tol/2 of the root. A round that does not halve
  // the bracket is followed by a plain bisection step, so convergence is never slower than bisection's.
  let loEps = lo === hi ? Number.NaN : evaluateEpsilonAtLo();
  let bisectNext = false;
  while (hi - lo > relativeTolerance * hi) {
    const width = hi - lo;
    const logTarget = Math.log(targetEpsilon);
    let x = Math.sqrt(lo * hi);
    const gLo = Math.log(loEps) - logTarget;
    const gHi = Math.log(hiResult.epsilon) - logTarget;
    if (!bisectNext && Number.isFinite(gLo) && Number.isFinite(gHi) && gLo > gHi) {
      const t = gLo / (gLo - gHi);
      const logX = Math.log(lo) + t * (Math.log(hi) - Math.log(lo));
      x = Math.min(Math.max(Math.exp(logX), lo + 1e-3 * width), hi - 1e-3 * width);
    }
    const r = evaluate(x);
    const half = 0.5 * relativeTolerance;
    if (meets(r)) {
      hi = x;
      hiResult = r;
      const y = x * (1 - half);
      if (!bisectNext && y > lo) {
        const ry = evaluate(y);
        if (meets(ry)) {
          hi = y;
          hiResult = ry;
        } else {
          lo = y;
          loEps = ry.epsilon;
        }
      }
    } else {
      lo = x;
      loEps = r.epsilon;
      const y = x * (1 + half);
      if (!bisectNext && y < hi) {
        const ry = evaluate(y);
        if (meets(ry)) {
          hi = y;
          hiResult = ry;
        } else {
          lo = y;
          loEps = ry.epsilon;
        }
      }
    }
    bisectNext = !bisectNext && hi - lo > 0.5 * width;
  }
  return finish(hi, hiResult);

  function finish(noiseMultiplier: number, result: EpsilonResult): CalibrationResult {
    // The guarantee, checked on the returned σ (it was evaluated there).
    if (!meets(result)) {
      throw new UnreachableTargetError(`internal: calibrated sigma=${noiseMultiplier} has epsilon=${result.epsilon} > target ${targetEpsilon}`);
    }
    let certifiedEpsilon: EpsilonResult | undefined;
    if (!isCertified(accountant)) {
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
      iterations,
    };
  }
}
