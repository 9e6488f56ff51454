/** RDP orders (α) used by the RDP accountant, and their validation. */
import { InvalidArgumentError } from '../../errors.ts';

/** Opacus' DEFAULT_ALPHAS: 1.1, 1.2, …, 10.9 and the integers 12…63 (the default of `RdpAccountant`). */
export const OPACUS_DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, k) => 1 + (k + 1) / 10),
  ...Array.from({ length: 52 }, (_, k) => 12 + k),
]);

/** dp_accounting's DEFAULT_RDP_ORDERS: 1.1 … 10.9, 11 … 63, 128, 256, 512, 1024. */
export const DP_ACCOUNTING_DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, k) => 1 + (k + 1) / 10),
  ...Array.from({ length: 53 }, (_, k) => 11 + k),
  128,
  256,
  512,
  1024,
]);

/** TF Privacy compute_dp_sgd_privacy's orders: 1.25 … 4.5, 5 … 63, 128, 256, 512. */
export const TF_PRIVACY_ORDERS: readonly number[] = Object.freeze([
  1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5,
  ...Array.from({ length: 59 }, (_, k) => 5 + k),
  128,
  256,
  512,
]);

/**
 * Orders must be a non-empty list of numbers > 1 (+∞ allowed: its RDP is ∞ for q < 1 and never optimal).
 * α = 1 (the KL divergence) is excluded: the (ε, δ) conversions used here need α > 1.
 */
export function assertOrders(orders: unknown, argument = 'orders'): asserts orders is readonly number[] {
  if (!Array.isArray(orders) || orders.length === 0) {
    throw new InvalidArgumentError(argument, orders, 'a non-empty array of RDP orders > 1');
  }
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i];
    if (typeof a !== 'number' || Number.isNaN(a) || !(a > 1)) {
      throw new InvalidArgumentError(`${argument}[${i}]`, a, 'a number > 1 (or Infinity)');
    }
  }
}
