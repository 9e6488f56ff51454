/**
 * Fixed train / validation / test splits: each example's split is a deterministic function of a key (its text, or
 * text + pair), u = first 32 bits of SHA-256(key) / 2³², never of a PRNG or of the file's order. With fractions
 * (testFraction t, validationFraction v): u < t → test, t ≤ u < t + v → validation, else train. The same key always
 * lands in the same split, so exact duplicates never straddle train and test, and adding examples never moves
 * existing ones. Both fractions are of the whole input; validation is carved out of what would otherwise be training
 * data, for choosing hyper-parameters without looking at the test split.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.ts';

/** Split fractions (of the whole input). */
export interface SplitFractions {
  /** Fraction of examples in the test split; default 0.2. */
  readonly testFraction?: number;
  /** Fraction of examples in the validation split (carved from training); default 0.1. */
  readonly validationFraction?: number;
}

/** Default fraction of examples in the held-out test split (0.2), chosen by a hash of each example's id. */
export const DEFAULT_TEST_FRACTION = 0.2;
/**
 * Default fraction of examples in the validation split (0.1), carved from training by a hash of each example's id.
 */
export const DEFAULT_VALIDATION_FRACTION = 0.1;

/** The name of a split. */
export type SplitName = 'train' | 'validation' | 'test';

/** The three splits of a list. */
export interface Splits<T> {
  /** Training examples (the private data DP-SGD samples). */
  readonly train: T[];
  /** Validation examples (carved from training, for choosing hyper-parameters). */
  readonly validation: T[];
  /** Held-out test examples (never trained on). */
  readonly test: T[];
}

/** The key's position in [0, 1): first 32 bits of its SHA-256 (UTF-8) as an unsigned integer / 2³². */
export function hashUnit(key: string): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * Check and default split fractions.
 * @throws InvalidArgumentError naming `testFraction` / `validationFraction` when outside [0, 1) or summing to ≥ 1.
 */
export function resolveFractions(fractions: SplitFractions = {}): { testFraction: number; validationFraction: number } {
  const testFraction = fractions.testFraction ?? DEFAULT_TEST_FRACTION;
  const validationFraction = fractions.validationFraction ?? DEFAULT_VALIDATION_FRACTION;
  if (!(testFraction >= 0 && testFraction < 1)) throw new InvalidArgumentError('testFraction', testFraction, 'in [0, 1)');
  if (!(validationFraction >= 0 && validationFraction < 1)) throw new InvalidArgumentError('validationFraction', validationFraction, 'in [0, 1)');
  if (!(testFraction + validationFraction < 1)) {
    throw new InvalidArgumentError('validationFraction', validationFraction, `below 1 − testFraction (${1 - testFraction}) so that training keeps examples`);
  }
  return { testFraction, validationFraction };
}

/** Which split `key` belongs to (see the module comment). */
export function splitOf(key: string, fractions: SplitFractions = {}): SplitName {
  const { testFraction, validationFraction } = resolveFractions(fractions);
  const u = hashUnit(key);
  if (u < testFraction) return 'test';
  return u < testFraction + validationFraction ? 'validation' : 'train';
}

/** Split `items` by the hash of `keyOf(item)`; the input order is kept within each split. */
export function splitByHash<T>(items: readonly T[], keyOf: (item: T) => string, fractions: SplitFractions = {}): Splits<T> {
  const resolved = resolveFractions(fractions);
  const out: Splits<T> = { train: [], validation: [], test: [] };
  for (const item of items) out[splitOf(keyOf(item), resolved)].push(item);
  return out;
}
