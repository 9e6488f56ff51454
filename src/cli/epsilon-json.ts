/** The CLI's JSON shape of one ε answer (shared by `epsilon`, `ledger` and `calibrate`). */
import type { EpsilonResult } from '../accounting/types.ts';

/**
 * `{accountant, epsilon, kind, delta, ...}`; Edgeworth answers also carry `epsilonUpper` / `epsilonLower`
 * (null where the finite-sample bound does not exist) and `order`. A non-finite ε is printed as null with
 * `"epsilonFinite": false`.
 */
export function epsilonJson(result: EpsilonResult): Record<string, unknown> {
  const out: Record<string, unknown> = {
    accountant: result.accountant,
    epsilon: Number.isFinite(result.epsilon) ? result.epsilon : null,
    kind: result.kind,
    delta: result.delta,
  };
  if (!Number.isFinite(result.epsilon)) out.epsilonFinite = false;
  const details = result.details ?? {};
  if (result.accountant === 'edgeworth') {
    out.order = details.order ?? null;
    out.epsilonUpper = finiteOrNull(details.epsilonUpper);
    out.epsilonLower = finiteOrNull(details.epsilonLower);
  }
  return out;
}

function finiteOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
