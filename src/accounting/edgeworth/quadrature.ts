/**
 * Adaptive Gauss–Kronrod (7/15-point) integration of smooth functions on a finite interval, used for the
 * one-dimensional integrals of the finite-sample Edgeworth error bound (bound.ts). Global adaptivity in the
 * style of QUADPACK's QAG: keep splitting the interval with the largest error estimate until the summed
 * error estimate is within max(absTolerance, relTolerance·|integral|).
 */

/** Kronrod abscissae on [−1, 1] (positive half; the last is the centre). */
const XGK = [
  0.991455371120812639206854697526329, 0.949107912342758524526189684047851, 0.864864423359769072789712788640926,
  0.741531185599394439863864773280788, 0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
  0.207784955007898467600689403773245, 0,
];
/** Kronrod weights matching XGK. */
const WGK = [
  0.02293532201052922496373200805897, 0.063092092629978553290700663189204, 0.104790010322250183839876322541518,
  0.140653259715525918745189590510238, 0.16900472663926790282658342659855, 0.190350578064785409913256402421014,
  0.204432940075298892414161999234649, 0.209482141084727828012999174891714,
];
/** 7-point Gauss weights at XGK[1], XGK[3], XGK[5], XGK[7]. */
const WG = [0.129484966168869693270611432679082, 0.27970539148927666790146777142378, 0.381830050505118944950369775488975, 0.417959183673469387755102040816327];

interface Piece {
  a: number;
  b: number;
  value: number;
  error: number;
}

function gk15(f: (x: number) => number, a: number, b: number): Piece {
  const centre = 0.5 * (a + b);
  const half = 0.5 * (b - a);
  const fc = f(centre);
  let kronrod = fc * WGK[7];
  let gauss = fc * WG[3];
  for (let j = 0; j < 7; j++) {
    const dx = half * XGK[j];
    const sum = f(centre - dx) + f(centre + dx);
    kronrod += WGK[j] * sum;
    if (j % 2 === 1) gauss += WG[(j - 1) / 2] * sum;
  }
  return { a, b, value: kronrod * half, error: Math.abs((kronrod - gauss) * half) };
}

export interface IntegrateOptions {
  readonly relTolerance?: number;
  readonly absTolerance?: number;
  /** Maximum number of subintervals. */
  readonly maxIntervals?: number;
}

/**
 * ∫_a^b f(x) dx for a smooth f. Oriented: a > b gives −∫_b^a (as scipy's quad does). Returns NaN/∞ when the
 * integrand overflows.
 */
export function integrate(f: (x: number) => number, a: number, b: number, options: IntegrateOptions = {}): number {
  if (a === b) return 0;
  if (a > b) return -integrate(f, b, a, options);
  const relTolerance = options.relTolerance ?? 1e-12;
  const absTolerance = options.absTolerance ?? 0;
  const maxIntervals = options.maxIntervals ?? 4000;
  const pieces: Piece[] = [gk15(f, a, b)];
  let value = pieces[0].value;
  let error = pieces[0].error;
  while (error > Math.max(absTolerance, relTolerance * Math.abs(value)) && pieces.length < maxIntervals) {
    if (!Number.isFinite(value) || !Number.isFinite(error)) break;
    let worst = 0;
    for (let i = 1; i < pieces.length; i++) if (pieces[i].error > pieces[worst].error) worst = i;
    const p = pieces[worst];
    const mid = 0.5 * (p.a + p.b);
    if (!(mid > p.a && mid < p.b)) break; // interval cannot be split further in float64
    const left = gk15(f, p.a, mid);
    const right = gk15(f, mid, p.b);
    pieces[worst] = left;
    pieces.push(right);
    value = 0;
    error = 0;
    for (const q of pieces) {
      value += q.value;
      error += q.error;
    }
  }
  return value;
}
