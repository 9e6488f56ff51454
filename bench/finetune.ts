/**
 * `npm run bench:finetune [-- --quick] [-- --seeds N] [-- --modes top-k,lora] [-- --epsilons 8,3,1]`: private fine-tuning
 * of all-MiniLM-L6-v2 on Pang & Lee sentence polarity (the main job's model and data, examples/minilm-polarity.json),
 * held-out accuracy at certified ε ∈ {8, 3, 1} (δ = 1e-5, PLD) and non-private, per fine-tuning mode, over repeated
 * runs ("seeds": the DP noise and sampling come from node:crypto and cannot be seeded, so a seed is an independent
 * repetition); the GloVe-block baseline (examples/glove-polarity.json: today's transformer-classifier on frozen
 * GloVe-derived vectors, same split) at ε = 3; wall time per step and peak RSS; and the DP / non-private step-time
 * ratio of each mode measured side by side in one process (bench/finetune-run.ts, job step-timing).
 *
 * Every run is a child process (its own peak RSS), logs to MLflow like the main job when MLFLOW_TRACKING_URI is set
 * (else to local run directories under ewtune-runs/), and is the real `ewtune train` code path (runTraining).
 * Hyper-parameters are fixed in advance in this file (not chosen on the test split; the validation accuracy is printed
 * for who wants to choose on it). Needs the fetched model and corpus (`npx ewtune models fetch minilm`,
 * `npx ewtune data fetch polarity`). Last line:
 * `finetune model=<name> data=<name> mode=<mode> nonprivate=<acc> eps8=<acc> eps3=<acc> eps1=<acc> glove-baseline=<acc> step-ratio=<x>[ seeds=<n>]`.
 */
import { readExample, runFinetuneJob } from './finetune-job.ts';
import type { FinetuneJob, FinetuneJobResult } from './finetune-run.ts';

/** The mode the README recommends (the main job's). */
const RECOMMENDED_MODE = 'top-k';

/**
 * Fixed in advance: per mode, the fine-tuning settings and the training plan (Adam). The DP runs and the non-private
 * run of a mode share them (same batch size, steps, learning rate), so the table compares like with like. Chosen on
 * the validation split in a small sweep at ε = 3 (README, "Choosing the main job's settings"), never on the test split.
 */
const MODES: Record<string, { finetune: Record<string, unknown>; learningRate: number; headLearningRate?: number; expectedBatchSize: number; epochs: number; maxLength: number }> = {
  'top-k': { finetune: { mode: 'top-k', topK: 2, cacheBottom: true }, learningRate: 0.0005, headLearningRate: 0.01, expectedBatchSize: 256, epochs: 6, maxLength: 48 },
  head: { finetune: { mode: 'head', cacheBottom: true }, learningRate: 0.005, expectedBatchSize: 256, epochs: 10, maxLength: 64 },
  lora: { finetune: { mode: 'lora', lora: { rank: 8, alpha: 16, targets: ['query', 'value'] } }, learningRate: 0.002, expectedBatchSize: 64, epochs: 3, maxLength: 64 },
  full: { finetune: { mode: 'full', trainWordEmbeddings: false }, learningRate: 0.0005, expectedBatchSize: 64, epochs: 3, maxLength: 64 },
};

interface Args { seeds: number; modes: string[]; epsilons: number[]; quick: boolean; rounds: number }

function parseArgs(argv: string[]): Args {
  const args: Args = { seeds: 3, modes: ['top-k', 'head', 'lora'], epsilons: [8, 3, 1], quick: false, rounds: 5 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') { args.quick = true; args.seeds = 1; args.rounds = 3; }
    else if (a === '--seeds') args.seeds = Number(value());
    else if (a === '--modes') args.modes = value().split(',');
    else if (a === '--epsilons') args.epsilons = value().split(',').map(Number);
    else if (a === '--rounds') args.rounds = Number(value());
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(args.seeds) || args.seeds < 1) throw new Error('--seeds must be a positive integer');
  for (const m of args.modes) if (!(m in MODES)) throw new Error(`--modes: unknown mode ${m} (${Object.keys(MODES).join(', ')})`);
  if (args.epsilons.some((e) => !(e > 0))) throw new Error('--epsilons must be positive numbers');
  return args;
}



