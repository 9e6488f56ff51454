/**
 * The training configuration (`ewtune train <config.json>`): parsed, checked against schemas/config.schema.json with
 * ajv (defaults filled in), then checked for what a schema cannot say (e.g. the Edgeworth estimate as the accountant
 * only with `allowEstimate`). Every problem names the field by its JSON path; nothing runs before the config is valid.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { EwtuneError } from '../src/errors.ts';
import { compileSchemaFile, type CompiledSchema } from '../src/schema/validate.ts';
import type { EncoderModelConfig } from './encoder.ts';

/**
 * A checked `ewtune train` configuration, as {@link validateConfig} and {@link loadConfig} return it: defaults filled in,
 * every field validated against schemas/config.schema.json, whose descriptions give each field's meaning, unit and
 * default (e.g. `training.l2NormClip` the clipping bound C > 0, `privacy.delta` δ ∈ (0, 1), `privacy.targetEpsilon` the
 * certified ε budget).
 */
export interface TrainingConfig {
  /** Run name (MLflow run_name; default "ewtune"). */
  name?: string;
  /** MLflow experiment (default "ewtune"). */
  experimentName: string;
  /** The labelled text to train on and its held-out split. */
  data: {
    /** The corpus: spam-assassin, polarity, tweets (fetched), jsonl, glue or labelled-file (a path). */
    kind: 'spam-assassin' | 'jsonl' | 'polarity' | 'tweets' | 'glue' | 'labelled-file';
    /** jsonl, glue, labelled-file: the training file; polarity, tweets: a corpus file instead of the fetched one. */
    path?: string;
    /** jsonl, glue, labelled-file: a held-out file (else a hash split of `path`). */
    testPath?: string;
    /** glue only: the task (sst2, qnli, …), which names its columns. */
    task?: string;
    /** labelled-file only: label names (class i = labels[i]); else labels are indices below model.numClasses. */
    labels?: string[];
    /** Tokens per example for the GloVe classifier (default 64). */
    maxTokens: number;
    /** Vocabulary of the GloVe classifier, most frequent words first (default 20000). */
    vocabularySize: number;
    /** Fraction of examples in the held-out test split, by a hash of each example (default 0.2). */
    testFraction: number;
    /** Fraction carved from the training split for choosing hyper-parameters (polarity, tweets, glue, labelled-file). */
    validationFraction: number;
    /** Use only the first N training examples (deterministic order). */
    maxExamples?: number;
  };
  /** The model: the GloVe transformer classifier or a pre-trained BERT-family encoder with a fine-tuning mode. */
  model: GloveClassifierConfig | EncoderModelConfig;
  /** The DP-SGD loop. */
  training: {
    /** Planned epochs (steps = ⌈epochs / sampleRate⌉); exactly one of epochs and steps. */
    epochs?: number;
    /** Planned steps; exactly one of epochs and steps. */
    steps?: number;
    /** Expected logical (Poisson) batch size; sampleRate q = expectedBatchSize / datasetSize. */
    expectedBatchSize: number;
    /** Split a logical batch into micro-batches of at most this size (one privacy step per logical batch). */
    maxPhysicalBatchSize?: number;
    /** Per-example clipping bound C > 0 (L2 norm of each example's gradient). */
    l2NormClip: number;
    /** Optimizer (default adam). */
    optimizer: 'adam' | 'sgd' | 'momentum' | 'rmsprop';
    /** Learning rate (default 0.001). */
    learningRate: number;
    /** Learning rate of the classifier head (layer `classifier`); default learningRate (see schemas/config.schema.json). */
    headLearningRate?: number;
    /** TensorFlow.js backend (default auto: native TensorFlow if installed, else WASM, else cpu). */
    backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
    /** Stop after this many steps (a stop condition, not the plan). */
    maxSteps?: number;
    /** Held-out accuracy and loss after every epoch and at the end (default true). */
    evaluate: boolean;
    /** Checkpoint model and optimizer state every this many updates (and at the end) for `--resume`. */
    checkpointEverySteps: number;
  };
  /** The privacy guarantee and how it is accounted. */
  privacy: {
    /** Certified ε budget > 0: σ is calibrated for it and the run stops before exceeding it. */
    targetEpsilon?: number;
    /** δ ∈ (0, 1) at which ε is accounted (take δ below 1/N). */
    delta: number;
    /** Use this σ > 0 instead of calibrating. */
    noiseMultiplier?: number;
    /** Accountant for calibration and the budget stop (default pld; edgeworth needs allowEstimate). */
    accountant: 'pld' | 'rdp' | 'edgeworth';
    /** Required to calibrate or stop by the Edgeworth estimate, which is not a guarantee (default false). */
    allowEstimate: boolean;
    /** Order of the logged Edgeworth estimate (default 1). */
    edgeworthOrder: 1 | 2;
    /** PLD grid width h (default 1e-4). */
    valueDiscretizationInterval: number;
    /** Batch sampler (default poisson; shuffle is recorded but not a valid Poisson guarantee). */
    sampler: 'poisson' | 'shuffle';
    /** Noise (default gaussian; hardened: power-of-two grid and discrete noise). */
    noiseMode: 'gaussian' | 'hardened';
  };
  /** Where the run is logged. */
  tracking: {
    /** MLflow server; else MLFLOW_TRACKING_URI; else a local run directory only. */
    trackingUri?: string;
    /** Parent folder of run directories (default ewtune-runs). */
    runDir: string;
    /** Certified ε at least every this fraction of the planned steps, and at the end (default 0.01). */
    certifiedEveryFraction: number;
  };
}

