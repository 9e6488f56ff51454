/**
 * HTTP transport of the MLflow client: JSON requests with MLflow's retry policy, timeouts, auth, TLS and proxies.
 *
 * Why `node:http`/`node:https` and not `fetch` or axios: Node 20's global `fetch` (undici) accepts no TLS options
 * and ignores HTTP(S)_PROXY; changing either needs undici's `Agent`/`EnvHttpProxyAgent`, which Node 20 does not
 * expose (the `undici` npm package is not installed here). axios is not installed either, and its built-in proxy
 * support sends https requests to the proxy without a CONNECT tunnel. The built-in modules give per-request
 * `rejectUnauthorized` (MLFLOW_TRACKING_INSECURE_TLS), a CA file (MLFLOW_TRACKING_SERVER_CERT_PATH), keep-alive
 * agents, and a ~40-line CONNECT tunnel for https through a proxy, with no dependency.
 *
 * Retry policy (mirrors mlflow.utils.request_utils): retry 408/429/500/502/503/504 and connection errors/timeouts
 * up to `maxRetries` times; before retry n (n = 1, 2, ...) wait `Retry-After` when the response carries one,
 * otherwise `backoffFactor · 2^(n-1)` seconds for n ≥ 2 and 0 s for n = 1 (urllib3), plus U(0, backoffJitter) s,
 * capped at 120 s. 401/403 and other 4xx are never retried.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import net, { type Socket } from 'node:net';
import { InvalidArgumentError } from '../errors.ts';
import { MlflowError, RETRYABLE_STATUSES, redactSecrets } from './errors.ts';

/** Settings of one transport. Build them with {@link httpSettingsFromEnv}. */
export interface HttpSettings {
  /** Tracking server base URL without credentials and without trailing slash, e.g. `http://127.0.0.1:5000`. */
  readonly baseUrl: string;
  readonly username?: string;
  readonly password?: string;
  /** Bearer token (MLFLOW_TRACKING_TOKEN); takes precedence over basic auth, as in MLflow. */
  readonly token?: string;
  /** Skip TLS certificate verification (only when MLFLOW_TRACKING_INSECURE_TLS is `true`/`1`). */
  readonly insecureTls: boolean;
  /** PEM CA bundle to verify the server with (MLFLOW_TRACKING_SERVER_CERT_PATH). */
  readonly caCertPath?: string;
  /** Retries after the first attempt (MLFLOW_HTTP_REQUEST_MAX_RETRIES, default 7, at most 10). */
  readonly maxRetries: number;
  /** Seconds (MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, default 2, at most 120). */
  readonly backoffFactor: number;
  /** Seconds of uniform random jitter added to each back-off (MLFLOW_HTTP_REQUEST_BACKOFF_JITTER, default 1). */
  readonly backoffJitter: number;
  /**
   * Per-attempt inactivity timeout in ms (MLFLOW_HTTP_REQUEST_TIMEOUT seconds, default 120 s): an attempt fails when
   * no byte of the body was written and none of the response read for this long (a moving upload is not cut off).
   */
  readonly timeoutMs: number;
  /** Cap of any single wait between attempts, ms (120 s as urllib3's DEFAULT_BACKOFF_MAX). */
  readonly maxBackoffMs: number;
  /** Proxy for http:// targets (HTTP_PROXY / http_proxy). */
  readonly httpProxy?: string;
  /** Proxy for https:// targets (HTTPS_PROXY / https_proxy). */
  readonly httpsProxy?: string;
  /** NO_PROXY / no_proxy: comma-separated hosts (suffix match, optional `:port`), `*` for all. */
  readonly noProxy?: string;
}

/** Overrides a caller may apply on top of the environment. */
export type HttpOverrides = Partial<Omit<HttpSettings, 'baseUrl'>>;

/** Request bodies larger than this are written in chunks of this size (each one progress for the inactivity timeout). */
const BODY_CHUNK_BYTES = 1 << 20;
const MAX_RETRIES_LIMIT = 10; // mlflow: _MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT
const BACKOFF_FACTOR_LIMIT = 120; // mlflow: _MLFLOW_HTTP_REQUEST_MAX_BACKOFF_FACTOR_LIMIT

function envNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, check: (v: number) => boolean, requirement: string): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!check(value)) throw new InvalidArgumentError(name, raw, requirement);
  return value;
}

/**
 * Reads MLflow's client settings from the environment (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN/INSECURE_TLS/
 * SERVER_CERT_PATH, MLFLOW_HTTP_REQUEST_*, HTTP(S)_PROXY, NO_PROXY). Credentials embedded in the URI
 * (`http://user:pass@host`) are moved out of the URL into basic auth.
 */
