/**
 * dpFit / dpStep on the cpu backend with tiny models (test/fixtures/dpfit-tiny.ts).
 * Independent references: the PLD accountant's pure pldEpsilon for the budget check; a single physical batch for
 * the virtual-batch check; weight snapshots for the record-before-update order.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { dpFit } from '../src/train/dp-fit.ts';
import { clippedGradientSum, dpStep } from '../src/train/dp-step.ts';
import type { DpFitArgs, StepRecord } from '../src/train/types.ts';
import { InvalidArgumentError } from '../src/errors.ts';
import { createNoiseSource } from '../src/dp/noise.ts';
import { pldEpsilon } from '../src/accounting/pld/index.ts';
import type { StepSegment } from '../src/accounting/types.ts';
import { PrivacyLedger } from '../src/accounting/ledger.ts';
import { tinyData, tinyModel } from './fixtures/dpfit-tiny.ts';

const require = createRequire(import.meta.url);

function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
}

const base = (over: Partial<DpFitArgs> = {}): DpFitArgs => ({
  expectedBatchSize: 8, l2NormClip: 1, noiseMultiplier: 1.1, optimizer: tf.train.sgd(0.1),
  loss: 'sparseCategoricalCrossentropy', steps: 3, ...over,
});

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

describe('dpFit', function () {
  this.timeout(60_000);

  it('completes DP steps with Math.random and tfjs-core random ops patched to throw', async () => {
    const model = tinyModel();
    const data = tinyData(32);
    // Patch the tfjs-core exports that tfjs calls internally, and Math.random (the unseeded seed source of
    // tf.random*). ESM namespaces of CJS modules cannot be patched; src/ is also checked statically below.
    const core = require('@tensorflow/tfjs-core') as Record<string, unknown>;
    const names = ['randomNormal', 'randomUniform', 'randomGamma', 'randomStandardNormal', 'truncatedNormal',
      'multinomial', 'randomUniformInt'].filter((n) => typeof core[n] === 'function');
    const saved = names.map((n) => core[n]);
    const savedRandom = Math.random;
    const boom = () => { throw new Error('RNG touched on the privacy path'); };
    try {
      for (const n of names) core[n] = boom;
      Math.random = boom;
      const before0 = weightsOf(model);
      const result = await dpFit(model, data, base({ steps: 4 }));
      assert.equal(result.stepsTaken, 4);
      assert.equal(result.stopReason, 'completed');
      assert.notDeepEqual(weightsOf(model), before0);
    } finally {
      names.forEach((n, i) => { core[n] = saved[i]; });
      Math.random = savedRandom;
    }
    // Static check over the training / budget / dp sources.
    for (const dir of ['src/train', 'src/budget', 'src/dp']) {
      for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
        if (!f.endsWith('.ts')) continue;
        const text = fs.readFileSync(path.join(dir, f), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
        assert.doesNotMatch(text, /Math\.random\s*\(|tf\.random\w*\s*\(/, `${dir}/${f}`);
      }
    }
  });

  it('keeps tf.memory().numTensors stable over 100 steps', async () => {
    const model = tinyModel();
    const data = tinyData(32);
    const counts: number[] = [];
    const result = await dpFit(model, data, base({
      steps: 100, maxPhysicalBatchSize: 4,
      callbacks: { onBatchEnd: async () => { counts.push(tf.memory().numTensors); } },
    }));
    assert.equal(result.stepsTaken, 100);
    // After the first step (optimizer state, if any, is created there) the count must not move.
    assert.ok(counts.slice(1).every((c) => c === counts[1]), `numTensors drift: ${counts[1]} → ${counts.at(-1)}`);
  });

  it('a budget-stopped run never exceeds its budget; one more step would; PLD queried O(log T) times', async () => {
    const model = tinyModel();
    const data = tinyData(40);
    const h = 1e-2; // coarse grid: still a certified upper bound (pessimistic discretisation), fast
    let queries = 0;
    const certifiedEpsilon = (segments: readonly StepSegment[], delta: number) => {
      queries++;
      return pldEpsilon(segments, delta, { valueDiscretizationInterval: h }).epsilon;
    };
    const budget = { epsilon: 1.5, delta: 1e-5, certifiedEpsilon };
    const ledgerPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dpfit-')), 'ledger.jsonl');
    const ledger = await PrivacyLedger.create(ledgerPath, { datasetSize: 40, l2NormClip: 1, accountant: 'pld' });
    const planned = 2000;
    const result = await dpFit(model, data, base({ steps: planned, expectedBatchSize: 4, noiseMultiplier: 1.5,
      budget, ledger }));
    assert.equal(result.stopReason, 'budget');
    const T = result.stepsTaken;
    assert.ok(T > 1 && T < planned, `steps taken ${T}`);
    const seg = (count: number): StepSegment[] => [{ sampleRate: 4 / 40, noiseMultiplier: 1.5, count }];
    const eps = (count: number) => pldEpsilon(seg(count), budget.delta, { valueDiscretizationInterval: h }).epsilon;
    assert.ok(eps(T) <= budget.epsilon, `ε after last step ${eps(T)} > budget`);
    assert.ok(eps(T + 1) > budget.epsilon, `one more step would still fit: ${eps(T + 1)}`);
    assert.ok(result.epsilon.certified !== undefined && result.epsilon.certified <= budget.epsilon);
    // Exponential search + bisection: ≤ 2·⌈log2 T⌉ + 3 queries (+1 final report), not T.
    assert.ok(queries <= 2 * Math.ceil(Math.log2(T + 1)) + 4, `queries ${queries} for ${T} steps`);
    assert.equal(ledger.steps, T);
    const lines = fs.readFileSync(ledgerPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.filter((r) => r.type === 'step').length, T);
    assert.equal(lines.at(-1).type, 'stop');
    assert.match(lines.at(-1).reason, /^budget: /);
    await ledger.close();
    // The ledger replays to the same certified ε (same segments).
    const reopened = await PrivacyLedger.open(ledgerPath);
    assert.deepEqual(reopened.segments(), seg(T));
    await reopened.close();
  });

  it('stops on budget.maxSteps (counting resumed ledger steps) and budget.maxEpochs', async () => {
    const data = tinyData(16);
    const ledger = await PrivacyLedger.create(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dpfit-')), 'l.jsonl'),
      { datasetSize: 16 });
    const r1 = await dpFit(tinyModel(), data, base({ steps: 10, budget: { maxSteps: 3 }, ledger }));
    assert.deepEqual([r1.stopReason, r1.stepsTaken, r1.totalSteps], ['max-steps', 3, 3]);
    const r2 = await dpFit(tinyModel(), data, base({ steps: 10, budget: { maxSteps: 5 }, ledger }));
    assert.deepEqual([r2.stopReason, r2.stepsTaken, r2.totalSteps], ['max-steps', 2, 5]);
    const r3 = await dpFit(tinyModel(), data, base({ steps: undefined, epochs: 5, budget: { maxEpochs: 2 } }));
    await ledger.close();
    assert.deepEqual([r3.stopReason, r3.stepsTaken, r3.epoch], ['max-epochs', 4, [0, 1]]); // 16/8 = 2 steps/epoch
  });

  it('fires callbacks in order with numeric logs; model.stopTraining stops the run', async () => {
    const model = tinyModel();
    const events: string[] = [];
    const logsSeen: Record<string, number>[] = [];
    const custom = new tf.CustomCallback({ onEpochEnd: async (e) => { events.push(`custom:epochEnd:${e}`); } });
    const plain = {
      onTrainBegin: () => { events.push('trainBegin'); },
      onEpochBegin: (e: number) => { events.push(`epochBegin:${e}`); },
      onBatchBegin: (b: number) => { events.push(`batchBegin:${b}`); },
      onBatchEnd: (b: number, logs?: Record<string, number>) => {
        events.push(`batchEnd:${b}`);
        logsSeen.push(logs ?? {});
        if (events.filter((x) => x.startsWith('batchEnd')).length === 3) model.stopTraining = true;
      },
      onEpochEnd: (e: number, logs?: Record<string, number>) => { events.push(`epochEnd:${e}`); logsSeen.push(logs ?? {}); },
      onTrainEnd: () => { events.push('trainEnd'); },
    };
    const result = await dpFit(model, tinyData(16), base({
      steps: undefined, epochs: 4, callbacks: [plain, custom],
      accountant: new (await import('../src/accounting/rdp/index.ts')).RdpAccountant(), delta: 1e-5,
    }));
    assert.equal(result.stopReason, 'stopTraining');
    assert.equal(result.stepsTaken, 3);
    assert.deepEqual(events, ['trainBegin', 'epochBegin:0', 'batchBegin:0', 'batchEnd:0', 'batchBegin:1', 'batchEnd:1',
      'epochEnd:0', 'custom:epochEnd:0', 'epochBegin:1', 'batchBegin:0', 'batchEnd:0', 'epochEnd:1',
      'custom:epochEnd:1', 'trainEnd']);
    for (const logs of logsSeen) {
      assert.ok('loss' in logs && 'epsilon' in logs, JSON.stringify(logs));
      for (const v of Object.values(logs)) assert.ok(typeof v === 'number' && Number.isFinite(v));
    }
    // ε estimates grow step by step.
    const eps = logsSeen.filter((l) => 'batch' in l).map((l) => l.epsilon);
    assert.ok(eps[0] < eps[1] && eps[1] < eps[2]);
  });

  it('records each step durably before its update is applied (ledger sees pre-update weights)', async () => {
    const model = tinyModel();
    const snapshots: boolean[] = [];
    let lastApplied = weightsOf(model);
    const ledger = {
      segs: [] as StepSegment[],
      async appendStep(rec: StepRecord) {
        snapshots.push(JSON.stringify(weightsOf(model)) === JSON.stringify(lastApplied));
        assert.equal(rec.sampler, 'poisson');
        assert.equal(rec.noiseMode, 'gaussian');
        assert.equal(rec.noiseSecure, true);
        this.segs.push({ sampleRate: rec.sampleRate, noiseMultiplier: rec.noiseMultiplier, count: 1 });
      },
      segments() { return this.segs; },
    };
    await dpFit(model, tinyData(16), base({
      steps: 5, ledger,
      callbacks: { onBatchEnd: () => { lastApplied = weightsOf(model); } },
    }));
    assert.deepEqual(snapshots, [true, true, true, true, true]);
  });

  it('virtual batches: the same clipped sum, and the same update with identical (insecure, test-only) noise', async () => {
    const data = tinyData(24);
    const indices = Int32Array.from([0, 2, 3, 5, 7, 8, 11, 13, 17, 19, 23]);
    const opts = { l2NormClip: 0.05, loss: 'sparseCategoricalCrossentropy' as const };
    const model = tinyModel();
    const whole = clippedGradientSum(model, data, indices, opts);
    const split = clippedGradientSum(model, data, indices, { ...opts, maxPhysicalBatchSize: 3 });
    assert.equal(split.batchSize, 11);
    // float32 sums of 11 terms in a different order: 1e-5 relative of the largest entry.
    for (const [name, a] of whole.sums) {
      const b = split.sums.get(name)!;
      const scale = Math.max(...a.map(Math.abs));
      a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-5 * scale, `${name}[${i}]`));
    }
    // Full step, noise from two identical INSECURE seeded streams (test-only mode, never a privacy guarantee).
    const m1 = tinyModel();
    const m2 = tinyModel();
    const step = (m: tf.LayersModel, micro?: number) => dpStep(m, data, indices, {
      ...opts, maxPhysicalBatchSize: micro, noiseMultiplier: 0.8, expectedBatchSize: 12,
      noise: createNoiseSource('insecure-seeded', { seed: 'virtual-batch-test' }), optimizer: tf.train.sgd(1),
    });
    await step(m1);
    await step(m2, 2);
    const w1 = weightsOf(m1);
    const w2 = weightsOf(m2);
    w1.forEach((a, k) => a.forEach((v, i) => assert.ok(Math.abs(v - w2[k][i]) <= 1e-5 * Math.max(1, Math.abs(v)))));
  });

  it('divides by the expected batch size, not the realised one (zero noise via a clearly fake test source)', async () => {
    const data = tinyData(24);
    const indices = Int32Array.from([1, 4, 9]);
    const model = tinyModel();
    const opts = { l2NormClip: 0.05, loss: 'sparseCategoricalCrossentropy' as const };
    const sum = clippedGradientSum(model, data, indices, opts);
    // TEST-ONLY zero-noise source: adds nothing. Never use outside tests.
    const zeroNoise = { mode: 'insecure-seeded' as const, secure: false, gaussian: (n: number) => new Float64Array(n),
      perturb: (v: ArrayLike<number>) => Float64Array.from(v), describe: () => ({ mode: 'insecure-seeded' as const,
        secure: false, generator: 'TEST zero noise' }) };
    const w0 = weightsOf(model);
    await dpStep(model, data, indices, { ...opts, noiseMultiplier: 1, expectedBatchSize: 12, noise: zeroNoise,
      optimizer: tf.train.sgd(1) });
    const w1 = weightsOf(model);
    const names = [...sum.sums.keys()];
    names.forEach((name, k) => {
      const g = sum.sums.get(name)!;
      g.forEach((s, i) => assert.ok(Math.abs((w0[k][i] - w1[k][i]) - s / 12) <= 1e-6, `${name}[${i}]`));
    });
  });

  it('target (ε, δ): calibrates σ by certified PLD; the planned run fits the target', async () => {
    const target = { epsilon: 3, delta: 1e-5 };
    const result = await dpFit(tinyModel(), tinyData(16), base({ noiseMultiplier: undefined, target, steps: 20,
      expectedBatchSize: 4 }));
    assert.equal(result.stopReason, 'completed');
    assert.equal(result.stepsTaken, 20);
    const seg: StepSegment[] = [{ sampleRate: 0.25, noiseMultiplier: result.noiseMultiplier, count: 20 }];
    const eps = pldEpsilon(seg, target.delta).epsilon; // independent evaluation at the returned σ
    assert.ok(eps <= target.epsilon, `ε ${eps}`);
    // Calibration precision (relative tolerance 1e-4 on σ): 1% less noise would exceed the target.
    const tighter = pldEpsilon([{ ...seg[0], noiseMultiplier: result.noiseMultiplier * 0.99 }], target.delta).epsilon;
    assert.ok(tighter > target.epsilon, `ε at 0.99σ ${tighter}`);
    assert.ok(result.epsilon.certified !== undefined && result.epsilon.certified <= target.epsilon);
  });

  it("records what was used: sampler 'shuffle' (warned) and the hardened mode's effective σ", async () => {
    const records: StepRecord[] = [];
    const ledger = { segs: [] as StepSegment[], appendStep(r: StepRecord) { records.push(r); },
      segments() { return this.segs; } };
    const r1 = await dpFit(tinyModel(), tinyData(16), base({ steps: 2, sampler: 'shuffle', ledger }));
    assert.equal(r1.sampler, 'shuffle');
    assert.deepEqual(records.map((r) => [r.sampler, r.batchSize]), [['shuffle', 8], ['shuffle', 8]]);
    records.length = 0;
    const r2 = await dpFit(tinyModel(), tinyData(16), base({ steps: 1, noise: 'hardened', ledger }));
    assert.equal(records[0].noiseMode, 'hardened');
    assert.ok(r2.accountedNoiseMultiplier < r2.noiseMultiplier && r2.accountedNoiseMultiplier > 0.999 * 1.1);
    assert.equal(records[0].noiseMultiplier, r2.accountedNoiseMultiplier);
  });

  it('an empty Poisson batch is a valid step: noise only, divided by the expected batch size', async () => {
    const model = tinyModel();
    const w0 = weightsOf(model);
    let recorded = 0;
    const r = await dpStep(model, tinyData(8), new Int32Array(0), {
      l2NormClip: 1, loss: 'sparseCategoricalCrossentropy', noiseMultiplier: 1, expectedBatchSize: 4,
      noise: createNoiseSource('gaussian'), optimizer: tf.train.sgd(1), beforeApply: () => { recorded++; },
    });
    assert.deepEqual([r.applied, r.batchSize, recorded], [true, 0, 1]);
    assert.ok(Number.isNaN(r.lossMean));
    assert.notDeepEqual(weightsOf(model), w0);
  });

  it('trains a core-ops { variables, predict } model; frozen variables are untouched', async () => {
    const w = tf.variable(tf.tensor2d([[0.1, -0.2], [0.3, 0.1], [-0.1, 0.2], [0.05, 0.05]]), true, 'fm_w');
    const frozen = tf.variable(tf.tensor1d([0.5, -0.5]), false, 'fm_b');
    const model = { variables: [w, frozen], predict: (x: tf.Tensor) => tf.softmax(tf.add(tf.matMul(x, w), frozen)) };
    const w0 = w.arraySync();
    const steps: number[] = [];
    const result = await dpFit(model, tinyData(16), base({ steps: 3, onStep: (i) => { steps.push(i.step); } }));
    assert.equal(result.stepsTaken, 3);
    assert.deepEqual(steps, [0, 1, 2]);
    assert.notDeepEqual(w.arraySync(), w0);
    assert.deepEqual(frozen.arraySync(), [0.5, -0.5]);
    w.dispose();
    frozen.dispose();
  });

  describe('bad input → InvalidArgumentError naming the argument, before any step', () => {
    const cases: Array<[string, string, () => Promise<unknown>]> = [];
    const noStep = () => { throw new Error('a step ran'); };
    const run = (over: Partial<DpFitArgs>, data = tinyData(16), model: tf.LayersModel | object = tinyModel()) =>
      dpFit(model as tf.LayersModel, data as never, base({ ...over, onStep: noStep }));
    cases.push(['l2NormClip = 0', 'l2NormClip', () => run({ l2NormClip: 0 })]);
    cases.push(['l2NormClip < 0', 'l2NormClip', () => run({ l2NormClip: -1 })]);
    cases.push(['noiseMultiplier < 0', 'noiseMultiplier', () => run({ noiseMultiplier: -0.5 })]);
    cases.push(['q > 1', 'sampleRate (expectedBatchSize / N)', () => run({ expectedBatchSize: 17 })]);
    cases.push(['q = 0', 'expectedBatchSize', () => run({ expectedBatchSize: 0 })]);
    cases.push(['empty dataset', 'data.x', () => run({}, { x: tf.zeros([0, 4]), y: tf.zeros([0]) } as never)]);
    cases.push(['x/y mismatch', 'data.y.shape[0]', () => run({}, { x: tf.zeros([16, 4]), y: tf.zeros([15]) } as never)]);
    cases.push(['unsupported dtype', 'data.x.dtype',
      () => run({}, { x: tf.zeros([16, 4], 'bool'), y: tf.zeros([16]) } as never)]);
    cases.push(['no trainable weights', 'model', () => {
      const m = tinyModel();
      m.trainable = false;
      return run({}, tinyData(16), m);
    }]);
    cases.push(['budget without delta', 'budget.delta', () => run({ budget: { epsilon: 1 } })]);
    cases.push(['noiseMultiplier and target', 'target', () => run({ target: { epsilon: 1, delta: 1e-5 } })]);
    cases.push(['neither noiseMultiplier nor target', 'noiseMultiplier', () => run({ noiseMultiplier: undefined })]);
    cases.push(['unknown sampler', 'sampler', () => run({ sampler: 'uniform' as never })]);
    for (const [title, argument, fn] of cases) {
      it(title, async () => {
        await assert.rejects(fn(), (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument);
      });
    }
  });
});
