/** Typed errors of ewtune. Every error names what went wrong so callers can branch on `code`. */

export class EwtuneError extends Error {
  /** Stable machine-readable code to branch on (`ERR_INVALID_ARGUMENT`, `ERR_CONFIG`, `ERR_LEDGER`, …). */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad input: names the argument and the offending value; thrown before any work starts. */
export class InvalidArgumentError extends EwtuneError {
  /** The argument that is wrong, as the caller wrote it (e.g. `l2NormClip`, `options.sink`, `logs`). */
  readonly argument: string;
  /** The offending value. */
  readonly value: unknown;
  constructor(argument: string, value: unknown, requirement: string) {
    super('ERR_INVALID_ARGUMENT', `${argument} must be ${requirement}; got ${formatValue(value)}`);
    this.argument = argument;
    this.value = value;
  }
}

/** A privacy target that no parameter in range can meet (e.g. calibration cannot reach targetEpsilon). */
export class UnreachableTargetError extends EwtuneError {
  constructor(message: string) {
    super('ERR_UNREACHABLE_TARGET', message);
  }
}

/**
 * Training diverged: after step `step` the training loss or the model's weights were NaN/∞ (e.g. a learning rate or
 * clipping bound far too large). The step was recorded (and counts against the budget) before it was applied.
 */
export class NonFiniteTrainingError extends EwtuneError {
  /** 0-based index of the step after which training was stopped. */
  readonly step: number;
  constructor(step: number, message: string) {
    super('ERR_NON_FINITE_TRAINING', message);
    this.step = step;
  }
}

/** A ledger file that is corrupt, from another configuration, or otherwise unusable. */
export class LedgerError extends EwtuneError {
  /** The ledger file. */
  readonly path: string;
  /** 1-based line of the problem in the file, when it is about one line. */
  readonly line: number | undefined;
  constructor(path: string, message: string, line?: number) {
    super('ERR_LEDGER', `${path}${line !== undefined ? `:${line}` : ''}: ${message}`);
    this.path = path;
    this.line = line;
  }
}

/** A short, printable rendering of any value for error messages (NaN and undefined by name, strings and objects as JSON). */
export function formatValue(value: unknown): string {
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
