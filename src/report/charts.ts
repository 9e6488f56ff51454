/**
 * Privacy charts as standalone SVG (MLflow previews SVG artifacts inline) and a small HTML report for the
 * local run directory. Rendered headless with vega-lite → vega's `toSVG()` (no DOM, no canvas): a
 * maintained charting library rather than hand-drawn SVG paths.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** One point of an ε-vs-step series. `series` names the accountant and what the number is. */
export interface EpsilonPoint {
  readonly step: number;
  readonly epsilon: number;
  readonly series: string;
}

/** One point of an ε–δ curve. */
export interface EpsilonDeltaPoint {
  readonly epsilon: number;
  readonly delta: number;
  readonly series: string;
}

/** One point of a δ-vs-step series: δ at a fixed ε after `step` steps. */
export interface DeltaPoint {
  readonly step: number;
  readonly delta: number;
  readonly series: string;
}

async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function finitePoints<T extends { epsilon: number }>(points: readonly T[]): T[] {
  return points.filter((p) => Number.isFinite(p.epsilon));
}

/** ε after each step, one line per series (e.g. "Edgeworth (estimate)", "PLD (upper bound)"). */
export function epsilonVsStepSvg(points: readonly EpsilonPoint[], options: { delta: number; title?: string; budgetEpsilon?: number }): Promise<string> {
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title ?? `Privacy spent: ε at δ = ${options.delta.toExponential()}`,
    width: 560,
    height: 320,
    layer: [
      {
        data: { values: finitePoints(points) as unknown as Record<string, unknown>[] },
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'step' },
          y: { field: 'epsilon', type: 'quantitative', title: 'ε' },
          color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom-right', labelLimit: 400 } },
        },
      },
      ...(options.budgetEpsilon !== undefined
        ? [
            {
              data: { values: [{ budget: options.budgetEpsilon }] },
              mark: { type: 'rule' as const, strokeDash: [6, 4], color: '#b00' },
              encoding: { y: { field: 'budget', type: 'quantitative' as const } },
            },
          ]
        : []),
    ],
  } as TopLevelSpec;
  return renderSvg(spec);
}

/**
 * δ at a fixed ε after each step, δ on a log axis (values ~1e-6 stay readable), one line per series; `budgetDelta`
 * (the run's target δ) is drawn as a dashed rule. Non-finite and non-positive δ are left out (no log).
 */
export function deltaVsStepSvg(points: readonly DeltaPoint[], options: { epsilon: number; title?: string; budgetDelta?: number }): Promise<string> {
  const values = points.filter((p) => Number.isFinite(p.delta) && p.delta > 0);
  const y = { field: 'delta', type: 'quantitative', title: 'δ', scale: { type: 'log' }, axis: { format: '.0e' } } as const;
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title ?? `Privacy spent: δ at ε = ${options.epsilon}`,
    width: 560,
    height: 320,
    layer: [
      {
        data: { values },
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'step' },
          y,
          color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom-right', labelLimit: 400 } },
        },
      },
      ...(options.budgetDelta !== undefined && options.budgetDelta > 0
        ? [{ data: { values: [{ delta: options.budgetDelta }] }, mark: { type: 'rule', strokeDash: [6, 4], color: '#b00' }, encoding: { y } }]
        : []),
    ],
  } as unknown as TopLevelSpec;
  return renderSvg(spec);
}

/** The privacy profile δ(ε) of the final state, δ on a log axis, one line per series. */
export function epsilonDeltaSvg(points: readonly EpsilonDeltaPoint[], options: { title?: string } = {}): Promise<string> {
  const values = points.filter((p) => Number.isFinite(p.epsilon) && p.delta > 0 && Number.isFinite(p.delta));
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title ?? 'Privacy profile of the run: δ(ε)',
    width: 560,
    height: 320,
    data: { values },
    mark: { type: 'line', point: false },
    encoding: {
      x: { field: 'epsilon', type: 'quantitative', title: 'ε' },
      y: { field: 'delta', type: 'quantitative', title: 'δ', scale: { type: 'log' }, axis: { format: '.0e' } },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'top-right', labelLimit: 400 } },
    },
  } as TopLevelSpec;
  return renderSvg(spec);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** A self-contained HTML report (UTF-8 declared so MLflow and browsers render ε, δ, σ correctly). */
export function reportHtml(input: {
  title: string;
  summary: ReadonlyArray<readonly [string, string]>;
  svgs: readonly string[];
  notes?: readonly string[];
}): string {
  const rows = input.summary.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('\n');
  const notes = (input.notes ?? []).map((n) => `<p>${escapeHtml(n)}</p>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(input.title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f4f4f4}</style>
</head><body>
<h1>${escapeHtml(input.title)}</h1>
<table>${rows}</table>
${notes}
${input.svgs.map((s) => `<figure>${s}</figure>`).join('\n')}
</body></html>
`;
}
