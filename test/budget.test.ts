/**
 * BudgetPolicy: the step that would exceed the budget is never allowed, and the certified ε is queried O(log T)
 * times per (q, σ) segment. References: a closed-form monotone ε (exact allowed-step count known) and the RDP
 * accountant's pure rdpEpsilon (independent of the policy's search).
 */
import assert from 'node:assert/strict';
import { BudgetPolicy } from '../src/budget/index.ts';
import { appendSegment } from '../src/accounting/segments.ts';
import { rdpEpsilon } from '../src/accounting/rdp/index.ts';
import type { StepSegment } from '../src/accounting/types.ts';
import { InvalidArgumentError } from '../src/errors.ts';

/** A GDP-like closed form ε = 3·sqrt(Σ count·(q/σ)²): monotone in steps; allowed count solvable exactly. */
const closedForm = (segments: readonly StepSegment[]) =>
  3 * Math.sqrt(segments.reduce((a, s) => a + s.count * (s.sampleRate / s.noiseMultiplier) ** 2, 0));

function run(policy: BudgetPolicy, history: StepSegment[], step: { sampleRate: number; noiseMultiplier: number },
  max: number): { history: StepSegment[]; taken: number; refused: boolean } {
  let taken = 0;
  while (taken < max) {
    if (!policy.decide(history, step).allow) return { history, taken, refused: true };
    history = appendSegment(history, { ...step, count: 1 });
    taken++;
  }
  return { history, taken, refused: false };
}

