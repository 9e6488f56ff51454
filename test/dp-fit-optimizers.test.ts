/**
 * dpFit disposes the optimizer it created from a name (Adam's moments, the SGD learning-rate scalar...), and leaves
 * alone an optimizer instance the caller passed. Measured with tf.memory().numTensors across repeated calls.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { dpFit } from '../src/train/dp-fit.ts';
import type { DpFitArgs } from '../src/train/types.ts';
import { tinyData, tinyModel } from './fixtures/dpfit-tiny.ts';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

const OPTIMIZER_NAMES = ['sgd', 'adam', 'momentum', 'rmsprop', 'adagrad'] as const;

describe('dpFit optimizer ownership', function () {
  this.timeout(60_000);
  const args = (optimizer: DpFitArgs['optimizer']): DpFitArgs => ({
    expectedBatchSize: 4, l2NormClip: 1, noiseMultiplier: 1, optimizer, loss: 'sparseCategoricalCrossentropy', steps: 2,
  });

  for (const name of OPTIMIZER_NAMES) {
    it(`'${name}' by name: tf.memory().numTensors is flat across 3 dpFit calls`, async () => {
      const model = tinyModel();
      const data = tinyData(16);
      const start = tf.memory().numTensors;
      const counts: number[] = [];
      for (let k = 0; k < 3; k++) {
        const result = await dpFit(model, data, args(name));
        assert.equal(result.stepsTaken, 2);
        counts.push(tf.memory().numTensors);
      }
      assert.deepEqual(counts, [start, start, start], `numTensors before ${start}, after each call ${counts.join(', ')}`);
      model.dispose();
      tf.dispose([data.x, data.y]);
    });
  }

  it('also when the run fails after the optimizer was created and used (a callback throws)', async () => {
    const model = tinyModel();
    const data = tinyData(16);
    const start = tf.memory().numTensors;
    await assert.rejects(dpFit(model, data, { ...args('adam'),
      callbacks: { onBatchEnd: () => { throw new Error('callback failed'); } } }), /callback failed/);
    assert.equal(tf.memory().numTensors, start);
    model.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('an optimizer instance passed by the caller is not disposed (its state stays usable)', async () => {
    const model = tinyModel();
    const data = tinyData(16);
    const adam = tf.train.adam(0.01);
    await dpFit(model, data, args(adam));
    const weights = await adam.getWeights();
    // iterations + first and second moments of the 4 variables, all live.
    assert.equal(weights.length, 1 + 2 * 4);
    assert.ok(weights.every((w) => !w.tensor.isDisposed));
    await dpFit(model, data, args(adam)); // still usable
    assert.equal(adam.iterations, 4);
    adam.dispose();
    model.dispose();
    tf.dispose([data.x, data.y]);
  });
});
