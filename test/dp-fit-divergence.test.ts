/**
 * dpFit stops a diverging run with NonFiniteTrainingError (a NaN/∞ training loss or weights), after recording the
 * step that diverged; a run whose single examples are non-finite only now and then goes on.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { dpFit } from '../src/train/dp-fit.ts';
import type { DpFitArgs, StepRecord } from '../src/train/types.ts';
import type { StepSegment } from '../src/accounting/types.ts';
import { NonFiniteTrainingError } from '../src/errors.ts';
import { tinyData, tinyModel } from './fixtures/dpfit-tiny.ts';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

const base = (over: Partial<DpFitArgs> = {}): DpFitArgs => ({
  expectedBatchSize: 8, l2NormClip: 1, noiseMultiplier: 1, optimizer: 'sgd', learningRate: 0.1,
  loss: 'sparseCategoricalCrossentropy', steps: 50, ...over,
});

function memoryLedger() {
  const records: StepRecord[] = [];
  return { records, appendStep(r: StepRecord) { records.push(r); },
    segments: (): StepSegment[] => (records.length ? [{ sampleRate: records[0].sampleRate, noiseMultiplier: records[0].noiseMultiplier, count: records.length }] : []) };
}

describe('dpFit stops a diverging run', function () {
  this.timeout(60_000);

  it('learning rate 1e38 (weights overflow to ∞/NaN): NonFiniteTrainingError at the first bad step, recorded first', async () => {
    const ledger = memoryLedger();
    const losses: number[] = [];
    let error: unknown;
    try {
      await dpFit(tinyModel(), tinyData(32), base({ learningRate: 1e38, l2NormClip: 1e6, ledger, sampler: 'shuffle',
        callbacks: { onBatchEnd: (_b, logs) => { losses.push(logs?.loss ?? NaN); } } }));
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof NonFiniteTrainingError, String(error));
    assert.match(error.message, /training diverged at step \d+: the (training loss is NaN|weights became non-finite)/);
    assert.match(error.message, /Lower the learning rate \(1e\+38\) or l2NormClip/);
    assert.ok(error.step < 50);
    assert.equal(ledger.records.length, error.step + 1, 'the diverging step is in the ledger');
  });

  it('a loss that is NaN for every example (a model whose output is NaN) stops after the first step', async () => {
    const w = tf.variable(tf.ones([4, 2]), true, 'nan_w');
    const model = { variables: [w], predict: (x: tf.Tensor) => tf.softmax(tf.mul(tf.matMul(x, w), NaN)) };
    await assert.rejects(dpFit(model, tinyData(16), base({ sampler: 'shuffle', steps: 5 })),
      (e: unknown) => e instanceof NonFiniteTrainingError && e.step === 0 && /training loss is NaN/.test(e.message));
    w.dispose();
  });

  it('one non-finite example among finite ones is skipped (counted), not a divergence', async () => {
    const data = tinyData(16);
    const x = data.x.arraySync();
    x[3][0] = NaN;
    const result = await dpFit(tinyModel(), { x: tf.tensor2d(x), y: data.y }, base({ sampler: 'shuffle', expectedBatchSize: 16, steps: 3 }));
    assert.equal(result.stepsTaken, 3);
    assert.equal(result.stopReason, 'completed');
  });
});
