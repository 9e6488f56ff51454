/**
 * MLflow's rules for metric/param/tag keys and values (mlflow/utils/validation.py, 3.11), checked client-side so a
 * bad key is a typed {@link InvalidArgumentError} before anything is sent instead of a 400 for a whole batch.
 */
import { InvalidArgumentError } from '../errors.ts';

/** Per `runs/log-batch` request (MAX_METRICS_PER_BATCH etc.). */
export const LOG_BATCH_LIMITS = {
  metrics: 1000,
  params: 100,
  tags: 100,
  entities: 1000,
  /** MAX_BATCH_LOG_REQUEST_SIZE, bytes; we stay below it with a margin for JSON framing. */
  requestBytes: 1_000_000,
} as const;
export const MAX_KEY_LENGTH = 250;
export const MAX_PARAM_VALUE_LENGTH = 6000;
export const MAX_TAG_VALUE_LENGTH = 8000;

// Python's `\w` on str is Unicode-aware (letters, digits, underscore): mirrored with \p{L}\p{N}.
const ALLOWED = /^[\p{L}\p{N}\p{Mn}\p{Mc}_/.\- :]*$/u;

/** Python's posixpath.normpath(name) != name, or name is '.', or starts with '..' or '/' (path_not_unique). */
function pathNotUnique(name: string): boolean {
  if (name === '' || name === '.' || name.startsWith('..') || name.startsWith('/') || name.endsWith('/')) return true;
  if (name.includes('//')) return true;
  return name.split('/').some((part) => part === '.' || part === '..');
}

/** Reason a key is invalid, or `undefined` if MLflow accepts it. */
export function keyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string') return 'a string';
  if (key.length > MAX_KEY_LENGTH) return `at most ${MAX_KEY_LENGTH} characters (has ${key.length})`;
  if (!ALLOWED.test(key)) return 'made of alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/) only';
  if (pathNotUnique(key)) return "a normalised path (non-empty; no leading/trailing '/', no '//', no '.' or '..' segments, not starting with '..')";
  return undefined;
}

/** Throws InvalidArgumentError(`argument`) if `key` breaks MLflow's key rules. */
export function assertMlflowKey(argument: string, key: unknown): asserts key is string {
  const problem = keyProblem(key);
  if (problem) throw new InvalidArgumentError(argument, key, problem);
}

/** Validates one metric: key rules, finite value (Infinity would serialise as null → 400), integer timestamp/step. */
export function assertMetric(argument: string, m: { key: unknown; value: unknown; timestamp: unknown; step: unknown }): void {
  assertMlflowKey(`${argument}.key`, m.key);
  if (typeof m.value !== 'number' || !Number.isFinite(m.value)) throw new InvalidArgumentError(`${argument}.value`, m.value, `a finite number (metric ${JSON.stringify(m.key)}); non-finite values are never sent`);
  if (!Number.isSafeInteger(m.timestamp) || (m.timestamp as number) < 0) throw new InvalidArgumentError(`${argument}.timestamp`, m.timestamp, 'a non-negative integer (ms since epoch)');
  if (!Number.isSafeInteger(m.step)) throw new InvalidArgumentError(`${argument}.step`, m.step, 'an integer');
}

/** Validates a param: key rules, string value ≤ 6000 characters. */
export function assertParam(argument: string, p: { key: unknown; value: unknown }): void {
  assertMlflowKey(`${argument}.key`, p.key);
  if (typeof p.value !== 'string' || p.value.length > MAX_PARAM_VALUE_LENGTH) throw new InvalidArgumentError(`${argument}.value`, p.value, `a string of at most ${MAX_PARAM_VALUE_LENGTH} characters`);
}

/** Validates a tag: key rules, string value ≤ 8000 characters. */
export function assertTag(argument: string, t: { key: unknown; value: unknown }): void {
  assertMlflowKey(`${argument}.key`, t.key);
  if (typeof t.value !== 'string' || t.value.length > MAX_TAG_VALUE_LENGTH) throw new InvalidArgumentError(`${argument}.value`, t.value, `a string of at most ${MAX_TAG_VALUE_LENGTH} characters`);
}
