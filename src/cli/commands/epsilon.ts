/** `ewtune epsilon`: ε of T steps of the Poisson-subsampled Gaussian by one or all accountants. */
import { ACCOUNTANT_NAMES, createAccountant } from '../../accounting/factory.ts';
import type { AccountantName, EpsilonResult } from '../../accounting/types.ts';
import { resolveSteps } from '../../accounting/calibrate.ts';
import { assertDelta, assertNoiseMultiplier, assertSampleRate } from '../../validate.ts';
import { accountantFlag, fmt, numberFlag, orderFlag, parseFlags, table, type CliCommand } from '../args.ts';
import { epsilonJson } from '../epsilon-json.ts';

export const epsilonCommand: CliCommand = {
  usage:
    'ewtune epsilon --noise-multiplier S --sample-rate Q (--steps T | --epochs E) --delta D\n' +
    '               [--accountant edgeworth|rdp|pld|gdp|all] [--order 1|2] [--value-discretization-interval H] [--json]',
  async run(argv, io) {
    const { values } = parseFlags(argv, {
      'noise-multiplier': { type: 'string' },
      'sample-rate': { type: 'string' },
      steps: { type: 'string' },
      epochs: { type: 'string' },
      delta: { type: 'string' },
      accountant: { type: 'string' },
      order: { type: 'string' },
      'value-discretization-interval': { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const noiseMultiplier = numberFlag('--noise-multiplier', values['noise-multiplier'], true);
    assertNoiseMultiplier(noiseMultiplier, '--noise-multiplier');
    const sampleRate = numberFlag('--sample-rate', values['sample-rate'], true);
    assertSampleRate(sampleRate, '--sample-rate');
    const steps = stepsFlags(values.steps, values.epochs, sampleRate);
    const delta = numberFlag('--delta', values.delta, true);
    assertDelta(delta, '--delta');
    const accountant = accountantFlag(values.accountant, 'pld', true);
    const order = orderFlag(values.order);
    const h = numberFlag('--value-discretization-interval', values['value-discretization-interval'], false);
    const names: AccountantName[] = accountant === 'all' ? [...ACCOUNTANT_NAMES] : [accountant];
    const accountants = names.map((name) =>
      createAccountant(name, { ...(order ? { order } : {}), ...(h !== undefined ? { valueDiscretizationInterval: h } : {}) }),
    );
    // The inputs are checked (the accountants' options too): say what is being computed before computing it (the PLD takes a while).
    if (!values.json) io.out(`noise multiplier ${noiseMultiplier}, sample rate ${sampleRate}, ${steps} steps, delta ${delta}\n`);
    const results: EpsilonResult[] = accountants.map((acc) => {
      acc.compose({ sampleRate, noiseMultiplier }, steps);
      return acc.getEpsilon(delta);
    });
    const extra = { noiseMultiplier, sampleRate, steps };
    if (values.json) {
      const objects = results.map((r) => ({ ...epsilonJson(r), ...extra }));
      io.out(JSON.stringify(accountant === 'all' ? { results: objects } : objects[0]));
    } else {
      io.out(epsilonTable(results));
    }
    return 0;
  },
};

/** Resolve --steps / --epochs (exactly one) with flag names in errors. */
export function stepsFlags(stepsRaw: string | undefined, epochsRaw: string | undefined, sampleRate: number): number {
  const steps = numberFlag('--steps', stepsRaw, false);
  const epochs = numberFlag('--epochs', epochsRaw, false);
  if (steps === undefined && epochs === undefined) return numberFlag('--steps', undefined, true);
  try {
    return resolveSteps(sampleRate, steps, epochs);
  } catch (err) {
    if (err instanceof Error && 'argument' in err) {
      const e = err as Error & { argument: string };
      e.message = e.message.replace(/^steps \(from epochs \/ sampleRate\)|^steps|^epochs/, (m) => (m.startsWith('epochs') ? '--epochs' : '--steps'));
    }
    throw err;
  }
}

/** A readable table of ε answers. */
export function epsilonTable(results: readonly EpsilonResult[]): string {
  return table(
    ['accountant', 'epsilon', 'kind', 'delta', 'edgeworth bound [lower, upper]'],
    results.map((r) => {
      const j = epsilonJson(r);
      const bound = r.accountant === 'edgeworth' ? `[${fmt(j.epsilonLower as number | null)}, ${fmt(j.epsilonUpper as number | null)}]` : '';
      return [r.accountant + (r.accountant === 'edgeworth' ? ` (order ${String(j.order)})` : ''), fmt(r.epsilon), r.kind, String(r.delta), bound];
    }),
  );
}
