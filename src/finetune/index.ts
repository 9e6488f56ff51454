/** Private fine-tuning of pre-trained encoders: the `model.finetune` modes (full, top-k, lora, bitfit, head). */
export {
  FINETUNE_MODES, applyFinetuneMode, cacheBottomOutputs, countEncoderLayers, createFinetuneModel, encoderLayerIndex,
  linearFactoryFor, loraMergedWeights, summarise, validateFinetuneConfig,
} from './modes.ts';
export type { EncoderBuilder, FinetuneConfig, FinetuneMode, FinetuneModel, TrainableSummary } from './modes.ts';
export {
  DEFAULT_LORA_RANK, DEFAULT_LORA_TARGETS, LoraDense, isLoraTarget, loraLinearFactory,
} from '../models/lora.ts';
export type { LinearArgs, LinearFactory, LoraDenseArgs, LoraFactoryOptions } from '../models/lora.ts';
export { architectureBuilder, modelDirBuilder } from './builder.ts';
export type { ClassifierBuildOptions } from './builder.ts';
