/**
 * The README's main job — `ewtune train examples/minilm-polarity.json`: DP fine-tuning of the pre-trained
 * all-MiniLM-L6-v2 on sentence polarity — through the real CLI (a child process running bin/ewtune.mjs), cut to a
 * small slice (200 training examples, expected batch 16, 2 steps) so it fits the suite, against the real MLflow server, with the
 * example's own mode, backend choice ('auto') and privacy settings. It checks what a user relies on: the run ends
 * FINISHED with a certified (upper) ε, MLflow holds the ε points and the model artifact, and the saved model directory
 * loads and carries a privacy.json that agrees with the run's ledger.
 *
 * Needs the fetched model and corpus (`.ci/install`; fails under CI=true when missing) and, under CI, the native
 * backend (the example's 'auto' must pick it there).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivacyLedger } from '../src/accounting/ledger.ts';
import { cachedCorpusPath } from '../src/data/cached.ts';
import { POLARITY_CORPUS } from '../src/data/polarity.ts';
import { loadModelDir } from '../src/model-dir/index.ts';
import { pretrainedModelPath } from '../src/model-dir/fetch.ts';
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import type { RunResult } from '../plugin/run.ts';
import { requireFetched } from './support/fetched-asset.ts';
import { sharedMlflowServer } from './support/mlflow-server.ts';

interface ExampleConfig {
  $schema?: string;
  name?: string;
  data: { kind: string; maxExamples?: number };
  model: { kind: string; path: string; finetune: { mode: string } };
  training: { backend: string; expectedBatchSize: number; [key: string]: unknown };
  privacy: { targetEpsilon: number; delta: number };
  tracking?: object;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/ewtune.mjs', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('the main job (examples/minilm-polarity.json) through `ewtune train`', function () {
  this.timeout(600_000);

  it('fine-tunes pre-trained MiniLM privately: FINISHED, certified ε, MLflow points + model artifact, a loadable model with privacy.json', async function () {
    const example = JSON.parse(readFileSync('examples/minilm-polarity.json', 'utf8')) as ExampleConfig;
    assert.equal(example.model.kind, 'pretrained-encoder');
    requireFetched(this, pretrainedModelPath(example.model.path), `node bin/ewtune.mjs models fetch ${example.model.path}`);
    assert.equal(example.data.kind, 'polarity');
    requireFetched(this, cachedCorpusPath(POLARITY_CORPUS), 'node bin/ewtune.mjs data fetch polarity');
    const uri = await sharedMlflowServer();
    const client = MlflowClient.fromEnv(uri, {});
    const dir = mkdtempSync(join(tmpdir(), 'ewtune-main-job-'));
    try {
      const config: ExampleConfig = { ...example, name: `main-job-${Date.now()}`, $schema: join(process.cwd(), 'schemas', 'config.schema.json'),
        data: { ...example.data, maxExamples: 200 }, training: { ...example.training, expectedBatchSize: 16 }, tracking: { runDir: join(dir, 'runs') } };
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
      const env = { ...process.env };
      delete env.MLFLOW_TRACKING_URI;
      const { code, stdout, stderr } = await runCli(['train', join(dir, 'config.json'), '--tracking-uri', uri, '--max-steps', '2', '--json'], env);
      assert.equal(code, 0, stderr);
      const r = JSON.parse(stdout) as RunResult;
      assert.equal(r.status, 'FINISHED');
      assert.equal(r.steps, 2);
      assert.equal(r.epsilonCertified?.kind, 'upper');
      assert.ok(r.epsilonCertified!.epsilon > 0 && r.epsilonCertified!.epsilon <= example.privacy.targetEpsilon, `certified ε ${r.epsilonCertified?.epsilon}`);
      assert.equal(r.epsilonEdgeworth?.kind, 'estimate');
      assert.ok(r.accuracy !== undefined && r.accuracy >= 0 && r.accuracy <= 1);
      assert.ok(r.trainableParams !== undefined && r.trainableParams > 0);
      if (process.env.CI === 'true') assert.match(stderr, /ewtune: backend tensorflow \(auto: @tensorflow\/tfjs-node/);

      // The ledger: one record per step, written before its update.
      const ledger = PrivacyLedger.openSync(join(r.runDir, 'artifacts', 'privacy', 'ledger.jsonl'));
      let ledgerSteps: number;
      try {
        ledgerSteps = ledger.steps;
      } finally {
        ledger.closeSync();
      }
      assert.equal(ledgerSteps, 2);

      // MLflow: the run finished, one certified-ε point per step at the end, the model uploaded.
      const run = await client.getRun(r.runId as string);
      assert.equal(run.info.status, 'FINISHED');
      const eps = await client.getMetricHistory(r.runId as string, 'privacy/epsilon_edgeworth');
      assert.deepEqual(eps.map((m) => m.step).sort((a, b) => a - b), [1, 2]);
      const artifacts = (await client.listArtifacts(r.runId as string, 'model')).map((f) => f.path);
      for (const f of ['model/config.json', 'model/model.safetensors', 'model/tokenizer.json', 'model/privacy.json']) {
        assert.ok(artifacts.includes(f), `${f} in the MLflow artifacts (${artifacts.join(', ')})`);
      }

      // The saved model: a Hugging Face directory that loads, and a privacy.json that says what it carries.
      assert.ok(r.modelDir, 'the model directory is reported');
      const loaded = await loadModelDir(r.modelDir);
      assert.ok(loaded.tensors.size > 0);
      const privacy = JSON.parse(readFileSync(join(r.modelDir, 'privacy.json'), 'utf8')) as Record<string, any>;
      assert.equal(privacy.steps, ledgerSteps);
      assert.equal(privacy.delta, example.privacy.delta);
      assert.equal(privacy.noiseMultiplier, r.noiseMultiplier);
      assert.equal(privacy.sampleRate, r.sampleRate);
      assert.equal(privacy.epsilon.certified.kind, 'upper');
      assert.equal(privacy.epsilon.certified.value, r.epsilonCertified!.epsilon);
      assert.equal(privacy.epsilon.edgeworth.kind, 'estimate');
      assert.equal(privacy.finetune.mode, example.model.finetune.mode);
      assert.equal(privacy.datasetSize, 200);
      assert.match(privacy.guarantee, /-DP under add\/remove adjacency/);
    } finally {
      client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