/** `model` of kind "transformer-classifier": a transformer block trained on frozen pre-trained GloVe-derived vectors. */
export interface GloveClassifierConfig {
  kind: 'transformer-classifier';
  embedding: 'wink-glove-100d' | 'random';
  freezeEmbedding: boolean;
  dModel: number;
  heads: number;
  ffnDim: number;
  layers: number;
  numClasses: number;
}

/** An invalid configuration: `problems` lists each one with the JSON path of its field. */
export class ConfigError extends EwtuneError {
  /** Where the configuration came from (a file path, or `<config>`). */
  readonly source: string;
  /** One message per invalid field, each naming it by JSON path (e.g. `/training/l2NormClip must be > 0`). */
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super('ERR_CONFIG', `invalid configuration ${source}:\n  ${problems.join('\n  ')}`);
    this.source = source;
    this.problems = problems;
  }
}

/** Command-line overrides applied after the file is read (and validated with it). */
export interface ConfigOverrides {
  /** MLflow server (the `--tracking-uri` option); replaces `tracking.trackingUri`. */
  readonly trackingUri?: string;
  /** Stop after this many steps (`--max-steps`); replaces `training.maxSteps`. */
  readonly maxSteps?: number;
  /** Target ε (`--target-epsilon`); replaces `privacy.targetEpsilon`. */
  readonly targetEpsilon?: number;
}

let schema: CompiledSchema<TrainingConfig> | undefined;

/** Check a parsed configuration object (a deep copy is validated and returned, with defaults filled in). */
export function validateConfig(value: unknown, source = '<config>', overrides: ConfigOverrides = {}): TrainingConfig {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(source, ['/ must be a JSON object']);
  const copy = structuredClone(value) as Record<string, Record<string, unknown>>;
  if (overrides.trackingUri !== undefined) copy.tracking = { ...copy.tracking, trackingUri: overrides.trackingUri };
  if (overrides.maxSteps !== undefined) copy.training = { ...copy.training, maxSteps: overrides.maxSteps };
  if (overrides.targetEpsilon !== undefined) copy.privacy = { ...copy.privacy, targetEpsilon: overrides.targetEpsilon };
  copy.tracking ??= {};
  schema ??= compileSchemaFile<TrainingConfig>('config.schema.json', { useDefaults: true });
  const check = schema.validate(copy);
  if (!check.ok) throw new ConfigError(source, check.errors);
  const config = copy as unknown as TrainingConfig;
  const problems: string[] = [];
  if (config.privacy.accountant === 'edgeworth' && !config.privacy.allowEstimate) {
    problems.push('/privacy/accountant "edgeworth" is an estimate, not a bound: set /privacy/allowEstimate to true to calibrate by it (the budget stop stays certified)');
  }
  if (config.model.kind === 'transformer-classifier' && config.model.dModel % config.model.heads !== 0) {
    problems.push(`/model/dModel (${config.model.dModel}) must be divisible by /model/heads (${config.model.heads})`);
  }
  if (config.model.kind === 'pretrained-encoder') {
    const f = config.model.finetune;
    if (f.mode === 'top-k' && f.topK === undefined) problems.push('/model/finetune/topK is required with mode "top-k"');
    if (f.topK !== undefined && f.mode !== 'top-k') problems.push(`/model/finetune/topK is for mode "top-k", not "${f.mode}"`);
    if (f.cacheBottom !== undefined && f.mode !== 'top-k' && f.mode !== 'head') problems.push(`/model/finetune/cacheBottom is for modes "top-k" and "head", not "${f.mode}"`);
    if (f.lora !== undefined && f.mode !== 'lora') problems.push(`/model/finetune/lora is for mode "lora", not "${f.mode}"`);
    if (f.trainWordEmbeddings !== undefined && f.mode !== 'full') problems.push(`/model/finetune/trainWordEmbeddings is for mode "full", not "${f.mode}"`);
  }

  if (problems.length > 0) throw new ConfigError(source, problems);
  return config;
}

/** Read and check a configuration file; relative data paths are resolved against the file's folder. */
export function loadConfig(path: string, overrides: ConfigOverrides = {}): TrainingConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, [`cannot be read: ${(e as Error).message}`]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, [`is not valid JSON: ${(e as Error).message}`]);
  }
  const config = validateConfig(parsed, path, overrides);
  const base = dirname(resolve(path));
  if (config.data.path !== undefined) config.data.path = resolve(base, config.data.path);
  if (config.data.testPath !== undefined) config.data.testPath = resolve(base, config.data.testPath);
  return config;
}
