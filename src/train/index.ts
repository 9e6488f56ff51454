/** DP training: dpFit (a model.fit()-shaped loop) and the single-step pieces for users with their own loop. */
export { dpFit, validateFit, defaultCertifiedEpsilon } from './dp-fit.ts';
export type { ValidatedFit } from './dp-fit.ts';
export { dpStep, clippedGradientSum, privatiseGradient, accountedNoiseMultiplier } from './dp-step.ts';
export type { ClippedBatchSum, ClippedSumOptions, DpStepOptions, DpStepResult, PrivatiseOptions } from './dp-step.ts';
export { DpCallbackList, numericLogs } from './callbacks.ts';
export type {
  DpBudget, DpCallback, DpData, DpFitArgs, DpHistory, StepInfo, StepLedger, StepRecord, StopReason, TrainableModel,
} from './types.ts';
