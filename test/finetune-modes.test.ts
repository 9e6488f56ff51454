/**
 * Fine-tuning modes (src/finetune) on a 2-layer random-weights BERT (hidden 32, 4 heads, intermediate 64, vocab 100,
 * T 12, batch 5, padded attention masks, sentence pairs with token types 0/1), cpu backend. For every mode:
 * - clipped sums and per-example norms of computeClippedGradients (auto, ghost, materialise) equal an explicit
 *   per-example tf.variableGrads loop and the library's naive strategy (1e-5 relative), with no per-example loop;
 * - exactly the trainable layers get a per-example record (frozen embeddings and frozen Linear layers none);
 * - the trainable parameter count equals the count worked out by hand from the architecture;
 * - tf.memory().numTensors stays flat over repeated dpStep calls.
 * Plus: top-k with a cached bottom gives the same clipped sums as top-k on the full model; LoRA merged into the
 * kernels gives the same probabilities as the unmerged model.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../src/errors.ts';
import { computeClippedGradients } from '../src/dp/per-example/index.ts';
import { LAYER_RULES } from '../src/dp/per-example/rules.ts';
import type { LayerRule } from '../src/dp/per-example/rules.ts';
import { createNoiseSource } from '../src/dp/noise.ts';
import { dpStep } from '../src/train/dp-step.ts';
import {
  applyFinetuneMode, cacheBottomOutputs, createFinetuneModel, loraMergedWeights, validateFinetuneConfig,
} from '../src/finetune/index.ts';
import type { EncoderBuilder, FinetuneConfig } from '../src/finetune/index.ts';
import { LoraDense } from '../src/models/lora.ts';
import { parseBertConfig } from '../src/models/bert/config.ts';
import { buildBert } from '../src/models/bert/model.ts';
import { BERT_ARCHITECTURE } from '../src/models/bert/architecture.ts';
import { collectWeights, loadWeightsInto, localWeightName } from '../src/model-dir/weights.ts';
import type { StoredTensor } from '../src/model-dir/safetensors.ts';
import { architectureBuilder } from '../src/finetune/builder.ts';
import { checkClipping, sparseCe } from './support/clipping-check.ts';
import { intTensor, lcg, uniformTensor } from './support/deterministic.ts';

const CONFIG = parseBertConfig({
  model_type: 'bert', vocab_size: 100, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4,
  intermediate_size: 64, max_position_embeddings: 16, type_vocab_size: 2, layer_norm_eps: 1e-12, hidden_act: 'gelu',
  hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1,
});
const T = 12;
const BATCH = 5;
const LABELS = 3;

/**
 * The "pre-trained checkpoint": a BERT with deterministic random weights (LayerNorm γ around 1, everything else
 * U(−0.2, 0.2), biases included so that no gradient is trivially zero), saved to Hugging Face names and layout.
 */
function checkpoint(): Map<string, StoredTensor> {
  const source = buildBert(CONFIG, { numLabels: LABELS, pooling: 'cls', dropout: false, name: 'checkpoint' });
  source.weights.forEach((w, k) => {
    const u = uniformTensor(w.shape as number[], 100 + k, 0.2);
    const t = localWeightName(w as unknown as { originalName: string }) === 'gamma' ? tf.add(1, u) : u;
    w.write(t);
    tf.dispose([u, t]);
  });
  const saved = collectWeights(source, BERT_ARCHITECTURE);
  source.dispose();
  return new Map([...saved].map(([name, t]) => [name, { dtype: 'F32' as const, shape: t.shape, values: t.values }]));
}

/** The real BERT builder with the checkpoint; no dropout layers unless asked (clipping is compared exactly). */
function builderFor(weights: Map<string, StoredTensor>, dropout = false, pooling: 'mean' | 'cls' = 'cls'): EncoderBuilder {
  return architectureBuilder(BERT_ARCHITECTURE, CONFIG, { numLabels: LABELS, pooling, sequenceLength: T, dropout }, weights);
}

