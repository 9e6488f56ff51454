/**
 * Exact composed Gaussian mechanism (src/accounting/analytic-gaussian.ts).
 *
 * Fixture test/fixtures/gdp_analytic_gaussian_vectors.json ← /work/shared/reference/peer_vectors.json records
 * 66 (dp_accounting PLD test_gaussian_basic: σ = √3, 3 steps ⇒ μ = 1, δ(1) = 0.126936 ± 1e-3), 79–80
 * (dp_accounting GaussianPrivacyLoss q = 1 exact δ, places=7), 83–84 (prv_accountant: exact δ of 9999/10000
 * compositions at σ = 100 and of 50×σ=10 + 50×σ=5, printed to 16 digits by the peer's own exact formula).
 * Independent check: δ(ε) by direct numerical integration of the hockey-stick divergence
 * ∫ max(0, p(x) − e^ε q(x)) dx for N(μ, 1) vs N(0, 1).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../src/errors.ts';
import { composedGaussianMu, gaussianDelta, gaussianEpsilon } from '../src/accounting/analytic-gaussian.ts';

const vectors: Record<number, any> = {};
for (const r of JSON.parse(readFileSync(new URL('./fixtures/gdp_analytic_gaussian_vectors.json', import.meta.url), 'utf8')).records) {
  vectors[r._index] = r;
}
const almostEqual = (a: number, b: number, places: number) =>
  assert.ok(Math.abs(a - b) < 0.5 * 10 ** -places, `|${a} − ${b}| ≥ 0.5e-${places}`);

/** Hockey-stick divergence of N(μ,1) from N(0,1) at ε, by the trapezoid rule (independent of the formula). */
function hockeyStick(epsilon: number, mu: number): number {
  const lo = -30;
  const hi = mu + 30;
  const n = 600000;
  const h = (hi - lo) / n;
  let s = 0;
  for (let k = 0; k <= n; k++) {
    const x = lo + k * h;
    const p = Math.exp(-0.5 * (x - mu) ** 2) / Math.sqrt(2 * Math.PI);
    const q = Math.exp(-0.5 * x * x + epsilon) / Math.sqrt(2 * Math.PI);
    const v = Math.max(0, p - q);
    s += k === 0 || k === n ? v / 2 : v;
  }
  return s * h;
}

describe('analytic Gaussian: peer vectors', () => {
  it('dp_accounting q = 1 one-step δ (#79, #80), places=7', () => {
    for (const i of [79, 80]) {
      const r = vectors[i];
      almostEqual(gaussianDelta(r.epsilon, r.sensitivity / r.standard_deviation), r.expected_delta, 7);
    }
  });
  it('dp_accounting test_gaussian_basic (#66): σ = √3, 3 steps ⇒ μ = 1; δ(1) and ε(δ) within 1e-3', () => {
    const r = vectors[66];
    const mu = composedGaussianMu([{ noiseMultiplier: r.noise_multiplier, count: r.steps }]);
    assert.ok(Math.abs(mu - r.expected_gdp_mu) < 1e-12);
    assert.ok(Math.abs(gaussianDelta(r.epsilon, mu) - r.expected_delta) < 1e-3);
    assert.ok(Math.abs(gaussianEpsilon(r.delta, mu) - r.expected_epsilon) < 1e-3);
  });
  it('prv_accountant exact δ (#83 homogeneous σ = 100, #84 heterogeneous) to 1e-12 relative', () => {
    const r83 = vectors[83];
    for (const c of r83.cases) {
      const mu = composedGaussianMu([{ noiseMultiplier: r83.noise_multiplier, count: c.steps }]);
      const d = gaussianDelta(c.epsilon, mu);
      if (c.exact_delta === 0) assert.equal(d, 0);
      else assert.ok(Math.abs(d / c.exact_delta - 1) < 1e-12, `${d} vs ${c.exact_delta}`);
    }
    const r84 = vectors[84];
    const mu = composedGaussianMu([{ noiseMultiplier: 10, count: 50 }, { noiseMultiplier: 5, count: 50 }]);
    assert.ok(Math.abs(gaussianDelta(r84.epsilon, mu) / r84.expected_delta - 1) < 1e-12);
  });
});

describe('analytic Gaussian: independent and internal consistency', () => {
  it('δ(ε) equals the numerically integrated hockey-stick divergence (1e-9 absolute)', () => {
    for (const [eps, mu] of [[0, 0.5], [0.5, 1], [1, 2], [3, 2], [2, 0.3]] as const) {
      assert.ok(Math.abs(gaussianDelta(eps, mu) - hockeyStick(eps, mu)) < 1e-9, `ε=${eps}, μ=${mu}`);
    }
  });
  it('far tail: δ stays finite, positive and decreasing where e^ε overflows a naive formula', () => {
    const d1 = gaussianDelta(700, 30);
    const d2 = gaussianDelta(750, 30);
    assert.ok(d1 > 0 && Number.isFinite(d1) && d2 < d1);
  });
  it('ε(δ) inverts δ(ε): δ(ε(δ)) ≤ δ, and ε is tight to 1e-12 relative', () => {
    for (const mu of [0.05, 0.5, 1, 3, 10]) {
      for (const delta of [1e-10, 1e-5, 1e-2]) {
        const e = gaussianEpsilon(delta, mu);
        if (e === 0) {
          assert.ok(gaussianDelta(0, mu) <= delta);
          continue;
        }
        assert.ok(gaussianDelta(e, mu) <= delta);
        assert.ok(gaussianDelta(e * (1 - 1e-12), mu) > delta * (1 - 1e-9));
      }
    }
  });
  it('ε = 0 when δ ≥ δ(0) = 2Φ(μ/2) − 1; monotone in μ and δ', () => {
    assert.equal(gaussianEpsilon(0.5, 0.1), 0);
    assert.ok(gaussianEpsilon(1e-5, 1) < gaussianEpsilon(1e-5, 2));
    assert.ok(gaussianEpsilon(1e-6, 1) > gaussianEpsilon(1e-5, 1));
  });
  it('bad input → InvalidArgumentError naming the argument', () => {
    const throwsArg = (fn: () => unknown, argument: string) =>
      assert.throws(fn, (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument);
    throwsArg(() => gaussianDelta(NaN, 1), 'epsilon');
    throwsArg(() => gaussianDelta(1, 0), 'mu');
    throwsArg(() => gaussianEpsilon(0, 1), 'delta');
    throwsArg(() => gaussianEpsilon(1e-5, Infinity), 'mu');
    throwsArg(() => composedGaussianMu([{ noiseMultiplier: -1, count: 1 }]), 'noiseMultiplier');
    throwsArg(() => composedGaussianMu([{ noiseMultiplier: 1, count: 0 }]), 'count');
    throwsArg(() => composedGaussianMu([]), 'parts');
  });
});
