/**
 * Outage test against a REAL MLflow server started by this file (test/support/mlflow-server.ts): a sink records
 * points (paced by a short sleep) while the server is stopped for ≥ 10 s and restarted on the same port with the same
 * SQLite database; afterwards `metrics/get-history` must hold every recorded point exactly once, and the outage must
 * have been reported by exactly one warning.
 *
 * Nothing here depends on how fast the machine is: each phase ends on a condition the test controls (points seen by
 * the server before the outage, at least POINTS_PER_PHASE points recorded while it was down and again after it came
 * back), never on how many points happened to fit in a fixed time window.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { TrackingSink, type SinkState } from '../src/tracking/sink.ts';
import { startMlflowServer, type MlflowServer } from './support/mlflow-server.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Points the test requires in each phase (before, during and after the outage). */
const POINTS_PER_PHASE = 50;

/** Resolve once `condition()` holds (polled every 25 ms); no deadline of its own: mocha's timeout bounds the test. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(25);
}

describe('TrackingSink survives a server outage (real server stopped ≥ 10 s and restarted)', function () {
  this.timeout(600_000);
  let server: MlflowServer;
  let runDir: string;

  before(async () => {
    server = await startMlflowServer();
    runDir = mkdtempSync(join(tmpdir(), 'ewtune-outage-'));
  });
  after(async () => {
    await server?.dispose();
    if (runDir) rmSync(runDir, { recursive: true, force: true });
  });

  it('loses nothing and duplicates nothing', async () => {
    const client = MlflowClient.fromEnv(server.uri, {});
    const warnings: string[] = [];
    const sink = await TrackingSink.open({ runDir, client, experimentName: 'outage', flushIntervalMs: 250, retryInitialMs: 250, retryMaxMs: 2000, requestTimeoutMs: 5000, warn: (m) => warnings.push(m) });
    const recorded = new Map<number, number>();
    const states = new Set<SinkState>();
    let step = 0;
    let recording = true;
    // The "training loop": a point, then a 50 ms pause (pacing only; no assertion counts on it), never awaiting the sink.
    const loop = (async () => {
      while (recording) {
        step++;
        const value = Math.log1p(step) / 7;
        sink.record('privacy/epsilon_edgeworth', value, step);
        recorded.set(step, value);
        states.add(sink.state);
        await sleep(50);
      }
    })();

    // Before: the server has acknowledged points (not a guess of how long that takes).
    await until(() => step >= POINTS_PER_PHASE && sink.stats.requests > 0 && sink.state === 'connected');
    assert.ok(sink.stats.requests > 0 && sink.state === 'connected', 'points reached the server before the outage');
    const stoppedAt = Date.now();
    await server.stop();
    const stepAtStop = step;
    // During: down for at least 10 s (measured here), the sink has noticed, and POINTS_PER_PHASE points were recorded.
    await until(() => Date.now() - stoppedAt >= 10_000 && sink.state === 'retrying' && step - stepAtStop >= POINTS_PER_PHASE);
    const downForMs = Date.now() - stoppedAt;
    const recordedDuringOutage = step - stepAtStop;
    const pendingDuringOutage = sink.pendingBytes;
    await server.start(); // same port, same sqlite file, same artifact root (~13 s on 2 cores; the loop goes on)
    const stepAtRestart = step;
    // After: the sink is connected again and POINTS_PER_PHASE more points were recorded.
    await until(() => sink.state === 'connected' && step - stepAtRestart >= POINTS_PER_PHASE);
    recording = false;
    await loop;
    const closed = await sink.close({ deadlineMs: 120_000 });

    assert.ok(downForMs >= 10_000);
    assert.ok(recordedDuringOutage >= POINTS_PER_PHASE);
    assert.ok(pendingDuringOutage > 0, 'points were spooled while the server was down');
    assert.ok(states.has('retrying'), 'the sink noticed the outage');
    assert.equal(closed.complete, true);
    assert.equal(closed.pendingBytes, 0);
    assert.equal(warnings.length, 1, warnings.join('\n'));

    const history = await client.getMetricHistory(closed.remote!.runId, 'privacy/epsilon_edgeworth');
    const steps = history.map((m) => m.step);
    assert.equal(new Set(steps).size, steps.length, 'no duplicates');
    assert.equal(history.length, recorded.size, 'no loss');
    for (const m of history) assert.equal(m.value, recorded.get(m.step));
    assert.ok(recorded.size >= 3 * POINTS_PER_PHASE, `${recorded.size} points recorded across the outage`);
    assert.equal((await client.getRun(closed.remote!.runId)).info.status, 'FINISHED');
    client.close();
  });
});
