/**
 * Accounting benchmark (issue 2): `npm run bench:accounting` [-- --quick].
 * 1. Per point of ../shared/reference/peer_grid.json (δ = 1e-5): ε by Edgeworth (orders 1, 2), RDP, PLD; relative
 *    error of each against dp_accounting's pessimistic PLD ε (the grid's tight reference); ms per query
 *    (Edgeworth: first query for a (q, σ) with cold caches, then a fresh accountant on warm caches; PLD cold).
 *    Then a summary per accountant: median / max |relative error|, most negative error, how many points fall
 *    below the reference (anti-conservative), median ms per query.
 * 2. EW-Tune's settings (reference/ew_reference.json → ewtune.reproduced_sigma_and_exact_check, batch 2000,
 *    20 epochs, ε = 8, δ 1e-5 and 1e-6; q = batch/dataset size and steps = 20·⌊N/2000⌋ as in EW-Tune's code,
 *    whose QQP size is 363849): the σ each accountant calibrates (ms per calibration), with the certified (PLD)
 *    ε at that σ; and EW-Tune's own σ (its Edgeworth, PRV and RDP choices) with their certified ε.
 * Output: markdown tables; the LAST line is machine-readable:
 *   accounting ew-query-ms=<median warm Edgeworth query> pld-ms=<median PLD point> calibrate-pld-ms=<median> pld-max-rel-err=<max>
 * --quick: every 8th grid point and the δ = 1e-5 settings only (for a smoke run).
 */
import { performance } from 'node:perf_hooks';
import { calibrateNoiseMultiplier } from '../src/accounting/calibrate.ts';
import { clearCumulantCache } from '../src/accounting/edgeworth/index.ts';
import { createAccountant } from '../src/accounting/factory.ts';
import { clearPldCaches } from '../src/accounting/pld/index.ts';
import type { AccountantName, EpsilonResult } from '../src/accounting/types.ts';
import { median, readReference, type PeerGridPoint } from './shared.ts';

interface EwSetting {
  task: string;
  batch_size: number;
  dataset_size: number;
  q: number;
  steps: number;
  delta: number;
  eps_target: number;
  sigma_EW: number;
  sigma_PRV: number;
  sigma_RDP: number;
  sigma_needed_exact_for_eps_target: number;
}

const quick = process.argv.includes('--quick');
const grid = readReference<{ grid: PeerGridPoint[] }>('peer_grid.json').grid.filter((_, i) => !quick || i % 8 === 0);
const settings = readReference<{ ewtune: { reproduced_sigma_and_exact_check: EwSetting[] } }>('ew_reference.json')
  .ewtune.reproduced_sigma_and_exact_check.filter((s) => s.batch_size === 2000 && (s.delta === 1e-5 || (!quick && s.delta === 1e-6)));

function epsilonOf(name: AccountantName, q: number, sigma: number, steps: number, delta: number, order?: 1 | 2): EpsilonResult {
  const acc = createAccountant(name, order ? { order } : {});
  acc.compose({ sampleRate: q, noiseMultiplier: sigma }, steps);
  return acc.getEpsilon(delta);
}
function timed<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const v = f();
  return [v, performance.now() - t0];
}
const f = (x: number | null | undefined, d = 4) => (x === null || x === undefined ? '—' : Number.isFinite(x) ? x.toPrecision(d) : String(x));
const rel = (x: number, ref: number) => (x - ref) / ref;
const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
/** Percent, or scientific notation for magnitudes below 0.01% (PLD's agreement with the reference). */
const pctOrSci = (x: number) => (x !== 0 && Math.abs(x) < 1e-4 ? x.toExponential(1) : pct(x));

