/**
 * A small ajv wrapper: compile a JSON Schema once, validate values, and report the first errors with the
 * JSON path of the offending field (e.g. "/noiseMultiplier must be > 0"). Shared by the ledger and the config.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { packagePath } from '../package-root.ts';

/** The outcome of one validation: ok, or a list of messages each naming the field by its JSON path. */
export type SchemaCheck = { readonly ok: true } | { readonly ok: false; readonly errors: readonly string[] };

/** A compiled schema. */
export interface CompiledSchema<T> {
  /** Validate; never throws. */
  check(value: unknown): value is T;
  /** Messages of the last failed `check` (empty after a success). */
  readonly lastErrors: readonly string[];
  validate(value: unknown): SchemaCheck;
}

/** Render one ajv error with the JSON path of the field it concerns. */
export function formatSchemaError(error: ErrorObject): string {
  let path = error.instancePath || '/';
  if (error.keyword === 'required' && typeof error.params.missingProperty === 'string') {
    path = `${error.instancePath}/${error.params.missingProperty}`;
    return `${path} is required`;
  }
  if (error.keyword === 'additionalProperties' && typeof error.params.additionalProperty === 'string') {
    return `${error.instancePath}/${error.params.additionalProperty} is not allowed`;
  }
  if (error.keyword === 'enum' && Array.isArray(error.params.allowedValues)) {
    return `${path} must be one of ${error.params.allowedValues.map((v: unknown) => JSON.stringify(v)).join(', ')}`;
  }
  return `${path} ${error.message ?? 'is invalid'}`;
}

/** Compile a schema object once (allErrors off: the first error per branch is enough to name the field). */
export function compileSchema<T>(schema: object, options: { useDefaults?: boolean } = {}): CompiledSchema<T> {
  const ajv = new Ajv({ strict: true, allErrors: false, allowUnionTypes: true, useDefaults: options.useDefaults ?? false });
  const fn: ValidateFunction = ajv.compile(schema);
  let lastErrors: readonly string[] = [];
  return {
    check(value: unknown): value is T {
      const ok = fn(value) as boolean;
      lastErrors = ok ? [] : (fn.errors ?? []).map(formatSchemaError);
      return ok;
    },
    get lastErrors() {
      return lastErrors;
    },
    validate(value: unknown): SchemaCheck {
      const ok = fn(value) as boolean;
      return ok ? { ok: true } : { ok: false, errors: (fn.errors ?? []).map(formatSchemaError) };
    },
  };
}

/** Load a JSON schema file of the package's `schemas/` directory (found from src/ or dist/) and compile it. */
export function compileSchemaFile<T>(fileName: string, options: { useDefaults?: boolean } = {}): CompiledSchema<T> {
  return compileSchema<T>(JSON.parse(readFileSync(packagePath('schemas', fileName), 'utf8')) as object, options);
}
