/**
 * One-run privacy audit (Steinke, Nasr, Jagielski 2023): an empirical ε LOWER bound from one real training run with
 * gradient canaries, beside the certified (upper) ε. `ewtune audit <config>` wraps {@link runAudit} for a
 * configuration (src/audit/from-config.ts).
 */
export { auditPValue, epsilonLowerBound, maxAuditEpsilon } from './bound.ts';
export type { AuditCounts, AuditPValue, EpsilonLowerBound, EpsilonLowerBoundOptions } from './bound.ts';
export { drawInclusion, withCanaryBlock, CANARY_BLOCK_LAYER, CANARY_ID_INPUT } from './canaries.ts';
export type { CanaryModel } from './canaries.ts';
export {
  runAudit, guessCounts, countCorrect, boundFromScores, DEFAULT_CANARIES, DEFAULT_GUESS_FRACTIONS, DEFAULT_CANARY_GRADIENT_SCALE,
  INSECURE_ACKNOWLEDGEMENT,
} from './run.ts';
export type { AuditOptions, AuditResult, InsecureAuditHooks } from './run.ts';