/** [input_ids, token_type_ids, attention_mask] for sentence pairs with padding; labels. */
function batchInputs(seed: number): { x: tf.Tensor[]; y: tf.Tensor } {
  const u = lcg(seed);
  const ids: number[] = [];
  const types: number[] = [];
  const mask: number[] = [];
  const lengths = [12, 9, 7, 11, 5];
  for (let i = 0; i < BATCH; i++) {
    const len = lengths[i];
    const first = Math.floor(len / 2);
    for (let t = 0; t < T; t++) {
      const real = t < len;
      // [CLS]=1, [SEP]=2, [PAD]=0 as in BERT vocabularies; words from 3..99 with repeats.
      ids.push(!real ? 0 : t === 0 ? 1 : t === first || t === len - 1 ? 2 : 3 + Math.floor(u() * 12));
      types.push(real && t > first ? 1 : 0);
      mask.push(real ? 1 : 0);
    }
  }
  return {
    x: [tf.tensor2d(ids, [BATCH, T], 'int32'), tf.tensor2d(types, [BATCH, T], 'int32'), tf.tensor2d(mask, [BATCH, T], 'float32')],
    y: intTensor([BATCH], LABELS, seed + 1),
  };
}

/** Layer names that got a per-example record (rule.forward calls) while `fn` runs. */
function recordedLayers(fn: () => void): string[] {
  const seen: string[] = [];
  const originals = new Map<LayerRule, LayerRule['forward']>();
  for (const rule of LAYER_RULES.values()) {
    const forward = rule.forward;
    originals.set(rule, forward);
    (rule as { forward: LayerRule['forward'] }).forward = (layer, input, ctx) => { seen.push(layer.name); return forward(layer, input, ctx); };
  }
  try {
    fn();
  } finally {
    for (const [rule, forward] of originals) (rule as { forward: LayerRule['forward'] }).forward = forward;
  }
  return seen;
}

// Parameter counts worked out from the architecture (d = 32, d_ff = 64, vocab 100, 16 positions, 2 types, 3 labels).
const d = 32;
const EMBEDDINGS = 100 * d + 16 * d + 2 * d + 2 * d; // word, position, token type, LayerNorm
const LINEAR_DD = d * d + d;
const LAYER = 4 * LINEAR_DD + 2 * d + (d * 64 + 64) + (64 * d + d) + 2 * d; // q,k,v,o; LN; intermediate; output; LN
const POOLER = LINEAR_DD;
const HEAD = d * LABELS + LABELS;
const FULL = EMBEDDINGS + 2 * LAYER + POOLER + HEAD;
const LORA_RANK = 4;
const BIASES_PER_LAYER = 4 * d + 64 + d;

interface ModeCase {
  config: FinetuneConfig;
  trainableParams: number;
  totalParams: number;
  /** Layers expected to carry per-example records. */
  recorded: (name: string) => boolean;
  /** Default 'cls' (with the pooler). */
  pooling?: 'mean' | 'cls';
}

