/**
 * MLflow REST client: behaviour against a REAL MLflow 3.11 server (test/support/mlflow-server.ts), and retry/auth
 * faults against a scripted fake (test/support/fake-mlflow.ts) only where a real server cannot produce them.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '../src/errors.ts';
import { MlflowError } from '../src/tracking/errors.ts';
import { HttpTransport, backoffDelayMs, bypassesProxy, httpSettingsFromEnv, parseRetryAfter } from '../src/tracking/http.ts';
import { keyProblem, LOG_BATCH_LIMITS } from '../src/tracking/keys.ts';
import { MlflowClient, artifactApiPath, chunkLogBatch, type Metric } from '../src/tracking/mlflow-client.ts';
import { startConnectProxy, startFakeMlflow, type FakeAction, type FakeMlflow } from './support/fake-mlflow.ts';
import { sharedMlflowServer } from './support/mlflow-server.ts';

const noEnv: NodeJS.ProcessEnv = {};
// Self-signed certificate for 127.0.0.1 made for these tests with
// `openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost`.
const certPath = fileURLToPath(new URL('./fixtures/tracking-tls-cert.pem', import.meta.url));
const tlsFixture = { cert: readFileSync(certPath), key: readFileSync(fileURLToPath(new URL('./fixtures/tracking-tls-key.pem', import.meta.url))) };
const unique = (p: string): string => `${p}-${randomUUID().slice(0, 8)}`;

describe('MLflow client against a real server', function () {
  this.timeout(120_000);
  let client: MlflowClient;
  let experimentId: string;

  before(async () => {
    const uri = await sharedMlflowServer();
    client = MlflowClient.fromEnv(uri, noEnv);
    experimentId = await client.getOrCreateExperiment(unique('client-test'));
  });
  after(() => client?.close());

  it('logs params, tags and metrics; get-history returns every point once, across pages', async () => {
    const run = await client.createRun({ experimentId, runName: 'basic', tags: [{ key: 'origin', value: 'test' }] });
    assert.equal(run.status, 'RUNNING');
    assert.match(run.artifactUri, /^mlflow-artifacts:/);
    const t0 = Date.now();
    const points: Metric[] = Array.from({ length: 25 }, (_, i) => ({ key: 'privacy/epsilon_edgeworth', value: 0.1 * (i + 1), timestamp: t0 + i, step: i + 1 }));
    await client.logBatch(run.runId, { metrics: points, params: [{ key: 'noise_multiplier', value: '1.1' }], tags: [{ key: 'ewtune.kind', value: 'estimate' }] });
    await client.logParam(run.runId, 'l2_norm_clip', '1.0');
    await client.setTag(run.runId, 'stop_reason', 'budget');
    await client.logMetric(run.runId, { key: 'train/loss', value: 0.75, timestamp: t0, step: 1 });

    const history = await client.getMetricHistory(run.runId, 'privacy/epsilon_edgeworth', { pageSize: 7 }); // 4 pages
    assert.deepEqual(
      history.map((m) => [m.step, m.value, m.timestamp]).sort((a, b) => a[0] - b[0]),
      points.map((m) => [m.step, m.value, m.timestamp]),
    );
    const got = await client.getRun(run.runId);
    const params = Object.fromEntries(got.params.map((p) => [p.key, p.value]));
    assert.deepEqual(params, { noise_multiplier: '1.1', l2_norm_clip: '1.0' });
    const tags = Object.fromEntries(got.tags.map((t) => [t.key, t.value]));
    assert.equal(tags['ewtune.kind'], 'estimate');
    assert.equal(tags.stop_reason, 'budget');
    assert.equal(tags.origin, 'test');
    assert.equal(got.metrics.find((m) => m.key === 'train/loss')?.value, 0.75);
  });

  it('resending the same points is de-duplicated by the server (idempotent log-batch)', async () => {
    const run = await client.createRun({ experimentId });
    const t0 = Date.now();
    const points: Metric[] = Array.from({ length: 10 }, (_, i) => ({ key: 'm', value: i / 3, timestamp: t0 + 10 * i, step: i }));
    await client.logBatch(run.runId, { metrics: points, params: [{ key: 'p', value: 'x' }] });
    await client.logBatch(run.runId, { metrics: [...points, ...points], params: [{ key: 'p', value: 'x' }] });
    assert.equal((await client.getMetricHistory(run.runId, 'm')).length, 10);
    // A genuinely new point (other timestamp) is not swallowed.
    await client.logBatch(run.runId, { metrics: [{ ...points[0], timestamp: t0 + 1 }] });
    assert.equal((await client.getMetricHistory(run.runId, 'm')).length, 11);
  });

  it('chunks a large logBatch within the limits; the server refuses an unchunked one', async () => {
    const run = await client.createRun({ experimentId });
    const t0 = Date.now();
    const metrics: Metric[] = Array.from({ length: 2500 }, (_, i) => ({ key: 'bulk', value: Math.sin(i), timestamp: t0 + i, step: i }));
    const params = Array.from({ length: 150 }, (_, i) => ({ key: `p${i}`, value: String(i) }));
    const tags = Array.from({ length: 120 }, (_, i) => ({ key: `t${i}`, value: 'v'.repeat(i) }));
    const chunks = chunkLogBatch({ metrics, params, tags });
    for (const c of chunks) {
      assert.ok(c.metrics.length <= 1000 && c.params.length <= 100 && c.tags.length <= 100);
      assert.ok(c.metrics.length + c.params.length + c.tags.length <= LOG_BATCH_LIMITS.entities);
    }
    assert.equal(chunks.reduce((s, c) => s + c.metrics.length, 0), 2500);
    // 2770 entities need at least ceil(2770/1000) = 3 requests.
    const { requests } = await client.logBatch(run.runId, { metrics, params, tags });
    assert.equal(requests, chunks.length);
    assert.ok(requests >= 3);
    const history = await client.getMetricHistory(run.runId, 'bulk', { pageSize: 1000 });
    assert.equal(history.length, 2500);
    assert.equal(new Set(history.map((m) => m.step)).size, 2500);
    const got = await client.getRun(run.runId);
    assert.equal(got.params.length, 150);
    assert.equal(got.tags.filter((t) => /^t\d+$/.test(t.key)).length, 120);
    // Negative control: the limit is real — 1001 metrics in one raw request is a 400.
    await assert.rejects(
      client.transport.request({ method: 'POST', path: '/api/2.0/mlflow/runs/log-batch', json: { run_id: run.runId, metrics: metrics.slice(0, 1001) } }),
      (e: unknown) => e instanceof MlflowError && e.status === 400 && e.errorCode === 'INVALID_PARAMETER_VALUE',
    );
  });

  it('metric key rules agree with the server: our invalid keys are 400 there, our valid keys are accepted', async () => {
    const run = await client.createRun({ experimentId });
    const invalid = ['a//b', '/a', 'a/', '..a', 'a/./b', 'a/../b', '.', '', 'x'.repeat(251), 'bad*char', 'semi;colon', 'tab\tkey'];
    const valid = ['privacy/epsilon_edgeworth', 'a:b c-d.e', '.hidden', 'x'.repeat(250), 'ünïcode_κλειδί', 'a/b/c'];
    for (const key of invalid) {
      assert.ok(keyProblem(key), `we accept ${JSON.stringify(key)}`);
      await assert.rejects(
        client.transport.request({ method: 'POST', path: '/api/2.0/mlflow/runs/log-batch', json: { run_id: run.runId, metrics: [{ key, value: 1, timestamp: 1, step: 0 }] } }),
        (e: unknown) => e instanceof MlflowError && e.status === 400,
        `server accepted ${JSON.stringify(key)}`,
      );
      await assert.rejects(client.logBatch(run.runId, { metrics: [{ key, value: 1, timestamp: 1, step: 0 }] }), InvalidArgumentError);
    }
    for (const key of valid) {
      assert.equal(keyProblem(key), undefined, key);
      await client.logBatch(run.runId, { metrics: [{ key, value: 1, timestamp: 1, step: 0 }] });
    }
  });

  it('refuses non-finite metric values client-side', async () => {
    const run = await client.createRun({ experimentId });
    for (const value of [Infinity, -Infinity, NaN]) {
      await assert.rejects(client.logBatch(run.runId, { metrics: [{ key: 'eps', value, timestamp: 1, step: 1 }] }), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'metrics[0].value');
    }
    assert.equal((await client.getMetricHistory(run.runId, 'eps')).length, 0);
  });

  it('experiment create is race-safe: concurrent creates of one name give one id', async () => {
    const name = unique('race');
    const ids = await Promise.all([client.getOrCreateExperiment(name), client.getOrCreateExperiment(name), client.getOrCreateExperiment(name)]);
    assert.equal(new Set(ids).size, 1);
    assert.equal((await client.getExperimentByName(name))?.experimentId, ids[0]);
    // The RESOURCE_ALREADY_EXISTS path, deterministically.
    assert.equal(await client.getOrCreateExperiment(name), ids[0]);
    await assert.rejects(client.createExperiment(name), (e: unknown) => e instanceof MlflowError && e.errorCode === 'RESOURCE_ALREADY_EXISTS');
    assert.equal(await client.getExperimentByName(unique('missing')), undefined);
  });

  it('updates, resumes (MLFLOW_RUN_ID) and searches runs', async () => {
    const run = await client.createRun({ experimentId, runName: 'to-resume', startTime: 1_000 });
    const killed = await client.updateRun(run.runId, { status: 'KILLED', endTime: 5_000 });
    assert.equal(killed.status, 'KILLED');
    assert.equal(killed.endTime, 5_000);
    const saved = process.env.MLFLOW_RUN_ID;
    process.env.MLFLOW_RUN_ID = run.runId;
    try {
      const resumed = await client.resumeRun();
      assert.equal(resumed.info.runId, run.runId);
      assert.equal(resumed.info.status, 'RUNNING');
    } finally {
      if (saved === undefined) delete process.env.MLFLOW_RUN_ID;
      else process.env.MLFLOW_RUN_ID = saved;
    }
    await client.setTag(run.runId, 'search_me', 'yes');
    const found = await client.searchRuns({ experimentIds: [experimentId], filter: "tags.search_me = 'yes'" });
    assert.deepEqual(found.runs.map((r) => r.info.runId), [run.runId]);
    await assert.rejects(client.getRun('0'.repeat(32)), (e: unknown) => e instanceof MlflowError && e.status === 404 && e.errorCode === 'RESOURCE_DOES_NOT_EXIST');
  });

  it('uploads artifacts through the proxied API and lists them', async () => {
    const run = await client.createRun({ experimentId });
    const ledger = '{"step":1}\n{"step":2}\n';
    await client.uploadArtifact(run, 'privacy/ledger.jsonl', ledger);
    await client.uploadArtifact(run, 'epsilon vs step.svg', '<svg xmlns="http://www.w3.org/2000/svg"/>');
    const root = await client.listArtifacts(run.runId);
    assert.deepEqual(root.map((f) => [f.path, f.isDir]).sort(), [['epsilon vs step.svg', false], ['privacy', true]]);
    const sub = await client.listArtifacts(run.runId, 'privacy');
    assert.deepEqual(sub, [{ path: 'privacy/ledger.jsonl', isDir: false, fileSize: Buffer.byteLength(ledger) }]);
    const back = await client.transport.request({ method: 'GET', path: `/api/2.0/mlflow-artifacts/artifacts/${artifactApiPath(run.artifactUri)}/privacy/ledger.jsonl` });
    assert.equal(back.body.toString('utf8'), ledger);
    await assert.rejects(client.uploadArtifact(run, '../escape.txt', 'x'), InvalidArgumentError);
  });
});

describe('MLflow client: faults (scripted fake server)', function () {
  this.timeout(30_000);
  let fake: FakeMlflow | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });
  const ok: FakeAction = { status: 200, json: { experiment: { experiment_id: '7', name: 'x', lifecycle_stage: 'active' } } };
  const fastRetries = { backoffFactor: 0.05, backoffJitter: 0 };

  it('retries 429 and waits for Retry-After', async () => {
    fake = await startFakeMlflow((_r, n) => (n === 0 ? { status: 429, json: { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'slow down' }, headers: { 'Retry-After': '1' } } : ok));
    const client = MlflowClient.fromEnv(fake.uri, noEnv, fastRetries);
    const exp = await client.getExperimentByName('x');
    assert.equal(exp?.experimentId, '7');
    assert.equal(fake.requests.length, 2);
    // Without Retry-After the first retry is immediate (urllib3: 0 s), so a gap ≥ 0.9 s shows the header was honoured.
    assert.ok(fake.requests[1].at - fake.requests[0].at >= 900, `gap ${fake.requests[1].at - fake.requests[0].at} ms`);
    client.close();
  });

  it('retries a dropped connection and 503s, then succeeds', async () => {
    fake = await startFakeMlflow((_r, n) => (n === 0 ? { drop: true } : n <= 2 ? { status: 503, body: 'unavailable' } : ok));
    const client = MlflowClient.fromEnv(fake.uri, noEnv, fastRetries);
    assert.equal((await client.getExperimentByName('x'))?.experimentId, '7');
    assert.equal(fake.requests.length, 4);
    client.close();
  });

  it('gives up after MLFLOW_HTTP_REQUEST_MAX_RETRIES with the last error', async () => {
    fake = await startFakeMlflow(() => ({ status: 503, body: 'down' }));
    const client = MlflowClient.fromEnv(fake.uri, { MLFLOW_HTTP_REQUEST_MAX_RETRIES: '2', MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: '0', MLFLOW_HTTP_REQUEST_BACKOFF_JITTER: '0' });
    await assert.rejects(client.getRun('r'), (e: unknown) => e instanceof MlflowError && e.status === 503 && e.errorCode === 'HTTP_503' && e.endpoint === 'GET /api/2.0/mlflow/runs/get');
    assert.equal(fake.requests.length, 3);
    client.close();
  });

  it('times out a hanging request (MLFLOW_HTTP_REQUEST_TIMEOUT)', async () => {
    fake = await startFakeMlflow(() => ({ hang: true }));
    const client = MlflowClient.fromEnv(fake.uri, { MLFLOW_HTTP_REQUEST_TIMEOUT: '0.3', MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0' });
    await assert.rejects(client.getRun('r'), (e: unknown) => e instanceof MlflowError && e.errorCode === 'TIMEOUT' && e.status === undefined);
    client.close();
  });

  it('the request timeout is an inactivity timeout: a response that keeps arriving for longer than it is received whole', async () => {
    // 40 pieces, one every 50 ms: ~2 s in all, against a 1 s timeout that no gap comes near (a total per-attempt timer
    // would cut it off at 1 s).
    const body = 'x'.repeat(4000);
    fake = await startFakeMlflow(() => ({ status: 200, body, trickle: { chunks: 40, everyMs: 50 } }));
    const client = MlflowClient.fromEnv(fake.uri, { MLFLOW_HTTP_REQUEST_TIMEOUT: '1', MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0' });
    const t0 = Date.now();
    const res = await client.transport.request({ method: 'GET', path: '/api/2.0/mlflow/slow' });
    assert.ok(Date.now() - t0 >= 1000, 'the response took longer than the timeout');
    assert.equal(res.body.toString('utf8'), body);
    client.close();
  });

  for (const status of [401, 403]) {
    it(`${status} is a typed error, not retried, and never shows the secret`, async () => {
      const password = 'pw-Sup3r-S3cret';
      const token = 'tok-0123456789abcdef';
      // A hostile/buggy server that echoes the credentials back in its error body.
      fake = await startFakeMlflow((r) => ({ status, json: { error_code: status === 401 ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED', message: `denied for ${r.headers.authorization} password=${password} token=${token}` } }));
      for (const env of [{ MLFLOW_TRACKING_USERNAME: 'alice', MLFLOW_TRACKING_PASSWORD: password }, { MLFLOW_TRACKING_TOKEN: token }]) {
        const countBefore: number = fake.requests.length;
        const client = MlflowClient.fromEnv(fake.uri, env, fastRetries);
        const err = await client.logParam('r', 'k', 'v').then(
          () => assert.fail('no error'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof MlflowError);
        assert.equal(err.status, status);
        assert.equal(err.retryable, false);
        assert.equal(fake.requests.length, countBefore + 1, 'retried');
        const shown = `${err.message} ${String(err.cause ?? '')} ${err.stack ?? ''}`;
        const secrets = 'MLFLOW_TRACKING_TOKEN' in env ? [token] : [password, Buffer.from(`alice:${password}`).toString('base64')];
        for (const secret of secrets) assert.ok(!shown.includes(secret), `secret in: ${shown}`);
        const auth: string | undefined = fake.requests[countBefore].headers.authorization;
        assert.equal(auth, 'MLFLOW_TRACKING_TOKEN' in env ? `Bearer ${token}` : `Basic ${Buffer.from(`alice:${password}`).toString('base64')}`);
        client.close();
      }
    });
  }

  it('takes credentials out of the tracking URI and keeps them out of messages', async () => {
    fake = await startFakeMlflow(() => ({ status: 404, json: { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no' } }));
    const client = MlflowClient.fromEnv(fake.uri.replace('http://', 'http://bob:hunter2-pw@'), noEnv);
    assert.ok(!client.trackingUri.includes('hunter2'));
    await assert.rejects(client.getRun('r'), (e: unknown) => e instanceof MlflowError && !e.message.includes('hunter2'));
    assert.equal(fake.requests[0].headers.authorization, `Basic ${Buffer.from('bob:hunter2-pw').toString('base64')}`);
    client.close();
  });

  it('verifies TLS: a self-signed server fails (not retried) unless trusted via a CA file or MLFLOW_TRACKING_INSECURE_TLS=true', async () => {
    fake = await startFakeMlflow(() => ok, { tls: tlsFixture });
    const strict = MlflowClient.fromEnv(fake.uri, { MLFLOW_TRACKING_INSECURE_TLS: 'false', ...{ MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: '0' } });
    await assert.rejects(strict.getExperimentByName('x'), (e: unknown) => e instanceof MlflowError && e.errorCode === 'TLS_ERROR' && !e.retryable);
    assert.equal(fake.requests.length, 0);
    for (const env of [{ MLFLOW_TRACKING_INSECURE_TLS: 'true' }, { MLFLOW_TRACKING_SERVER_CERT_PATH: certPath }]) {
      const c = MlflowClient.fromEnv(fake.uri, env);
      assert.equal((await c.getExperimentByName('x'))?.experimentId, '7');
      c.close();
    }
    strict.close();
  });

  it('tunnels https through HTTPS_PROXY with CONNECT', async () => {
    fake = await startFakeMlflow(() => ok, { tls: tlsFixture });
    const proxy = await startConnectProxy();
    try {
      const c = MlflowClient.fromEnv(fake.uri, { HTTPS_PROXY: proxy.uri, MLFLOW_TRACKING_SERVER_CERT_PATH: certPath, MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0' });
      assert.equal((await c.getExperimentByName('x'))?.experimentId, '7');
      assert.deepEqual(proxy.targets, [fake.uri.replace('https://', '')]);
      assert.equal(fake.requests.length, 1);
      c.close();
    } finally {
      await proxy.close();
    }
  });

  it('sends plain-http requests through HTTP_PROXY unless NO_PROXY matches', async () => {
    // The fake acts as the proxy: a proxied request line carries the absolute target URL.
    fake = await startFakeMlflow(() => ok);
    const target = 'http://mlflow.internal.example:5000';
    const viaProxy = MlflowClient.fromEnv(target, { HTTP_PROXY: fake.uri, MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0' });
    await viaProxy.getExperimentByName('x');
    assert.equal(fake.requests[0].url, `${target}/api/2.0/mlflow/experiments/get-by-name?experiment_name=x`);
    const direct = MlflowClient.fromEnv(fake.uri, { HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: 'localhost,127.0.0.1', MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0' });
    await direct.getExperimentByName('x');
    assert.equal(fake.requests[1].url, '/api/2.0/mlflow/experiments/get-by-name?experiment_name=x');
    viaProxy.close();
    direct.close();
  });
});

describe('MLflow client: settings and policies', () => {
  it('reads MLflow env vars; insecure TLS only for true/1', () => {
    const s = httpSettingsFromEnv('https://h.example/', noEnv);
    assert.deepEqual([s.baseUrl, s.maxRetries, s.backoffFactor, s.backoffJitter, s.timeoutMs, s.insecureTls], ['https://h.example', 7, 2, 1, 120_000, false]);
    for (const [v, want] of [['true', true], ['TRUE', true], ['1', true], ['false', false], ['yes', false], ['', false]] as const) {
      assert.equal(httpSettingsFromEnv('https://h', { MLFLOW_TRACKING_INSECURE_TLS: v }).insecureTls, want, v);
    }
    assert.throws(() => httpSettingsFromEnv('https://h', { MLFLOW_HTTP_REQUEST_MAX_RETRIES: '11' }), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'MLFLOW_HTTP_REQUEST_MAX_RETRIES');
    assert.throws(() => httpSettingsFromEnv('https://h', { MLFLOW_HTTP_REQUEST_TIMEOUT: 'soon' }), InvalidArgumentError);
    assert.throws(() => httpSettingsFromEnv('file:///tmp/mlruns', noEnv), InvalidArgumentError);
    assert.throws(() => MlflowClient.fromEnv(undefined, noEnv), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'trackingUri');
  });

  it('backs off like urllib3 (0, 4, 8, … s, capped at 120 s) and honours Retry-After', () => {
    const s = { backoffFactor: 2, backoffJitter: 0, maxBackoffMs: 120_000 };
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelayMs(s, n)), [0, 4000, 8000, 16000, 32000, 64000, 120000, 120000]);
    assert.equal(backoffDelayMs(s, 3, 2500), 2500);
    assert.equal(backoffDelayMs(s, 3, 3_600_000), 120_000);
    const jittered = backoffDelayMs({ ...s, backoffJitter: 1 }, 2);
    assert.ok(jittered >= 4000 && jittered < 5000);
    assert.equal(parseRetryAfter('3'), 3000);
    assert.equal(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString(), Date.now()) !== undefined, true);
    assert.equal(parseRetryAfter('soon'), undefined);
  });

  it('matches NO_PROXY entries by host suffix and port', () => {
    assert.equal(bypassesProxy('a.example.com', '443', '.example.com'), true);
    assert.equal(bypassesProxy('example.com', '443', 'example.com'), true);
    assert.equal(bypassesProxy('badexample.com', '443', 'example.com'), false);
    assert.equal(bypassesProxy('h', '5000', 'h:5001'), false);
    assert.equal(bypassesProxy('h', '5000', 'h:5000'), true);
    assert.equal(bypassesProxy('anything', '80', '*'), true);
    assert.equal(bypassesProxy('h', '80', undefined), false);
  });

  it('maps artifact URIs to the proxied artifact API path', () => {
    assert.equal(artifactApiPath('mlflow-artifacts:/1/abc/artifacts'), '1/abc/artifacts');
    assert.equal(artifactApiPath('mlflow-artifacts://host:5000/1/abc/artifacts/'), '1/abc/artifacts');
    assert.throws(() => artifactApiPath('s3://bucket/1/abc'), InvalidArgumentError);
  });

  it('transport.with keeps the server and credentials', () => {
    const t = new HttpTransport(httpSettingsFromEnv('http://h:1', { MLFLOW_TRACKING_TOKEN: 'tkn-123' }));
    const u = t.with({ maxRetries: 0 });
    assert.equal(u.settings.token, 'tkn-123');
    assert.equal(u.settings.maxRetries, 0);
    assert.equal(u.redact('x tkn-123 y'), 'x *** y');
  });
});
