/** Construct an accountant by name. The one place that maps AccountantName → class. */
import { InvalidArgumentError } from '../errors.ts';
import { EdgeworthAccountant } from './edgeworth/index.ts';
import { GdpAccountant } from './gdp.ts';
import { PldAccountant } from './pld/index.ts';
import { RdpAccountant } from './rdp/index.ts';
import type { AccountantName, PrivacyAccountant } from './types.ts';

/** All accountant names, in the order the CLI reports them. */
export const ACCOUNTANT_NAMES: readonly AccountantName[] = ['edgeworth', 'rdp', 'pld', 'gdp'];

/** Options understood by {@link createAccountant}; each is used only by the accountant it applies to. */
export interface AccountantFactoryOptions {
  /** Edgeworth order (1 default, 2). */
  readonly order?: 1 | 2;
  /** PLD grid width of the privacy loss (default 1e-4). */
  readonly valueDiscretizationInterval?: number;
  /** RDP orders α > 1 (default Opacus'). */
  readonly orders?: readonly number[];
}

/** True when `value` names an accountant. */
export function isAccountantName(value: unknown): value is AccountantName {
  return typeof value === 'string' && (ACCOUNTANT_NAMES as readonly string[]).includes(value);
}

/** Throws InvalidArgumentError unless `value` names an accountant. */
export function assertAccountantName(value: unknown, argument = 'accountant'): asserts value is AccountantName {
  if (!isAccountantName(value)) throw new InvalidArgumentError(argument, value, `one of ${ACCOUNTANT_NAMES.join(', ')}`);
}

/** A fresh accountant with no history. */
export function createAccountant(name: AccountantName, options: AccountantFactoryOptions = {}): PrivacyAccountant {
  assertAccountantName(name);
  switch (name) {
    case 'edgeworth':
      return new EdgeworthAccountant(options.order === undefined ? {} : { order: options.order });
    case 'rdp':
      return new RdpAccountant(options.orders === undefined ? {} : { orders: options.orders });
    case 'pld':
      return new PldAccountant(
        options.valueDiscretizationInterval === undefined ? {} : { valueDiscretizationInterval: options.valueDiscretizationInterval },
      );
    case 'gdp':
      return new GdpAccountant();
  }
}

/** Whether the accountant's ε is a certified upper bound (PLD, RDP) rather than an estimate (Edgeworth, GDP). */
export function isCertified(name: AccountantName): boolean {
  return name === 'pld' || name === 'rdp';
}