describe('BudgetPolicy', () => {
  it('allows exactly the steps that fit (closed form) with O(log T) ε queries', () => {
    let calls = 0;
    const policy = new BudgetPolicy({ epsilon: 1.21, delta: 1e-5, horizon: 1 << 20,
      certifiedEpsilon: (s) => { calls++; return closedForm(s); } });
    const step = { sampleRate: 0.01, noiseMultiplier: 1 };
    // 3·sqrt(k)·0.01 ≤ 1.21 ⇔ k ≤ 1626.8 (off the float boundary).
    const r = run(policy, [], step, 10_000);
    assert.equal(r.refused, true);
    assert.equal(r.taken, 1626);
    assert.equal(calls, policy.queries);
    assert.ok(calls <= 2 * Math.ceil(Math.log2(1626)) + 4, `calls ${calls}`);
    assert.ok(calls < 40);
  });

  it('searches again only when (q, σ) changes, and the budget holds across segments', () => {
    const policy = new BudgetPolicy({ epsilon: 1.21, delta: 1e-5, certifiedEpsilon: closedForm, horizon: 1 << 16 });
    const a = run(policy, [], { sampleRate: 0.01, noiseMultiplier: 1 }, 400);
    assert.equal(a.refused, false);
    const q1 = policy.queries;
    const b = run(policy, a.history, { sampleRate: 0.02, noiseMultiplier: 1 }, 10_000);
    // 9·(400·1e-4 + k·4e-4) ≤ 1.21² ⇔ k ≤ 306.7.
    assert.equal(b.taken, 306);
    assert.ok(closedForm(b.history) <= 1.21);
    assert.ok(closedForm(appendSegment(b.history, { sampleRate: 0.02, noiseMultiplier: 1, count: 1 })) > 1.21);
    assert.ok(policy.queries - q1 <= 2 * Math.ceil(Math.log2(306)) + 4);
    // Once refused, stays refused for the same (q, σ) without new queries.
    const q2 = policy.queries;
    assert.equal(policy.decide(b.history, { sampleRate: 0.02, noiseMultiplier: 1 }).allow, false);
    assert.equal(policy.queries, q2);
  });

  it('with a real certified accountant (RDP): last step within the budget, one more would exceed it', () => {
    const delta = 1e-5;
    const policy = new BudgetPolicy({ epsilon: 2, delta, horizon: 4096,
      certifiedEpsilon: (s, d) => rdpEpsilon(s, d).epsilon });
    const step = { sampleRate: 0.05, noiseMultiplier: 1.2 };
    const r = run(policy, [], step, 4096);
    assert.equal(r.refused, true);
    assert.ok(rdpEpsilon(r.history, delta).epsilon <= 2);
    assert.ok(rdpEpsilon(appendSegment(r.history, { ...step, count: 1 }), delta).epsilon > 2);
  });

  it('a non-binding budget costs one query per horizon; an exhausted horizon is searched again', () => {
    const policy = new BudgetPolicy({ epsilon: 100, delta: 1e-5, certifiedEpsilon: closedForm, horizon: 50 });
    const r = run(policy, [], { sampleRate: 0.01, noiseMultiplier: 1 }, 120);
    assert.equal(r.taken, 120);
    assert.equal(policy.queries, 3); // at steps 0, 50, 100
  });

  it('finds the exact allowance whatever the growth of ε in k (k^0.3 … k^2, steps; against a direct formula)', () => {
    for (const p of [0.3, 0.5, 1, 2]) {
      for (const [c, budget, H] of [[0.01, 1, 1 << 14], [0.5, 3, 100], [0.02, 0.7, 1 << 20], [1, 0.5, 64]] as const) {
        // ε = c·k^p (+ a step function at k ≥ 77 to break any smoothness the guess might assume).
        const eps = (segs: readonly StepSegment[]) => {
          const k = segs.reduce((a, x) => a + x.count, 0);
          return c * k ** p + (k >= 77 ? 0.05 : 0);
        };
        let expected = 0;
        while (expected < H && eps([{ sampleRate: 0.1, noiseMultiplier: 1, count: expected + 1 }]) <= budget) expected++;
        const policy = new BudgetPolicy({ epsilon: budget, delta: 1e-5, certifiedEpsilon: eps, horizon: H });
        const got = policy.decide([], { sampleRate: 0.1, noiseMultiplier: 1 }).remaining;
        assert.equal(got, expected, `p=${p} c=${c} budget=${budget} H=${H}`);
        assert.ok(policy.queries <= 2 * Math.ceil(Math.log2(H)) + 4, `p=${p}: ${policy.queries} queries`);
      }
    }
  });

  it('a first step that does not fit is refused', () => {
    const policy = new BudgetPolicy({ epsilon: 0.01, delta: 1e-5, certifiedEpsilon: closedForm });
    assert.deepEqual(policy.decide([], { sampleRate: 0.5, noiseMultiplier: 0.5 }), { allow: false, remaining: 0 });
  });

  it('a different history (e.g. resumed elsewhere) invalidates the cache', () => {
    const policy = new BudgetPolicy({ epsilon: 1.21, delta: 1e-5, certifiedEpsilon: closedForm });
    const step = { sampleRate: 0.01, noiseMultiplier: 1 };
    assert.equal(policy.decide([], step).remaining, 1626);
    // 1000 earlier steps of another (q, σ): 9·(0.1 + k·1e-4) ≤ 1.21² ⇔ k ≤ 626.8.
    const other: StepSegment[] = [{ sampleRate: 0.02, noiseMultiplier: 2, count: 1000 }];
    assert.equal(policy.decide(other, step).remaining, 626);
    // Same length and same tail as a cached base + 5 steps, but a different prefix: must search again.
    const cheap: StepSegment[] = [{ sampleRate: 0.001, noiseMultiplier: 1, count: 1000 }];
    assert.equal(policy.decide(cheap, step).remaining, 1616); // 9·(1e-3 + k·1e-4) ≤ 1.21² ⇔ k ≤ 1616.8
    const costly: StepSegment[] = [...other, { ...step, count: 5 }];
    assert.equal(policy.decide(costly, step).remaining, 621);
  });

  it('refuses bad options with InvalidArgumentError naming the argument', () => {
    const ok = { epsilon: 1, delta: 1e-5, certifiedEpsilon: closedForm };
    const bad: Array<[string, object]> = [
      ['budget.epsilon', { ...ok, epsilon: 0 }],
      ['budget.epsilon', { ...ok, epsilon: Number.NaN }],
      ['budget.delta', { ...ok, delta: 1 }],
      ['budget.certifiedEpsilon', { ...ok, certifiedEpsilon: 3 }],
      ['budget.horizon', { ...ok, horizon: 0 }],
    ];
    for (const [argument, options] of bad) {
      assert.throws(() => new BudgetPolicy(options as never),
        (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument, argument);
    }
    const p = new BudgetPolicy(ok);
    assert.throws(() => p.decide([], { sampleRate: 0, noiseMultiplier: 1 }),
      (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'sampleRate');
  });
});
