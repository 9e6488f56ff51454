/**
 * `ewtune audit <config.json>`: a one-run privacy audit of the configured training (src/audit): the empirical ε lower
 * bound (95%) beside the certified ε. Exit 0 when ε_audit ≤ ε certified, 3 ("privacy bug") when it exceeds it,
 * 2 for a bad command line or configuration.
 */
import { loadConfig, ConfigError } from '../../../plugin/config.ts';
import { auditFromConfig, type ConfigAuditResult } from '../../audit/from-config.ts';
import { DEFAULT_CANARIES } from '../../audit/run.ts';
import { InvalidArgumentError } from '../../errors.ts';
import { numberFlag, parseFlags, trackingUriFlag, UsageError, type CliCommand, type CliIo } from '../args.ts';

/** Exit code of an audit whose lower bound exceeds the certified ε. */
export const PRIVACY_BUG_EXIT_CODE = 3;

function summary(r: ConfigAuditResult): string {
  const pct = `${Math.round(r.confidence * 100)}%`;
  const lines = [
    `ε_audit (lower, ${pct})   ${r.epsilonAudit.toFixed(4)}   ${r.correctGuesses} of ${r.guesses} guesses correct (top/bottom k = ${r.guessesPerSide}), `
      + `${r.canaries} canaries (${r.canariesIncluded} included)`,
    `ε certified (PLD, upper) ${r.epsilonCertified.toFixed(4)}   δ ${r.delta}, ${r.steps} step(s), sample rate ${r.sampleRate.toPrecision(6)}, σ ${r.noiseMultiplier.toPrecision(6)}`,
    r.privacyBug
      ? 'privacy bug: the audit\'s lower bound exceeds the certified ε — the training leaks more than it claims'
      : 'no privacy bug found: ε_audit ≤ ε certified (an audit can show a leak, never prove its absence)',
  ];
  if (r.runUrl) lines.push(`MLflow run               ${r.runUrl}`);
  lines.push(`run directory            ${r.runDir}`);
  return lines.join('\n');
}

export const auditCommand: CliCommand = {
  usage: `ewtune audit <config.json> [--canaries M] [--max-steps N] [--tracking-uri URI] [--json]\n`
    + `  M gradient canaries (default ${DEFAULT_CANARIES}), each included with probability 1/2; exit 3 ("privacy bug") when ε_audit > ε certified.`,
  async run(argv: string[], io: CliIo) {
    const { values, positionals } = parseFlags(argv, {
      canaries: { type: 'string' }, 'max-steps': { type: 'string' }, 'tracking-uri': { type: 'string' },
      json: { type: 'boolean', default: false },
    }, true);
    if (positionals.length !== 1) throw new UsageError(`<config.json> must be exactly one path; got ${positionals.length}`);
    const canaries = numberFlag('--canaries', values.canaries, false) ?? DEFAULT_CANARIES;
    if (!(Number.isSafeInteger(canaries) && canaries >= 2)) throw new InvalidArgumentError('--canaries', canaries, 'an integer >= 2');
    const maxSteps = numberFlag('--max-steps', values['max-steps'], false);
    if (maxSteps !== undefined && !(Number.isSafeInteger(maxSteps) && maxSteps >= 1)) throw new InvalidArgumentError('--max-steps', maxSteps, 'a positive integer');
    const trackingUri = trackingUriFlag(values['tracking-uri']);
    let config;
    try {
      config = loadConfig(positionals[0], { trackingUri, maxSteps });
    } catch (e) {
      if (e instanceof ConfigError) {
        io.err(`ewtune audit: ${e.message}`);
        return 2;
      }
      throw e;
    }
    let lastDecile = -1;
    const result = await auditFromConfig(config, {
      canaries,
      log: (line) => io.err(line),
      onStep: (step, steps) => {
        const decile = Math.floor((10 * step) / steps);
        if (decile !== lastDecile) {
          lastDecile = decile;
          io.err(`ewtune audit: step ${step}/${steps}`);
        }
      },
    });
    return reportAudit(result, values.json === true, io);
  },
};

/**
 * Print an audit result (one JSON object with `json`, else the summary) and return the exit code: 0, or
 * {@link PRIVACY_BUG_EXIT_CODE} with "privacy bug" on stderr when ε_audit > ε certified.
 */
export function reportAudit(result: ConfigAuditResult, json: boolean, io: CliIo): number {
  io.out(json ? JSON.stringify(result) : summary(result));
  if (result.privacyBug) {
    io.err(`ewtune audit: privacy bug: ε_audit ${result.epsilonAudit} > ε certified ${result.epsilonCertified}`);
    return PRIVACY_BUG_EXIT_CODE;
  }
  return 0;
}
