/** Argument checks shared by the accountants, calibration, the ledger and the CLI. Each throws InvalidArgumentError. */
import { InvalidArgumentError } from './errors.ts';

export function assertFiniteNumber(argument: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidArgumentError(argument, value, 'a finite number');
  }
}

/** σ > 0 (the accountants have no meaning for σ = 0). */
export function assertNoiseMultiplier(value: unknown, argument = 'noiseMultiplier'): asserts value is number {
  assertFiniteNumber(argument, value);
  if (value <= 0) throw new InvalidArgumentError(argument, value, 'a finite number > 0');
}

/** q ∈ (0, 1]. */
export function assertSampleRate(value: unknown, argument = 'sampleRate'): asserts value is number {
  assertFiniteNumber(argument, value);
  if (!(value > 0 && value <= 1)) throw new InvalidArgumentError(argument, value, 'in (0, 1]');
}

/** A positive integer count of steps. */
export function assertSteps(value: unknown, argument = 'steps'): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidArgumentError(argument, value, 'a positive integer');
  }
}

/** A non-negative integer (counts that may be zero). */
export function assertNonNegativeInteger(value: unknown, argument: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(argument, value, 'a non-negative integer');
  }
}

/** δ ∈ (0, 1). */
export function assertDelta(value: unknown, argument = 'delta'): asserts value is number {
  assertFiniteNumber(argument, value);
  if (!(value > 0 && value < 1)) throw new InvalidArgumentError(argument, value, 'in (0, 1)');
}

/** ε > 0 for targets; ε ≥ 0 for queries (use allowZero). */
export function assertEpsilon(value: unknown, argument = 'targetEpsilon', allowZero = false): asserts value is number {
  assertFiniteNumber(argument, value);
  if (allowZero ? value < 0 : value <= 0) {
    throw new InvalidArgumentError(argument, value, allowZero ? 'a finite number >= 0' : 'a finite number > 0');
  }
}

/** Warn (not throw) when δ ≥ 1/N: such a δ allows releasing a whole record. Returns the warning or undefined. */
export function deltaWarning(delta: number, datasetSize: number | undefined): string | undefined {
  if (datasetSize === undefined || !(datasetSize > 0)) return undefined;
  if (delta >= 1 / datasetSize) {
    return `delta=${delta} is >= 1/N (N=${datasetSize}); a mechanism that publishes one random record meets such a delta. Use delta << 1/N.`;
  }
  return undefined;
}
