/**
 * The example's data: labelled texts (the SpamAssassin corpus, or a JSONL file of {"text", "label"} lines) turned
 * into token ids with a vocabulary taken from the PUBLIC pre-trained embedding's word list (never from the private
 * texts: choosing words by their frequency in the private data would leak outside the DP guarantee).
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { loadSpamAssassin, isTestId, type LabelledText } from '../src/data/spam-assassin.ts';
import { loadGloveSlice, type WordVectors } from '../src/data/glove.ts';
import { Vocabulary, tokenize } from '../src/data/text.ts';
import { ConfigError, type TrainingConfig } from './config.ts';

export interface EncodedSplit {
  readonly ids: tf.Tensor2D;
  readonly labels: tf.Tensor1D;
  readonly size: number;
}

export interface PreparedData {
  readonly train: EncodedSplit;
  readonly test: EncodedSplit;
  readonly vocabularySize: number;
  readonly vectors: WordVectors;
  dispose(): void;
}

function readJsonl(path: string, field: string, numClasses: number): LabelledText[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(field, [`${field} cannot be read: ${(e as Error).message}`]);
  }
  const out: LabelledText[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let row: { text?: unknown; label?: unknown };
    try {
      row = JSON.parse(line) as typeof row;
    } catch {
      throw new ConfigError(field, [`${path}:${i + 1} is not JSON`]);
    }
    if (typeof row.text !== 'string' || !Number.isInteger(row.label) || (row.label as number) < 0 || (row.label as number) >= numClasses) {
      throw new ConfigError(field, [`${path}:${i + 1} must be {"text": string, "label": integer in [0, ${numClasses})}`]);
    }
    out.push({ id: `${path}:${i + 1}`, text: row.text, label: row.label as number });
  });
  if (out.length === 0) throw new ConfigError(field, [`${field} ${path} contains no examples (empty file)`]);
  return out;
}

function loadTexts(config: TrainingConfig): { train: LabelledText[]; test: LabelledText[] } {
  const d = config.data;
  if (d.kind === 'spam-assassin') return loadSpamAssassin({ testFraction: d.testFraction });
  const all = readJsonl(d.path as string, '/data/path', config.model.numClasses ?? 2);
  if (d.testPath !== undefined) return { train: all, test: readJsonl(d.testPath, '/data/testPath', config.model.numClasses ?? 2) };
  return { train: all.filter((t) => !isTestId(t.id, d.testFraction)), test: all.filter((t) => isTestId(t.id, d.testFraction)) };
}

/** The configured texts, split (and cut to maxExamples), before any tensor or embedding is made. */
export interface LoadedTexts {
  readonly train: readonly LabelledText[];
  readonly test: readonly LabelledText[];
}

/**
 * Read and split the configured texts. Cheap next to building the model: runTraining calls it first, so that a
 * missing, malformed or empty file or an empty training split fails before a run directory or MLflow run exists.
 * @throws ConfigError naming the field (/data/path, /data/testPath, /data).
 */
export function loadTrainingTexts(config: TrainingConfig): LoadedTexts {
  const texts = loadTexts(config);
  const train = config.data.maxExamples !== undefined ? texts.train.slice(0, config.data.maxExamples) : texts.train;
  if (train.length === 0) {
    throw new ConfigError('/data', [`the training split is empty (${texts.train.length + texts.test.length} examples, `
      + `/data/testFraction ${config.data.testFraction})`]);
  }
  return { train, test: texts.test };
}

function encode(items: readonly LabelledText[], vocabulary: Vocabulary, maxTokens: number): EncodedSplit {
  const ids = new Int32Array(items.length * maxTokens);
  const labels = new Int32Array(items.length);
  items.forEach((item, i) => {
    ids.set(vocabulary.encode(tokenize(item.text), maxTokens), i * maxTokens);
    labels[i] = item.label;
  });
  return { ids: tf.tensor2d(ids, [items.length, maxTokens], 'int32'), labels: tf.tensor1d(labels, 'int32'), size: items.length };
}

/** Load (unless `texts` were loaded already by loadTrainingTexts), split and encode the configured data. */
export function prepareData(config: TrainingConfig, texts: LoadedTexts = loadTrainingTexts(config)): PreparedData {
  const train = texts.train;
  const vectors = loadGloveSlice(config.data.vocabularySize);
  const vocabulary = new Vocabulary(vectors.words);
  const encodedTrain = encode(train, vocabulary, config.data.maxTokens);
  const encodedTest = encode(texts.test, vocabulary, config.data.maxTokens);
  return {
    train: encodedTrain, test: encodedTest, vocabularySize: vocabulary.size, vectors,
    dispose() {
      tf.dispose([encodedTrain.ids, encodedTrain.labels, encodedTest.ids, encodedTest.labels]);
    },
  };
}
