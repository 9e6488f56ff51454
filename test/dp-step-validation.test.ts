/**
 * The low-level API (dpStep, privatiseGradient, clippedGradientSum, computeClippedGradients) checks its own
 * arguments before any work: a typed InvalidArgumentError naming the caller's argument (not an internal one such as
 * the noise `std`), with no noise drawn, no weight changed and no tensor left behind. noiseMultiplier 0 only by name
 * (`nonPrivate: true`), and such a step cannot be recorded in a privacy ledger.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { clippedGradientSum, dpStep, privatiseGradient } from '../src/train/dp-step.ts';
import type { ClippedBatchSum, DpStepOptions } from '../src/train/dp-step.ts';
import { computeClippedGradients } from '../src/dp/per-example/index.ts';
import { InvalidArgumentError } from '../src/errors.ts';
import type { NoiseSource } from '../src/dp/noise.ts';
import { PrivacyLedger } from '../src/accounting/ledger.ts';
import { tinyData, tinyModel } from './fixtures/dpfit-tiny.ts';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

/** TEST-ONLY noise source that counts draws and adds nothing (never a privacy mechanism). */
function countingNoise(): NoiseSource & { draws: number } {
  const source = {
    draws: 0, mode: 'insecure-seeded' as const, secure: false,
    gaussian(n: number) { source.draws++; return new Float64Array(n); },
    perturb(v: ArrayLike<number>) { source.draws++; return Float64Array.from(v); },
    describe: () => ({ mode: 'insecure-seeded' as const, secure: false, generator: 'TEST counting zero noise' }),
  };
  return source;
}

function weightsOf(model: tf.LayersModel): number[][] {
  return model.getWeights().map((w) => Array.from(w.dataSync()));
}

const isArg = (argument: string) => (e: unknown) => {
  assert.ok(e instanceof InvalidArgumentError, `not an InvalidArgumentError: ${String(e)}`);
  assert.equal(e.argument, argument, e.message);
  return true;
};

