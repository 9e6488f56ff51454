/**
 * `ewtune train` with bad configurations, through the CLI's main() in-process: input → exit code and message.
 * Every refused configuration exits 2 with a message naming the field, prints no stack trace, and leaves no run
 * directory behind (the data-dependent checks run before one is created). Two valid-but-suspicious configurations
 * train and warn: δ ≥ 1/N (in the output and as an MLflow tag on a real server) and a very large l2NormClip.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { main } from '../src/cli/main.ts';
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { sharedMlflowServer } from './support/mlflow-server.ts';

type Config = Record<string, Record<string, unknown>>;

const WORDS = ['free', 'money', 'click', 'offer', 'winner', 'prize', 'meeting', 'project', 'report', 'lunch', 'schedule', 'team'];

/** 40 labelled lines written for this test (label 1: words 0–5, label 0: words 6–11), deterministic. */
function tinyJsonl(): string {
  const lines: string[] = [];
  for (let i = 0; i < 40; i++) {
    const label = i % 2;
    const words = Array.from({ length: 6 }, (_, k) => WORDS[(label ? 0 : 6) + ((i * 7 + k * 3) % 6)]);
    lines.push(JSON.stringify({ text: words.join(' '), label }));
  }
  return `${lines.join('\n')}\n`;
}

function baseConfig(runDir: string): Config {
  return {
    data: { kind: 'jsonl', path: 'tiny.jsonl', maxTokens: 8, vocabularySize: 2000, testFraction: 0.2 },
    model: { kind: 'transformer-classifier', embedding: 'random', dModel: 8, heads: 2, ffnDim: 8, layers: 1 },
    training: { steps: 3, expectedBatchSize: 8, l2NormClip: 1, optimizer: 'adam', learningRate: 0.01, backend: 'cpu', evaluate: false },
    privacy: { noiseMultiplier: 1, delta: 1e-5 },
    tracking: { runDir },
  } as Config;
}

/** A change of the base config: set (or delete, with undefined) section.key. */
const set = (section: string, key: string, value: unknown) => (c: Config): void => {
  if (value === undefined) delete c[section][key];
  else c[section][key] = value;
};
const setMany = (...changes: Array<(c: Config) => void>) => (c: Config): void => { for (const f of changes) f(c); };

interface Case {
  readonly title: string;
  /** A change of the base config, or the raw text of the config file. */
  readonly config?: ((c: Config) => void) | { readonly raw: string };
  /** Command-line arguments after the config path (or instead of it, with noConfigArg). */
  readonly args?: readonly string[];
  readonly noConfigArg?: boolean;
  readonly code: number;
  readonly message: RegExp;
}

