/** The BERT entry of the architecture registry (../registry.ts): config, builders, checkpoint names and layout. */
import { bertConfigToJson, parseBertConfig, type BertConfig } from './config.ts';
import { buildBert, buildBertBottom } from './model.ts';
import type { ArchitectureEntry, CheckpointLocation } from '../registry.ts';

/** Checkpoint prefixes: BertModel saves without one, Bert*For*Task with `bert.` (the head is unprefixed). */
const PREFIXES = ['', 'bert.'];

/** tfjs local weight name → checkpoint suffixes (old TF-converted checkpoints used gamma/beta for LayerNorm). */
const SUFFIXES: Record<string, { suffixes: string[]; transpose: boolean }> = {
  kernel: { suffixes: ['weight'], transpose: true },
  bias: { suffixes: ['bias'], transpose: false },
  gamma: { suffixes: ['weight', 'gamma'], transpose: false },
  beta: { suffixes: ['bias', 'beta'], transpose: false },
  embeddings: { suffixes: ['weight'], transpose: false },
};

function locate(layerName: string, localWeight: string): CheckpointLocation | null {
  const s = SUFFIXES[localWeight];
  if (!s) return null;
  const names: string[] = [];
  for (const suffix of s.suffixes) for (const prefix of PREFIXES) names.push(`${prefix}${layerName}.${suffix}`);
  return { names, transpose: s.transpose };
}

function saveName(layerName: string, localWeight: string, hasHead: boolean): string | null {
  const s = SUFFIXES[localWeight];
  if (!s) return null;
  const prefix = hasHead && layerName !== 'classifier' ? 'bert.' : '';
  return `${prefix}${layerName}.${s.suffixes[0]}`;
}

function requiredTensors(c: BertConfig): Map<string, number[]> {
  const d = c.hiddenSize;
  const m = new Map<string, number[]>([
    ['embeddings.word_embeddings.weight', [c.vocabSize, d]],
    ['embeddings.position_embeddings.weight', [c.maxPositionEmbeddings, d]],
    ['embeddings.token_type_embeddings.weight', [c.typeVocabSize, d]],
    ['embeddings.LayerNorm.weight', [d]],
    ['embeddings.LayerNorm.bias', [d]],
  ]);
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `encoder.layer.${i}`;
    for (const n of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']) {
      m.set(`${p}.${n}.weight`, [d, d]);
      m.set(`${p}.${n}.bias`, [d]);
    }
    m.set(`${p}.intermediate.dense.weight`, [c.intermediateSize, d]);
    m.set(`${p}.intermediate.dense.bias`, [c.intermediateSize]);
    m.set(`${p}.output.dense.weight`, [d, c.intermediateSize]);
    m.set(`${p}.output.dense.bias`, [d]);
    for (const n of ['attention.output.LayerNorm', 'output.LayerNorm']) {
      m.set(`${p}.${n}.weight`, [d]);
      m.set(`${p}.${n}.bias`, [d]);
    }
  }
  return m;
}

export const BERT_ARCHITECTURE: ArchitectureEntry<BertConfig> = {
  name: 'bert',
  modelTypes: ['bert'],
  architectures: ['BertModel', 'BertForSequenceClassification', 'BertForMaskedLM', 'BertForPreTraining'],
  parseConfig: parseBertConfig,
  configToJson: bertConfigToJson,
  build: buildBert,
  buildBottom: buildBertBottom,
  locate,
  saveName,
  requiredTensors,
  checkpointPrefixes: PREFIXES,
  savedArchitecture: (hasHead) => (hasHead ? 'BertForSequenceClassification' : 'BertModel'),
};
