/**
 * Samplers (src/dp/sampling.ts). Expected values are the Binomial(N, q) moments; statistical tolerances are
 * z-bounds stated per test (false-failure probability per check below ~1e-6).
 */
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../src/errors.ts';
import { createInsecureSeededRandom } from '../src/dp/csprng.ts';
import { poissonSample, shuffleWarningIssued, shuffledBatches, splitVirtualBatch } from '../src/dp/sampling.ts';

function batchSizeMoments(datasetSize: number, sampleRate: number, trials: number): { mean: number; variance: number } {
  let s = 0;
  let ss = 0;
  for (let t = 0; t < trials; t++) {
    const b = poissonSample(datasetSize, sampleRate).length;
    s += b;
    ss += b * b;
  }
  const mean = s / trials;
  return { mean, variance: (ss - trials * mean * mean) / (trials - 1) };
}

describe('sampling: Poisson', () => {
  // Both code paths: geometric skips (q < 0.1) and one uniform per example (q ≥ 0.1).
  for (const [datasetSize, sampleRate, trials] of [[20_000, 0.005, 3000], [400, 0.3, 3000]] as const) {
    it(`batch size ~ Binomial(${datasetSize}, ${sampleRate}): mean and variance within 5 SE`, () => {
      const m = batchSizeMoments(datasetSize, sampleRate, trials);
      const mu = datasetSize * sampleRate;
      const v = mu * (1 - sampleRate);
      assert.ok(Math.abs(m.mean - mu) < 5 * Math.sqrt(v / trials), `mean ${m.mean} vs ${mu}`);
      // SE of the sample variance ≈ v·√(2/(T−1)) for a near-normal count.
      assert.ok(Math.abs(m.variance - v) < 5 * v * Math.sqrt(2 / (trials - 1)), `variance ${m.variance} vs ${v}`);
    });
  }

  it('inclusion frequencies are uniform over examples (chi-square) and indices sorted, in range, distinct', () => {
    const datasetSize = 200;
    const sampleRate = 0.05;
    const trials = 20_000;
    const counts = new Float64Array(datasetSize);
    for (let t = 0; t < trials; t++) {
      const idx = poissonSample(datasetSize, sampleRate);
      for (let i = 0; i < idx.length; i++) {
        if (i > 0) assert.ok(idx[i] > idx[i - 1]);
        assert.ok(idx[i] >= 0 && idx[i] < datasetSize);
        counts[idx[i]]++;
      }
    }
    const expected = trials * sampleRate;
    let chi2 = 0;
    for (const c of counts) chi2 += (c - expected) ** 2 / (expected * (1 - sampleRate));
    // df = 200: mean 200, sd 20; bound mean + 6 sd.
    assert.ok(chi2 < 320, `chi2 ${chi2}`);
    // First and last example (boundary of the skip loop) at rate q: within 5 binomial SE.
    const se = Math.sqrt(trials * sampleRate * (1 - sampleRate));
    assert.ok(Math.abs(counts[0] - expected) < 5 * se);
    assert.ok(Math.abs(counts[datasetSize - 1] - expected) < 5 * se);
  });

  it('empty batches occur at small N·q with probability (1 − q)^N', () => {
    const trials = 2000;
    let empty = 0;
    for (let t = 0; t < trials; t++) if (poissonSample(10, 0.01).length === 0) empty++;
    const p = 0.99 ** 10;
    assert.ok(Math.abs(empty - trials * p) < 5 * Math.sqrt(trials * p * (1 - p)), `empty ${empty}`);
  });

  it('q = 1 takes everything; a seeded rng is reproducible', () => {
    assert.deepEqual(poissonSample(5, 1), Int32Array.of(0, 1, 2, 3, 4));
    const a = poissonSample(1000, 0.05, createInsecureSeededRandom(7, { insecure: true }));
    const b = poissonSample(1000, 0.05, createInsecureSeededRandom(7, { insecure: true }));
    assert.deepEqual(a, b);
  });

  it('refuses bad input with InvalidArgumentError naming the argument', () => {
    const bad: Array<[() => unknown, string]> = [
      [() => poissonSample(0, 0.1), 'datasetSize'],
      [() => poissonSample(1.5, 0.1), 'datasetSize'],
      [() => poissonSample(10, 0), 'sampleRate'],
      [() => poissonSample(10, 1.2), 'sampleRate'],
      [() => poissonSample(10, Number.NaN), 'sampleRate'],
      [() => poissonSample(10, 0.1, {} as never), 'rng'],
      [() => shuffledBatches(10, 0), 'batchSize'],
      [() => shuffledBatches(10, 11), 'batchSize'],
      [() => splitVirtualBatch(Int32Array.of(1), 0), 'maxPhysicalBatchSize'],
      [() => splitVirtualBatch([1] as never, 2), 'indices'],
    ];
    for (const [f, argument] of bad) {
      assert.throws(f, (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument);
    }
  });
});

describe('sampling: shuffled batches and virtual batches', () => {
  it('shuffle: a permutation in fixed-size batches, labelled, warned once', () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => { if (w.code === 'EWTUNE_SHUFFLE_NOT_POISSON') warnings.push(w.message); };
    process.on('warning', onWarning);
    const issuedBefore = shuffleWarningIssued(); // another test file may have used shuffle first
    const first = shuffledBatches(103, 10);
    const second = shuffledBatches(103, 10, { dropRemainder: true });
    return new Promise<void>((resolve) => setImmediate(() => {
      process.off('warning', onWarning);
      assert.equal(warnings.length, issuedBefore ? 0 : 1);
      assert.equal(shuffleWarningIssued(), true);
      assert.equal(first.sampler, 'shuffle');
      assert.equal(first.batches.length, 11);
      assert.equal(first.batches[10].length, 3);
      assert.equal(second.batches.length, 10);
      const all = Array.from(first.batches.flatMap((b) => Array.from(b))).sort((a, b) => a - b);
      assert.deepEqual(all, Array.from({ length: 103 }, (_, i) => i));
      assert.match(first.warning, /not Poisson/);
      resolve();
    }));
  });

  it('shuffle: each position uniform over examples (first element, chi-square)', () => {
    const n = 20;
    const trials = 10_000;
    const counts = new Float64Array(n);
    for (let t = 0; t < trials; t++) counts[shuffledBatches(n, 5).batches[0][0]]++;
    let chi2 = 0;
    for (const c of counts) chi2 += (c - trials / n) ** 2 / (trials / n);
    // df = 19: mean 19, sd 6.2; bound mean + 6 sd.
    assert.ok(chi2 < 57, `chi2 ${chi2}`);
  });

  it('virtual batches: micro-batches in order, each ≤ max, concatenating to the logical batch', () => {
    const logical = Int32Array.from({ length: 23 }, (_, i) => 3 * i);
    const parts = splitVirtualBatch(logical, 8);
    assert.deepEqual(parts.map((p) => p.length), [8, 8, 7]);
    assert.deepEqual(Int32Array.from(parts.flatMap((p) => Array.from(p))), logical);
    assert.deepEqual(splitVirtualBatch(new Int32Array(0), 8), []);
  });

  it('works with Math.random patched to throw', () => {
    const original = Math.random;
    Math.random = () => { throw new Error('Math.random used'); };
    try {
      poissonSample(10_000, 0.01);
      poissonSample(100, 0.5);
      shuffledBatches(100, 10);
    } finally {
      Math.random = original;
    }
  });
});