export function httpSettingsFromEnv(trackingUri: string, env: NodeJS.ProcessEnv = process.env, overrides: HttpOverrides = {}): HttpSettings {
  let url: URL;
  try {
    url = new URL(trackingUri);
  } catch {
    throw new InvalidArgumentError('trackingUri', redactUrl(trackingUri), 'an http(s):// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('trackingUri', redactUrl(trackingUri), 'an http(s):// URL');
  const urlUser = url.username ? decodeURIComponent(url.username) : undefined;
  const urlPassword = url.password ? decodeURIComponent(url.password) : undefined;
  url.username = '';
  url.password = '';
  const baseUrl = url.toString().replace(/\/+$/, '');
  const insecure = (env.MLFLOW_TRACKING_INSECURE_TLS ?? '').trim().toLowerCase();
  const settings: HttpSettings = {
    baseUrl,
    username: env.MLFLOW_TRACKING_USERNAME || urlUser,
    password: env.MLFLOW_TRACKING_PASSWORD || urlPassword,
    token: env.MLFLOW_TRACKING_TOKEN || undefined,
    insecureTls: insecure === 'true' || insecure === '1',
    caCertPath: env.MLFLOW_TRACKING_SERVER_CERT_PATH || undefined,
    maxRetries: envNumber(env, 'MLFLOW_HTTP_REQUEST_MAX_RETRIES', 7, (v) => Number.isInteger(v) && v >= 0 && v <= MAX_RETRIES_LIMIT, `an integer in [0, ${MAX_RETRIES_LIMIT}]`),
    backoffFactor: envNumber(env, 'MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR', 2, (v) => Number.isFinite(v) && v >= 0 && v <= BACKOFF_FACTOR_LIMIT, `a number in [0, ${BACKOFF_FACTOR_LIMIT}]`),
    backoffJitter: envNumber(env, 'MLFLOW_HTTP_REQUEST_BACKOFF_JITTER', 1, (v) => Number.isFinite(v) && v >= 0, 'a finite number ≥ 0'),
    timeoutMs: 1000 * envNumber(env, 'MLFLOW_HTTP_REQUEST_TIMEOUT', 120, (v) => Number.isFinite(v) && v > 0, 'a positive number of seconds'),
    maxBackoffMs: 120_000,
    httpProxy: env.HTTP_PROXY || env.http_proxy || undefined,
    httpsProxy: env.HTTPS_PROXY || env.https_proxy || undefined,
    noProxy: env.NO_PROXY || env.no_proxy || undefined,
  };
  return { ...settings, ...stripUndefined(overrides) };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** `http://user:pass@h` → `http://***@h` for messages. */
export function redactUrl(uri: string): string {
  return uri.replace(/\/\/[^/@]*@/, '//***@');
}

/** True when `host:port` is excluded from proxying by a NO_PROXY list. */
export function bypassesProxy(hostname: string, port: string, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  for (const rawEntry of noProxy.split(',')) {
    const entry = rawEntry.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    let [entryHost, entryPort] = entry.startsWith('[') ? [entry.slice(1, entry.indexOf(']')), entry.split(']:')[1]] : entry.split(':');
    if (entryPort && entryPort !== port) continue;
    entryHost = entryHost.replace(/^\*?\./, '');
    if (host === entryHost || host.endsWith(`.${entryHost}`)) return true;
  }
  return false;
}

const TLS_VERIFY_CODES = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'ERR_TLS_CERT_ALTNAME_INVALID']);

/** True for certificate verification failures (not retried: they do not heal). */
export function isTlsVerificationError(e: NodeJS.ErrnoException): boolean {
  return e.code !== undefined && TLS_VERIFY_CODES.has(e.code);
}

/** One request. `json` is serialised as the body; `body` is sent raw. */
export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path under the base URL, starting with `/`. */
  readonly path: string;
  readonly query?: Record<string, string | number | undefined>;
  readonly json?: unknown;
  readonly body?: Buffer | string;
  readonly contentType?: string;
  /** Abort the request and all its retries. */
  readonly signal?: AbortSignal;
}

/** A successful (2xx) response. */
export interface HttpResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

interface Attempt {
  readonly response?: HttpResponse;
  readonly error?: MlflowError;
  readonly retryAfterMs?: number;
}

