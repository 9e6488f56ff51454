/**
 * RDP accountant for heterogeneous Poisson-subsampled Gaussian steps: RDP composes additively
 * (Σ count_i · rdp_i(α) over segments), then converts to (ε, δ) with the order that gives the smallest bound.
 * Answers are certified upper bounds (kind 'upper').
 */
import type { DeltaResult, EpsilonResult, PrivacyAccountant, StepSegment } from '../types.ts';
import { SegmentHistory, validateSegment } from '../segments.ts';
import { assertDelta, assertEpsilon } from '../../validate.ts';
import { InvalidArgumentError } from '../../errors.ts';
import { OPACUS_DEFAULT_ORDERS, assertOrders } from './orders.ts';
import { assertFractionalSeries, rdpOfOneStep, type FractionalSeries } from './subsampled-gaussian.ts';
import { assertConversion, deltaFromRdp, epsilonFromRdp, type RdpConversion } from './conversion.ts';

export * from './orders.ts';
export * from './subsampled-gaussian.ts';
export * from './conversion.ts';

/**
 * Options of {@link RdpAccountant}, {@link rdpEpsilon} and {@link rdpDelta} (defaults as Opacus' RDP accountant, with the improved conversion).
 */
export interface RdpOptions {
  /** RDP orders α > 1; default Opacus' DEFAULT_ALPHAS. */
  readonly orders?: readonly number[];
  /** RDP → (ε, δ) conversion; default 'improved' (Balle et al. 2020, Thm 21). */
  readonly conversion?: RdpConversion;
  /** Fractional-order series; default 'signed' (accurate). 'dp-accounting' reproduces dp_accounting. */
  readonly fractionalSeries?: FractionalSeries;
}

interface ResolvedOptions {
  orders: readonly number[];
  conversion: RdpConversion;
  fractionalSeries: FractionalSeries;
}

function resolveOptions(options: RdpOptions | undefined): ResolvedOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new InvalidArgumentError('options', options, 'an object');
  }
  const orders = options?.orders ?? OPACUS_DEFAULT_ORDERS;
  assertOrders(orders);
  const conversion = options?.conversion ?? 'improved';
  assertConversion(conversion);
  const fractionalSeries = options?.fractionalSeries ?? 'signed';
  assertFractionalSeries(fractionalSeries);
  return { orders: orders.slice(), conversion, fractionalSeries };
}

function validateSegments(segments: readonly StepSegment[]): void {
  if (!Array.isArray(segments)) throw new InvalidArgumentError('segments', segments, 'an array of step segments');
  for (const s of segments) validateSegment(s);
}

type OneStepRdp = (q: number, sigma: number) => Float64Array;

function oneStepComputer(opts: ResolvedOptions): OneStepRdp {
  return (q, sigma) => {
    const out = new Float64Array(opts.orders.length);
    for (let k = 0; k < out.length; k++) out[k] = rdpOfOneStep(q, sigma, opts.orders[k], opts.fractionalSeries);
    return out;
  };
}

/** Total RDP of the segments at each order (0 for an empty history). */
function composedRdp(segments: readonly StepSegment[], orders: readonly number[], oneStep: OneStepRdp): Float64Array {
  const total = new Float64Array(orders.length);
  for (const s of segments) {
    const r = oneStep(s.sampleRate, s.noiseMultiplier);
    for (let k = 0; k < total.length; k++) total[k] += s.count * r[k];
  }
  return total;
}

function epsilonResult(total: Float64Array, delta: number, opts: ResolvedOptions): EpsilonResult {
  const best = epsilonFromRdp(opts.orders, total, delta, opts.conversion);
  return {
    accountant: 'rdp',
    epsilon: best.value,
    delta,
    kind: 'upper',
    details: {
      order: best.order,
      rdpAtOrder: best.index >= 0 ? total[best.index] : NaN,
      orderAtEdge: best.index === 0 || best.index === opts.orders.length - 1,
      conversion: opts.conversion,
      fractionalSeries: opts.fractionalSeries,
    },
  };
}

function deltaResult(total: Float64Array, epsilon: number, opts: ResolvedOptions): DeltaResult {
  const best = deltaFromRdp(opts.orders, total, epsilon, opts.conversion);
  return {
    accountant: 'rdp',
    delta: best.value,
    epsilon,
    kind: 'upper',
    details: { order: best.order, conversion: opts.conversion, fractionalSeries: opts.fractionalSeries },
  };
}

/** ε (upper bound) of a run-length encoded history for the given δ. Validates everything before any work. */
export function rdpEpsilon(segments: readonly StepSegment[], delta: number, options?: RdpOptions): EpsilonResult {
  validateSegments(segments);
  assertDelta(delta);
  const opts = resolveOptions(options);
  return epsilonResult(composedRdp(segments, opts.orders, oneStepComputer(opts)), delta, opts);
}

/** δ (upper bound) of a run-length encoded history for the given ε ≥ 0. */
export function rdpDelta(segments: readonly StepSegment[], epsilon: number, options?: RdpOptions): DeltaResult {
  validateSegments(segments);
  assertEpsilon(epsilon, 'epsilon', true);
  const opts = resolveOptions(options);
  return deltaResult(composedRdp(segments, opts.orders, oneStepComputer(opts)), epsilon, opts);
}

/**
 * RDP accountant (name 'rdp', kind 'upper'). Caches the one-step RDP curve per (q, σ) and the composed curve
 * until the next `compose`.
 */
export class RdpAccountant extends SegmentHistory implements PrivacyAccountant {
  readonly name = 'rdp' as const;
  readonly kind = 'upper' as const;
  readonly #options: ResolvedOptions;
  readonly #stepCache = new Map<string, Float64Array>();
  #total: Float64Array | undefined;

  constructor(options?: RdpOptions) {
    super();
    this.#options = resolveOptions(options);
  }

  /** The orders in use. */
  get orders(): readonly number[] {
    return this.#options.orders;
  }

  /** The RDP → (ε, δ) conversion in use. */
  get conversion(): RdpConversion {
    return this.#options.conversion;
  }

  /** Composed RDP at each order (a copy). */
  rdp(): Float64Array {
    return this.#composed().slice();
  }

  getEpsilon(delta: number): EpsilonResult {
    assertDelta(delta);
    return epsilonResult(this.#composed(), delta, this.#options);
  }

  getDelta(epsilon: number): DeltaResult {
    assertEpsilon(epsilon, 'epsilon', true);
    return deltaResult(this.#composed(), epsilon, this.#options);
  }

  fresh(): RdpAccountant {
    return new RdpAccountant(this.#options);
  }

  protected override onCompose(): void {
    this.#total = undefined;
  }

  #composed(): Float64Array {
    if (!this.#total) {
      const compute = oneStepComputer(this.#options);
      const cached: OneStepRdp = (q, sigma) => {
        const key = `${q}|${sigma}`;
        let r = this.#stepCache.get(key);
        if (!r) {
          r = compute(q, sigma);
          this.#stepCache.set(key, r);
        }
        return r;
      };
      this.#total = composedRdp(this.segments, this.#options.orders, cached);
    }
    return this.#total;
  }
}
