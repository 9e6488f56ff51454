/** `ewtune train <config.json>`: one DP fine-tuning run from a configuration file (see plugin/run.ts). */
import { loadConfig, ConfigError } from '../../../plugin/config.ts';
import { runTraining, type RunResult } from '../../../plugin/run.ts';
import { loadRunConfig } from '../../../plugin/resume.ts';
import { numberFlag, parseFlags, trackingUriFlag, UsageError, type CliCommand, type CliIo } from '../args.ts';
import { InvalidArgumentError } from '../../errors.ts';

/**
 * A one-line progress bar on stderr (redrawn in place on a terminal; every 10% otherwise, so CI logs stay short).
 * Hand-written: it is a dozen lines, and a progress-bar package would be a runtime dependency of the library for it.
 */
function progressBar(io: CliIo): (p: { step: number; plannedSteps: number; epsilonEdgeworth?: number; loss?: number }) => void {
  const tty = process.stderr.isTTY === true;
  let lastDecile = -1;
  return ({ step, plannedSteps, epsilonEdgeworth, loss }) => {
    const fraction = Math.min(1, step / plannedSteps);
    const width = 30;
    const filled = Math.round(fraction * width);
    const text = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] step ${step}/${plannedSteps}`
      + `${epsilonEdgeworth !== undefined && Number.isFinite(epsilonEdgeworth) ? `  ε≈${epsilonEdgeworth.toFixed(3)} (Edgeworth estimate)` : ''}`
      + `${loss !== undefined && Number.isFinite(loss) ? `  loss ${loss.toFixed(4)}` : ''}`;
    if (tty) {
      process.stderr.write(`\r${text}${step >= plannedSteps ? '\n' : ''}`);
    } else {
      const decile = Math.floor(fraction * 10);
      if (decile !== lastDecile) {
        lastDecile = decile;
        io.err(text);
      }
    }
  };
}

function summary(r: RunResult): string {
  const eps = (x?: { epsilon: number; kind: string }) => (x && Number.isFinite(x.epsilon) ? `${x.epsilon.toFixed(4)} (${x.kind})` : 'n/a');
  const lines = [
    `status            ${r.status} (${r.stopReason})`,
    `steps             ${r.steps} of ${r.plannedSteps} planned`,
    `noise multiplier  ${r.noiseMultiplier.toPrecision(6)}  (sample rate ${r.sampleRate.toPrecision(6)})`,
    `ε certified (PLD) ${eps(r.epsilonCertified)}`,
    `ε Edgeworth       ${eps(r.epsilonEdgeworth)}`,
    `ε RDP             ${eps(r.epsilonRdp)}`,
    `held-out accuracy ${r.accuracy === undefined ? 'n/a' : r.accuracy.toFixed(4)}`,
  ];
  if (r.runUrl) lines.push(`MLflow run        ${r.runUrl}`);
  lines.push(`run directory     ${r.runDir}`);
  if (!r.runUrl) lines.push(`replay to MLflow  ewtune mlflow replay ${r.runDir} --tracking-uri <URI>`);
  else if (!r.complete) lines.push(`not all points reached the server; send the rest with: ewtune mlflow replay ${r.runDir} --tracking-uri ${r.trackingUri}`);
  return lines.join('\n');
}

export const trainCommand: CliCommand = {
  usage: 'ewtune train <config.json> [--tracking-uri URI] [--max-steps N] [--target-epsilon E] [--json]\n'
    + '       ewtune train --resume <run dir> [--tracking-uri URI] [--max-steps N] [--json]   (continue a killed or stopped run)\n'
    + '  Tracking: --tracking-uri, else the config\'s tracking.trackingUri, else MLFLOW_TRACKING_URI, else a local run directory.',
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      'tracking-uri': { type: 'string' }, 'max-steps': { type: 'string' }, 'target-epsilon': { type: 'string' },
      json: { type: 'boolean', default: false }, resume: { type: 'string' },
    }, true);
    const resumeDir = values.resume;
    if (resumeDir !== undefined) {
      if (positionals.length !== 0) throw new UsageError('--resume <run dir> takes no <config.json>: the run directory holds its configuration');
      if (values['target-epsilon'] !== undefined) throw new UsageError('--target-epsilon cannot change when resuming: the privacy parameters are fixed by the run\'s ledger');
    } else if (positionals.length !== 1) throw new UsageError(`<config.json> must be exactly one path; got ${positionals.length}`);
    const maxSteps = numberFlag('--max-steps', values['max-steps'], false);
    if (maxSteps !== undefined && !(Number.isSafeInteger(maxSteps) && maxSteps >= 1)) throw new InvalidArgumentError('--max-steps', maxSteps, 'a positive integer');
    const targetEpsilon = numberFlag('--target-epsilon', values['target-epsilon'], false);
    if (targetEpsilon !== undefined && !(targetEpsilon > 0)) throw new InvalidArgumentError('--target-epsilon', targetEpsilon, 'a number > 0');
    const trackingUri = trackingUriFlag(values['tracking-uri']);
    let config;
    try {
      config = resumeDir !== undefined ? loadRunConfig(resumeDir, { trackingUri, maxSteps }) : loadConfig(positionals[0], { trackingUri, maxSteps, targetEpsilon });
    } catch (e) {
      if (e instanceof ConfigError) {
        io.err(`ewtune train: ${e.message}`);
        return 2;
      }
      throw e;
    }
    let result: RunResult;
    try {
      result = await runTraining(config, { onProgress: progressBar(io), log: (l) => io.err(l), resumeDir });
    } catch (e) {
      // Checks that need the data (batch size vs N, empty file, unreachable target, run directory...): exit 2.
      if (e instanceof ConfigError) {
        io.err(`ewtune train: ${e.message}`);
        return 2;
      }
      throw e;
    }
    if (values.json) {
      const { history: _h, calibration, ...rest } = result;
      io.out(JSON.stringify({ ...rest, calibration: calibration ? { noiseMultiplier: calibration.noiseMultiplier, epsilon: calibration.epsilon, kind: calibration.kind, accountant: calibration.accountant, certifiedEpsilon: calibration.certifiedEpsilon?.epsilon } : undefined }));
    } else {
      io.out(summary(result));
    }
    return 0;
  },
};
