/**
 * GDP/CLT comparison accountant (src/accounting/gdp.ts).
 *
 * Fixtures: test/fixtures/gdp_vectors.json ← /work/shared/reference/peer_vectors.json records 1 (Opacus
 * test_gdp_accountant: 6.59 < ε < 6.6) and 7 (Opacus get_noise_multiplier with GDP: 1.3232421875, places=7);
 * test/fixtures/rdp_gdp_grid.json ← /work/shared/reference/peer_grid.json (eps_gdp_clt_opacus on 80 points + MNIST).
 * Opacus solves δ(ε) = δ with brentq (xtol 2e-12); we bisect to the last ulp: 1e-9 relative is the tolerance.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../src/errors.ts';
import { GdpAccountant, gdpDelta, gdpEpsilon, gdpMu } from '../src/accounting/gdp.ts';
import { gaussianEpsilon } from '../src/accounting/analytic-gaussian.ts';
import type { StepSegment } from '../src/accounting/types.ts';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));
const vectors: Record<number, any> = {};
for (const r of fixture('gdp_vectors.json').records) vectors[r._index] = r;
const grid = fixture('rdp_gdp_grid.json');
const seg = (sampleRate: number, noiseMultiplier: number, count: number): StepSegment[] => [{ sampleRate, noiseMultiplier, count }];

describe('GDP/CLT: peer vectors and grid', () => {
  it('Opacus test_gdp_accountant (#1): 6.59 < ε < 6.6 at 2249 steps', () => {
    const r = vectors[1];
    const acc = new GdpAccountant();
    acc.compose({ sampleRate: r.sample_rate, noiseMultiplier: r.noise_multiplier }, r.steps);
    const e = acc.getEpsilon(r.delta);
    assert.ok(e.epsilon > r.expected_epsilon_range[0] && e.epsilon < r.expected_epsilon_range[1], `${e.epsilon}`);
    assert.ok(Math.abs(e.epsilon / r.computed_here - 1) < 1e-9);
    assert.equal(e.kind, 'estimate');
    assert.equal(e.accountant, 'gdp');
  });
  it('Opacus get_noise_multiplier with GDP (#7): 1.3232421875, places=7 (its bisection re-written here)', () => {
    const r = vectors[7];
    const steps = Math.trunc(r.epochs / r.sample_rate); // Opacus: int(epochs / sample_rate) = 2250
    const eps = (s: number) => gdpEpsilon(seg(r.sample_rate, s, steps), r.target_delta).epsilon;
    let lo = 0;
    let hi = 10;
    let epsHigh = Infinity;
    while (epsHigh > r.target_epsilon) {
      hi *= 2;
      epsHigh = eps(hi);
    }
    while (r.target_epsilon - epsHigh > 0.01) {
      const mid = (lo + hi) / 2;
      const e = eps(mid);
      if (e < r.target_epsilon) {
        hi = mid;
        epsHigh = e;
      } else lo = mid;
    }
    assert.ok(Math.abs(hi - r.expected_noise_multiplier) < 5e-8);
  });
  it('eps_gdp_clt_opacus on all 80 grid points and MNIST, 1e-9 relative', () => {
    assert.equal(grid.grid.length, 80);
    for (const p of [...grid.grid, ...grid.mnist]) {
      const e = gdpEpsilon(seg(p.q, p.sigma, p.steps), p.delta).epsilon;
      assert.ok(Math.abs(e / p.eps_gdp_clt_opacus - 1) < 1e-9, `${JSON.stringify(p)}: ${e}`);
    }
  });
  it('is labelled an estimate because it can fall below the tight PLD value (it does on the grid)', () => {
    const below = grid.grid.filter((p: any) => gdpEpsilon(seg(p.q, p.sigma, p.steps), p.delta).epsilon < p.eps_pld_pessimistic);
    assert.ok(below.length > 0);
    assert.equal(new GdpAccountant().kind, 'estimate');
  });
});

describe('GDP/CLT: formula, heterogeneous composition, monotonicity', () => {
  it('μ = q√(T(e^{1/σ²} − 1)); heterogeneous μ² adds; ε equals the μ-GDP ε', () => {
    assert.ok(Math.abs(gdpMu(seg(0.01, 1, 400)) - 0.01 * Math.sqrt(400 * (Math.E - 1))) < 1e-15);
    const segs: StepSegment[] = [
      { sampleRate: 0.01, noiseMultiplier: 1, count: 400 },
      { sampleRate: 0.02, noiseMultiplier: 2, count: 100 },
    ];
    const mu = Math.sqrt(400 * 1e-4 * Math.expm1(1) + 100 * 4e-4 * Math.expm1(0.25));
    assert.ok(Math.abs(gdpMu(segs) / mu - 1) < 1e-14);
    const acc = new GdpAccountant();
    acc.compose({ sampleRate: 0.01, noiseMultiplier: 1 }, 150);
    acc.compose({ sampleRate: 0.02, noiseMultiplier: 2 }, 100);
    acc.compose({ sampleRate: 0.01, noiseMultiplier: 1 }, 250);
    assert.equal(acc.steps, 500);
    assert.ok(Math.abs(acc.getEpsilon(1e-5).epsilon / gaussianEpsilon(1e-5, mu) - 1) < 1e-12);
    const d = acc.getDelta(acc.getEpsilon(1e-5).epsilon);
    assert.ok(d.delta <= 1e-5 && d.delta > 0.999e-5 && d.kind === 'estimate');
    assert.equal(acc.fresh().steps, 0);
    assert.equal(acc.fresh().getEpsilon(1e-5).epsilon, 0);
  });
  it('ε non-decreasing in steps and q, non-increasing in σ and δ', () => {
    const eps = (q: number, s: number, t: number, d = 1e-5) => gdpEpsilon(seg(q, s, t), d).epsilon;
    let prev = -1;
    for (const t of [1, 10, 100, 1000, 10000]) { const e = eps(0.01, 1, t); assert.ok(e >= prev); prev = e; }
    prev = -1;
    for (const q of [1e-4, 1e-3, 0.01, 0.1, 1]) { const e = eps(q, 1, 100); assert.ok(e >= prev); prev = e; }
    prev = Infinity;
    for (const s of [0.5, 0.8, 1, 2, 5]) { const e = eps(0.01, s, 100); assert.ok(e <= prev); prev = e; }
    prev = Infinity;
    for (const d of [1e-10, 1e-7, 1e-5, 1e-3]) { const e = eps(0.01, 1, 100, d); assert.ok(e <= prev); prev = e; }
  });
  it('tiny σ: μ overflows to ∞ and ε is ∞ (not NaN)', () => {
    assert.equal(gdpEpsilon(seg(0.01, 0.02, 10), 1e-5).epsilon, Infinity);
  });
  it('bad input → InvalidArgumentError naming the argument', () => {
    const throwsArg = (fn: () => unknown, argument: string) =>
      assert.throws(fn, (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument);
    throwsArg(() => gdpEpsilon(seg(0, 1, 10), 1e-5), 'sampleRate');
    throwsArg(() => gdpEpsilon(seg(0.1, -1, 10), 1e-5), 'noiseMultiplier');
    throwsArg(() => gdpEpsilon(seg(0.1, 1, 0), 1e-5), 'count');
    throwsArg(() => gdpEpsilon(seg(0.1, 1, 10), 2), 'delta');
    throwsArg(() => gdpDelta(seg(0.1, 1, 10), -0.5), 'epsilon');
    const acc = new GdpAccountant();
    throwsArg(() => acc.compose({ sampleRate: 0.1, noiseMultiplier: NaN }), 'noiseMultiplier');
    assert.equal(acc.steps, 0);
  });
});