// ---- 1. grid ----
const ewWarm: number[] = [];
const pldMs: number[] = [];
let pldMaxRel = 0;
const gridRows: string[] = [];
const errs: Record<'ew1' | 'ew2' | 'rdp' | 'pld', number[]> = { ew1: [], ew2: [], rdp: [], pld: [] };
const timings: Record<'ewFirst' | 'ewWarm' | 'ew2Warm' | 'rdp' | 'pld', number[]> = { ewFirst: [], ewWarm: ewWarm, ew2Warm: [], rdp: [], pld: pldMs };
for (const p of grid) {
  clearCumulantCache();
  const [ew1, ew1FirstMs] = timed(() => epsilonOf('edgeworth', p.q, p.sigma, p.steps, p.delta, 1));
  const [, ew1WarmMs] = timed(() => epsilonOf('edgeworth', p.q, p.sigma, p.steps, p.delta, 1));
  ewWarm.push(ew1WarmMs);
  const [ew2, ew2WarmMs] = timed(() => epsilonOf('edgeworth', p.q, p.sigma, p.steps, p.delta, 2));
  timings.ewFirst.push(ew1FirstMs);
  timings.ew2Warm.push(ew2WarmMs);
  const [rdp, rdpMs] = timed(() => epsilonOf('rdp', p.q, p.sigma, p.steps, p.delta));
  clearPldCaches();
  const [pld, pldQueryMs] = timed(() => epsilonOf('pld', p.q, p.sigma, p.steps, p.delta));
  pldMs.push(pldQueryMs);
  timings.rdp.push(rdpMs);
  const ref = p.eps_pld_pessimistic;
  errs.ew1.push(rel(ew1.epsilon, ref));
  errs.ew2.push(rel(ew2.epsilon, ref));
  errs.rdp.push(rel(rdp.epsilon, ref));
  errs.pld.push(rel(pld.epsilon, ref));
  pldMaxRel = Math.max(pldMaxRel, Math.abs(rel(pld.epsilon, ref)));
  gridRows.push(
    `| ${p.q} | ${p.sigma} | ${p.steps} | ${f(ref, 5)} | ${f(ew1.epsilon)} (${pct(rel(ew1.epsilon, ref))}) | ${f(ew2.epsilon)} (${pct(rel(ew2.epsilon, ref))}) | ` +
      `${f(rdp.epsilon)} (${pct(rel(rdp.epsilon, ref))}) | ${f(pld.epsilon, 5)} (${rel(pld.epsilon, ref).toExponential(1)}) | ` +
      `${ew1FirstMs.toFixed(1)} / ${ew1WarmMs.toFixed(2)} | ${rdpMs.toFixed(1)} | ${pldQueryMs.toFixed(0)} |`,
  );
}
console.log(`## ε on the peer grid (δ = 1e-5; reference: dp_accounting pessimistic PLD; relative error in parentheses)\n`);
console.log('| q | σ | steps | ref ε | Edgeworth o1 | Edgeworth o2 | RDP | PLD | EW ms first / warm | RDP ms | PLD ms |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of gridRows) console.log(r);

console.log(`\n## Summary over the ${grid.length} grid points (relative error vs the reference; below = ε under the reference, i.e. anti-conservative)\n`);
console.log('| accountant | median abs rel err | max abs rel err | min signed rel err | points below ref | median ms/query |');
console.log('|---|---|---|---|---|---|');
for (const [label, key, msKey] of [
  ['Edgeworth o1 (estimate)', 'ew1', 'ewWarm'],
  ['Edgeworth o2 (estimate)', 'ew2', 'ew2Warm'],
  ['RDP (upper bound)', 'rdp', 'rdp'],
  ['PLD (upper bound)', 'pld', 'pld'],
] as const) {
  const e = errs[key].filter((x) => Number.isFinite(x));
  const abs = e.map(Math.abs);
  const nonFinite = errs[key].length - e.length;
  const below = e.filter((x) => x < 0).length;
  const msCell = key === 'ew1' ? `${median(timings.ewWarm).toFixed(3)} warm, ${median(timings.ewFirst).toFixed(1)} first` : key === 'ew2' ? `${median(timings.ew2Warm).toFixed(3)} warm` : median(timings[msKey]).toFixed(1);
  console.log(
    `| ${label} | ${pctOrSci(median(abs))} | ${pctOrSci(Math.max(...abs))} | ${pctOrSci(Math.min(...e))} | ${below} / ${errs[key].length}${nonFinite ? ` (${nonFinite} non-finite)` : ''} | ${msCell} |`,
  );
}

// ---- 2. EW-Tune calibration ----
console.log(
  `\n## σ calibrated for EW-Tune's settings (batch 2000, 20 epochs, ε = 8); certified ε = PLD upper bound at that σ` +
    ` ("its ε" on EW-Tune's Edgeworth σ: ewtune's order-1 Edgeworth estimate)\n`,
);
console.log('| task | N | δ | q | steps | accountant | σ | its ε | certified ε | ms |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
const calibratePldMs: number[] = [];
const calibrateMs: Record<string, number[]> = {};
for (const s of settings) {
  for (const [label, name, order] of [
    ['PLD', 'pld', undefined],
    ['RDP', 'rdp', undefined],
    ['Edgeworth o1', 'edgeworth', 1],
    ['Edgeworth o2', 'edgeworth', 2],
    ['GDP', 'gdp', undefined],
  ] as const) {
    const [r, ms] = timed(() =>
      calibrateNoiseMultiplier({ targetEpsilon: s.eps_target, delta: s.delta, sampleRate: s.q, steps: s.steps, accountant: name, allowEstimate: true, ...(order ? { order } : {}) }),
    );
    if (name === 'pld') calibratePldMs.push(ms);
    (calibrateMs[label] ??= []).push(ms);
    const certified = r.certifiedEpsilon?.epsilon ?? (name === 'pld' ? r.epsilon : epsilonOf('pld', s.q, r.noiseMultiplier, s.steps, s.delta).epsilon);
    console.log(`| ${s.task} | ${s.dataset_size} | ${s.delta} | ${s.q.toFixed(5)} | ${s.steps} | ${label} | ${r.noiseMultiplier.toFixed(4)} | ${f(r.epsilon)} | ${f(certified)} | ${ms.toFixed(0)} |`);
  }
  for (const [label, sigma] of [
    ["EW-Tune's σ (Edgeworth)", s.sigma_EW],
    ["EW-Tune's σ (PRV)", s.sigma_PRV],
    ["EW-Tune's σ (RDP)", s.sigma_RDP],
  ] as const) {
    const cert = epsilonOf('pld', s.q, sigma, s.steps, s.delta).epsilon;
    // At EW-Tune's Edgeworth σ: ewtune's order-1 estimate, remove direction only (what EW-Tune computes) / both.
    let its = '—';
    if (sigma === s.sigma_EW) {
      const ew = epsilonOf('edgeworth', s.q, sigma, s.steps, s.delta, 1);
      const removeOnly = (ew.details as { epsilonRemove?: number } | undefined)?.epsilonRemove;
      its = `${f(removeOnly, 5)} remove-only / ${f(ew.epsilon, 5)} add/remove`;
    }
    console.log(`| ${s.task} | ${s.dataset_size} | ${s.delta} | ${s.q.toFixed(5)} | ${s.steps} | ${label} | ${sigma} | ${its} | ${f(cert)}${cert > s.eps_target ? ' **> 8**' : ''} | — |`);
  }
}

// The estimate accountants' search alone (reportCertified: false), timed apart from the certified ε they report.
for (const s of settings) {
  for (const [label, name, order] of [['Edgeworth o1 (search only)', 'edgeworth', 1], ['Edgeworth o2 (search only)', 'edgeworth', 2]] as const) {
    clearCumulantCache();
    const [, ms] = timed(() => calibrateNoiseMultiplier({ targetEpsilon: s.eps_target, delta: s.delta, sampleRate: s.q, steps: s.steps, accountant: name, allowEstimate: true, order, reportCertified: false }));
    (calibrateMs[label] ??= []).push(ms);
  }
}

console.log(`\n## Calibration time (ms per calibrateNoiseMultiplier call, over the ${settings.length} settings)\n`);
console.log('| accountant | median ms | max ms |');
console.log('|---|---|---|');
for (const [label, xs] of Object.entries(calibrateMs)) console.log(`| ${label} | ${median(xs).toFixed(0)} | ${Math.max(...xs).toFixed(0)} |`);

console.log(
  `accounting ew-query-ms=${median(ewWarm).toFixed(3)} pld-ms=${median(pldMs).toFixed(1)} calibrate-pld-ms=${median(calibratePldMs).toFixed(0)} pld-max-rel-err=${pldMaxRel.toExponential(3)}`,
);
