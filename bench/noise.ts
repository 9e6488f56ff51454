/**
 * Throughput of the DP noise (`npm run bench:noise`): NoiseSource.perturbInto on a float32 "clipped sum" of
 * NOISE_BENCH_VALUES values (default 10 M, a 10 M-parameter model), in M values/s, for the secure Gaussian mode with
 * and without prefetch workers and for the hardened mode (1/10 of the values: it is ~50× slower). Medians of
 * NOISE_BENCH_ROUNDS (default 7) calls after one warm-up call, back to back (the worst case for prefetching: no
 * training step in between to hide the sampling behind).
 *
 * Last line: `noise gaussian=<M/s> gaussian-no-prefetch=<M/s> hardened=<M/s> workers=<n>`.
 */
import os from 'node:os';
import { createNoiseSource, type NoiseSource } from '../src/dp/noise.ts';
import { median } from './shared.ts';

const VALUES = Math.max(1, Number(process.env.NOISE_BENCH_VALUES ?? 10_000_000));
const ROUNDS = Math.max(3, Number(process.env.NOISE_BENCH_ROUNDS ?? 7));

function throughput(source: NoiseSource, n: number): number {
  const sum = new Float32Array(n);
  for (let i = 0; i < n; i++) sum[i] = ((i % 1000) - 500) / 1000;
  const out = new Float64Array(n);
  const run = () => {
    const t0 = performance.now();
    source.perturbInto!(sum, 1, out);
    return performance.now() - t0;
  };
  run();
  const times = Array.from({ length: ROUNDS }, run);
  return n / median(times) / 1000; // M values/s
}

const gaussian = createNoiseSource('gaussian');
const sequential = createNoiseSource('gaussian', { prefetch: false });
const hardened = createNoiseSource('hardened');
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`${VALUES.toLocaleString('en-US')} values per call, median of ${ROUNDS} calls back to back`);
const g = throughput(gaussian, VALUES);
const s = throughput(sequential, VALUES);
const h = throughput(hardened, Math.max(1, Math.floor(VALUES / 10)));
const workers = /(\d+) worker/.exec(gaussian.describe().generator)?.[1] ?? (/worker/.test(gaussian.describe().generator) ? '1' : '0');
console.log('');
console.log('| noise mode | M values/s |');
console.log('|---|---:|');
console.log(`| gaussian (${gaussian.describe().generator}) | ${g.toFixed(1)} |`);
console.log(`| gaussian, prefetch: false (calling thread only) | ${s.toFixed(1)} |`);
console.log(`| hardened (${hardened.describe().generator}) | ${h.toFixed(2)} |`);
console.log(`noise gaussian=${g.toFixed(1)} gaussian-no-prefetch=${s.toFixed(1)} hardened=${h.toFixed(2)} workers=${workers}`);
