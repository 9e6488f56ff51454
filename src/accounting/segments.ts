/** Run-length encoded step history shared by all accountants. */
import type { StepSegment } from './types.ts';
import { assertNoiseMultiplier, assertSampleRate, assertSteps } from '../validate.ts';

/** Validate one (q, σ, count) triple; throws InvalidArgumentError naming the argument. */
export function validateSegment(seg: { sampleRate: number; noiseMultiplier: number; count: number }): void {
  assertSampleRate(seg.sampleRate);
  assertNoiseMultiplier(seg.noiseMultiplier);
  assertSteps(seg.count, 'count');
}

/** Append `count` steps to `segments`, merging with the last segment when (q, σ) is identical. Pure. */
export function appendSegment(segments: readonly StepSegment[], seg: StepSegment): StepSegment[] {
  validateSegment(seg);
  const out = segments.slice();
  const last = out[out.length - 1];
  if (last && last.sampleRate === seg.sampleRate && last.noiseMultiplier === seg.noiseMultiplier) {
    out[out.length - 1] = { ...last, count: last.count + seg.count };
  } else {
    out.push({ sampleRate: seg.sampleRate, noiseMultiplier: seg.noiseMultiplier, count: seg.count });
  }
  return out;
}

/** Merge segments with equal (q, σ) regardless of order (composition is commutative). */
export function groupSegments(segments: readonly StepSegment[]): StepSegment[] {
  const map = new Map<string, StepSegment>();
  for (const s of segments) {
    const key = `${s.sampleRate}|${s.noiseMultiplier}`;
    const prev = map.get(key);
    map.set(key, prev ? { ...prev, count: prev.count + s.count } : { ...s });
  }
  return [...map.values()];
}

/** Σ count over the segments: the number of steps (not of segments). */
export function totalSteps(segments: readonly StepSegment[]): number {
  let n = 0;
  for (const s of segments) n += s.count;
  return n;
}

/** Base class: keeps the history; subclasses implement the math. */
export abstract class SegmentHistory {
  #segments: StepSegment[] = [];
  /**
   * Adds `count` (default 1) steps with sample rate `step.sampleRate` ∈ (0, 1] and noise multiplier
   * `step.noiseMultiplier` > 0, merged into the last segment when (q, σ) is the same.
   * @throws {@link InvalidArgumentError} naming the argument (sampleRate, noiseMultiplier, count); the history is then unchanged.
   */
  compose(step: { sampleRate: number; noiseMultiplier: number }, count = 1): void {
    this.#segments = appendSegment(this.#segments, { sampleRate: step.sampleRate, noiseMultiplier: step.noiseMultiplier, count });
    this.onCompose();
  }
  /** The composed history, run-length encoded. */
  get segments(): readonly StepSegment[] {
    return this.#segments;
  }
  /** Total number of steps composed (not the number of segments). */
  get steps(): number {
    return totalSteps(this.#segments);
  }
  /** Hook for caches. */
  protected onCompose(): void {}
}
