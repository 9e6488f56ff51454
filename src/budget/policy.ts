/**
 * BudgetPolicy: decides BEFORE each DP step whether the step may be taken, from the projected certified ε after it.
 *
 * Cost: a certified (PLD) ε is not recomputed every step. When a (sampleRate, noiseMultiplier) segment starts, the
 * policy finds — once, by a bracketed search + bisection on the step count — the largest k such that
 * ε(history ⊕ k steps of (q, σ)) ≤ budget, then simply counts steps until q or σ changes. O(log T) ε queries per
 * segment instead of T. Monotonicity used: ε of a composition is non-decreasing in the number of steps composed.
 */
import { InvalidArgumentError } from '../errors.ts';
import { appendSegment } from '../accounting/segments.ts';
import type { StepSegment } from '../accounting/types.ts';
import { assertDelta, assertEpsilon, assertNoiseMultiplier, assertSampleRate } from '../validate.ts';

/** A certified ε of a step history at δ (an upper bound). */
export type CertifiedEpsilonFn = (segments: readonly StepSegment[], delta: number) => number;

/** Options of {@link BudgetPolicy}. */
export interface BudgetPolicyOptions {
  /** The budget ε (> 0): no step is taken whose projected certified ε exceeds it. */
  readonly epsilon: number;
  /** δ of the budget, in (0, 1). */
  readonly delta: number;
  /** Certified ε of a history (default: the caller wires PLD; see dpFit). */
  readonly certifiedEpsilon: CertifiedEpsilonFn;
  /**
   * Largest number of steps the search looks ahead in one segment (default 2^20). The allowance is recomputed
   * when it is used up, so this only bounds one search, not the run.
   */
  readonly horizon?: number;
}

/** The decision for one step. */
export interface BudgetDecision {
  /** True when the step may be taken. */
  readonly allow: boolean;
  /** Steps of the current (q, σ) still allowed, this one included (0 when refused). */
  readonly remaining: number;
}

