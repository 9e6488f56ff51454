/** BertConfig: the fields of a Hugging Face BERT `config.json` the encoder needs, parsed and validated. */
import { ModelDirError } from '../../model-dir/errors.ts';

/** Activation of the feed-forward network, as tfjs-layers names it ('gelu' is the exact erf GELU in tfjs 4.22). */
export type BertActivation = 'gelu' | 'gelu_new' | 'relu' | 'tanh' | 'swish';

/** Hugging Face `hidden_act` values → tfjs activation. */
const ACTIVATIONS: Record<string, BertActivation> = {
  gelu: 'gelu', gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', relu: 'relu', tanh: 'tanh', silu: 'swish', swish: 'swish',
};

/** A BERT-family config.json, parsed and validated ({@link parseBertConfig}), in camelCase. */
export interface BertConfig {
  /** `model_type` ('bert'). */
  modelType: string;
  /** Word-piece vocabulary size (`vocab_size`). */
  vocabSize: number;
  /** Model width d. */
  hiddenSize: number;
  /** Number of encoder layers N (`num_hidden_layers`). */
  numHiddenLayers: number;
  /** Attention heads per layer (`num_attention_heads`); divides hiddenSize. */
  numAttentionHeads: number;
  /** FFN width. */
  intermediateSize: number;
  /** Largest sequence length (number of position embeddings). */
  maxPositionEmbeddings: number;
  /** Number of token types (segment ids; `type_vocab_size`). */
  typeVocabSize: number;
  /** LayerNorm ε (`layer_norm_eps`). */
  layerNormEps: number;
  /** FFN activation (tfjs name). */
  hiddenAct: BertActivation;
  /** Dropout after embeddings, attention output and FFN output (and before the head). */
  hiddenDropoutProb: number;
  /** Dropout on the attention probabilities. */
  attentionProbsDropoutProb: number;
  /** Std-dev of the normal initialiser of fresh weights (head, random models). */
  initializerRange: number;
  /** Id of the padding token (`pad_token_id`). */
  padTokenId: number;
  /** Number of labels of a classification head stored in the config (`id2label` / `num_labels`), if any. */
  numLabels: number | undefined;
  /** ewtune's pooling recorded at save time (`ewtune.pooling`), if any. */
  pooling: 'mean' | 'cls' | undefined;
  /** The JSON as read (kept so that a save writes back every field it did not change). */
  raw: Record<string, unknown>;
}

function positiveInt(raw: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (!Number.isInteger(v) || (v as number) < 1) {
    throw new ModelDirError('ERR_MODEL_CONFIG', file, `${key} must be a positive integer; got ${JSON.stringify(v)}`);
  }
  return v as number;
}

function probability(raw: Record<string, unknown>, key: string, file: string, fallback: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) {
    throw new ModelDirError('ERR_MODEL_CONFIG', file, `${key} must be a number in [0, 1); got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Parses a BERT config.json object. `file` names the source in errors.
 * @throws ModelDirError (ERR_MODEL_CONFIG) naming the field: missing/invalid sizes, hidden size not divisible by the
 *   heads, an unsupported `hidden_act` or `position_embedding_type`.
 */
export function parseBertConfig(json: unknown, file = 'config.json'): BertConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ModelDirError('ERR_MODEL_CONFIG', file, 'is not a JSON object');
  }
  const raw = json as Record<string, unknown>;
  const hiddenSize = positiveInt(raw, 'hidden_size', file);
  const numAttentionHeads = positiveInt(raw, 'num_attention_heads', file);
  if (hiddenSize % numAttentionHeads !== 0) {
    throw new ModelDirError('ERR_MODEL_CONFIG', file, `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numAttentionHeads}`);
  }
  const act = raw.hidden_act ?? 'gelu';
  if (typeof act !== 'string' || !(act in ACTIVATIONS)) {
    throw new ModelDirError('ERR_MODEL_CONFIG', file, `hidden_act ${JSON.stringify(act)} is not supported (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
  }
  const posType = raw.position_embedding_type ?? 'absolute';
  if (posType !== 'absolute') {
    throw new ModelDirError('ERR_MODEL_CONFIG', file, `position_embedding_type ${JSON.stringify(posType)} is not supported (only "absolute")`);
  }
  const eps = raw.layer_norm_eps ?? 1e-12;
  if (typeof eps !== 'number' || !(eps > 0)) throw new ModelDirError('ERR_MODEL_CONFIG', file, `layer_norm_eps must be a number > 0; got ${JSON.stringify(eps)}`);
  const init = raw.initializer_range ?? 0.02;
  if (typeof init !== 'number' || !(init > 0)) throw new ModelDirError('ERR_MODEL_CONFIG', file, `initializer_range must be a number > 0; got ${JSON.stringify(init)}`);
  let numLabels: number | undefined;
  if (raw.id2label && typeof raw.id2label === 'object') numLabels = Object.keys(raw.id2label).length;
  else if (raw.num_labels !== undefined) numLabels = positiveInt(raw, 'num_labels', file);
  const ew = raw.ewtune as { pooling?: unknown } | undefined;
  const pooling = ew?.pooling === 'mean' || ew?.pooling === 'cls' ? ew.pooling : undefined;
  const padTokenId = raw.pad_token_id ?? 0;
  return {
    modelType: typeof raw.model_type === 'string' ? raw.model_type : 'bert',
    vocabSize: positiveInt(raw, 'vocab_size', file),
    hiddenSize,
    numHiddenLayers: positiveInt(raw, 'num_hidden_layers', file),
    numAttentionHeads,
    intermediateSize: positiveInt(raw, 'intermediate_size', file),
    maxPositionEmbeddings: positiveInt(raw, 'max_position_embeddings', file, 512),
    typeVocabSize: positiveInt(raw, 'type_vocab_size', file, 2),
    layerNormEps: eps,
    hiddenAct: ACTIVATIONS[act],
    hiddenDropoutProb: probability(raw, 'hidden_dropout_prob', file, 0.1),
    attentionProbsDropoutProb: probability(raw, 'attention_probs_dropout_prob', file, 0.1),
    initializerRange: init,
    padTokenId: Number.isInteger(padTokenId) ? padTokenId as number : 0,
    numLabels,
    pooling,
    raw: { ...raw },
  };
}

/** A config.json object for a BertConfig (the fields it carries, over the raw ones it was read from). */
export function bertConfigToJson(config: BertConfig): Record<string, unknown> {
  const back: Record<string, string> = { gelu: 'gelu', gelu_new: 'gelu_new', relu: 'relu', tanh: 'tanh', swish: 'silu' };
  return {
    ...config.raw,
    model_type: config.modelType,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    intermediate_size: config.intermediateSize,
    max_position_embeddings: config.maxPositionEmbeddings,
    type_vocab_size: config.typeVocabSize,
    layer_norm_eps: config.layerNormEps,
    hidden_act: config.raw.hidden_act === 'gelu_pytorch_tanh' && config.hiddenAct === 'gelu_new' ? 'gelu_pytorch_tanh' : back[config.hiddenAct],
    hidden_dropout_prob: config.hiddenDropoutProb,
    attention_probs_dropout_prob: config.attentionProbsDropoutProb,
    initializer_range: config.initializerRange,
    pad_token_id: config.padTokenId,
  };
}
