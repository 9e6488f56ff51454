/**
 * Outage test against a REAL MLflow server started by this file (test/support/mlflow-server.ts): a sink records
 * ~1 point per 50 ms while the server is stopped for ≥ 10 s and restarted on the same port with the same SQLite
 * database; afterwards `metrics/get-history` must hold every recorded point exactly once, and the outage must have
 * been reported by exactly one warning.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { TrackingSink, type SinkState } from '../src/tracking/sink.ts';
import { startMlflowServer, type MlflowServer } from './support/mlflow-server.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('TrackingSink survives a server outage (real server stopped ≥ 10 s and restarted)', function () {
  this.timeout(180_000);
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
    // The "training loop": one point per 50 ms, never awaiting the sink.
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

    await sleep(2000);
    assert.ok(sink.stats.requests > 0 && sink.state === 'connected', 'points reached the server before the outage');
    const stoppedAt = Date.now();
    await server.stop();
    await sleep(10_000);
    const downForMs = Date.now() - stoppedAt;
    const pendingDuringOutage = sink.pendingBytes;
    await server.start(); // same port, same sqlite file, same artifact root (~13 s on 2 cores; the loop goes on)
    await sleep(2000);
    recording = false;
    await loop;
    const closed = await sink.close({ deadlineMs: 30_000 });

    assert.ok(downForMs >= 10_000);
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
    assert.ok(recorded.size >= 400, `${recorded.size} points recorded across the outage`);
    assert.equal((await client.getRun(closed.remote!.runId)).info.status, 'FINISHED');
    client.close();
  });
});
