/**
 * Typed errors of the MLflow client. Messages never contain credentials: every message built here goes
 * through {@link redactSecrets} with the transport's secrets, and endpoints are recorded without query strings.
 */
import { EwtuneError } from '../errors.ts';

/** A failed MLflow request: an HTTP error status, or a connection error / timeout (status `undefined`). */
export class MlflowError extends EwtuneError {
  /** HTTP status; `undefined` when no response arrived (connection refused/reset, timeout, abort). */
  readonly status: number | undefined;
  /** MLflow's `error_code` (e.g. `RESOURCE_ALREADY_EXISTS`), or `CONNECTION_ERROR`, `TIMEOUT`, `ABORTED`, `HTTP_<status>`. */
  readonly errorCode: string;
  /** `METHOD /path` of the request, without query string. */
  readonly endpoint: string;
  /** Whether MLflow's own client would retry this failure (408/429/500/502/503/504, connection errors, timeouts). */
  readonly retryable: boolean;
  constructor(args: { status: number | undefined; errorCode: string; endpoint: string; detail: string; retryable: boolean; cause?: unknown }) {
    const statusText = args.status === undefined ? 'no response' : `HTTP ${args.status}`;
    super('ERR_MLFLOW', `MLflow ${args.endpoint} failed (${statusText}, ${args.errorCode}): ${args.detail}`, args.cause === undefined ? undefined : { cause: args.cause });
    this.status = args.status;
    this.errorCode = args.errorCode;
    this.endpoint = args.endpoint;
    this.retryable = args.retryable;
  }
}

/** HTTP statuses MLflow's Python client retries (mlflow.utils.request_utils). */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** True for 401/403: wrong or missing credentials. Never retried. */
export function isAuthError(error: unknown): error is MlflowError {
  return error instanceof MlflowError && (error.status === 401 || error.status === 403);
}

/**
 * Replaces every occurrence of each secret (and its URL-encoded and base64 `user:password` forms, which the
 * caller passes in `secrets`) by `***`. Secrets shorter than 3 characters are ignored (they would mangle text).
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length < 3) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.split(form).join('***');
  }
  return out;
}
