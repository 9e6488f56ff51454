/**
 * BERT-family encoders in TF.js (tfjs-layers), equal to Hugging Face's BertModel on the same weights.
 *
 * - {@link parseBertConfig}: config.json → BertConfig (validated; ModelDirError naming the field).
 * - {@link buildBert}: full model, or the top from encoder layer `fromLayer` (inputs hidden states + mask), with
 *   'mean' or 'cls' pooling and an optional softmax `classifier` head; every Linear through `options.linear`.
 * - {@link buildBertBottom}: embeddings + layers 0..toLayer−1 (the frozen bottom of top-k fine-tuning).
 * - Weights: loadEncoder / loadWeightsInto / saveModelDir in src/model-dir (by Hugging Face layer names).
 * The contract (inputs, layer names, Linear factory) is documented at the top of ./model.ts.
 */
export { parseBertConfig, bertConfigToJson } from './config.ts';
export type { BertConfig, BertActivation } from './config.ts';
export { buildBert, buildBertBottom } from './model.ts';
export type { BertBuildOptions, BertBottomOptions, BertOutput, BertPooling, LinearArgs, LinearFactory } from './model.ts';
export { BertAttentionMaskBias, BertClsToken, BertMaskedMeanPooling, BertPositionIds, BertSelfAttentionCore, MASK_BIAS } from './layers.ts';
export { BERT_ARCHITECTURE } from './architecture.ts';
