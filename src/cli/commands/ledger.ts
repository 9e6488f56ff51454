/** `ewtune ledger <file>`: ε of a privacy ledger (replayed; read-only except crash-tail truncation). */
import { ACCOUNTANT_NAMES } from '../../accounting/factory.ts';
import { PrivacyLedger } from '../../accounting/ledger.ts';
import type { AccountantName } from '../../accounting/types.ts';
import { assertDelta } from '../../validate.ts';
import { accountantFlag, numberFlag, orderFlag, parseFlags, UsageError, type CliCommand } from '../args.ts';
import { epsilonJson } from '../epsilon-json.ts';
import { epsilonTable } from './epsilon.ts';

export const ledgerCommand: CliCommand = {
  usage: "ewtune ledger <file> --delta D [--accountant edgeworth|rdp|pld|gdp|all] [--order 1|2] [--json]\n  Default accountant: the ledger's configured one, else pld.",
  async run(argv, io) {
    const { values, positionals } = parseFlags(
      argv,
      { delta: { type: 'string' }, accountant: { type: 'string' }, order: { type: 'string' }, json: { type: 'boolean', default: false } },
      true,
    );
    if (positionals.length !== 1) throw new UsageError(`<file> must be exactly one ledger path; got ${positionals.length}`);
    const delta = numberFlag('--delta', values.delta, true);
    assertDelta(delta, '--delta');
    const order = orderFlag(values.order);
    const requested = values.accountant === undefined ? undefined : accountantFlag(values.accountant, 'pld', true);
    const ledger = PrivacyLedger.openSync(positionals[0]);
    try {
      const fallback = ledger.config.accountant ?? 'pld';
      const names: AccountantName[] = requested === 'all' ? [...ACCOUNTANT_NAMES] : [requested ?? fallback];
      const results = names.map((n) => ledger.replayEpsilon(delta, n, order ? { order } : {}));
      for (const w of ledger.warnings) io.err(`warning: ${w}\n`);
      if (ledger.records.some((r) => r.sampler !== 'poisson' || r.adjacency !== 'add-remove')) {
        io.err('warning: some steps are not Poisson-sampled under add/remove adjacency; the accountants model only that case\n');
      }
      const extra = { steps: ledger.steps, records: ledger.records.length, ledgerId: ledger.header.ledgerId };
      if (values.json) {
        const objects = results.map((r) => ({ ...epsilonJson(r), ...extra }));
        io.out(JSON.stringify(requested === 'all' ? { results: objects, ...extra } : objects[0]));
      } else {
        io.out(`ledger ${positionals[0]} (${ledger.header.ledgerId}): ${ledger.steps} steps in ${ledger.records.length} records\n`);
        io.out(epsilonTable(results));
      }
    } finally {
      ledger.closeSync();
    }
    return 0;
  },
};
