/** `ewtune calibrate`: the smallest σ whose ε (certified by default: PLD) is ≤ the target. */
import { calibrateNoiseMultiplier } from '../../accounting/calibrate.ts';
import { isCertified } from '../../accounting/factory.ts';
import { assertDelta, assertEpsilon, assertSampleRate } from '../../validate.ts';
import { accountantFlag, fmt, numberFlag, orderFlag, parseFlags, table, type CliCommand } from '../args.ts';
import { epsilonJson } from '../epsilon-json.ts';
import { stepsFlags } from './epsilon.ts';

export const calibrateCommand: CliCommand = {
  usage:
    'ewtune calibrate --target-epsilon E --delta D --sample-rate Q (--steps T | --epochs E)\n' +
    '                 [--accountant pld|rdp|edgeworth|gdp] [--order 1|2] [--json]\n' +
    '  Default accountant: pld (certified). Naming edgeworth or gdp calibrates by that estimate and also\n' +
    '  reports the certified PLD epsilon at the resulting sigma.',
  async run(argv, io) {
    const { values } = parseFlags(argv, {
      'target-epsilon': { type: 'string' },
      delta: { type: 'string' },
      'sample-rate': { type: 'string' },
      steps: { type: 'string' },
      epochs: { type: 'string' },
      accountant: { type: 'string' },
      order: { type: 'string' },
      'value-discretization-interval': { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const targetEpsilon = numberFlag('--target-epsilon', values['target-epsilon'], true);
    assertEpsilon(targetEpsilon, '--target-epsilon');
    const delta = numberFlag('--delta', values.delta, true);
    assertDelta(delta, '--delta');
    const sampleRate = numberFlag('--sample-rate', values['sample-rate'], true);
    assertSampleRate(sampleRate, '--sample-rate');
    const steps = stepsFlags(values.steps, values.epochs, sampleRate);
    const accountant = accountantFlag(values.accountant, 'pld', false);
    if (accountant === 'all') throw new Error('unreachable');
    const order = orderFlag(values.order);
    const h = numberFlag('--value-discretization-interval', values['value-discretization-interval'], false);
    const result = calibrateNoiseMultiplier({
      targetEpsilon,
      delta,
      sampleRate,
      steps,
      accountant,
      // Naming an estimate on the command line is the explicit request the API requires.
      allowEstimate: !isCertified(accountant),
      ...(order ? { order } : {}),
      ...(h !== undefined ? { valueDiscretizationInterval: h } : {}),
    });
    if (values.json) {
      io.out(
        JSON.stringify({
          noiseMultiplier: result.noiseMultiplier,
          epsilon: result.epsilon,
          accountant: result.accountant,
          kind: result.kind,
          delta,
          targetEpsilon,
          sampleRate,
          steps,
          ...(result.accountant === 'edgeworth'
            ? { epsilonUpper: epsilonJson(result.result).epsilonUpper, epsilonLower: epsilonJson(result.result).epsilonLower }
            : {}),
          ...(result.certifiedEpsilon ? { certifiedEpsilon: epsilonJson(result.certifiedEpsilon) } : {}),
          iterations: result.iterations,
        }),
      );
    } else {
      const rows = [[result.accountant, fmt(result.noiseMultiplier), fmt(result.epsilon), result.kind]];
      if (result.certifiedEpsilon) rows.push(['pld (certified at that sigma)', fmt(result.noiseMultiplier), fmt(result.certifiedEpsilon.epsilon), result.certifiedEpsilon.kind]);
      io.out(`target epsilon ${targetEpsilon}, delta ${delta}, sample rate ${sampleRate}, ${steps} steps\n`);
      io.out(table(['accountant', 'noise multiplier', 'epsilon', 'kind'], rows));
    }
    return 0;
  },
};
