/** Helpers shared by the benchmark scripts: the median, and the reference data in ../shared/reference/. */
import { readFileSync } from 'node:fs';

/** Median (mean of the two middle values for an even count; NaN for none). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A point of ../shared/reference/peer_grid.json (δ = 1e-5 grid and the MNIST points). */
export interface PeerGridPoint {
  q: number;
  sigma: number;
  steps: number;
  delta: number;
  eps_pld_pessimistic: number;
  eps_prv_ms_lower_est_upper: [number, number, number];
  t_pld_pessimistic_s: number;
}

/** Parse a JSON file of ../shared/reference/ (next to this checkout; the benchmarks need it, the tests do not). */
export function readReference<T>(file: string): T {
  return JSON.parse(readFileSync(new URL(`../../shared/reference/${file}`, import.meta.url), 'utf8')) as T;
}
