/**
 * Model directories with a small random-weights BERT (2 layers, d = 16): typed errors for bad directories, save →
 * load → same probabilities, the saved checkpoint in Hugging Face layout, bottom + top split = full model, the LoRA
 * merge hook, and the DP step's vectorised per-example rules covering every weight (no per-example-loop fallback).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { computeClippedGradients } from '../src/dp/per-example/index.ts';
import { countLayerCalls } from '../src/dp/per-example/graph.ts';
import { ModelDirError } from '../src/model-dir/errors.ts';
import { loadEncoder, loadModelDir } from '../src/model-dir/load.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../src/model-dir/safetensors.ts';
import { saveModelDir } from '../src/model-dir/save.ts';
import { collectWeights, loadWeightsInto } from '../src/model-dir/weights.ts';
import { longestFirstLengths } from '../src/model-dir/tokenizer.ts';
import { buildBert, buildBertBottom, parseBertConfig, BERT_ARCHITECTURE } from '../src/models/bert/index.ts';
import type { ArchitectureEntry } from '../src/models/registry.ts';

const ARCH = BERT_ARCHITECTURE as unknown as ArchitectureEntry;
const WORDS = ['the', 'movie', 'was', 'great', 'bad', 'not', 'a', 'film', '##s', 'good', '.', '!'];
const SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

const CONFIG = {
  architectures: ['BertModel'], model_type: 'bert', vocab_size: SPECIAL.length + WORDS.length, hidden_size: 16,
  num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 24, type_vocab_size: 2,
  layer_norm_eps: 1e-12, hidden_act: 'gelu', hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1, pad_token_id: 0,
};

/** A minimal BERT WordPiece tokenizer.json (lower-casing normaliser, BERT pre-tokenizer). */
function tokenizerJson(): unknown {
  const vocab = Object.fromEntries([...SPECIAL, ...WORDS].map((t, i) => [t, i]));
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: SPECIAL.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

/** Writes a model directory holding `model`'s weights in PyTorch layout (via the saver) and returns its path. */
async function writeDir(root: string, name: string, config: Record<string, unknown> = CONFIG): Promise<string> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson()));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: true }));
  const model = buildBert(parseBertConfig(config), { output: 'hidden', dropout: false });
  const weights = new Map<string, TensorToWrite>();
  for (const [n, w] of collectWeights(model, ARCH)) weights.set(n, { dtype: 'F32', ...w });
  weights.set('embeddings.position_ids', { dtype: 'I64', shape: [1, 24], values: Int32Array.from({ length: 24 }, (_, i) => i) });
  await writeSafetensors(join(dir, 'model.safetensors'), weights);
  model.dispose();
  return dir;
}

function inputs(tok: { encode: (t: string, o?: { padTo?: number; textPair?: string }) => { inputIds: number[]; tokenTypeIds: number[]; attentionMask: number[] } }): tf.Tensor[] {
  const rows = [tok.encode('the movie was great!', { padTo: 10 }), tok.encode('not a good film', { textPair: 'bad', padTo: 10 }), tok.encode('films .', { padTo: 10 })];
  return [
    tf.tensor2d(rows.map((r) => r.inputIds), [3, 10], 'int32'),
    tf.tensor2d(rows.map((r) => r.tokenTypeIds), [3, 10], 'int32'),
    tf.tensor2d(rows.map((r) => r.attentionMask), [3, 10], 'float32'),
  ];
}

function expectModelDirError(code: string, file: RegExp, tensor?: string) {
  return (err: unknown) => {
    assert.ok(err instanceof ModelDirError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.file, file);
    if (tensor !== undefined) assert.equal(err.tensor, tensor);
    return true;
  };
}