const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const pm = (xs: number[]) => (xs.length === 0 ? 'n/a' : `${mean(xs).toFixed(3)} ± ${sd(xs).toFixed(3)}`);
const fmtMs = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(0));

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const base = readExample('minilm-polarity.json');
  const glove = readExample('glove-polarity.json');
  const started = Date.now();
  const rows: string[] = [];
  const accuracies: Record<string, Record<string, number[]>> = {};
  const ratios: Record<string, number> = {};
  const log = (line: string) => process.stdout.write(`${line}\n`);
  log(`bench:finetune: modes ${args.modes.join(', ')}; ε ${args.epsilons.join(', ')} and non-private; ${args.seeds} run(s) each${args.quick ? ' (--quick)' : ''}`);

  for (const mode of args.modes) {
    const m = MODES[mode];
    const config = (overrides: { name: string; privacy?: Record<string, unknown> }) => ({
      ...base, name: overrides.name,
      model: { ...base.model, finetune: m.finetune, maxLength: m.maxLength },
      training: { ...base.training, learningRate: m.learningRate, headLearningRate: m.headLearningRate, expectedBatchSize: m.expectedBatchSize, epochs: m.epochs },
      privacy: { ...base.privacy, ...(overrides.privacy ?? {}) },
    });
    accuracies[mode] = {};
    const timing = await runFinetuneJob({ kind: 'step-timing', config: config({ name: `bench-${mode}-timing` }), rounds: args.rounds }, `${mode} step-timing`);
    ratios[mode] = (timing.dpStepMs as number) / (timing.nonPrivateStepMs as number);
    log(`${mode}: step timing DP ${fmtMs(timing.dpStepMs)} ms, non-private ${fmtMs(timing.nonPrivateStepMs)} ms, ratio ${ratios[mode].toFixed(2)} (${timing.backend}, ${timing.trainableParams} trainable)`);
    const settings: Array<{ key: string; label: string; job: (seed: number) => FinetuneJob }> = [
      { key: 'nonprivate', label: 'non-private', job: (s) => ({ kind: 'nonprivate', config: config({ name: `bench-${mode}-nonprivate-${s}` }) }) },
      ...args.epsilons.map((e) => ({
        key: `eps${e}`, label: `ε = ${e}`,
        job: (s: number): FinetuneJob => ({ kind: 'dp', config: config({ name: `bench-${mode}-eps${e}-${s}`, privacy: { targetEpsilon: e } }) }),
      })),
    ];
    for (const setting of settings) {
      const results: FinetuneJobResult[] = [];
      for (let seed = 1; seed <= args.seeds; seed++) {
        const r = await runFinetuneJob(setting.job(seed), `${mode} ${setting.label} run ${seed}`);
        results.push(r);
        log(`${mode} ${setting.label} run ${seed}: test ${r.testAccuracy?.toFixed(4)} validation ${r.validationAccuracy?.toFixed(4)} `
          + `steps ${r.steps} σ ${r.noiseMultiplier?.toFixed(4) ?? '-'} ε ${r.epsilonCertified?.toFixed(3) ?? '-'} step ${fmtMs(r.stepMs)} ms `
          + `RSS ${r.peakRssMb.toFixed(0)} MB wall ${r.wallS.toFixed(0)} s ${r.runUrl ?? r.runDir ?? ''}`);
      }
      const test = results.map((r) => r.testAccuracy as number);
      accuracies[mode][setting.key] = test;
      rows.push(`| ${mode} | ${setting.label} | ${pm(test)} | ${pm(results.map((r) => r.validationAccuracy as number))} | `
        + `${results[0].noiseMultiplier?.toFixed(4) ?? '—'} | ${results[0].steps} | ${fmtMs(mean(results.map((r) => r.stepMs as number)))} | `
        + `${Math.max(...results.map((r) => r.peakRssMb)).toFixed(0)} |`);
    }
    rows.push(`| ${mode} | DP step / non-private step (same batch, interleaved, ${args.rounds} rounds) | ${fmtMs(timing.dpStepMs)} ms / ${fmtMs(timing.nonPrivateStepMs)} ms = **${ratios[mode].toFixed(2)}** | | | | | |`);
  }

  const gloveResults: FinetuneJobResult[] = [];
  for (let seed = 1; seed <= args.seeds; seed++) {
    const r = await runFinetuneJob({ kind: 'dp', config: { ...glove, name: `bench-glove-eps3-${seed}`, privacy: { ...glove.privacy, targetEpsilon: 3 } } }, `glove run ${seed}`);
    gloveResults.push(r);
    log(`glove baseline ε = 3 run ${seed}: test ${r.testAccuracy?.toFixed(4)} steps ${r.steps} step ${fmtMs(r.stepMs)} ms RSS ${r.peakRssMb.toFixed(0)} MB`);
  }
  const gloveAcc = gloveResults.map((r) => r.testAccuracy as number);
  rows.push(`| GloVe block (transformer-classifier) | ε = 3 | ${pm(gloveAcc)} | | ${gloveResults[0].noiseMultiplier?.toFixed(4)} | ${gloveResults[0].steps} | ${fmtMs(mean(gloveResults.map((r) => r.stepMs as number)))} | ${Math.max(...gloveResults.map((r) => r.peakRssMb)).toFixed(0)} |`);

  log('');
  log(`| mode | privacy | test accuracy (mean ± sd, ${args.seeds} run${args.seeds > 1 ? 's' : ''}) | validation accuracy | σ | steps | ms / step | peak RSS MB |`);
  log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) log(r);
  log(`(${((Date.now() - started) / 60000).toFixed(1)} min)`);
  const mode = args.modes.includes(RECOMMENDED_MODE) ? RECOMMENDED_MODE : args.modes[0];
  const acc = (key: string) => (accuracies[mode][key]?.length ? mean(accuracies[mode][key]).toFixed(4) : 'n/a');
  log(`finetune model=all-MiniLM-L6-v2 data=polarity mode=${mode} nonprivate=${acc('nonprivate')} eps8=${acc('eps8')} eps3=${acc('eps3')} `
    + `eps1=${acc('eps1')} glove-baseline=${mean(gloveAcc).toFixed(4)} step-ratio=${ratios[mode].toFixed(2)}${args.seeds !== 3 ? ` seeds=${args.seeds}` : ''}`);
}

main().catch((error) => {
  process.stderr.write(`bench:finetune: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
