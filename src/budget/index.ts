/** Budget stop policy: decide before each step from the projected certified ε after it. */
export { BudgetPolicy } from './policy.ts';
export type { BudgetDecision, BudgetPolicyOptions, CertifiedEpsilonFn } from './policy.ts';