describe('BERT model directories (2-layer random-weights BERT)', () => {
  let root: string;
  let base: string;

  before(async () => {
    await tf.setBackend('cpu');
    root = mkdtempSync(join(tmpdir(), 'ewtune-bert-'));
    base = await writeDir(root, 'base');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('tokenizer: [CLS] a [SEP] b [SEP], token types, padding; longest-first truncation of pairs', async () => {
    const { tokenizer } = await loadModelDir(base);
    const id = (t: string) => [...SPECIAL, ...WORDS].indexOf(t);
    const e = tokenizer.encode('The films', { textPair: 'good!', padTo: 9 });
    assert.deepEqual(e.inputIds, [id('[CLS]'), id('the'), id('film'), id('##s'), id('[SEP]'), id('good'), id('!'), id('[SEP]'), id('[PAD]')]);
    assert.deepEqual(e.tokenTypeIds, [0, 0, 0, 0, 0, 1, 1, 1, 0]);
    assert.deepEqual(e.attentionMask, [1, 1, 1, 1, 1, 1, 1, 1, 0]);
    // Budget 6 − 3 = 3 text tokens for 5 + 2: HF gives the longer text 2, the shorter 1 (see the table below).
    const t = tokenizer.encode('the movie was great !', { textPair: 'bad film', maxLength: 6 });
    assert.deepEqual(t.inputIds, [id('[CLS]'), id('the'), id('movie'), id('[SEP]'), id('bad'), id('[SEP]')]);
    assert.deepEqual(t.tokenTypeIds, [0, 0, 0, 0, 1, 1]);
    assert.equal(t.truncated, true);
  });

  it('longest-first split equals Python tokenizers 0.23.3 (enable_truncation(max_length, strategy="longest_first"))', () => {
    // [max_length, n1, n2, kept1, kept2], measured with tokenizers 0.23.3 on the MiniLM tokenizer.json (one token per word).
    const table = [
      [6, 5, 2, 2, 1], [6, 8, 8, 1, 2], [6, 1, 10, 1, 2], [6, 9, 2, 2, 1], [7, 5, 2, 2, 2], [7, 8, 8, 2, 2], [7, 1, 10, 1, 3],
      [7, 9, 2, 2, 2], [8, 5, 2, 3, 2], [8, 8, 8, 2, 3], [8, 1, 10, 1, 4], [8, 9, 2, 3, 2], [9, 5, 2, 4, 2], [9, 8, 8, 3, 3],
      [9, 1, 10, 1, 5], [9, 9, 2, 4, 2], [10, 5, 2, 5, 2], [10, 8, 8, 3, 4], [10, 1, 10, 1, 6], [10, 9, 2, 5, 2],
      [12, 5, 2, 5, 2], [12, 8, 8, 4, 5], [12, 1, 10, 1, 8], [12, 9, 2, 7, 2],
    ];
    for (const [m, n1, n2, k1, k2] of table) assert.deepEqual(longestFirstLengths(n1, n2, m - 3), [k1, k2], `max_length ${m}, ${n1} + ${n2}`);
  });

  it('bad directories: typed errors naming the file (or tensor)', async () => {
    await assert.rejects(loadModelDir(join(root, 'nope')), expectModelDirError('ERR_MODEL_FILE_MISSING', /nope$/));
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json']) {
      const dir = await writeDir(root, `no-${file}`);
      unlinkSync(join(dir, file));
      await assert.rejects(loadModelDir(dir), expectModelDirError('ERR_MODEL_FILE_MISSING', new RegExp(`no-${file}/${file.replace('.', '\\.')}$`)));
    }
    const gpt = await writeDir(root, 'gpt2');
    writeFileSync(join(gpt, 'config.json'), JSON.stringify({ ...CONFIG, model_type: 'gpt2', architectures: ['GPT2LMHeadModel'] }));
    await assert.rejects(loadModelDir(gpt), (err: unknown) => expectModelDirError('ERR_MODEL_ARCHITECTURE', /gpt2\/config\.json$/)(err) && /gpt2/.test((err as Error).message));
    // config.json says 3 layers, the checkpoint has 2.
    const deeper = await writeDir(root, 'deeper');
    writeFileSync(join(deeper, 'config.json'), JSON.stringify({ ...CONFIG, num_hidden_layers: 3 }));
    await assert.rejects(loadModelDir(deeper), expectModelDirError('ERR_MODEL_SHAPE', /deeper\/model\.safetensors$/, 'encoder.layer.2.attention.self.query.weight'));
    // config.json says intermediate 64, the checkpoint has 32.
    const wider = await writeDir(root, 'wider');
    writeFileSync(join(wider, 'config.json'), JSON.stringify({ ...CONFIG, intermediate_size: 64 }));
    await assert.rejects(loadModelDir(wider), expectModelDirError('ERR_MODEL_SHAPE', /wider\/model\.safetensors$/, 'encoder.layer.0.intermediate.dense.weight'));
    const badConfig = await writeDir(root, 'bad-config');
    writeFileSync(join(badConfig, 'config.json'), JSON.stringify({ ...CONFIG, num_attention_heads: 3 }));
    await assert.rejects(loadModelDir(badConfig), (err: unknown) => expectModelDirError('ERR_MODEL_CONFIG', /bad-config\/config\.json$/)(err) && /num_attention_heads 3/.test((err as Error).message));
    const truncated = await writeDir(root, 'truncated');
    const bytes = readFileSync(join(truncated, 'model.safetensors'));
    writeFileSync(join(truncated, 'model.safetensors'), bytes.subarray(0, bytes.length - 100));
    await assert.rejects(loadModelDir(truncated), expectModelDirError('ERR_SAFETENSORS', /truncated\/model\.safetensors$/));
  });

  it('loadWeightsInto refuses a tensor whose shape does not match the layer, naming it', async () => {
    const dir = await loadModelDir(base);
    const other = buildBert(parseBertConfig({ ...CONFIG, intermediate_size: 8 }), { output: 'hidden', dropout: false });
    assert.throws(() => loadWeightsInto(other, dir.tensors, dir.architecture), expectModelDirError('ERR_MODEL_SHAPE', /model\.safetensors$/, 'encoder.layer.0.intermediate.dense.weight'));
    other.dispose();
  });

  it('weights load transposed ([out, in] → [in, out]) under the HF names', async () => {
    const dir = await loadModelDir(base);
    const { model, report } = await loadEncoder(dir, { output: 'hidden', dropout: false });
    assert.deepEqual(report.missing, []);
    assert.deepEqual(report.unused, ['embeddings.position_ids']);
    const stored = dir.tensors.get('encoder.layer.1.intermediate.dense.weight')!;
    assert.deepEqual(stored.shape, [32, 16]);
    const kernel = model.getLayer('encoder.layer.1.intermediate.dense').getWeights()[0];
    assert.deepEqual(kernel.shape, [16, 32]);
    const k = kernel.arraySync() as number[][];
    for (let o = 0; o < 32; o++) for (let i = 0; i < 16; i++) assert.equal(k[i][o], stored.values[o * 16 + i]);
    model.dispose();
  });

  for (const pooling of ['mean', 'cls'] as const) {
    it(`save → load gives the same probabilities (${pooling} pooling, 3 labels), HF layout, privacy.json`, async () => {
      const dir = await loadModelDir(base);
      const { model } = await loadEncoder(dir, { numLabels: 3, pooling, dropout: false });
      const x = inputs(dir.tokenizer);
      const p1 = model.predict(x) as tf.Tensor;
      const privacy = { epsilon: { certified: 2.9, estimate: 2.7 }, delta: 1e-5, noiseMultiplier: 1.1, sampleRate: 0.01, steps: 100, accountant: 'pld' };
      const out = join(root, `saved-${pooling}`);
      const saved = await saveModelDir(out, { model, config: dir.config, architecture: dir.architecture, tokenizerFrom: base, pooling, labels: ['neg', 'neu', 'pos'], privacy });
      assert.deepEqual(saved.files.sort(), ['config.json', 'model.safetensors', 'privacy.json', 'tokenizer.json', 'tokenizer_config.json']);
      assert.deepEqual(JSON.parse(readFileSync(join(out, 'privacy.json'), 'utf8')), privacy);
      const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
      assert.deepEqual(config.architectures, ['BertForSequenceClassification']);
      assert.deepEqual(config.id2label, { 0: 'neg', 1: 'neu', 2: 'pos' });
      assert.equal(config.ewtune.pooling, pooling);
      const st = await readSafetensors(join(out, 'model.safetensors'));
      assert.deepEqual(st.tensors.get('classifier.weight')!.shape, [3, 16]);
      assert.deepEqual(st.tensors.get('bert.encoder.layer.0.attention.self.query.weight')!.shape, [16, 16]);
      assert.equal(st.tensors.has('bert.pooler.dense.weight'), pooling === 'cls');
      const back = await loadEncoder(out, { dropout: false });
      assert.deepEqual(back.report.missing, []);
      const p2 = back.model.predict(x) as tf.Tensor;
      assert.deepEqual(p2.shape, [3, 3]);
      assert.ok(tf.max(tf.abs(tf.sub(p1, p2))).dataSync()[0] <= 1e-7);
      // The probabilities depend on the weights (not a constant head): another random head differs.
      const fresh = await loadEncoder(base, { numLabels: 3, pooling, dropout: false });
      assert.ok(tf.max(tf.abs(tf.sub(p1, fresh.model.predict(x) as tf.Tensor))).dataSync()[0] > 1e-4);
      tf.dispose([...x, p1, p2]);
      [model, back.model, fresh.model].forEach((m) => m.dispose());
    });
  }

  it('bottom (layers 0..s−1) + top (from layer s) equal the full model; the split saves as one checkpoint', async () => {
    const dir = await loadModelDir(base);
    const full = await loadEncoder(dir, { numLabels: 2, dropout: false });
    const x = inputs(dir.tokenizer);
    const expected = full.model.predict(x) as tf.Tensor;
    const config = parseBertConfig(CONFIG);
    for (const s of [1, 2]) {
      const bottom = buildBertBottom(config, { toLayer: s, dropout: false });
      const top = buildBert(config, { fromLayer: s, numLabels: 2, dropout: false });
      loadWeightsInto(bottom, dir.tensors, dir.architecture);
      loadWeightsInto(top, dir.tensors, dir.architecture);
      // Same head weights as the full model's.
      top.getLayer('classifier').setWeights(full.model.getLayer('classifier').getWeights());
      const h = bottom.predict(x) as tf.Tensor;
      assert.deepEqual(h.shape, [3, 10, 16]);
      const got = top.predict([h, x[2]]) as tf.Tensor;
      assert.ok(tf.max(tf.abs(tf.sub(got, expected))).dataSync()[0] <= 1e-6, `split at ${s}`);
      const out = join(root, `split-${s}`);
      await saveModelDir(out, { model: [bottom, top], config: dir.config, architecture: dir.architecture, tokenizerFrom: base, pooling: 'mean' });
      const back = await loadEncoder(out, { dropout: false });
      assert.ok(tf.max(tf.abs(tf.sub(back.model.predict(x) as tf.Tensor, expected))).dataSync()[0] <= 1e-6);
      await assert.rejects(saveModelDir(join(root, `half-${s}`), { model: top, config: dir.config, architecture: dir.architecture, tokenizerFrom: base, pooling: 'mean' }),
        expectModelDirError('ERR_MODEL_SHAPE', /model\.safetensors$/, 'embeddings.word_embeddings.weight'));
      [bottom, top, back.model].forEach((m) => m.dispose());
      tf.dispose([h, got]);
    }
    tf.dispose([...x, expected]);
    full.model.dispose();
  });

  it('mergedWeights hook: the saved Linear is the hook\'s [in, out] kernel, transposed to [out, in]', async () => {
    const dir = await loadModelDir(base);
    const { model } = await loadEncoder(dir, { output: 'pooled', dropout: false });
    const out = join(root, 'merged');
    const layerName = 'encoder.layer.0.attention.self.value';
    const kernel = model.getLayer(layerName).getWeights()[0];
    await saveModelDir(out, {
      model, config: dir.config, architecture: dir.architecture, tokenizerFrom: base, pooling: 'mean',
      hooks: { mergedWeights: (layer) => (layer.name === layerName ? { kernel: tf.add(layer.getWeights()[0], 1) } : null) },
    });
    const st = await readSafetensors(join(out, 'model.safetensors'));
    const saved = st.tensors.get(`${layerName}.weight`)!;
    const k = kernel.arraySync() as number[][];
    for (let o = 0; o < 16; o++) for (let i = 0; i < 16; i++) assert.ok(Math.abs(saved.values[o * 16 + i] - (k[i][o] + 1)) < 1e-6);
    const bias = st.tensors.get(`${layerName}.bias`)!;
    assert.deepEqual(Array.from(bias.values), Array.from(model.getLayer(layerName).getWeights()[1].dataSync()));
    model.dispose();
  });

  it('only Dense / Embedding / LayerNormalization carry weights, each layer is called once, the DP step needs no per-example loop', async () => {
    const dir = await loadModelDir(base);
    const { model } = await loadEncoder(dir, { numLabels: 2, dropout: true });
    for (const layer of model.layers) {
      if (layer.weights.length > 0) assert.ok(['Dense', 'Embedding', 'LayerNormalization'].includes(layer.getClassName()), layer.getClassName());
    }
    for (const [layer, n] of countLayerCalls(model)) assert.equal(n, 1, layer.name);
    const x = inputs(dir.tokenizer);
    const y = tf.tensor1d([0, 1, 1], 'int32');
    const before = tf.memory().numTensors;
    const r = computeClippedGradients(model, x, y, { l2NormClip: 1, loss: 'sparseCategoricalCrossentropy' });
    assert.deepEqual(r.fallbackLayers, []);
    assert.equal(r.clippedSum.size, model.trainableWeights.length);
    assert.ok(r.perExampleNorms.every((n) => Number.isFinite(n) && n > 0));
    tf.dispose([...r.clippedSum.values()]);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([...x, y]);
    model.dispose();
  });

  it('copies LICENSE / NOTICE with the tokenizer (the licence record travels with the weights)', async () => {
    const withLicense = await writeDir(root, 'licensed');
    writeFileSync(join(withLicense, 'LICENSE'), 'Apache License 2.0');
    writeFileSync(join(withLicense, 'NOTICE'), 'from upstream');
    const dir = await loadModelDir(withLicense);
    const { model } = await loadEncoder(dir, { dropout: false });
    const out = join(root, 'licensed-out');
    const saved = await saveModelDir(out, { model, config: dir.config, architecture: dir.architecture, tokenizerFrom: withLicense, pooling: 'mean' });
    assert.ok(saved.files.includes('LICENSE') && saved.files.includes('NOTICE'));
    assert.equal(readFileSync(join(out, 'NOTICE'), 'utf8'), 'from upstream');
    model.dispose();
  });
});