const CASES: ModeCase[] = [
  { config: { mode: 'full' }, trainableParams: FULL, totalParams: FULL, recorded: (n) => !n.endsWith('.core') },
  {
    config: { mode: 'full', trainWordEmbeddings: false }, trainableParams: FULL - 100 * d, totalParams: FULL,
    recorded: (n) => n !== 'embeddings.word_embeddings',
  },
  {
    config: { mode: 'top-k', topK: 1 }, trainableParams: LAYER + POOLER + HEAD, totalParams: FULL,
    recorded: (n) => n.startsWith('encoder.layer.1.') || n === 'pooler.dense' || n === 'classifier',
  },
  {
    config: { mode: 'lora', lora: { rank: LORA_RANK, alpha: 8 } },
    trainableParams: 2 * 2 * (d * LORA_RANK + LORA_RANK * d) + HEAD, totalParams: FULL + 2 * 2 * 2 * d * LORA_RANK,
    recorded: (n) => /\.attention\.self\.(query|value)$/.test(n) || n === 'classifier',
  },
  {
    // Every Linear but the head adapted, mean pooling (no pooler): in → r → out for q, k, v, attention output
    // (32 → 32), intermediate (32 → 64) and output (64 → 32).
    config: { mode: 'lora', lora: { rank: 2, targets: ['query', 'key', 'value', 'dense'], trainBias: true } },
    pooling: 'mean',
    trainableParams: 2 * (4 * (2 * (d * 2) + d) + (d * 2 + 2 * 64 + 64) + (64 * 2 + 2 * d + d)) + HEAD,
    totalParams: FULL - POOLER + 2 * (4 * 2 * (d * 2) + (d * 2 + 2 * 64) + (64 * 2 + 2 * d)),
    recorded: (n) => /\.(query|key|value|dense)$/.test(n) || n === 'classifier',
  },
  {
    config: { mode: 'bitfit' }, trainableParams: 2 * (BIASES_PER_LAYER + 4 * d) + 2 * d + d + HEAD, totalParams: FULL,
    recorded: (n) => n.endsWith('LayerNorm') || (n.startsWith('encoder.') && !n.endsWith('.core')) || n === 'pooler.dense' || n === 'classifier',
  },
  { config: { mode: 'head' }, trainableParams: HEAD, totalParams: FULL, recorded: (n) => n === 'classifier' },
];

function label(c: FinetuneConfig): string {
  return JSON.stringify(c);
}