const CASES: Case[] = [
  // Command line.
  { title: 'no config path', noConfigArg: true, code: 2, message: /<config\.json> must be exactly one path; got 0/ },
  { title: 'two config paths', args: ['other.json'], code: 2, message: /must be exactly one path; got 2/ },
  { title: '--max-steps 0', args: ['--max-steps', '0'], code: 2, message: /--max-steps must be a positive integer/ },
  { title: '--max-steps abc', args: ['--max-steps', 'abc'], code: 2, message: /--max-steps/ },
  { title: '--target-epsilon -1', args: ['--target-epsilon', '-1'], code: 2, message: /--target-epsilon/ },
  { title: 'unknown flag', args: ['--epochs', '3'], code: 2, message: /--epochs/ },
  // The file itself.
  { title: 'not JSON', config: { raw: '{ "data": ' }, code: 2, message: /is not valid JSON/ },
  { title: 'a JSON array', config: { raw: '[]' }, code: 2, message: /must be a JSON object/ },
  { title: 'JSON null', config: { raw: 'null' }, code: 2, message: /must be a JSON object/ },
  { title: 'unknown top-level key', config: (c) => { c.optimizer = {}; }, code: 2, message: /\/optimizer is not allowed/ },
  { title: 'empty name', config: (c) => { (c as Record<string, unknown>).name = ''; }, code: 2, message: /\/name/ },
  // Data section.
  { title: 'no data section', config: (c) => { delete c.data; }, code: 2, message: /\/data is required/ },
  { title: 'unknown data kind', config: set('data', 'kind', 'csv'), code: 2, message: /\/data\/kind must be one of/ },
  { title: 'jsonl without path', config: set('data', 'path', undefined), code: 2, message: /\/data\/path is required/ },
  { title: 'maxTokens 0', config: set('data', 'maxTokens', 0), code: 2, message: /\/data\/maxTokens must be >= 1/ },
  { title: 'maxTokens 5000', config: set('data', 'maxTokens', 5000), code: 2, message: /\/data\/maxTokens must be <= 4096/ },
  { title: 'vocabularySize 0', config: set('data', 'vocabularySize', 0), code: 2, message: /\/data\/vocabularySize/ },
  { title: 'testFraction 1', config: set('data', 'testFraction', 1), code: 2, message: /\/data\/testFraction must be < 1/ },
  { title: 'testFraction −0.1', config: set('data', 'testFraction', -0.1), code: 2, message: /\/data\/testFraction must be >= 0/ },
  { title: 'maxExamples 0', config: set('data', 'maxExamples', 0), code: 2, message: /\/data\/maxExamples must be >= 1/ },
  // Model section.
  { title: 'unknown model kind', config: set('model', 'kind', 'bert'), code: 2, message: /\/model\/kind/ },
  { title: 'unknown embedding', config: set('model', 'embedding', 'word2vec'), code: 2, message: /\/model\/embedding must be one of/ },
  { title: 'dModel 3', config: set('model', 'dModel', 3), code: 2, message: /\/model\/dModel must be >= 4/ },
  { title: 'heads 0', config: set('model', 'heads', 0), code: 2, message: /\/model\/heads must be >= 1/ },
  { title: 'dModel not divisible by heads', config: set('model', 'heads', 3), code: 2, message: /\/model\/dModel \(8\) must be divisible by \/model\/heads \(3\)/ },
  { title: 'layers 0', config: set('model', 'layers', 0), code: 2, message: /\/model\/layers must be >= 1/ },
  { title: 'numClasses 1', config: set('model', 'numClasses', 1), code: 2, message: /\/model\/numClasses must be >= 2/ },
  // Training section.
  { title: 'no expectedBatchSize', config: set('training', 'expectedBatchSize', undefined), code: 2, message: /\/training\/expectedBatchSize is required/ },
  { title: 'expectedBatchSize 0', config: set('training', 'expectedBatchSize', 0), code: 2, message: /\/training\/expectedBatchSize must be >= 1/ },
  { title: 'expectedBatchSize 2.5', config: set('training', 'expectedBatchSize', 2.5), code: 2, message: /\/training\/expectedBatchSize must be integer/ },
  { title: 'l2NormClip 0', config: set('training', 'l2NormClip', 0), code: 2, message: /\/training\/l2NormClip must be > 0/ },
  { title: 'l2NormClip −1', config: set('training', 'l2NormClip', -1), code: 2, message: /\/training\/l2NormClip must be > 0/ },
  { title: 'both epochs and steps', config: set('training', 'epochs', 2), code: 2, message: /\/training/ },
  { title: 'neither epochs nor steps', config: set('training', 'steps', undefined), code: 2, message: /\/training/ },
  { title: 'steps 0', config: set('training', 'steps', 0), code: 2, message: /\/training\/steps must be >= 1/ },
  { title: 'epochs −1', config: setMany(set('training', 'steps', undefined), set('training', 'epochs', -1)), code: 2, message: /\/training\/epochs must be > 0/ },
  { title: 'optimizer adagrad (not offered)', config: set('training', 'optimizer', 'adagrad'), code: 2, message: /\/training\/optimizer must be one of/ },
  { title: 'learningRate 0', config: set('training', 'learningRate', 0), code: 2, message: /\/training\/learningRate must be > 0/ },
  { title: 'backend gpu', config: set('training', 'backend', 'gpu'), code: 2, message: /\/training\/backend must be one of/ },
  { title: 'maxSteps 0', config: set('training', 'maxSteps', 0), code: 2, message: /\/training\/maxSteps must be >= 1/ },
  { title: 'maxPhysicalBatchSize 0', config: set('training', 'maxPhysicalBatchSize', 0), code: 2, message: /\/training\/maxPhysicalBatchSize must be >= 1/ },
  { title: 'unknown training key', config: set('training', 'batchSize', 8), code: 2, message: /\/training\/batchSize is not allowed/ },
  // Privacy section.
  { title: 'no delta', config: set('privacy', 'delta', undefined), code: 2, message: /\/privacy\/delta is required/ },
  { title: 'delta 0', config: set('privacy', 'delta', 0), code: 2, message: /\/privacy\/delta must be > 0/ },
  { title: 'delta 1', config: set('privacy', 'delta', 1), code: 2, message: /\/privacy\/delta must be < 1/ },
  { title: 'neither targetEpsilon nor noiseMultiplier', config: set('privacy', 'noiseMultiplier', undefined), code: 2, message: /\/privacy/ },
  { title: 'targetEpsilon 0', config: set('privacy', 'targetEpsilon', 0), code: 2, message: /\/privacy\/targetEpsilon must be > 0/ },
  { title: 'noiseMultiplier 0', config: set('privacy', 'noiseMultiplier', 0), code: 2, message: /\/privacy\/noiseMultiplier must be > 0/ },
  { title: 'noiseMultiplier −1', config: set('privacy', 'noiseMultiplier', -1), code: 2, message: /\/privacy\/noiseMultiplier must be > 0/ },
  { title: 'accountant moments', config: set('privacy', 'accountant', 'moments'), code: 2, message: /\/privacy\/accountant must be one of/ },
  { title: 'edgeworth without allowEstimate', config: set('privacy', 'accountant', 'edgeworth'), code: 2, message: /allowEstimate/ },
  { title: 'valueDiscretizationInterval 0.5', config: set('privacy', 'valueDiscretizationInterval', 0.5), code: 2, message: /\/privacy\/valueDiscretizationInterval must be <= 0\.1/ },
  { title: 'sampler uniform', config: set('privacy', 'sampler', 'uniform'), code: 2, message: /\/privacy\/sampler must be one of/ },
  { title: 'noiseMode laplace', config: set('privacy', 'noiseMode', 'laplace'), code: 2, message: /\/privacy\/noiseMode must be one of/ },
  // Tracking section.
  { title: 'trackingUri ftp://', config: set('tracking', 'trackingUri', 'ftp://x'), code: 2, message: /\/tracking\/trackingUri must match pattern/ },
  { title: 'empty runDir', config: set('tracking', 'runDir', ''), code: 2, message: /\/tracking\/runDir/ },
  { title: 'certifiedEveryFraction 0', config: set('tracking', 'certifiedEveryFraction', 0), code: 2, message: /\/tracking\/certifiedEveryFraction must be > 0/ },
  { title: 'certifiedEveryFraction 2', config: set('tracking', 'certifiedEveryFraction', 2), code: 2, message: /\/tracking\/certifiedEveryFraction must be <= 1/ },
  // Checks that need the data: before any run directory or MLflow run.
  { title: 'expectedBatchSize > dataset size', config: set('training', 'expectedBatchSize', 1000), code: 2, message: /\/training\/expectedBatchSize \(1000\) exceeds the training set size \(\d+\)/ },
  { title: 'missing JSONL file', config: set('data', 'path', 'missing.jsonl'), code: 2, message: /\/data\/path cannot be read: ENOENT/ },
  { title: 'empty JSONL file', config: set('data', 'path', 'empty.jsonl'), code: 2, message: /\/data\/path .*empty\.jsonl contains no examples \(empty file\)/ },
  { title: 'JSONL line that is not JSON', config: set('data', 'path', 'broken.jsonl'), code: 2, message: /broken\.jsonl:2 is not JSON/ },
  { title: 'JSONL label out of range', config: set('data', 'path', 'label3.jsonl'), code: 2, message: /label3\.jsonl:1 must be \{"text": string, "label": integer in \[0, 2\)\}/ },
  { title: 'missing testPath file', config: set('data', 'testPath', 'missing-test.jsonl'), code: 2, message: /\/data\/testPath cannot be read/ },
  { title: 'runDir is a file', config: set('tracking', 'runDir', 'FILE'), code: 2, message: /\/tracking\/runDir .* is a file, not a directory/ },
  { title: 'runDir below a file', config: set('tracking', 'runDir', 'FILE/runs'), code: 2, message: /\/tracking\/runDir .*\(its parent .*\) is a file/ },
  { title: 'learningRate 1e6 (adam)', config: set('training', 'learningRate', 1e6), code: 2, message: /\/training\/learningRate \(1000000\) with adam would move a weight by up to ~1\.00e\+6 per step/ },
  { title: 'learningRate 1e6 (sgd)', config: setMany(set('training', 'optimizer', 'sgd'), set('training', 'learningRate', 1e6)), code: 2, message: /\/training\/learningRate \(1000000\) with sgd/ },
  { title: 'learningRate 500 with momentum', config: setMany(set('training', 'optimizer', 'momentum'), set('training', 'learningRate', 500)), code: 2, message: /\/training\/learningRate \(500\) with momentum/ },
  { title: 'l2NormClip 1e9', config: set('training', 'l2NormClip', 1e9), code: 2, message: /\/training\/l2NormClip \(1000000000\) is above 1000000/ },
  { title: 'l2NormClip 1e4 with sgd lr 1 (steps of 1e4 per weight)', config: setMany(set('training', 'optimizer', 'sgd'), set('training', 'learningRate', 1), set('training', 'l2NormClip', 1e4)), code: 2, message: /\/training\/learningRate \(1\) with sgd, l2NormClip 10000/ },
  { title: 'targetEpsilon 1e-9 (no σ reaches it)', config: setMany(set('privacy', 'noiseMultiplier', undefined), set('privacy', 'targetEpsilon', 1e-9)), code: 2, message: /\/privacy\/targetEpsilon \(1e-9\) cannot be reached/ },
];