/** Parses a Retry-After header (delta seconds or HTTP date) into ms; `undefined` if absent or unparsable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(raw)) return Math.max(0, Number(raw) * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Wait before retry `retryNumber` (1-based), ms: urllib3's exponential back-off + jitter, capped. */
export function backoffDelayMs(settings: Pick<HttpSettings, 'backoffFactor' | 'backoffJitter' | 'maxBackoffMs'>, retryNumber: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(settings.maxBackoffMs, retryAfterMs);
  const base = retryNumber <= 1 ? 0 : settings.backoffFactor * 2 ** (retryNumber - 1);
  const jitter = settings.backoffJitter > 0 ? (randomInt(0, 1_000_000) / 1_000_000) * settings.backoffJitter : 0;
  return Math.min(settings.maxBackoffMs, 1000 * (base + jitter));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Sends requests to one MLflow server with MLflow's retry policy. Safe to share between clients. */
export class HttpTransport {
  readonly settings: HttpSettings;
  private readonly secrets: string[];
  private readonly agent: http.Agent;
  private readonly caCert: Buffer | undefined;

  constructor(settings: HttpSettings) {
    this.settings = settings;
    const secrets = [settings.password, settings.token].filter((s): s is string => !!s);
    if (settings.username && settings.password) secrets.push(Buffer.from(`${settings.username}:${settings.password}`).toString('base64'));
    this.secrets = secrets;
    this.caCert = settings.caCertPath ? readFileSync(settings.caCertPath) : undefined;
    const isHttps = settings.baseUrl.startsWith('https:');
    this.agent = isHttps
      ? new https.Agent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: !settings.insecureTls, ca: this.caCert })
      : new http.Agent({ keepAlive: true, maxSockets: 8 });
  }

  /** A transport with the same server and credentials but other retry/timeout settings (shares no sockets). */
  with(overrides: HttpOverrides): HttpTransport {
    return new HttpTransport({ ...this.settings, ...stripUndefined(overrides) });
  }

  /** Removes credentials from a text (for messages built outside the transport). */
  redact(text: string): string {
    return redactSecrets(text, this.secrets);
  }

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.agent.destroy();
  }

  /**
   * Sends `request`, retrying as MLflow's client does. Resolves with a 2xx response; rejects with
   * {@link MlflowError} (the last failure) otherwise.
   */
  async request(request: HttpRequest): Promise<HttpResponse> {
    const endpoint = `${request.method} ${request.path}`;
    for (let retry = 0; ; retry++) {
      const attempt = await this.attempt(request, endpoint);
      if (attempt.response) return attempt.response;
      const error = attempt.error as MlflowError;
      if (!error.retryable || retry >= this.settings.maxRetries || request.signal?.aborted) throw error;
      try {
        await sleep(backoffDelayMs(this.settings, retry + 1, attempt.retryAfterMs), request.signal);
      } catch {
        throw error;
      }
    }
  }

  private attempt(request: HttpRequest, endpoint: string): Promise<Attempt> {
    const url = new URL(this.settings.baseUrl + request.path);
    for (const [k, v] of Object.entries(request.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': 'ewtune-mlflow-client' };
    let body: Buffer | undefined;
    if (request.json !== undefined) {
      body = Buffer.from(JSON.stringify(request.json));
      headers['Content-Type'] = 'application/json';
    } else if (request.body !== undefined) {
      body = typeof request.body === 'string' ? Buffer.from(request.body) : request.body;
      headers['Content-Type'] = request.contentType ?? 'application/octet-stream';
    }
    if (body) headers['Content-Length'] = String(body.length);
    if (this.settings.token) headers.Authorization = `Bearer ${this.settings.token}`;
    else if (this.settings.username && this.settings.password) headers.Authorization = `Basic ${Buffer.from(`${this.settings.username}:${this.settings.password}`).toString('base64')}`;

    const fail = (status: number | undefined, errorCode: string, detail: string, retryable: boolean, cause?: unknown, retryAfterMs?: number): Attempt => ({
      error: new MlflowError({ status, errorCode, endpoint, detail: this.redact(detail).slice(0, 1000), retryable, cause: cause === undefined ? undefined : this.redact(String(cause)) }),
      retryAfterMs,
    });

    return new Promise<Attempt>((resolve) => {
      let settled = false;
      const finish = (a: Attempt): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', onAbort);
        resolve(a);
      };
      let req: http.ClientRequest | undefined;
      // An inactivity timeout, as MLflow's client (requests' timeout): it restarts whenever a chunk of the body has
      // been written or a chunk of the response read, so a large artifact that keeps moving is never cut off, and a
      // server that stops answering is given up on after timeoutMs.
      const onTimeout = (): void => {
        finish(fail(undefined, 'TIMEOUT', `no progress for ${this.settings.timeoutMs} ms (MLFLOW_HTTP_REQUEST_TIMEOUT)`, true));
        req?.destroy();
      };
      let timer = setTimeout(onTimeout, this.settings.timeoutMs);
      const touch = (): void => {
        if (settled) return;
        clearTimeout(timer);
        timer = setTimeout(onTimeout, this.settings.timeoutMs);
      };
      const onAbort = (): void => {
        finish(fail(undefined, 'ABORTED', 'request aborted', false));
        req?.destroy();
      };
      if (request.signal?.aborted) return onAbort();
      request.signal?.addEventListener('abort', onAbort, { once: true });

      const onResponse = (res: http.IncomingMessage): void => {
        const chunks: Buffer[] = [];
        touch();
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          touch();
        });
        res.on('error', (e) => finish(fail(undefined, 'CONNECTION_ERROR', `response interrupted: ${e.message}`, true, e)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const buf = Buffer.concat(chunks);
          if (status >= 200 && status < 300) return finish({ response: { status, headers: res.headers, body: buf } });
          let errorCode = `HTTP_${status}`;
          let detail = buf.toString('utf8').slice(0, 2000) || (res.statusMessage ?? '');
          try {
            const parsed = JSON.parse(buf.toString('utf8')) as { error_code?: string; message?: string };
            if (parsed.error_code) errorCode = parsed.error_code;
            if (parsed.message) detail = parsed.message;
          } catch {
            /* not JSON: keep the raw text */
          }
          finish(fail(status, errorCode, detail, RETRYABLE_STATUSES.has(status), undefined, parseRetryAfter(res.headers['retry-after'])));
        });
      };
      // The body in chunks of BODY_CHUNK_BYTES, each written before the next (progress for the inactivity timeout).
      const writeBody = (r: http.ClientRequest): void => {
        if (!body || body.length <= BODY_CHUNK_BYTES) {
          r.end(body);
          return;
        }
        const whole = body;
        let offset = 0;
        const next = (error?: Error | null): void => {
          if (settled || error) return; // an error reaches onError through the request's 'error' event
          touch();
          if (offset >= whole.length) {
            r.end();
            return;
          }
          const chunk = whole.subarray(offset, offset + BODY_CHUNK_BYTES);
          offset += chunk.length;
          r.write(chunk, next);
        };
        next();
      };
      const onError = (e: NodeJS.ErrnoException): void => {
        // A certificate that fails verification will not verify on a retry: report it at once.
        if (isTlsVerificationError(e)) return finish(fail(undefined, 'TLS_ERROR', `${e.code ?? ''} ${e.message} (set MLFLOW_TRACKING_SERVER_CERT_PATH to a CA bundle, or MLFLOW_TRACKING_INSECURE_TLS=true to skip verification)`, false, e));
        finish(fail(undefined, 'CONNECTION_ERROR', `${e.code ?? ''} ${e.message}`.trim(), true, e));
      };

      this.open(url, request.method, headers)
        .then((r) => {
          req = r;
          if (settled) return r.destroy();
          r.on('response', onResponse);
          r.on('error', onError);
          writeBody(r);
        })
        .catch(onError);
    });
  }

  /** Opens a request directly, through an HTTP proxy (absolute-form), or through a CONNECT tunnel (https). */
  private async open(url: URL, method: string, headers: Record<string, string>): Promise<http.ClientRequest> {
    const isHttps = url.protocol === 'https:';
    const port = url.port || (isHttps ? '443' : '80');
    const proxyRaw = isHttps ? this.settings.httpsProxy : this.settings.httpProxy;
    const proxy = proxyRaw && !bypassesProxy(url.hostname, port, this.settings.noProxy) ? new URL(proxyRaw.includes('://') ? proxyRaw : `http://${proxyRaw}`) : undefined;
    const tlsOptions = { rejectUnauthorized: !this.settings.insecureTls, ca: this.caCert };
    if (!proxy) {
      const options = { method, headers, agent: this.agent };
      return isHttps ? https.request(url, { ...options, ...tlsOptions }) : http.request(url, options);
    }
    const proxyHeaders: Record<string, string> = {};
    if (proxy.username) proxyHeaders['Proxy-Authorization'] = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
    const proxyPort = Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80));
    if (!isHttps) {
      // Plain HTTP through a proxy: absolute-form request line.
      return http.request({ host: proxy.hostname, port: proxyPort, method, path: url.toString(), headers: { ...headers, ...proxyHeaders, Host: url.host }, agent: false });
    }
    const socket = await new Promise<Socket>((resolve, reject) => {
      const connect = http.request({ host: proxy.hostname, port: proxyPort, method: 'CONNECT', path: `${url.hostname}:${port}`, headers: { Host: `${url.hostname}:${port}`, ...proxyHeaders }, agent: false });
      connect.on('connect', (res, sock) => {
        if (res.statusCode === 200) resolve(sock);
        else {
          sock.destroy();
          reject(Object.assign(new Error(`proxy CONNECT answered ${res.statusCode}`), { code: 'EPROXY' }));
        }
      });
      connect.on('error', reject);
      connect.end();
    });
    // `host` is what the certificate is checked against; SNI only for DNS names (RFC 6066).
    const tlsSocket = tls.connect({ socket, host: url.hostname, servername: net.isIP(url.hostname) ? undefined : url.hostname, ...tlsOptions });
    // No `agent` option: with one (even `false`) Node would ignore createConnection and dial the server directly.
    return https.request(url, { method, headers, createConnection: () => tlsSocket });
  }
}