describe('dpStep / privatiseGradient / clippedGradientSum / computeClippedGradients validate their arguments', () => {
  const data = tinyData(16);
  const indices = Int32Array.from([0, 3, 5, 8]);
  const model = tinyModel();
  const loss = 'sparseCategoricalCrossentropy' as const;
  const stepOptions = (noise: NoiseSource, over: Record<string, unknown> = {}): DpStepOptions => ({
    l2NormClip: 1, loss, noiseMultiplier: 1.1, expectedBatchSize: 4, noise, optimizer: tf.train.sgd(0.1),
    ...over,
  } as DpStepOptions);

  const stepCases: Array<[string, string, Record<string, unknown>, Int32Array?]> = [
    ['expectedBatchSize 0', 'expectedBatchSize', { expectedBatchSize: 0 }],
    ['expectedBatchSize NaN', 'expectedBatchSize', { expectedBatchSize: NaN }],
    ['expectedBatchSize −4 (would flip the update: gradient ascent)', 'expectedBatchSize', { expectedBatchSize: -4 }],
    ['expectedBatchSize ∞', 'expectedBatchSize', { expectedBatchSize: Infinity }],
    ['expectedBatchSize a string', 'expectedBatchSize', { expectedBatchSize: '4' }],
    ['noiseMultiplier NaN', 'noiseMultiplier', { noiseMultiplier: NaN }],
    ['noiseMultiplier −1', 'noiseMultiplier', { noiseMultiplier: -1 }],
    ['noiseMultiplier ∞', 'noiseMultiplier', { noiseMultiplier: Infinity }],
    ['noiseMultiplier 0 without nonPrivate', 'noiseMultiplier', { noiseMultiplier: 0 }],
    ['noiseMultiplier 1 with nonPrivate: true', 'noiseMultiplier', { nonPrivate: true }],
    ['nonPrivate not a boolean', 'nonPrivate', { noiseMultiplier: 0, nonPrivate: 'yes' }],
    ['σ·C overflows', 'noiseMultiplier', { noiseMultiplier: 1e300, l2NormClip: 1e300 }],
    ['l2NormClip 0', 'l2NormClip', { l2NormClip: 0 }],
    ['l2NormClip NaN', 'l2NormClip', { l2NormClip: NaN }],
    ['l2NormClip ∞', 'l2NormClip', { l2NormClip: Infinity }],
    ['maxPhysicalBatchSize 0', 'maxPhysicalBatchSize', { maxPhysicalBatchSize: 0 }],
    ['maxPhysicalBatchSize 2.5', 'maxPhysicalBatchSize', { maxPhysicalBatchSize: 2.5 }],
    ['unknown loss', 'loss', { loss: 'hinge' }],
    ['unknown strategy', 'strategy', { strategy: 'fast' }],
    ['no noise source', 'noise', { noise: undefined }],
    ['optimizer not an optimizer', 'optimizer', { optimizer: 'sgd' }],
    ['beforeApply not a function', 'beforeApply', { beforeApply: 1 }],
    ['indices not an Int32Array', 'indices', {}, [0, 1] as unknown as Int32Array],
    ['index out of range', 'indices[1]', {}, Int32Array.from([0, 16])],
    ['negative index', 'indices[0]', {}, Int32Array.from([-1])],
  ];
  for (const [title, argument, over, idx] of stepCases) {
    it(`dpStep: ${title} → ${argument}; nothing drawn, applied or left behind`, async () => {
      const noise = countingNoise();
      const w0 = weightsOf(model);
      let recorded = 0;
      const options = stepOptions(noise, { beforeApply: () => { recorded++; }, ...over });
      const tensors = tf.memory().numTensors;
      await assert.rejects(dpStep(model, data, idx ?? indices, options), isArg(argument));
      assert.equal(noise.draws, 0, 'noise drawn');
      assert.equal(recorded, 0, 'beforeApply called');
      assert.deepEqual(weightsOf(model), w0, 'weights changed');
      assert.equal(tf.memory().numTensors, tensors, 'tensors left behind');
    });
  }

  it('dpStep: bad data and model → the data/model argument', async () => {
    const noise = countingNoise();
    const opts = stepOptions(noise);
    await assert.rejects(dpStep(model, { x: tf.zeros([16, 4]), y: tf.zeros([15]) }, indices, opts), isArg('data.y.shape[0]'));
    await assert.rejects(dpStep(model, { x: tf.zeros([16, 4], 'bool'), y: tf.zeros([16]) }, indices, opts), isArg('data.x.dtype'));
    await assert.rejects(dpStep(model, null as never, indices, opts), isArg('data'));
    const frozen = tinyModel();
    frozen.trainable = false;
    await assert.rejects(dpStep(frozen, data, indices, opts), isArg('model'));
    await assert.rejects(dpStep(model, data, indices, null as never), isArg('options'));
    assert.equal(noise.draws, 0);
  });

  it('clippedGradientSum: same checks, before any tensor work', () => {
    const tensors = tf.memory().numTensors;
    const opts = { l2NormClip: 1, loss };
    assert.throws(() => clippedGradientSum(model, data, indices, { ...opts, l2NormClip: NaN }), isArg('l2NormClip'));
    assert.throws(() => clippedGradientSum(model, data, indices, { ...opts, l2NormClip: -1 }), isArg('l2NormClip'));
    assert.throws(() => clippedGradientSum(model, data, Int32Array.from([99]), opts), isArg('indices[0]'));
    assert.throws(() => clippedGradientSum(model, data, indices, { ...opts, maxPhysicalBatchSize: 0 }), isArg('maxPhysicalBatchSize'));
    assert.throws(() => clippedGradientSum(model, data, indices, { ...opts, loss: 'x' as never }), isArg('loss'));
    assert.throws(() => clippedGradientSum(model, data, indices, { ...opts, strategy: 'x' as never }), isArg('strategy'));
    assert.throws(() => clippedGradientSum(model, { x: [] as never, y: data.y }, indices, opts), isArg('data.x'));
    assert.equal(tf.memory().numTensors, tensors);
  });

  it('privatiseGradient: names noiseMultiplier (never the internal std), expectedBatchSize, batch; draws nothing', () => {
    const batch = clippedGradientSum(model, data, indices, { l2NormClip: 1, loss });
    const noise = countingNoise();
    const base = { noiseMultiplier: 1, l2NormClip: 1, expectedBatchSize: 4, noise };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ noiseMultiplier: NaN }, 'noiseMultiplier'], [{ noiseMultiplier: -1 }, 'noiseMultiplier'],
      [{ noiseMultiplier: Infinity }, 'noiseMultiplier'], [{ noiseMultiplier: 0 }, 'noiseMultiplier'],
      [{ expectedBatchSize: 0 }, 'expectedBatchSize'], [{ expectedBatchSize: NaN }, 'expectedBatchSize'],
      [{ expectedBatchSize: -4 }, 'expectedBatchSize'], [{ expectedBatchSize: Infinity }, 'expectedBatchSize'],
      [{ l2NormClip: 0 }, 'l2NormClip'], [{ noise: {} }, 'noise'],
    ];
    for (const [over, argument] of cases) {
      assert.throws(() => privatiseGradient(batch, { ...base, ...over } as never), isArg(argument), JSON.stringify(over));
    }
    assert.throws(() => privatiseGradient({ sums: [] } as unknown as ClippedBatchSum, base), isArg('batch'));
    const bad = { ...batch, sums: new Map([[[...batch.sums.keys()][0], new Float32Array(1)]]) };
    assert.throws(() => privatiseGradient(bad, base), (e: unknown) => e instanceof InvalidArgumentError && /^batch\.sums/.test(e.argument));
    assert.equal(noise.draws, 0);
  });

  it('computeClippedGradients: l2NormClip, loss, strategy, x, y, model', () => {
    const opts = { l2NormClip: 1, loss };
    assert.throws(() => computeClippedGradients(model, data.x, data.y, { ...opts, l2NormClip: NaN }), isArg('l2NormClip'));
    assert.throws(() => computeClippedGradients(model, data.x, data.y, { ...opts, l2NormClip: Infinity }), isArg('l2NormClip'));
    assert.throws(() => computeClippedGradients(model, data.x, data.y, { ...opts, strategy: 'x' as never }), isArg('strategy'));
    assert.throws(() => computeClippedGradients(model, data.x, tf.zeros([3]), opts), isArg('y'));
    assert.throws(() => computeClippedGradients(model, [data.x, data.x], data.y, opts), isArg('x'));
    assert.throws(() => computeClippedGradients({} as never, data.x, data.y, opts), isArg('model'));
  });

  it('nonPrivate: true with noiseMultiplier 0 applies the clipped mean, draws no noise, says so to beforeApply', async () => {
    const m = tinyModel();
    const sum = clippedGradientSum(m, data, indices, { l2NormClip: 0.05, loss });
    const noise = countingNoise();
    const w0 = weightsOf(m);
    const seen: Array<{ nonPrivate: boolean; noiseMultiplier: number }> = [];
    const result = await dpStep(m, data, indices, {
      l2NormClip: 0.05, loss, noiseMultiplier: 0, nonPrivate: true, expectedBatchSize: 8, noise,
      optimizer: tf.train.sgd(1), beforeApply: (_b, kind) => { seen.push({ ...kind }); },
    });
    assert.deepEqual([result.applied, result.nonPrivate], [true, true]);
    assert.deepEqual(seen, [{ nonPrivate: true, noiseMultiplier: 0 }]);
    assert.equal(noise.draws, 0);
    const w1 = weightsOf(m);
    [...sum.sums.values()].forEach((g, k) => {
      g.forEach((s, i) => assert.ok(Math.abs((w0[k][i] - w1[k][i]) - s / 8) <= 1e-7, `w[${k}][${i}]`));
    });
    // A private step says it is private.
    const privateStep = await dpStep(m, data, indices, stepOptions(noise));
    assert.equal(privateStep.nonPrivate, false);
  });

  it('a non-private step cannot be recorded in the privacy ledger (σ = 0 refused there too)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nonprivate-'));
    const ledger = await PrivacyLedger.create(path.join(dir, 'ledger.jsonl'), { datasetSize: 16, l2NormClip: 1 });
    try {
      await assert.rejects(dpStep(tinyModel(), data, indices, {
        l2NormClip: 1, loss, noiseMultiplier: 0, nonPrivate: true, expectedBatchSize: 4, noise: countingNoise(),
        optimizer: tf.train.sgd(1),
        beforeApply: async (b, kind) => {
          await ledger.appendStep({ sampleRate: 0.25, noiseMultiplier: kind.noiseMultiplier, count: 1, batchSize: b.batchSize } as never);
        },
      }), isArg('noiseMultiplier'));
      assert.equal(ledger.steps, 0);
    } finally {
      await ledger.close();
    }
  });
});
