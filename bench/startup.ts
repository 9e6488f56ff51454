/**
 * bench:startup — how long the compiled `ewtune` command takes to start, side by side with loading tfjs alone.
 *
 * Builds dist/ first (`node scripts/build.mjs`), then runs, round-robin in one run so machine noise hits all alike:
 *   node        `node -e 0` (the floor: starting Node itself);
 *   tfjs        `node -e "import('@tensorflow/tfjs')"`;
 *   help        `ewtune --help` (bin/ewtune.mjs with EWTUNE_RUN_FROM=dist: the compiled CLI, no tsx);
 *   epsilon     `ewtune epsilon` for the main job's σ, q, T (README): time to its first stdout line, and to exit.
 * Goals (issue 11): help ≤ 0.3 s, epsilon first line ≤ 0.5 s. Options: --runs N (default 15), --no-build.
 * Last line: `startup runs=<N> node-s=<x> tfjs-s=<x> help-s=<x> epsilon-first-line-s=<x> epsilon-total-s=<x>`
 * (medians, seconds).
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './shared.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/ewtune.mjs', import.meta.url));
/** The main job's privacy parameters (examples/minilm-polarity.json: σ 0.8171, q = 64/2820, 133 steps, δ 1e-5). */
const EPSILON_ARGS = ['epsilon', '--noise-multiplier', '0.8171', '--sample-rate', String(64 / 2820), '--steps', '133', '--delta', '1e-5'];

interface Case {
  readonly name: string;
  readonly args: readonly string[];
}

const CASES: readonly Case[] = [
  { name: 'node', args: ['-e', '0'] },
  { name: 'tfjs', args: ['-e', "import('@tensorflow/tfjs')"] },
  { name: 'help', args: [BIN, '--help'] },
  { name: 'epsilon', args: [BIN, ...EPSILON_ARGS] },
];

/** Seconds from spawn to the first complete stdout line and to exit; throws if the command fails. */
function timeRun(c: Case): Promise<{ firstLine: number; total: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - t0) / 1e9;
    let firstLine = Number.NaN;
    let stderr = '';
    const child = spawn(process.execPath, c.args, { cwd: ROOT, env: { ...process.env, EWTUNE_RUN_FROM: 'dist', NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => {
      if (Number.isNaN(firstLine) && chunk.includes(10)) firstLine = seconds();
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const total = seconds();
      if (code !== 0) reject(new Error(`${c.name}: exit ${code}\n${stderr}`));
      else resolve({ firstLine: Number.isNaN(firstLine) ? total : firstLine, total });
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' }, 'no-build': { type: 'boolean', default: false } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, not ${values.runs}`);
  if (!values['no-build']) {
    const build = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('build failed');
  }
  const firstLine = new Map<string, number[]>(CASES.map((c) => [c.name, []]));
  const total = new Map<string, number[]>(CASES.map((c) => [c.name, []]));
  for (const c of CASES) await timeRun(c); // warm the file cache once; not counted
  for (let i = 0; i < runs; i++) {
    for (const c of CASES) {
      const t = await timeRun(c);
      firstLine.get(c.name)?.push(t.firstLine);
      total.get(c.name)?.push(t.total);
    }
  }
  const med = (m: Map<string, number[]>, name: string) => median(m.get(name) ?? []);
  const s = (x: number) => x.toFixed(3);
  console.log(`start-up, median of ${runs} runs each, round-robin (Node ${process.version}, ${process.platform})`);
  console.log('command                                   first line s  exit s');
  const label: Record<string, string> = {
    node: 'node -e 0',
    tfjs: `node -e "import('@tensorflow/tfjs')"`,
    help: 'ewtune --help',
    epsilon: 'ewtune epsilon (main job σ, q, T)',
  };
  for (const c of CASES) console.log(`${label[c.name].padEnd(41)} ${s(med(firstLine, c.name)).padStart(12)}  ${s(med(total, c.name)).padStart(6)}`);
  console.log(`startup runs=${runs} node-s=${s(med(total, 'node'))} tfjs-s=${s(med(total, 'tfjs'))} help-s=${s(med(total, 'help'))} ` +
    `epsilon-first-line-s=${s(med(firstLine, 'epsilon'))} epsilon-total-s=${s(med(total, 'epsilon'))}`);
}

await main();