describe('fine-tuning modes on a 2-layer BERT (cpu backend)', function () {
  this.timeout(300_000);
  let weights: Map<string, StoredTensor>;
  before(async () => {
    await tf.setBackend('cpu');
    weights = checkpoint();
  });

  for (const c of CASES) {
    it(`${label(c.config)}: per-example clipping equals the per-example loop, no loop fallback, only trainable layers recorded`, () => {
      const { model, bottom, summary } = createFinetuneModel(builderFor(weights, false, c.pooling), c.config);
      assert.equal(bottom, null);
      if (c.config.mode === 'lora') {
        // Non-zero B so that A's gradient is non-trivial (a fresh adapter has B = 0).
        model.layers.filter((l) => l instanceof LoraDense).forEach((l, k) => {
          const b = (l as LoraDense).loraB;
          b.write(uniformTensor(b.shape as number[], 300 + k, 0.3));
        });
      }
      assert.equal(summary.trainableParams, c.trainableParams, 'trainable parameters');
      assert.equal(summary.totalParams, c.totalParams, 'total parameters');
      const { x, y } = batchInputs(7);
      let check: ReturnType<typeof checkClipping> | undefined;
      const recorded = recordedLayers(() => { check = checkClipping(model, x, y); });
      assert.deepEqual(check!.variables.sort(), [...summary.trainableWeights].sort());
      const expected = model.layers.map((l) => l.name).filter((n) => summary.trainableLayers.includes(n));
      assert.deepEqual([...new Set(recorded)].sort(), [...expected].sort(), 'records exactly for the trainable layers');
      for (const n of expected) assert.ok(c.recorded(n), `${n} expected to be trainable in ${c.config.mode}`);
      if (c.config.mode !== 'full') assert.ok(!recorded.includes('embeddings.word_embeddings'), 'frozen word embeddings: no record');
      tf.dispose([...x, y]);
      model.dispose();
    });
  }

  const CACHED: Array<{ config: FinetuneConfig; trainableParams: number; frozenPrefixes: string[] }> = [
    { config: { mode: 'top-k', topK: 1, cacheBottom: true }, trainableParams: LAYER + POOLER + HEAD, frozenPrefixes: ['embeddings.', 'encoder.layer.0.'] },
    { config: { mode: 'head', cacheBottom: true }, trainableParams: HEAD, frozenPrefixes: ['embeddings.', 'encoder.layer.'] },
  ];
  for (const c of CACHED) {
    it(`${label(c.config)}: same clipped sums as without the cache, and equal to the per-example loop`, () => {
      const builder = builderFor(weights);
      const cached = createFinetuneModel(builder, c.config);
      const plain = createFinetuneModel(builder, { ...c.config, cacheBottom: undefined });
      assert.ok(cached.bottom, 'a frozen bottom model');
      assert.equal(cached.bottom!.trainableWeights.length, 0);
      assert.equal(cached.summary.trainableParams, c.trainableParams);
      assert.equal(plain.summary.trainableParams, c.trainableParams);
      assert.ok(!cached.model.layers.some((l) => c.frozenPrefixes.some((p) => l.name.startsWith(p))), 'the top model has no frozen-bottom layers');
      const { x, y } = batchInputs(9);
      const topInputs = cacheBottomOutputs(cached.bottom!, x, 2); // batches of 2: 3 bottom calls for 5 examples
      assert.deepEqual(topInputs[0].shape, [BATCH, T, d]);
      checkClipping(cached.model, topInputs, y);
      const opts = { l2NormClip: 0.5, loss: sparseCe };
      const a = computeClippedGradients(cached.model, topInputs, y, opts);
      const b = computeClippedGradients(plain.model, x, y, opts);
      const byLocal = (m: Map<string, tf.Tensor>) => new Map([...m].map(([k, v]) => [k.replace(/_\d+$/, ''), v]));
      const am = byLocal(a.clippedSum);
      const bm = byLocal(b.clippedSum);
      assert.deepEqual([...am.keys()].sort(), [...bm.keys()].sort());
      for (const [k, t] of am) {
        const diff = tf.max(tf.abs(tf.sub(t, bm.get(k)!))).dataSync()[0];
        const scale = tf.max(tf.abs(bm.get(k)!)).dataSync()[0];
        assert.ok(scale > 0 && diff <= 1e-5 * scale, `${k}: ${diff} vs scale ${scale}`);
      }
      a.perExampleNorms.forEach((n, i) => assert.ok(Math.abs(n - b.perExampleNorms[i]) <= 1e-5 * n, `norm ${i}`));
      tf.dispose([...a.clippedSum.values(), ...b.clippedSum.values(), ...topInputs, ...x, y]);
      cached.model.dispose();
      cached.bottom!.dispose();
      plain.model.dispose();
    });
  }

  for (const c of [...CASES, ...CACHED.map((k) => ({ config: k.config, pooling: undefined }))]) {
    it(`${label(c.config)}: tf.memory().numTensors is flat over dpStep calls (dropout on)`, async () => {
      const ft = createFinetuneModel(builderFor(weights, true, c.pooling), c.config);
      assert.ok(ft.model.layers.some((l) => l.getClassName() === 'Dropout'), 'dropout layers present');
      const { x, y } = batchInputs(11);
      const inputs = ft.bottom ? cacheBottomOutputs(ft.bottom, x) : x;
      const data = { x: inputs, y };
      const optimizer = tf.train.adam(1e-3);
      const noise = createNoiseSource('gaussian');
      const step = () => dpStep(ft.model, data, Int32Array.from([0, 2, 3, 4]), {
        l2NormClip: 1, loss: 'sparseCategoricalCrossentropy', noiseMultiplier: 1, expectedBatchSize: 4, noise, optimizer,
        strategy: 'auto',
      });
      const first = await step(); // creates the optimizer's slots
      assert.deepEqual(first.fallbackLayers, []);
      const baseline = tf.memory().numTensors;
      for (let k = 0; k < 3; k++) {
        const r = await step();
        assert.deepEqual(r.fallbackLayers, []);
        assert.equal(tf.memory().numTensors, baseline, `step ${k + 2}`);
      }
      optimizer.dispose();
      if (inputs !== x) tf.dispose(inputs);
      tf.dispose([...x, y]);
      ft.model.dispose();
      ft.bottom?.dispose();
    });
  }

  it('LoRA merged into the kernels gives the same probabilities as the unmerged model', () => {
    const builder = builderFor(weights);
    const lora = createFinetuneModel(builder, { mode: 'lora', lora: { rank: LORA_RANK, alpha: 16, targets: ['query', 'value', 'intermediate.dense'] } });
    const adapters = lora.model.layers.filter((l) => l instanceof LoraDense) as LoraDense[];
    assert.equal(adapters.length, 6);
    adapters.forEach((l, k) => l.loraB.write(uniformTensor(l.loraB.shape as number[], 400 + k, 0.5)));
    // Saved as the model directory saver does (collectWeights with the merge hook: Hugging Face names, [out, in]),
    // loaded into a plain BERT (no adapters) by the loader.
    const saved = collectWeights(lora.model, BERT_ARCHITECTURE, loraMergedWeights);
    assert.ok(![...saved.keys()].some((n) => n.includes('lora')), 'no adapter tensors in the merged checkpoint');
    const plain = buildBert(CONFIG, { numLabels: LABELS, pooling: 'cls', sequenceLength: T, dropout: false });
    const report = loadWeightsInto(plain, new Map([...saved].map(([n, t]) => [n, { dtype: 'F32' as const, shape: t.shape, values: t.values }])), BERT_ARCHITECTURE);
    assert.deepEqual(report.missing, [], 'every weight of the plain model comes from the merged checkpoint');
    const { x } = batchInputs(13);
    const p = lora.model.predict(x) as tf.Tensor;
    const q = plain.predict(x) as tf.Tensor;
    const base = createFinetuneModel(builder, { mode: 'head' }).model.predict(x) as tf.Tensor;
    assert.ok(tf.max(tf.abs(tf.sub(p, base))).dataSync()[0] > 1e-3, 'the adapters change the output');
    assert.ok(tf.max(tf.abs(tf.sub(p, q))).dataSync()[0] < 1e-5, 'merged = unmerged');
    tf.dispose([p, q, base, ...x]);
  });

  it('rejects bad configs with InvalidArgumentError naming the field, before building', () => {
    const isArg = (field: string) => (e: unknown) => e instanceof InvalidArgumentError && e.argument === field;
    assert.throws(() => validateFinetuneConfig({ mode: 'prefix' as 'full' }, 2), isArg('model.finetune.mode'));
    assert.throws(() => validateFinetuneConfig({ mode: 'top-k' }, 2), isArg('model.finetune.topK'));
    assert.throws(() => validateFinetuneConfig({ mode: 'top-k', topK: 3 }, 2), isArg('model.finetune.topK'));
    assert.throws(() => validateFinetuneConfig({ mode: 'head', topK: 1 }, 2), isArg('model.finetune.topK'));
    assert.throws(() => validateFinetuneConfig({ mode: 'lora', cacheBottom: true }, 2), isArg('model.finetune.cacheBottom'));
    assert.throws(() => validateFinetuneConfig({ mode: 'bitfit', lora: { rank: 2 } }, 2), isArg('model.finetune.lora'));
    assert.throws(() => validateFinetuneConfig({ mode: 'lora', lora: { rank: 0 } }, 2), isArg('rank'));
    assert.throws(() => validateFinetuneConfig({ mode: 'lora', lora: { targets: ['classifier'] } }, 2), isArg('model.finetune.lora.targets'));
    const plain = builderFor(weights).build({});
    assert.throws(() => applyFinetuneMode(plain, { mode: 'lora' }), isArg('model'));
    const lora = createFinetuneModel(builderFor(weights), { mode: 'lora', lora: { targets: ['query'] } }).model;
    assert.throws(() => applyFinetuneMode(lora, { mode: 'lora', lora: { targets: ['nonexistent'] } }), isArg('model.finetune.lora.targets'));
    plain.dispose();
    lora.dispose();
  });
});
