/** Parameter groups (src/train/grouped-optimizer.ts) and `training.headLearningRate` (plugin/resume.ts createRunOptimizer). */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../src/errors.ts';
import { GroupedOptimizer } from '../src/train/grouped-optimizer.ts';
import { createRunOptimizer } from '../plugin/resume.ts';
import { ConfigError, type TrainingConfig } from '../plugin/config.ts';

describe('GroupedOptimizer (parameter groups)', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  const make = () => {
    const head = tf.variable(tf.zeros([3]), true, `g-head-${Math.random().toString(36).slice(2)}`);
    const body = tf.variable(tf.zeros([2]), true, `g-body-${Math.random().toString(36).slice(2)}`);
    const opt = new GroupedOptimizer([{ name: 'head', optimizer: tf.train.adam(0.1), variables: [head.name] }], tf.train.adam(0.001));
    return { head, body, opt };
  };

  it("each group steps with its own learning rate (Adam's first step moves a weight by lr·sign(g))", () => {
    const { head, body, opt } = make();
    const g = { [head.name]: tf.tensor1d([1, -2, 3]), [body.name]: tf.tensor1d([4, -5]) };
    opt.applyGradients(g);
    const h = Array.from(head.dataSync());
    const b = Array.from(body.dataSync());
    [-0.1, 0.1, -0.1].forEach((v, i) => assert.ok(Math.abs(h[i] - v) < 1e-6, `head[${i}] ${h[i]}`));
    [-0.001, 0.001].forEach((v, i) => assert.ok(Math.abs(b[i] - v) < 1e-6, `body[${i}] ${b[i]}`));
    tf.dispose([...Object.values(g), head, body]);
    opt.dispose();
  });

  it('getWeights → setWeights into a fresh one: the next update is identical; tensors stay flat', async () => {
    const a = make();
    const grads = (x: { head: tf.Variable; body: tf.Variable }, k: number) => ({ [x.head.name]: tf.fill([3], 0.5 * k), [x.body.name]: tf.fill([2], -0.25 * k) });
    for (let k = 1; k <= 3; k++) {
      const g = grads(a, k);
      a.opt.applyGradients(g);
      tf.dispose(Object.values(g));
    }
    const b = make();
    b.head.assign(a.head);
    b.body.assign(a.body);
    const weights = await a.opt.getWeights();
    assert.ok(weights.some((w) => w.name.startsWith('head/')) && weights.some((w) => w.name.startsWith('default/')));
    await b.opt.setWeights(weights.map((w) => ({ name: w.name, tensor: w.tensor })));
    const before = tf.memory().numTensors;
    for (let k = 4; k <= 6; k++) {
      const ga = grads(a, k);
      const gb = grads(b, k);
      a.opt.applyGradients(ga);
      b.opt.applyGradients(gb);
      tf.dispose([...Object.values(ga), ...Object.values(gb)]);
    }
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind by applyGradients');
    assert.deepEqual(Array.from(b.head.dataSync()), Array.from(a.head.dataSync()));
    assert.deepEqual(Array.from(b.body.dataSync()), Array.from(a.body.dataSync()));
    // A fresh optimizer (no restored moments) gives another step: the check above can fail.
    const c = make();
    c.head.assign(a.head);
    const gc = grads(c, 7);
    const ga = grads(a, 7);
    c.opt.applyGradients(gc);
    a.opt.applyGradients(ga);
    assert.notDeepEqual(Array.from(c.head.dataSync()), Array.from(a.head.dataSync()));
    tf.dispose([...Object.values(gc), ...Object.values(ga), a.head, a.body, b.head, b.body, c.head, c.body]);
    for (const x of [a, b, c]) x.opt.dispose();
  });

  it('refuses bad groups by name before any work', () => {
    const sgd = () => tf.train.sgd(0.1);
    assert.throws(() => new GroupedOptimizer([{ name: 'a', optimizer: sgd(), variables: ['v'] }, { name: 'b', optimizer: sgd(), variables: ['v'] }], sgd()),
      (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'groups[1].variables');
    assert.throws(() => new GroupedOptimizer([{ name: 'default', optimizer: sgd(), variables: [] }], sgd()),
      (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'groups[0].name');
    assert.throws(() => new GroupedOptimizer([{ name: 'h', optimizer: {} as tf.Optimizer, variables: [] }], sgd()),
      (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'groups[0].optimizer');
    assert.throws(() => new GroupedOptimizer([], null as unknown as tf.Optimizer),
      (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'defaultOptimizer');
  });

  it('training.headLearningRate: the classifier layer gets its own group; a model without one is a ConfigError', () => {
    const training = { optimizer: 'adam', learningRate: 1e-4, headLearningRate: 5e-3 } as TrainingConfig['training'];
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [3], name: 'body' }), tf.layers.dense({ units: 2, name: 'classifier' })] });
    const opt = createRunOptimizer(training, model);
    assert.equal(opt.getClassName(), 'GroupedOptimizer');
    const config = opt.getConfig() as { groups: Array<{ name: string; variables: string[] }> };
    assert.deepEqual(config.groups.find((g) => g.name === 'head')?.variables, model.getLayer('classifier').trainableWeights.map((w) => w.name));
    opt.dispose();
    const plain = createRunOptimizer({ ...training, headLearningRate: undefined }, model);
    assert.equal(plain.getClassName(), 'Adam');
    plain.dispose();
    const noHead = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3], name: 'out' })] });
    assert.throws(() => createRunOptimizer(training, noHead), (e: unknown) => e instanceof ConfigError && /headLearningRate/.test(e.message));
    model.dispose();
    noHead.dispose();
  });
});
