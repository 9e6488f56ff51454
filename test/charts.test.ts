import { strict as assert } from 'node:assert';
import { deltaVsStepSvg, epsilonDeltaSvg, epsilonVsStepSvg, reportHtml } from '../src/report/charts.ts';

describe('report charts', () => {
  it('renders an ε-vs-step SVG with one line per series and the budget rule, dropping non-finite ε', async () => {
    const points = [];
    for (let step = 1; step <= 20; step++) {
      points.push({ step, epsilon: 0.1 * Math.sqrt(step), series: 'Edgeworth (estimate)' });
      points.push({ step, epsilon: 0.11 * Math.sqrt(step), series: 'PLD (upper bound)' });
    }
    points.push({ step: 21, epsilon: Infinity, series: 'RDP (upper bound)' });
    const svg = await epsilonVsStepSvg(points, { delta: 1e-5, budgetEpsilon: 0.5 });
    assert.match(svg, /^<svg /);
    assert.match(svg, /Edgeworth \(estimate\)/);
    assert.match(svg, /PLD \(upper bound\)/);
    assert.doesNotMatch(svg, /RDP \(upper bound\)/, 'a series with only non-finite ε must not appear');
    assert.equal((svg.match(/class="mark-line/g) ?? []).length, 2, 'one line per finite series');
    assert.match(svg, /class="mark-rule/, 'budget rule drawn');
    assert.match(svg, /δ = 1e-5/);
  });

  it('renders δ(ε) on a log axis', async () => {
    const points = [0.5, 1, 2, 4].map((epsilon) => ({ epsilon, delta: Math.exp(-2 * epsilon), series: 'PLD (upper bound)' }));
    points.push({ epsilon: 5, delta: 0, series: 'PLD (upper bound)' });
    const svg = await epsilonDeltaSvg(points);
    assert.match(svg, /^<svg /);
    assert.match(svg, /e-\d/, 'log axis labels in exponent format');
  });

  it('renders δ vs step on a log axis (δ ~ 1e-6 readable), the target δ as a rule, dropping δ ≤ 0', async () => {
    const points = [1, 2, 3, 4].map((step) => ({ step, delta: 10 ** (-12 + 2 * step), series: 'Edgeworth δ (estimate)' }));
    points.push({ step: 5, delta: 0, series: 'dropped' });
    const svg = await deltaVsStepSvg(points, { epsilon: 3, budgetDelta: 1e-5 });
    assert.match(svg, /^<svg /);
    assert.match(svg, /δ at ε = 3/);
    assert.match(svg, /1e-6/, 'exponent tick labels');
    assert.doesNotMatch(svg, /dropped/);
    assert.match(svg, /class="mark-rule/, 'target δ rule drawn');
  });

  it('escapes HTML and declares UTF-8', () => {
    const html = reportHtml({ title: 'run <1>', summary: [['ε (upper bound)', '1.5 & more']], svgs: ['<svg></svg>'] });
    assert.match(html, /<meta charset="utf-8">/);
    assert.match(html, /run &lt;1&gt;/);
    assert.match(html, /1\.5 &amp; more/);
    assert.match(html, /<figure><svg><\/svg><\/figure>/);
  });
});
