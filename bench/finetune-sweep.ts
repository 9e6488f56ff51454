/**
 * `npm run bench:finetune-sweep -- <sweep.json> [out.jsonl]`: the small hyper-parameter sweep behind the main job's
 * settings (README, "Choosing the main job's settings"). Each job of the sweep file is the main job's config
 * (examples/minilm-polarity.json) with some fields replaced (`set`: dotted path → value), run as a DP job of
 * bench/finetune-run.ts (exactly `ewtune train`: calibrated σ for the certified ε target, Poisson sampling) in a child
 * process of its own, one after the other. The base's `training.headLearningRate` is removed first: a job sets every
 * field it varies (the sweep file lists them all), so the sweep does not change when the example does. Prints one line per job (test and validation accuracy, steps, σ, median
 * step time, peak RSS, wall time) and appends the full result to `out.jsonl` (default ewtune-runs/finetune-sweep.jsonl).
 * Choose on the validation column; the test column is what the README reports.
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { readExample, runFinetuneJob } from './finetune-job.ts';

interface SweepJob { name: string; set: Record<string, unknown> }

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let o = target;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]] = value;
}

async function main(): Promise<void> {
  const [sweepFile, outFile = 'ewtune-runs/finetune-sweep.jsonl'] = process.argv.slice(2);
  if (!sweepFile) throw new Error('usage: npm run bench:finetune-sweep -- <sweep.json> [out.jsonl]');
  const jobs = JSON.parse(readFileSync(sweepFile, 'utf8')) as SweepJob[];
  const base: Record<string, unknown> = readExample('minilm-polarity.json');
  mkdirSync(dirname(outFile), { recursive: true });
  console.log('| job | test acc | validation acc | steps | σ | ms / step | peak RSS MB | wall s |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const job of jobs) {
    const config = structuredClone(base);
    config.name = job.name;
    delete (config.training as Record<string, unknown>).headLearningRate; // a job sets it when it wants one
    for (const [path, value] of Object.entries(job.set)) setPath(config, path, value);
    const r = await runFinetuneJob({ kind: 'dp', config }, job.name, { inheritStderr: true });
    appendFileSync(outFile, `${JSON.stringify({ name: job.name, set: job.set, result: r })}\n`);
    console.log(`| ${job.name} | ${r.testAccuracy?.toFixed(4)} | ${r.validationAccuracy?.toFixed(4)} | ${r.steps} | ${r.noiseMultiplier?.toFixed(4)} | `
      + `${r.stepMs?.toFixed(0)} | ${r.peakRssMb.toFixed(0)} | ${r.wallS.toFixed(0)} |`);
  }
}

main().catch((error) => {
  process.stderr.write(`bench:finetune-sweep: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
