/**
 * Noise sources (src/dp/noise.ts). Reference values are computed independently here (moments of the normal
 * distribution, the discrete Gaussian pmf summed directly); statistical tolerances are z-bounds stated per test.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../src/errors.ts';
import { createInsecureSeededRandom } from '../src/dp/csprng.ts';
import {
  addNoise, createNoiseSource, effectiveNoiseMultiplier, hardenedGrid, prefetchCapacity, prefetchedNoiseCount, prefetchNoise,
  prefetchWorkerCount, sensitivitySlack,
} from '../src/dp/noise.ts';

function moments(x: Float64Array): { mean: number; std: number } {
  let s = 0;
  for (const v of x) s += v;
  const mean = s / x.length;
  let ss = 0;
  for (const v of x) ss += (v - mean) ** 2;
  return { mean, std: Math.sqrt(ss / (x.length - 1)) };
}

function correlation(a: Float64Array, b: Float64Array): number {
  const ma = moments(a);
  const mb = moments(b);
  let c = 0;
  for (let i = 0; i < a.length; i++) c += (a[i] - ma.mean) * (b[i] - mb.mean);
  return c / (a.length - 1) / (ma.std * mb.std);
}

describe('noise: default gaussian (node:crypto)', () => {
  const noiseMultiplier = 1.1;
  const l2NormClip = 0.7;
  const std = noiseMultiplier * l2NormClip;
  const n = 1_000_000;
  const source = createNoiseSource();
  const step1 = source.gaussian(n, std);
  const step2 = source.gaussian(n, std);

  it('is labelled secure gaussian', () => {
    assert.equal(source.mode, 'gaussian');
    assert.equal(source.secure, true);
  });

  it('std within 0.5% of σC and mean ≈ 0 over 10⁶ draws', () => {
    const m = moments(step1);
    // Relative standard error of the sample std ≈ 1/√(2n) = 0.07%: 0.5% is a ~7σ bound.
    assert.ok(Math.abs(m.std / std - 1) < 0.005, `std ${m.std} vs ${std}`);
    // Mean: |mean| < 5 standard errors (std/√n).
    assert.ok(Math.abs(m.mean) < 5 * std / Math.sqrt(n), `mean ${m.mean}`);
  });

  it('has normal shape: P(|Z| < σ) and P(|Z| < 2σ) within 5 binomial standard errors', () => {
    for (const [k, p] of [[1, 0.6826894921370859], [2, 0.9544997361036416]] as const) {
      let inside = 0;
      for (const v of step1) if (Math.abs(v) < k * std) inside++;
      const se = Math.sqrt(p * (1 - p) / n);
      assert.ok(Math.abs(inside / n - p) < 5 * se, `P(|Z|<${k}σ) = ${inside / n}`);
    }
  });

  it('no correlation between consecutive steps nor between neighbours within a step', () => {
    // Under independence the sample correlation has standard error 1/√n = 0.001; bound 0.005 (5σ).
    assert.ok(Math.abs(correlation(step1, step2)) < 0.005);
    assert.ok(Math.abs(correlation(step1.subarray(0, n - 1), step1.subarray(1))) < 0.005);
  });

  it('addNoise adds in float64 and casts once', () => {
    const sum = Float32Array.from({ length: 1000 }, (_, i) => (i - 500) * 0.37);
    const a = createNoiseSource('insecure-seeded', { seed: 'add' });
    const b = createNoiseSource('insecure-seeded', { seed: 'add' });
    const noisy = addNoise(sum, 0.3, a);
    const noise = b.gaussian(1000, 0.3);
    assert.ok(noisy instanceof Float32Array);
    for (let i = 0; i < 1000; i++) assert.equal(noisy[i], Math.fround(sum[i] + noise[i]));
  });

  it('refuses bad input with InvalidArgumentError', () => {
    assert.throws(() => source.gaussian(-1, 1), InvalidArgumentError);
    assert.throws(() => source.gaussian(3, -1), InvalidArgumentError);
    assert.throws(() => source.gaussian(3, Number.NaN), InvalidArgumentError);
    assert.throws(() => addNoise(Float32Array.of(1, Number.NaN), 1, source), InvalidArgumentError);
    assert.throws(() => addNoise([1, 2] as unknown as Float32Array, 1, source), InvalidArgumentError);
    assert.throws(() => createNoiseSource('laplace' as never), InvalidArgumentError);
    assert.throws(() => source.perturbInto!(Float32Array.of(1, 2), 1, new Float64Array(3)), InvalidArgumentError);
  });

  it('perturbInto writes values + noise into the given buffer; prefetch: false draws on the calling thread', () => {
    const values = Float32Array.from({ length: 200_000 }, (_, i) => (i % 7) - 3);
    for (const s of [source, createNoiseSource('gaussian', { prefetch: false })]) {
      const out = new Float64Array(values.length);
      assert.equal(s.perturbInto!(values, std, out), out);
      const noise = out.map((v, i) => v - values[i]);
      const m = moments(noise);
      assert.ok(Math.abs(m.std / std - 1) < 0.01, `std ${m.std} vs ${std}`);
      assert.ok(Math.abs(m.mean) < 5 * std / Math.sqrt(values.length), `mean ${m.mean}`);
    }
    assert.match(source.describe().generator, /worker thread/);
    // The prefetch workers really serve large requests (a broken worker would silently fall back to this thread):
    // wait until the ring holds 100k values (the calling thread draws itself whatever is not ready yet).
    assert.ok(prefetchNoise(100_000), 'the prefetch ring fills');
    const before = prefetchedNoiseCount();
    createNoiseSource('gaussian').gaussian(100_000, 1);
    assert.ok(prefetchedNoiseCount() - before >= 100_000, `served ${prefetchedNoiseCount() - before}`);
    assert.doesNotMatch(createNoiseSource('gaussian', { prefetch: false }).describe().generator, /worker/);
  });

  it('requests larger than the prefetch ring mix ring and calling-thread draws: N(0, std²), every value used once', () => {
    const n = prefetchCapacity() + 3 * 65536 + 123;
    const a = source.gaussian(n, std);
    const b = source.gaussian(n, std);
    for (const noise of [a, b]) {
      const m = moments(noise);
      assert.ok(Math.abs(m.std / std - 1) < 0.01, `std ${m.std} vs ${std}`);
      assert.ok(Math.abs(m.mean) < 5 * std / Math.sqrt(n), `mean ${m.mean}`);
      assert.equal(noise.filter((v) => v === 0).length, 0, 'no zeroed (already used) ring slot handed out');
    }
    // A value handed out twice would repeat exactly; float64 normals from fresh draws do not.
    const seen = new Set<number>(a);
    assert.equal(seen.size, a.length, 'no repeated value within a request');
    assert.equal(b.filter((v) => seen.has(v)).length, 0, 'no value repeated across requests');
  });

  it('EWTUNE_NOISE_WORKERS sets the number of prefetch workers (an integer in [1, 8]); default cores − 1 in [1, 4]', () => {
    const saved = process.env.EWTUNE_NOISE_WORKERS;
    try {
      process.env.EWTUNE_NOISE_WORKERS = '3';
      assert.equal(prefetchWorkerCount(), 3);
      for (const bad of ['0', '9', '1.5', 'two']) {
        process.env.EWTUNE_NOISE_WORKERS = bad;
        assert.throws(() => prefetchWorkerCount(), (e: unknown) => e instanceof InvalidArgumentError && /EWTUNE_NOISE_WORKERS/.test(e.message));
      }
      delete process.env.EWTUNE_NOISE_WORKERS;
      assert.equal(prefetchWorkerCount(), Math.max(1, Math.min(4, availableParallelism() - 1)));
    } finally {
      if (saved === undefined) delete process.env.EWTUNE_NOISE_WORKERS;
      else process.env.EWTUNE_NOISE_WORKERS = saved;
    }
  });
});

describe('noise: insecure-seeded', () => {
  it('is reproducible from the seed and differs across seeds', () => {
    const a = createNoiseSource('insecure-seeded', { seed: 42 }).gaussian(5000, 2);
    const b = createNoiseSource('insecure-seeded', { seed: 42 }).gaussian(5000, 2);
    const c = createNoiseSource('insecure-seeded', { seed: 43 }).gaussian(5000, 2);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    // Still N(0, 4): std within 5 relative standard errors (1/√(2n) = 1%).
    assert.ok(Math.abs(moments(a).std / 2 - 1) < 0.05);
  });

  it('is labelled insecure and refused unless named insecure', () => {
    const s = createNoiseSource('insecure-seeded', { seed: 1 });
    assert.equal(s.secure, false);
    assert.equal(s.describe().secure, false);
    assert.equal(createNoiseSource('seeded', { seed: 1, insecure: true }).secure, false);
    assert.throws(() => createNoiseSource('seeded', { seed: 1 }), (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === 'options.insecure');
    assert.throws(() => createNoiseSource('gaussian', { seed: 1 }), InvalidArgumentError);
    assert.throws(() => createNoiseSource('hardened', { seed: 1 }), InvalidArgumentError);
    assert.throws(() => createNoiseSource('insecure-seeded', {}), InvalidArgumentError);
    assert.throws(() => createInsecureSeededRandom(1, {} as never), InvalidArgumentError);
  });
});

describe('noise: hardened (grid + exact discrete Gaussian)', () => {
  it('grid: Λ a power of two, s ∈ (2^(b−1), 2^b], applied std ≥ requested by < one grid step', () => {
    for (const std of [1e-6, 0.77, 1, 3, 1024, 12345.6]) {
      const g = hardenedGrid(std);
      assert.equal(Math.log2(g.resolution), Math.round(Math.log2(g.resolution)));
      assert.ok(g.scale > 2 ** 21 && g.scale <= 2 ** 22 && Number.isInteger(g.scale));
      assert.ok(g.appliedStd >= std && g.appliedStd - std < g.resolution);
    }
  });

  it('outputs exact multiples of Λ with the right variance', () => {
    const std = 0.77;
    const n = 100_000;
    const source = createNoiseSource('hardened');
    const { resolution, appliedStd } = hardenedGrid(std);
    const values = Float64Array.from({ length: n }, (_, i) => Math.sin(i) * 3.3);
    const out = source.perturb(values, std);
    const noise = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const k = out[i] / resolution;
      assert.ok(Number.isInteger(k), `output ${out[i]} not a multiple of ${resolution}`);
      noise[i] = out[i] - Math.round(values[i] / resolution) * resolution;
    }
    const m = moments(noise);
    // Relative SE of the sample std ≈ 1/√(2n) = 0.22%: 1.5% is a ~7σ bound.
    assert.ok(Math.abs(m.std / appliedStd - 1) < 0.015, `std ${m.std} vs ${appliedStd}`);
    assert.ok(Math.abs(m.mean) < 5 * appliedStd / Math.sqrt(n));
    // The float32 cast of addNoise keeps multiples of Λ.
    const cast = addNoise(Float32Array.of(0.1, -2.5, 7), std, source);
    for (const v of cast) assert.ok(Number.isInteger(v / resolution));
  });

  it('matches the discrete Gaussian pmf (chi-square, small grid)', () => {
    // gridBits = 3 and std = 6 give Λ = 1 and s = 6: noise in grid units must follow P(k) ∝ exp(−k²/72).
    const source = createNoiseSource('hardened', { gridBits: 3 });
    const g = hardenedGrid(6, 3);
    assert.equal(g.resolution, 1);
    assert.equal(g.scale, 6);
    const n = 100_000;
    const draws = source.gaussian(n, 6);
    const kMax = 16; // bins −16..16, tails merged into the end bins (expected count there ≥ 5)
    let z = 0;
    for (let k = -200; k <= 200; k++) z += Math.exp(-k * k / 72);
    const p = new Float64Array(2 * kMax + 1);
    for (let k = -200; k <= 200; k++) p[Math.max(-kMax, Math.min(kMax, k)) + kMax] += Math.exp(-k * k / 72) / z;
    const counts = new Float64Array(2 * kMax + 1);
    for (const v of draws) {
      assert.ok(Number.isInteger(v));
      counts[Math.max(-kMax, Math.min(kMax, v)) + kMax]++;
    }
    let chi2 = 0;
    for (let i = 0; i < counts.length; i++) chi2 += (counts[i] - n * p[i]) ** 2 / (n * p[i]);
    // df = 32: mean 32, sd 8; P(χ²₃₂ > 80) ≈ 1e-5.
    assert.ok(chi2 < 80, `chi2 = ${chi2}`);
  });

  it('sensitivity slack Λ√d and the effective noise multiplier', () => {
    const std = 1.1 * 0.7;
    const { resolution, appliedStd } = hardenedGrid(std);
    assert.equal(sensitivitySlack(std, 1_000_000), resolution * 1000);
    const sigmaEff = effectiveNoiseMultiplier(1.1, 0.7, 1_000_000);
    assert.equal(sigmaEff, appliedStd / (0.7 + resolution * 1000));
    // Λ ≈ std·2^−22 and √d = 1000: the multiplier changes by ~ 2.6e−4 relative only.
    assert.ok(sigmaEff < 1.1 && sigmaEff > 1.1 * (1 - 1e-3));
    assert.throws(() => sensitivitySlack(std, 0), InvalidArgumentError);
    assert.throws(() => effectiveNoiseMultiplier(0, 1, 10), InvalidArgumentError);
    assert.throws(() => effectiveNoiseMultiplier(1, -1, 10), InvalidArgumentError);
    assert.throws(() => createNoiseSource('hardened', { gridBits: 30 }), InvalidArgumentError);
    assert.throws(() => createNoiseSource('hardened').gaussian(4, 0), InvalidArgumentError);
  });
});

describe('noise: no Math.random / tf.random on the privacy path', () => {
  it('generates with Math.random patched to throw (which also makes unseeded tf.random* throw)', () => {
    const original = Math.random;
    Math.random = () => { throw new Error('Math.random used'); };
    try {
      // tfjs seeds its Alea generator from Math.random: the patch catches tf.random* too.
      assert.throws(() => tf.randomNormal([2]), /Math.random used/);
      assert.throws(() => tf.randomUniform([2]), /Math.random used/);
      createNoiseSource().gaussian(1000, 1);
      createNoiseSource('hardened').gaussian(100, 1);
      addNoise(new Float32Array(100), 1, createNoiseSource());
    } finally {
      Math.random = original;
    }
  });

  it('the noise, sampling and CSPRNG modules neither import tfjs nor call Math.random', () => {
    for (const file of ['noise.ts', 'sampling.ts', 'csprng.ts']) {
      const text = readFileSync(new URL(`../src/dp/${file}`, import.meta.url), 'utf8');
      assert.ok(!/Math\.random\s*\(/.test(text), `${file} calls Math.random`);
      assert.ok(!/@tensorflow/.test(text), `${file} imports tfjs`);
    }
  });
});
