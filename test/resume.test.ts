/**
 * Resumable runs (`ewtune train --resume <run dir>`, plugin/resume.ts): the real CLI on a tiny config (cpu backend),
 * SIGKILLed when its ledger shows a randomly chosen step (node:crypto randomInt; the kill waits on that condition,
 * never on a guessed sleep), then resumed; 20 kills, then the run completes. The final ledger's ε equals that of an
 * uninterrupted run with the same number of ledger steps (and the composition of that many steps); the ledger only
 * grows; a checkpoint is never ahead of the ledger. With a real MLflow server: the same run ends FINISHED with no
 * metric step logged twice; a RUNNING run whose process is dead is marked FAILED/crashed by `ewtune mlflow replay`.
 * Unit checks: checkpoint round trip (model + Adam state), corruption refused, process liveness.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PrivacyLedger } from '../src/accounting/ledger.ts';
import { pldEpsilon } from '../src/accounting/pld/index.ts';
import { main } from '../src/cli/main.ts';
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { processIdentity, processLiveness } from '../src/tracking/liveness.ts';
import { readRunMeta, readSpool, type SpoolRecord } from '../src/tracking/spool.ts';
import { CheckpointError, readCheckpointManifest, restoreCheckpoint, writeCheckpoint } from '../src/train/checkpoint.ts';
import { dpFit } from '../src/train/index.ts';
import type { RunResult } from '../plugin/run.ts';
import { sharedMlflowServer } from './support/mlflow-server.ts';
import { tinyData, tinyModel } from './fixtures/dpfit-tiny.ts';

const WORDS = ['the', 'money', 'free', 'meeting', 'offer', 'project', 'click', 'report', 'win', 'team', 'cash', 'schedule'];
const SAMPLE_RATE_BATCH = 8;
const NOISE = 1.1;
const DELTA = 1e-5;

/** A tiny labelled JSONL file and a config for it; returns the config path. */
function writeTinyConfig(dir: string, training: Record<string, unknown>, tracking: Record<string, unknown> = {}): string {
  const lines: string[] = [];
  for (let i = 0; i < 64; i++) {
    const label = i % 2;
    lines.push(JSON.stringify({ text: Array.from({ length: 6 }, (_, j) => WORDS[(i * 7 + j * 3 + label) % WORDS.length]).join(' '), label }));
  }
  writeFileSync(join(dir, 'data.jsonl'), `${lines.join('\n')}\n`);
  const config = {
    name: `resume-${randomUUID().slice(0, 8)}`, experimentName: 'ewtune-tests',
    data: { kind: 'jsonl', path: 'data.jsonl', maxTokens: 6, vocabularySize: 500, testFraction: 0.1 },
    model: { kind: 'transformer-classifier', embedding: 'random', dModel: 4, heads: 1, ffnDim: 4, layers: 1 },
    training: { expectedBatchSize: SAMPLE_RATE_BATCH, l2NormClip: 1, optimizer: 'adam', learningRate: 0.01, backend: 'cpu', evaluate: false, ...training },
    privacy: { noiseMultiplier: NOISE, delta: DELTA },
    tracking: { runDir: join(dir, 'runs'), certifiedEveryFraction: 1, ...tracking },
  };
  const path = join(dir, `config-${randomUUID().slice(0, 8)}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

interface Child {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const childEnv = { ...process.env, ...env };
  if (!('MLFLOW_TRACKING_URI' in env)) delete childEnv.MLFLOW_TRACKING_URI;
  const child = spawn(process.execPath, ['bin/ewtune.mjs', ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, exited };
}

/** Step records in a ledger file that a live process may be appending to (complete lines only; nothing is modified). */
function ledgerStepsInFile(path: string): number {
  if (!existsSync(path)) return 0;
  const text = readFileSync(path, 'utf8');
  let n = 0;
  for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) if (line.includes('"type":"step"')) n++;
  return n;
}

/** Steps of a ledger after its writer is gone (opening recovers a torn last line, as the resume does). */
function ledgerSteps(path: string): number {
  const ledger = PrivacyLedger.openSync(path);
  try {
    return ledger.steps;
  } finally {
    ledger.closeSync();
  }
}

function ledgerEpsilon(path: string): number {
  const ledger = PrivacyLedger.openSync(path);
  try {
    return ledger.replayEpsilon(DELTA, 'pld').epsilon;
  } finally {
    ledger.closeSync();
  }
}

/** Wait until `pred()` holds, polling; fails if the child exits first or after `timeoutMs` (a hang guard, not a timing). */
async function waitUntil(pred: () => boolean, c: Child, what: string, timeoutMs = 120_000): Promise<void> {
  let exited = false;
  void c.exited.then(() => (exited = true));
  const t0 = Date.now();
  while (!pred()) {
    if (exited) {
      const r = await c.exited;
      throw new Error(`the child exited (code ${r.code}) before ${what}:\n${r.stderr.slice(-2000)}`);
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`hang: ${what} not seen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The run directory the first session creates under `parent`. */
function onlyRunDir(parent: string): string | undefined {
  if (!existsSync(parent)) return undefined;
  const dirs = readdirSync(parent);
  return dirs.length === 1 ? join(parent, dirs[0]) : undefined;
}

function spoolRecords(dir: string): SpoolRecord[] {
  return readSpool(dir, 0).records.map((r) => r.record);
}

async function killAtLedgerStep(c: Child, ledgerPath: string, target: number): Promise<void> {
  await waitUntil(() => ledgerStepsInFile(ledgerPath) >= target, c, `ledger step ${target}`);
  c.child.kill('SIGKILL');
  const r = await c.exited;
  assert.equal(r.signal, 'SIGKILL', `expected a SIGKILL; exit code ${r.code}:\n${r.stderr.slice(-2000)}`);
}

describe('resumable runs (ewtune train --resume)', function () {
  this.timeout(600_000);
  const dirs: string[] = [];
  const newDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'ewtune-resume-'));
    dirs.push(d);
    return d;
  };
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('20 SIGKILLs at random ledger steps, resumed each time: ledger grows, checkpoint never ahead, final ε = an uninterrupted run with as many steps', async () => {
    const dir = newDir();
    const planned = 200;
    const configPath = writeTinyConfig(dir, { steps: planned, checkpointEverySteps: 3 });
    let c = spawnCli(['train', configPath, '--json']);
    await waitUntil(() => onlyRunDir(join(dir, 'runs')) !== undefined, c, 'the run directory');
    const runDir = onlyRunDir(join(dir, 'runs')) as string;
    const ledgerPath = join(runDir, 'artifacts', 'privacy', 'ledger.jsonl');
    let lastLedger = 0;
    let lastUpdates = 0;
    for (let kill = 0; kill < 20; kill++) {
      const target = ledgerStepsInFile(ledgerPath) + randomInt(1, 5);
      await killAtLedgerStep(c, ledgerPath, target);
      const L = ledgerSteps(ledgerPath);
      const manifest = readCheckpointManifest(join(runDir, 'checkpoint'));
      assert.ok(manifest, `kill ${kill}: a checkpoint exists (one is written before the first step)`);
      assert.ok(L >= target && L > lastLedger, `kill ${kill}: the ledger only grows (${lastLedger} → ${L})`);
      assert.ok(manifest.ledgerSteps <= L, `kill ${kill}: checkpoint at ledger step ${manifest.ledgerSteps} is ahead of the ledger (${L})`);
      assert.ok(manifest.updates <= manifest.ledgerSteps && manifest.updates >= lastUpdates, `kill ${kill}: updates ${manifest.updates}`);
      lastLedger = L;
      lastUpdates = manifest.updates;
      c = spawnCli(['train', '--resume', runDir, '--json']);
    }
    const done = await c.exited;
    assert.equal(done.code, 0, done.stderr.slice(-3000));
    const result = JSON.parse(done.stdout) as RunResult;
    assert.equal(result.status, 'FINISHED');
    assert.equal(result.stopReason, 'completed');
    const finalSteps = ledgerSteps(ledgerPath);
    // The last session re-did everything after its checkpoint and went on to the planned updates; its ledger continued.
    assert.equal(finalSteps, lastLedger + planned - lastUpdates);
    assert.equal(result.steps, finalSteps);
    assert.equal(readCheckpointManifest(join(runDir, 'checkpoint'))?.updates, planned);
    assert.ok(finalSteps > planned, 'the re-done steps are accounted again (over-counting, never under-counting)');

    // An uninterrupted run with the same number of ledger steps: the same ε, and the ε of that many steps.
    const uninterrupted = spawnCli(['train', writeTinyConfig(dir, { steps: finalSteps, checkpointEverySteps: 1000 }), '--json']);
    const u = await uninterrupted.exited;
    assert.equal(u.code, 0, u.stderr.slice(-3000));
    const uResult = JSON.parse(u.stdout) as RunResult;
    const uLedger = join(uResult.runDir, 'artifacts', 'privacy', 'ledger.jsonl');
    assert.equal(ledgerSteps(uLedger), finalSteps);
    const eps = ledgerEpsilon(ledgerPath);
    assert.equal(eps, ledgerEpsilon(uLedger));
    assert.equal(eps, pldEpsilon([{ sampleRate: result.sampleRate, noiseMultiplier: NOISE, count: finalSteps }], DELTA).epsilon);
    assert.equal(result.epsilonCertified?.epsilon, eps, 'the run reports the ε of the whole ledger (it continued, not restarted)');

    // Nothing left to do: a further resume is refused before it touches the run.
    const again = await spawnCli(['train', '--resume', runDir]).exited;
    assert.equal(again.code, 1);
    assert.match(again.stderr, /nothing to do: the checkpoint holds all 200 planned updates/);
  });

  describe('with a real MLflow server', () => {
    let uri: string;
    let client: MlflowClient;
    before(async () => {
      uri = await sharedMlflowServer();
      client = MlflowClient.fromEnv(uri, {});
    });
    after(() => client?.close());

    it('SIGKILL then resume: the same MLflow run, RUNNING → FINISHED, no metric step logged twice', async () => {
      const dir = newDir();
      const configPath = writeTinyConfig(dir, { steps: 40, checkpointEverySteps: 4 }, { trackingUri: uri });
      const c = spawnCli(['train', configPath, '--json']);
      await waitUntil(() => onlyRunDir(join(dir, 'runs')) !== undefined, c, 'the run directory');
      const runDir = onlyRunDir(join(dir, 'runs')) as string;
      const ledgerPath = join(runDir, 'artifacts', 'privacy', 'ledger.jsonl');
      await killAtLedgerStep(c, ledgerPath, randomInt(5, 16));
      const killedAt = ledgerSteps(ledgerPath);
      const remote = readRunMeta(runDir).remotes.find((r) => r.trackingUri === uri);
      assert.ok(remote, 'run.json names the server run');
      assert.equal((await client.getRun(remote.runId)).info.status, 'RUNNING', 'a killed run is left RUNNING by the dead process');

      const r = await spawnCli(['train', '--resume', runDir, '--json']).exited;
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      const result = JSON.parse(r.stdout) as RunResult;
      assert.equal(result.runId, remote.runId, 'the same MLflow run');
      assert.equal(result.status, 'FINISHED');
      assert.ok(result.complete);
      const run = await client.getRun(remote.runId);
      assert.equal(run.info.status, 'FINISHED');
      const tags = Object.fromEntries(run.tags.map((t) => [t.key, t.value]));
      assert.equal(tags['ewtune.stop_reason'], 'completed');
      assert.equal(tags['ewtune.resumes'], '1');
      assert.equal(Number(tags['ewtune.redone_steps']), result.steps - 40);
      // The crash was recorded FAILED/crashed before the resumed session started.
      const records = spoolRecords(runDir);
      const crashed = records.findIndex((x) => x.t === 'g' && x.k === 'ewtune.stop_reason' && x.v === 'crashed');
      const failed = records.findIndex((x) => x.t === 'e' && x.status === 'FAILED');
      const resumed = records.findIndex((x) => x.t === 'g' && x.k === 'ewtune.resumes');
      assert.ok(crashed >= 0 && crashed < failed && failed < resumed, `crash marker order ${crashed} < ${failed} < ${resumed}`);

      for (const key of ['privacy/epsilon_edgeworth', 'privacy/epsilon_rdp', 'privacy/epsilon_certified', 'train/loss', 'train/batch_size']) {
        const steps = (await client.getMetricHistory(remote.runId, key)).map((m) => m.step).sort((a, b) => a - b);
        assert.equal(new Set(steps).size, steps.length, `${key}: a step logged twice: ${steps.join(',')}`);
        assert.ok(steps.every((s) => s >= 1 && s <= result.steps), key);
      }
      const eps = (await client.getMetricHistory(remote.runId, 'privacy/epsilon_edgeworth')).map((m) => m.step);
      for (let s = killedAt + 1; s <= result.steps; s++) assert.ok(eps.includes(s), `step ${s} of the resumed session logged`);
      assert.ok(eps.filter((s) => s <= killedAt).length >= killedAt - 1, 'the killed session\'s points reached the server (at most the one in flight missing)');
    });

    it('`ewtune mlflow replay` leaves a live run alone and marks a RUNNING run with a dead process FAILED, ewtune.stop_reason=crashed', async () => {
      const dir = newDir();
      const configPath = writeTinyConfig(dir, { steps: 100_000 }, { trackingUri: uri });
      const c = spawnCli(['train', configPath, '--json']);
      await waitUntil(() => onlyRunDir(join(dir, 'runs')) !== undefined, c, 'the run directory');
      const runDir = onlyRunDir(join(dir, 'runs')) as string;
      const ledgerPath = join(runDir, 'artifacts', 'privacy', 'ledger.jsonl');
      await waitUntil(() => ledgerStepsInFile(ledgerPath) >= 2, c, 'ledger step 2');
      const out: string[] = [];
      const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
      // While the process lives: nothing is marked.
      assert.equal(await main(['mlflow', 'replay', runDir, '--tracking-uri', uri, '--json'], io), 0, out.join('\n'));
      assert.equal(JSON.parse(out.pop() as string).crashed, false);
      const runId = readRunMeta(runDir).remotes.find((r) => r.trackingUri === uri)?.runId as string;
      assert.equal((await client.getRun(runId)).info.status, 'RUNNING');

      c.child.kill('SIGKILL');
      assert.equal((await c.exited).signal, 'SIGKILL');
      assert.equal((await client.getRun(runId)).info.status, 'RUNNING', 'nothing ends a SIGKILLed run by itself');
      assert.equal(await main(['mlflow', 'replay', runDir, '--tracking-uri', uri, '--json'], io), 0, out.join('\n'));
      assert.equal(JSON.parse(out.pop() as string).crashed, true);
      const run = await client.getRun(runId);
      assert.equal(run.info.status, 'FAILED');
      assert.equal(run.tags.find((t) => t.key === 'ewtune.stop_reason')?.value, 'crashed');
      // Idempotent: a second replay finds the session ended.
      assert.equal(await main(['mlflow', 'replay', runDir, '--tracking-uri', uri, '--json'], io), 0);
      assert.equal(JSON.parse(out.pop() as string).crashed, false);
      assert.equal((await client.getRun(runId)).info.status, 'FAILED');
    });
  });

  describe('checkpoints and liveness (unit)', () => {
    before(async () => {
      await tf.setBackend('cpu');
    });

    it('a checkpoint restores the model weights and the Adam state exactly (the next update is identical)', async () => {
      const dir = newDir();
      const data = tinyData(32);
      const model = tinyModel();
      const adam = tf.train.adam(0.01);
      await dpFit(model, data, { steps: 3, expectedBatchSize: 8, l2NormClip: 1, noiseMultiplier: 1.1, optimizer: adam, loss: 'sparseCategoricalCrossentropy' });
      await writeCheckpoint(dir, { model, optimizer: adam, updates: 3, ledgerSteps: 3 });
      const model2 = tinyModel();
      const adam2 = tf.train.adam(0.01);
      const manifest = await restoreCheckpoint(dir, model2, adam2);
      assert.equal(manifest?.updates, 3);
      const a = model.getWeights().map((w) => Array.from(w.dataSync()));
      assert.deepEqual(model2.getWeights().map((w) => Array.from(w.dataSync())), a);
      // One identical gradient applied to both: equal results only if moments and the iteration count were restored.
      const grads = (m: tf.LayersModel): Array<{ name: string; tensor: tf.Tensor }> => m.trainableWeights.map((w, i) => ({ name: (w.read() as tf.Variable).name, tensor: tf.fill(w.shape as number[], 0.1 * (i + 1)) }));
      const g1 = grads(model);
      const g2 = grads(model2);
      adam.applyGradients(g1);
      adam2.applyGradients(g2);
      assert.deepEqual(model2.getWeights().map((w) => Array.from(w.dataSync())), model.getWeights().map((w) => Array.from(w.dataSync())));
      // Weights restored but a fresh Adam (no moments, iteration 0): the same gradient gives another step (the check can fail).
      const adamFresh = tf.train.adam(0.01);
      const m4 = tinyModel();
      await restoreCheckpoint(dir, m4); // weights only
      const g4 = grads(m4);
      adamFresh.applyGradients(g4);
      assert.notDeepEqual(m4.getWeights().map((w) => Array.from(w.dataSync())), model2.getWeights().map((w) => Array.from(w.dataSync())));
      tf.dispose([...g1, ...g2, ...g4].map((g) => g.tensor));
      for (const o of [adam, adam2, adamFresh]) o.dispose();
      for (const m of [model, model2, m4]) m.dispose();
      tf.dispose([data.x, data.y]);
    });

    it('a corrupt or mismatched checkpoint is refused with CheckpointError', async () => {
      const dir = newDir();
      const model = tinyModel();
      const m = await writeCheckpoint(dir, { model, updates: 1, ledgerSteps: 1 });
      const bin = join(dir, m.file);
      const bytes = readFileSync(bin);
      bytes[10] ^= 0xff;
      writeFileSync(bin, bytes);
      await assert.rejects(restoreCheckpoint(dir, tinyModel()), (e: unknown) => e instanceof CheckpointError && /SHA-256/.test(e.message));
      await writeCheckpoint(dir, { model, updates: 2, ledgerSteps: 2 });
      assert.deepEqual(readdirSync(dir).sort(), ['manifest.json', 'weights-2.bin'], 'older binaries are removed after the commit');
      const other = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [5] })] });
      await assert.rejects(restoreCheckpoint(dir, other), (e: unknown) => e instanceof CheckpointError);
      model.dispose();
      other.dispose();
    });

    it('stores only trainable weights, fingerprints frozen ones, and refuses a model whose frozen weights differ', async () => {
      const dir = newDir();
      const build = (frozenValue: number) => {
        const m = tf.sequential({ layers: [
          tf.layers.dense({ units: 64, inputShape: [64], name: 'frozen_base', kernelInitializer: tf.initializers.constant({ value: frozenValue }) }),
          tf.layers.dense({ units: 2, name: 'head' }),
        ] });
        m.getLayer('frozen_base').trainable = false;
        return m;
      };
      const model = build(0.01);
      const m = await writeCheckpoint(dir, { model, updates: 1, ledgerSteps: 1 });
      assert.deepEqual(m.tensors.map((t) => t.name), model.trainableWeights.map((w) => w.originalName), 'the trainable weights only');
      assert.equal(m.bytes, (64 * 2 + 2) * 4, 'the frozen 64×64 kernel and its bias are not in the binary');
      assert.deepEqual(m.frozen?.map((f) => f.shape), [[64, 64], [64]]);
      const same = build(0.01);
      await restoreCheckpoint(dir, same);
      assert.deepEqual(same.getLayer('head').getWeights().map((w) => Array.from(w.dataSync())),
        model.getLayer('head').getWeights().map((w) => Array.from(w.dataSync())));
      const otherBase = build(0.02);
      await assert.rejects(restoreCheckpoint(dir, otherBase), (e: unknown) => e instanceof CheckpointError && /frozen weight 0/.test(e.message));
      for (const x of [model, same, otherBase]) x.dispose();
    });

    it('liveness: this process is alive; an exited pid, a reused pid (other start time) are dead; another host is unknown', async () => {
      const me = processIdentity();
      assert.equal(processLiveness(me), 'alive');
      const c = spawn(process.execPath, ['-e', '']);
      const pid = c.pid as number;
      await new Promise((r) => c.on('exit', r));
      assert.equal(processLiveness({ pid, host: hostname() }), 'dead');
      if (me.startTicks !== undefined) assert.equal(processLiveness({ ...me, startTicks: String(Number(me.startTicks) + 1) }), 'dead');
      assert.equal(processLiveness({ ...me, host: `${hostname()}-elsewhere` }), 'unknown');
    });
  });
});