/** Budget stop policy (see the module comment). */
export class BudgetPolicy {
  /** The ε budget: no step is allowed whose certified ε would exceed it. */
  readonly epsilon: number;
  /** δ of the budget, in (0, 1). */
  readonly delta: number;
  /** Largest number of steps one look-ahead search considers. */
  readonly horizon: number;
  readonly #certifiedEpsilon: CertifiedEpsilonFn;
  #queries = 0;
  #cache: { sampleRate: number; noiseMultiplier: number; baseSteps: number; allowed: number;
    base: StepSegment[] } | undefined;

  constructor(options: BudgetPolicyOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('budget', options, 'an object');
    assertEpsilon(options.epsilon, 'budget.epsilon');
    assertDelta(options.delta, 'budget.delta');
    if (typeof options.certifiedEpsilon !== 'function') {
      throw new InvalidArgumentError('budget.certifiedEpsilon', options.certifiedEpsilon, 'a function');
    }
    const horizon = options.horizon ?? 2 ** 20;
    if (!Number.isSafeInteger(horizon) || horizon < 1) {
      throw new InvalidArgumentError('budget.horizon', horizon, 'a positive integer');
    }
    this.epsilon = options.epsilon;
    this.delta = options.delta;
    this.horizon = horizon;
    this.#certifiedEpsilon = options.certifiedEpsilon;
  }

  /** Number of certified ε queries made so far (for the O(log T) cost check). */
  get queries(): number {
    return this.#queries;
  }

  /** Certified ε of `segments` (counted). */
  epsilonOf(segments: readonly StepSegment[]): number {
    this.#queries++;
    const eps = this.#certifiedEpsilon(segments, this.delta);
    if (typeof eps !== 'number' || Number.isNaN(eps)) {
      throw new InvalidArgumentError('certifiedEpsilon()', eps, 'a number (an ε upper bound)');
    }
    return eps;
  }

  /**
   * May one more step of (sampleRate, noiseMultiplier) be taken after `history` (the steps already accounted)?
   * Refuses exactly when the certified ε after that step would exceed the budget.
   */
  decide(history: readonly StepSegment[], step: { sampleRate: number; noiseMultiplier: number }): BudgetDecision {
    assertSampleRate(step.sampleRate);
    assertNoiseMultiplier(step.noiseMultiplier);
    let taken = 0;
    for (const s of history) taken += s.count;
    const c = this.#cache;
    // The cached allowance holds while the history is the cached base followed only by steps of this (q, σ).
    if (c !== undefined && c.sampleRate === step.sampleRate && c.noiseMultiplier === step.noiseMultiplier
      && taken >= c.baseSteps && extends_(c.base, history, step, taken - c.baseSteps)) {
      const used = taken - c.baseSteps;
      if (used < c.allowed) return { allow: true, remaining: c.allowed - used };
      if (c.allowed < this.horizon) return { allow: false, remaining: 0 };
      // The look-ahead horizon was used up: search again from here.
    }
    const allowed = this.#allowedSteps(history, step);
    this.#cache = { sampleRate: step.sampleRate, noiseMultiplier: step.noiseMultiplier, baseSteps: taken, allowed,
      base: history.map((s) => ({ ...s })) };
    return allowed > 0 ? { allow: true, remaining: allowed } : { allow: false, remaining: 0 };
  }

  /**
   * Largest k ∈ [0, horizon] with ε(history ⊕ k·step) ≤ budget. One query at the horizon (the common non-binding
   * case ends there); otherwise a first guess from ε growing like √k (k̂ = H·(budget/ε_H)²), a geometric bracket
   * around it, then bisection. Every bracket end is an evaluated query, so the answer does not rely on the guess.
   */
  #allowedSteps(history: readonly StepSegment[], step: { sampleRate: number; noiseMultiplier: number }): number {
    const H = this.horizon;
    const epsAt = (k: number): number => this.epsilonOf(appendSegment(history, { ...step, count: k }));
    const epsH = epsAt(H);
    if (epsH <= this.epsilon) return H;
    if (H === 1) return 0;
    let guess = Number.isFinite(epsH) ? Math.floor(H * (this.epsilon / epsH) ** 2) : 1;
    guess = Math.min(Math.max(guess, 1), H - 1);
    let lo: number; // ε(lo) ≤ budget, or lo = 0
    let hi: number; // ε(hi) > budget
    if (epsAt(guess) <= this.epsilon) {
      lo = guess;
      hi = H;
      for (let f = 0.1; ; f *= 2) {
        const k = Math.min(H, Math.max(lo + 1, Math.ceil(guess * (1 + f))));
        if (k >= H) break;
        if (epsAt(k) <= this.epsilon) lo = k;
        else {
          hi = k;
          break;
        }
      }
    } else {
      hi = guess;
      lo = 0;
      for (let f = 0.1; ; f *= 2) {
        const k = Math.floor(guess / (1 + f));
        if (k < 1) break;
        if (epsAt(k) <= this.epsilon) {
          lo = k;
          break;
        }
        hi = k;
      }
    }
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (mid >= 1 && epsAt(mid) <= this.epsilon) lo = mid;
      else hi = mid;
    }
    return lo;
  }
}

/** Is `history` = `base` followed by `extra` steps of `step` (run-length encoded, merged with base's last)? */
function extends_(base: readonly StepSegment[], history: readonly StepSegment[],
  step: { sampleRate: number; noiseMultiplier: number }, extra: number): boolean {
  const same = (a: StepSegment, b: StepSegment) => a.sampleRate === b.sampleRate
    && a.noiseMultiplier === b.noiseMultiplier && a.count === b.count;
  if (extra === 0) return base.length === history.length && base.every((s, i) => same(s, history[i]));
  const last = history[history.length - 1];
  if (last === undefined || last.sampleRate !== step.sampleRate || last.noiseMultiplier !== step.noiseMultiplier
    || last.count < extra) return false;
  const trimmed = last.count === extra ? history.slice(0, -1) : [...history.slice(0, -1), { ...last, count: last.count - extra }];
  return base.length === trimmed.length && base.every((s, i) => same(s, trimmed[i]));
}