describe('ewtune train: bad configurations (table, main() in-process)', function () {
  this.timeout(300_000);
  let dir: string;
  const savedUri = process.env.MLFLOW_TRACKING_URI;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ewtune-bad-configs-'));
    writeFileSync(join(dir, 'tiny.jsonl'), tinyJsonl());
    writeFileSync(join(dir, 'empty.jsonl'), '');
    writeFileSync(join(dir, 'broken.jsonl'), `${JSON.stringify({ text: 'a b', label: 0 })}\n{ nope\n`);
    writeFileSync(join(dir, 'label3.jsonl'), `${JSON.stringify({ text: 'a b', label: 3 })}\n`);
    writeFileSync(join(dir, 'FILE'), 'not a folder');
    delete process.env.MLFLOW_TRACKING_URI; // local run directories only (the warning case below sets its server)
  });
  after(async () => {
    if (savedUri !== undefined) process.env.MLFLOW_TRACKING_URI = savedUri;
    rmSync(dir, { recursive: true, force: true });
    await tf.setBackend('cpu');
  });

  async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await main(argv, { out: (t) => { out += `${t}\n`; }, err: (t) => { err += `${t}\n`; } });
    return { code, out, err };
  }

  /** Writes the case's config as <dir>/<n>.json with its own (not yet existing) run folder. */
  function writeCase(n: number, change: Case['config']): { path: string; runDir: string } {
    const runDir = join(dir, `runs-${n}`);
    const path = join(dir, `case-${n}.json`);
    if (change !== undefined && 'raw' in change) {
      writeFileSync(path, change.raw);
      return { path, runDir };
    }
    const config = baseConfig(runDir);
    change?.(config);
    const tracking = config.tracking as { runDir?: string } | undefined;
    if (tracking?.runDir === 'FILE' || tracking?.runDir === 'FILE/runs') tracking.runDir = join(dir, tracking.runDir);
    writeFileSync(path, JSON.stringify(config));
    return { path, runDir: tracking?.runDir ?? runDir };
  }

  it(`has at least 50 cases (${CASES.length})`, () => {
    assert.ok(CASES.length >= 50);
  });

  CASES.forEach((c, n) => {
    it(`${c.title} → exit ${c.code}`, async () => {
      const { path, runDir } = writeCase(n, c.config);
      const argv = ['train', ...(c.noConfigArg ? [] : [path]), ...(c.args ?? [])];
      const r = await runCli(argv);
      assert.equal(r.code, c.code, `exit ${r.code}\n${r.err}`);
      assert.match(r.err, c.message);
      assert.doesNotMatch(r.err, /\n\s+at .+:\d+:\d+\)?\n/, 'a stack trace was printed');
      // Nothing was created: no run directory (the checks ran before it), nothing in a folder runDir points to.
      if (existsSync(runDir) && !runDir.startsWith(join(dir, 'FILE'))) {
        assert.deepEqual(readdirSync(runDir), [], `run directories were created in ${runDir}`);
      }
    });
  });

  it('δ ≥ 1/N trains, and warns in the output and as an MLflow tag (real server)', async () => {
    const uri = await sharedMlflowServer();
    const { path } = writeCase(1000, setMany(set('privacy', 'delta', 0.2), set('tracking', 'trackingUri', uri)));
    const r = await runCli(['train', path, '--json']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /ewtune: warning: delta=0\.2 is >= 1\/N \(N=\d+\)/);
    const result = JSON.parse(r.out) as { runId: string; status: string };
    assert.equal(result.status, 'FINISHED');
    const client = MlflowClient.fromEnv(uri, {});
    try {
      const tags = Object.fromEntries((await client.getRun(result.runId)).tags.map((t) => [t.key, t.value]));
      assert.match(tags['ewtune.warning.delta'] ?? '', /^delta=0\.2 is >= 1\/N/);
    } finally {
      client.close();
    }
  });

  it('l2NormClip 200 trains with a warning (noise far above typical gradient norms)', async () => {
    const { path, runDir } = writeCase(1001, set('training', 'l2NormClip', 200));
    const r = await runCli(['train', path]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /ewtune: warning: l2NormClip=200 is far above typical per-example gradient norms/);
    assert.equal(readdirSync(runDir).length, 1);
  });
});
