/**
 * The BERT encoder on the real all-MiniLM-L6-v2 weights against PyTorch: ../shared/reference/minilm_reference.json
 * (12 records computed with transformers, float32, from the same model.safetensors). Token ids exactly; the
 * normalised sentence embedding, the mean-pooled embedding and the [CLS] hidden state within 1e-5. Also the encode
 * CLI and truncation of over-long texts. Needs `ewtune models fetch minilm` (fails in CI when missing).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { main } from '../src/cli/main.ts';
import { loadEncoder, type LoadedEncoder } from '../src/model-dir/load.ts';
import { MINILM, pretrainedModelPath, isPretrainedComplete } from '../src/model-dir/fetch.ts';

interface ReferenceRecord {
  text: string | [string, string];
  input_ids: number[];
  token_type_ids: number[];
  cls_hidden: number[];
  mean_pooled: number[];
  sentence_embedding: number[];
}

// Copied from ../shared/reference/minilm_reference.json (as the other reference vectors), so a clone runs it alone.
const REFERENCE = new URL('./fixtures/minilm_reference.json', import.meta.url);
// Read at load time (one test per record), but never crash the whole run: without the file, one test fails saying so.
const referenceMissing = !existsSync(REFERENCE);
const records = referenceMissing ? [] : (JSON.parse(readFileSync(REFERENCE, 'utf8')) as { records: ReferenceRecord[] }).records;
const TOLERANCE = 1e-5;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function split(r: ReferenceRecord): { text: string; textPair?: string } {
  return Array.isArray(r.text) ? { text: r.text[0], textPair: r.text[1] } : { text: r.text };
}

describe('BERT encoder = PyTorch on all-MiniLM-L6-v2 (12 reference records)', function () {
  const modelDir = pretrainedModelPath('minilm');
  let hidden: LoadedEncoder;

  before(async function () {
    if (!existsSync(modelDir) || !(await isPretrainedComplete(MINILM, modelDir))) {
      const message = `${modelDir} is missing or incomplete; fetch it with \`node bin/ewtune.mjs models fetch minilm\``;
      if (process.env.CI === 'true') throw new Error(`${message} (.ci/install should have done so)`);
      console.log(`      skipped: ${message}`);
      this.skip();
    }
    await tf.setBackend('cpu');
    hidden = await loadEncoder(modelDir, { output: 'hidden', dropout: false });
  });

  after(() => hidden?.model.dispose());

  it('loads every encoder weight (pooler and position_ids buffer unused with mean pooling)', () => {
    assert.deepEqual(hidden.report.missing, []);
    assert.deepEqual(hidden.report.unused.sort(), ['embeddings.position_ids', 'pooler.dense.bias', 'pooler.dense.weight']);
    assert.equal(hidden.model.countParams(), 22_565_376);
  });

  if (referenceMissing) {
    it('reads test/fixtures/minilm_reference.json', () => {
      assert.fail(`${REFERENCE.pathname} is missing (a copy of ../shared/reference/minilm_reference.json)`);
    });
  }

  records.forEach((r, k) => {
    it(`record ${k} (${JSON.stringify(r.text).slice(0, 40)}…): ids exact, embedding / mean / [CLS] within 1e-5`, () => {
      const { text, textPair } = split(r);
      const e = hidden.dir.tokenizer.encode(text, { ...(textPair !== undefined ? { textPair } : {}), maxLength: 128 });
      assert.deepEqual(e.inputIds, r.input_ids);
      assert.deepEqual(e.tokenTypeIds, r.token_type_ids);
      const T = e.inputIds.length;
      const before = tf.memory().numTensors;
      const [cls, mean, embedding] = tf.tidy(() => {
        const h = hidden.model.predict([tf.tensor2d([e.inputIds], [1, T], 'int32'), tf.tensor2d([e.tokenTypeIds], [1, T], 'int32'), tf.ones([1, T])]) as tf.Tensor;
        const m = tf.mean(h, 1);
        return [tf.slice(h, [0, 0, 0], [1, 1, -1]).dataSync(), m.dataSync(), tf.div(m, tf.norm(m)).dataSync()];
      });
      assert.equal(tf.memory().numTensors, before);
      const d = { embedding: maxAbsDiff(embedding, r.sentence_embedding), mean: maxAbsDiff(mean, r.mean_pooled), cls: maxAbsDiff(cls, r.cls_hidden) };
      for (const [what, diff] of Object.entries(d)) assert.ok(diff <= TOLERANCE, `${what}: max |diff| ${diff}`);
    });
  });

  it('a padded batch (mean pooling over the mask) gives the unpadded reference embeddings', async () => {
    const pooled = await loadEncoder(hidden.dir, { output: 'pooled', dropout: false });
    try {
      const batch = [0, 4, 6, 9].map((k) => records[k]);
      const parts = batch.map(split);
      const hasPair = parts.map((p) => p.textPair !== undefined);
      assert.ok(hasPair.some((x) => x) && hasPair.some((x) => !x));
      const texts = parts.map((p) => p.text);
      // Single texts in the same batch as a pair: encode them one by one, pad to the longest.
      const enc = parts.map((p) => hidden.dir.tokenizer.encode(p.text, p.textPair !== undefined ? { textPair: p.textPair, maxLength: 128 } : { maxLength: 128 }));
      const T = Math.max(...enc.map((e) => e.inputIds.length));
      const padded = parts.map((p) => hidden.dir.tokenizer.encode(p.text, { ...(p.textPair !== undefined ? { textPair: p.textPair } : {}), maxLength: 128, padTo: T }));
      const out = tf.tidy(() => {
        const p = pooled.model.predict([
          tf.tensor2d(padded.map((e) => e.inputIds), [4, T], 'int32'),
          tf.tensor2d(padded.map((e) => e.tokenTypeIds), [4, T], 'int32'),
          tf.tensor2d(padded.map((e) => e.attentionMask), [4, T], 'float32'),
        ]) as tf.Tensor;
        return tf.div(p, tf.norm(p, 'euclidean', 1, true)).arraySync() as number[][];
      });
      batch.forEach((r, i) => assert.ok(maxAbsDiff(out[i], r.sentence_embedding) <= TOLERANCE, `row ${i}`));
      // encodeBatch pads single texts the same way.
      const b = hidden.dir.tokenizer.encodeBatch([texts[0], texts[1]], { maxLength: 128 });
      assert.deepEqual(b.inputIds.shape, [2, Math.max(records[0].input_ids.length, records[4].input_ids.length)]);
      assert.deepEqual(Array.from(b.attentionMask.dataSync()).slice(0, records[0].input_ids.length).every((v) => v === 1), true);
      tf.dispose([b.inputIds, b.tokenTypeIds, b.attentionMask]);
    } finally {
      pooled.model.dispose();
    }
  });

  it('ewtune encode --json prints the reference ids and embedding (a pair)', async () => {
    const r = records.find((x) => Array.isArray(x.text))!;
    const [a, b] = r.text as [string, string];
    let out = '';
    const code = await main(['encode', '--model', modelDir, '--text', a, '--text-pair', b, '--max-length', '128', '--backend', 'cpu', '--json'],
      { out: (t) => { out += t; }, err: () => {} });
    assert.equal(code, 0);
    const json = JSON.parse(out) as { inputIds: number[]; tokenTypeIds: number[]; sentenceEmbedding: number[] };
    assert.deepEqual(json.inputIds, r.input_ids);
    assert.deepEqual(json.tokenTypeIds, r.token_type_ids);
    assert.ok(maxAbsDiff(json.sentenceEmbedding, r.sentence_embedding) <= TOLERANCE);
  });

  it('a text longer than max_position_embeddings is truncated to 512 tokens ending in [SEP], with one warning', async () => {
    // A fresh tokenizer instance (the warning is once per tokenizer).
    const { loadModelDir } = await import('../src/model-dir/load.ts');
    const { tokenizer } = await loadModelDir(modelDir);
    const long = Array.from({ length: 700 }, (_, i) => `word${i % 7}`).join(' ');
    const warnings: string[] = [];
    const original = console.warn;
    console.warn = (...args: unknown[]) => { warnings.push(args.join(' ')); };
    try {
      const e1 = tokenizer.encode(long);
      const e2 = tokenizer.encode(long, { textPair: long });
      assert.equal(e1.inputIds.length, 512);
      assert.equal(e1.inputIds[511], tokenizer.sepId);
      assert.equal(e1.truncated, true);
      assert.equal(e2.inputIds.length, 512);
      assert.equal(e2.inputIds.filter((id) => id === tokenizer.sepId).length, 2);
    } finally {
      console.warn = original;
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /longer than maxLength 512 \(max_position_embeddings\); truncated/);
    assert.throws(() => tokenizer.encode('x', { maxLength: 513 }), /maxLength must be an integer in \[2, 512\]/);
  });
});
