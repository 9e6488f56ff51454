/**
 * PLD accountant over the 80-point peer grid (../shared/reference/peer_grid.json, δ = 1e-5, h = 1e-4):
 * ε, relative error against dp_accounting's eps_pld_pessimistic, check against prv_accountant's lower bound,
 * seconds per point with COLD caches (each point computed from scratch), then the MNIST points and the
 * h-sweep. Usage: npx tsx bench/pld-grid.ts [--warm]   (--warm keeps the caches between points)
 * Then opacus' PRV test values (peer_vectors records 2, 8–41): PLD must lie in PRV's [upper − 0.025, upper].
 * Last line (machine-readable): pld-grid median-s=<x> max-s=<y> max-rel-err=<z> below-prv-lower=<n> prv-records-outside-bracket=<m>
 */
import { readReference, type PeerGridPoint } from './shared.ts';
import { clearPldCaches, pldEpsilon } from '../src/accounting/pld/index.ts';

const grid = readReference<{
  grid: PeerGridPoint[];
  mnist: PeerGridPoint[];
  mnist_pld_discretization_sweep: { q: number; sigma: number; steps: number; delta: number; eps_and_seconds_by_value_discretization_interval: Record<string, [number, number]> };
}>('peer_grid.json');
const warm = process.argv.includes('--warm');

function run(p: PeerGridPoint, h = 1e-4): { eps: number; s: number } {
  if (!warm) clearPldCaches();
  const t0 = performance.now();
  const r = pldEpsilon([{ sampleRate: p.q, noiseMultiplier: p.sigma, count: p.steps }], p.delta, { valueDiscretizationInterval: h });
  return { eps: r.epsilon, s: (performance.now() - t0) / 1000 };
}

const times: number[] = [];
let maxRel = 0;
let below = 0;
console.log('q\tsigma\tsteps\teps_ours\teps_dp_accounting\trel_err\tprv_lower\tseconds\tdp_accounting_s');
for (const p of grid.grid) {
  const { eps, s } = run(p);
  const rel = Math.abs(eps - p.eps_pld_pessimistic) / p.eps_pld_pessimistic;
  maxRel = Math.max(maxRel, rel);
  if (eps < p.eps_prv_ms_lower_est_upper[0]) below++;
  times.push(s);
  console.log(`${p.q}\t${p.sigma}\t${p.steps}\t${eps.toFixed(8)}\t${p.eps_pld_pessimistic.toFixed(8)}\t${rel.toExponential(2)}\t${p.eps_prv_ms_lower_est_upper[0].toFixed(6)}\t${s.toFixed(3)}\t${p.t_pld_pessimistic_s}`);
}
const sorted = times.slice().sort((a, b) => a - b);
const median = (sorted[39] + sorted[40]) / 2;
console.log(`\ngrid: ${times.length} points, median ${median.toFixed(3)} s, max ${sorted[sorted.length - 1].toFixed(3)} s, total ${times.reduce((a, b) => a + b, 0).toFixed(1)} s, max rel err ${maxRel.toExponential(2)}, below prv lower: ${below}`);

for (const p of grid.mnist) {
  const { eps, s } = run(p);
  console.log(`mnist steps=${p.steps}: eps ${eps.toFixed(8)} (dp_accounting ${p.eps_pld_pessimistic.toFixed(8)}) ${s.toFixed(3)} s`);
}
const sw = grid.mnist_pld_discretization_sweep;
for (const [hs, [ref, refS]] of Object.entries(sw.eps_and_seconds_by_value_discretization_interval)) {
  const { eps, s } = run({ ...sw, eps_pld_pessimistic: ref, eps_prv_ms_lower_est_upper: [0, 0, 0], t_pld_pessimistic_s: refS }, Number(hs));
  console.log(`mnist sweep h=${hs}: eps ${eps.toFixed(8)} (dp_accounting ${ref.toFixed(8)}, ${refS} s) ${s.toFixed(3)} s`);
}
// opacus' PRV test values (eps_upper, eps_error 0.01): PLD must lie in [upper − 0.025, upper]
const vectors = readReference<{
  records: { test: string; sample_rate: number; noise_multiplier: number; steps: number; delta: number; expected_epsilon: number; accountant?: string }[];
}>('peer_vectors.json');
let prvOutside = 0;
vectors.records.forEach((r, i) => {
  if (!(i === 2 || (i >= 8 && i <= 41))) return;
  const { eps, s } = run({ q: r.sample_rate, sigma: r.noise_multiplier, steps: r.steps, delta: r.delta, eps_pld_pessimistic: 0, eps_prv_ms_lower_est_upper: [0, 0, 0], t_pld_pessimistic_s: 0 });
  const inside = eps <= r.expected_epsilon && eps >= r.expected_epsilon - 0.025;
  if (!inside) prvOutside++;
  console.log(`prv record ${i} q=${r.sample_rate} σ=${r.noise_multiplier} T=${r.steps} δ=${r.delta}: eps ${eps.toFixed(6)} prv upper ${r.expected_epsilon.toFixed(6)} ${inside ? 'inside' : 'OUTSIDE'} ${s.toFixed(3)} s`);
});
console.log(`pld-grid median-s=${median.toFixed(3)} max-s=${sorted[sorted.length - 1].toFixed(3)} max-rel-err=${maxRel.toExponential(2)} below-prv-lower=${below} prv-records-outside-bracket=${prvOutside}`);
