/**
 * The one-run privacy audit (src/audit; Steinke, Nasr, Jagielski 2023):
 * - the tail bound against independent numbers: the paper's algorithm in Python/scipy
 *   (test/fixtures/one-run-audit/reference.py → reference.json), exact rational arithmetic with BigInt at ε = ln 3
 *   (q = 3/4), and the closed form of an all-correct outcome at δ = 0;
 * - the canaries: a canary's clipped gradient is exactly C in its own coordinate of the designated block and 0
 *   elsewhere; a real example's gradient is 0 in the block;
 * - audits through the real DP step (cpu backend, small model): (a) σ = 2, one step, 2000 canaries: ε_audit ≤ the
 *   certified ε (else a privacy bug); (b) noise switched off by the insecure hook: detected; (c) clipping switched
 *   off by the hook: detected; no tensor leaks; the hooks need their acknowledgement and no config can reach them;
 * - `ewtune audit <config> --json` end to end against a real MLflow server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { auditPValue, epsilonLowerBound, maxAuditEpsilon } from '../src/audit/bound.ts';
import { buildAuditData, canaryAwareLoss, drawInclusion, withCanaryBlock } from '../src/audit/canaries.ts';
import { INSECURE_ACKNOWLEDGEMENT, countCorrect, guessCounts, runAudit, type AuditOptions } from '../src/audit/run.ts';
import { computeClippedGradients } from '../src/dp/per-example/index.ts';
import { createInsecureSeededRandom } from '../src/dp/csprng.ts';
import { InvalidArgumentError } from '../src/errors.ts';
import { main } from '../src/cli/main.ts';
import { reportAudit } from '../src/cli/commands/audit.ts';
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { validateConfig, ConfigError } from '../plugin/config.ts';
import { gaussianEpsilon } from '../src/accounting/analytic-gaussian.ts';
import { sharedMlflowServer } from './support/mlflow-server.ts';

interface Reference {
  pValue: Array<{ m: number; r: number; v: number; eps: number; delta: number; p: number }>;
  epsilon: Array<{ m: number; r: number; v: number; delta: number; p: number; eps: number }>;
}
const reference = JSON.parse(readFileSync(new URL('./fixtures/one-run-audit/reference.json', import.meta.url), 'utf8')) as Reference;

/** Exact p-value at q = a/b as a float: β + 2mδα computed with BigInt rationals (δ = dNum/dDen). */
function exactPValue(m: number, r: number, v: number, a: bigint, b: bigint, dNum: bigint, dDen: bigint): number {
  const binom: bigint[] = [1n];
  for (let k = 1; k <= r; k++) binom.push((binom[k - 1] * BigInt(r - k + 1)) / BigInt(k));
  const denom = b ** BigInt(r);
  const pmf = (k: number): bigint => binom[k] * a ** BigInt(k) * (b - a) ** BigInt(r - k); // / denom
  let beta = 0n;
  for (let k = v; k <= r; k++) beta += pmf(k);
  // α = max_i cum_i / i, compared as fractions cum_i / i.
  let cum = 0n;
  let bestNum = 0n;
  let bestDen = 1n;
  for (let i = 1; i <= v; i++) {
    cum += pmf(v - i);
    if (cum * bestDen > bestNum * BigInt(i)) { bestNum = cum; bestDen = BigInt(i); }
  }
  // p = beta/denom + 2m·(dNum/dDen)·bestNum/(bestDen·denom), as one fraction; to float via a 2^-80 scaled quotient.
  const num = beta * bestDen * dDen + 2n * BigInt(m) * dNum * bestNum;
  const den = denom * bestDen * dDen;
  const scaled = (num << 80n) / den;
  return Math.min(1, Number(scaled) / 2 ** 80);
}

function smallModel(): tf.LayersModel {
  const model = tf.sequential();
  model.add(tf.layers.dense({ inputShape: [4], units: 8, activation: 'relu' }));
  model.add(tf.layers.dense({ units: 2, activation: 'softmax' }));
  return model;
}

describe('one-run privacy audit', function () {
  this.timeout(300_000);
  let x: tf.Tensor2D;
  let y: tf.Tensor1D;
  before(async () => {
    await tf.setBackend('cpu');
    const n = 200;
    const rows = Array.from({ length: n }, (_, i) => [Math.sin(i), Math.cos(3 * i), (i % 7) / 7, (i % 3) - 1]);
    x = tf.tensor2d(rows);
    y = tf.tensor1d(Array.from({ length: n }, (_, i) => (Math.sin(i) > 0 ? 1 : 0)), 'int32');
  });
  after(() => {
    tf.dispose([x, y]);
  });

  describe('tail bound (Steinke et al. 2023, Theorem 5.2 / get_eps_audit)', () => {
    it('p-values equal the paper\'s algorithm in scipy (reference.py)', () => {
      for (const c of reference.pValue) {
        const p = auditPValue({ canaries: c.m, guesses: c.r, correct: c.v }, c.eps, c.delta).pValue;
        assert.ok(Math.abs(p - c.p) <= 1e-10 * c.p, `m=${c.m} r=${c.r} v=${c.v} ε=${c.eps} δ=${c.delta}: ${p} vs scipy ${c.p}`);
      }
    });

    it('ε lower bounds equal the paper\'s get_eps_audit in scipy (reference.py)', () => {
      for (const c of reference.epsilon) {
        const e = epsilonLowerBound({ canaries: c.m, guesses: c.r, correct: c.v }, { delta: c.delta, confidence: 1 - c.p }).epsilon;
        assert.ok(Math.abs(e - c.eps) <= 1e-8, `m=${c.m} r=${c.r} v=${c.v} δ=${c.delta} p=${c.p}: ${e} vs scipy ${c.eps}`);
      }
    });

    it('p-values equal exact rational arithmetic at ε = ln 3 (q = 3/4), far into the tails', () => {
      const cases: Array<[number, number, number, bigint, bigint]> = [
        // m, r, v, δ = dNum / dDen
        [1000, 100, 90, 1n, 100000n],
        [1000, 200, 190, 1n, 100000n],
        [2000, 400, 300, 1n, 1000000n],
        [5000, 1000, 1000, 1n, 100000n],
        [100, 50, 20, 1n, 1000n],
        [100, 20, 20, 0n, 1n],
      ];
      for (const [m, r, v, dNum, dDen] of cases) {
        const exact = exactPValue(m, r, v, 3n, 4n, dNum, dDen);
        const got = auditPValue({ canaries: m, guesses: r, correct: v }, Math.log(3), Number(dNum) / Number(dDen)).pValue;
        assert.ok(Math.abs(got - exact) <= 1e-11 * exact, `m=${m} r=${r} v=${v}: ${got} vs exact ${exact}`);
      }
    });

    it('all r guesses correct at δ = 0: ε = logit(p^(1/r)) (closed form)', () => {
      for (const r of [10, 100, 1000, 5000]) {
        const x0 = 0.05 ** (1 / r);
        const closed = Math.log(x0 / (1 - x0));
        const e = maxAuditEpsilon(r, r, { delta: 0 });
        assert.ok(Math.abs(e - closed) <= 1e-9, `r=${r}: ${e} vs ${closed}`);
      }
    });

    it('the p-value grows with ε and the bound is 0 when nothing can be rejected', () => {
      const counts = { canaries: 1000, guesses: 100, correct: 70 };
      let last = 0;
      for (let eps = 0; eps <= 3; eps += 0.25) {
        const p = auditPValue(counts, eps, 1e-5).pValue;
        assert.ok(p >= last, `p(${eps}) = ${p} < ${last}`);
        last = p;
      }
      assert.equal(epsilonLowerBound({ canaries: 1000, guesses: 100, correct: 50 }, { delta: 1e-5 }).epsilon, 0);
      assert.equal(epsilonLowerBound({ canaries: 1000, guesses: 0, correct: 0 }, { delta: 1e-5 }).epsilon, 0);
    });

    it('is valid for ε₀-DP randomised response: ε_audit > ε₀ in at most ~5% of 400 runs (seeded stream)', () => {
      // Each of r = m guesses is right with probability e^ε₀/(1 + e^ε₀): the worst case the theorem allows at δ = 0.
      const random = createInsecureSeededRandom('audit-validity', { insecure: true });
      const eps0 = 1;
      const q0 = 1 / (1 + Math.exp(-eps0));
      const m = 500;
      let exceed = 0;
      let sum = 0;
      for (let t = 0; t < 400; t++) {
        let v = 0;
        for (let i = 0; i < m; i++) if (random.uniform() < q0) v++;
        const e = epsilonLowerBound({ canaries: m, guesses: m, correct: v }, { delta: 0 }).epsilon;
        if (e > eps0) exceed++;
        sum += e;
      }
      // E[exceed] ≤ 20 (5%); 33 is 3 standard deviations above it. The bound is not vacuous either: mean well above 0.
      assert.ok(exceed <= 33, `${exceed} of 400 runs exceeded ε₀ = ${eps0}`);
      assert.ok(sum / 400 > 0.6 && sum / 400 < eps0, `mean ε_audit ${sum / 400}`);
    });

    it('refuses bad counts, δ and confidence by name', () => {
      const bad: Array<[() => unknown, string]> = [
        [() => auditPValue({ canaries: 10, guesses: 5, correct: 6 }, 1, 0), 'correct'],
        [() => auditPValue({ canaries: 10, guesses: 11, correct: 1 }, 1, 0), 'guesses'],
        [() => auditPValue({ canaries: 0, guesses: 0, correct: 0 }, 1, 0), 'canaries'],
        [() => auditPValue({ canaries: 10, guesses: 5, correct: 1.5 }, 1, 0), 'correct'],
        [() => auditPValue({ canaries: 10, guesses: 5, correct: 1 }, -1, 0), 'epsilon'],
        [() => auditPValue({ canaries: 10, guesses: 5, correct: 1 }, 1, 2), 'delta'],
        [() => epsilonLowerBound({ canaries: 10, guesses: 5, correct: 1 }, { delta: 1e-5, confidence: 1 }), 'confidence'],
        [() => epsilonLowerBound({ canaries: 10, guesses: 5, correct: 1 }, { delta: Number.NaN }), 'delta'],
      ];
      for (const [f, argument] of bad) {
        assert.throws(f, (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument, argument);
      }
    });
  });

  describe('canaries', () => {
    it('inclusion bits come from the given node:crypto stream, one per canary, about half set', () => {
      const a = drawInclusion(4000, createInsecureSeededRandom('audit', { insecure: true }));
      const b = drawInclusion(4000, createInsecureSeededRandom('audit', { insecure: true }));
      assert.deepEqual(a, b);
      const ones = a.reduce((s, v) => s + v, 0);
      assert.ok(a.every((v) => v === 0 || v === 1));
      assert.ok(Math.abs(ones - 2000) < 200, `${ones} of 4000`); // 6.3 standard deviations
      assert.throws(() => drawInclusion(0), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'canaries');
    });

    it('a canary\'s clipped gradient is C·(−e_{j+1}) in the block and 0 elsewhere; a real row has 0 in the block', () => {
      const before = tf.memory().numTensors;
      const model = smallModel();
      const canaries = 6;
      const included = Uint8Array.from([0, 1, 0, 1, 1, 0]);
      const wrapped = withCanaryBlock(model, canaries);
      const data = buildAuditData({ x, y }, included, 1);
      const loss = canaryAwareLoss('sparseCategoricalCrossentropy', data.layout, wrapped.outputWidth, 10 * 0.5);
      const gather = (rows: number[]) => {
        const idx = tf.tensor1d(rows, 'int32');
        const out = { x: data.x.map((t) => tf.gather(t, idx)), y: tf.gather(data.y, idx) };
        idx.dispose();
        return out;
      };
      try {
        // Row 200 + i is the i-th included canary: canaries 1, 3, 4.
        assert.deepEqual([...data.canaryRows], [1, 3, 4]);
        for (const [offset, j] of [[0, 1], [1, 3], [2, 4]]) {
          const batch = gather([200 + offset]);
          const result = computeClippedGradients(wrapped.model, batch.x, batch.y, { l2NormClip: 0.5, loss });
          const block = result.clippedSum.get(wrapped.blockVariable)?.dataSync() as Float32Array;
          const expected = new Float32Array(canaries + 1);
          expected[j + 1] = -0.5;
          assert.ok(block.every((v, i) => Math.abs(v - expected[i]) <= 1e-6), `canary ${j}: ${[...block].join(', ')}`);
          assert.ok(Math.abs(result.perExampleNorms[0] - 5) < 1e-6, `unclipped norm ${result.perExampleNorms[0]}`);
          for (const [name, t] of result.clippedSum) {
            if (name !== wrapped.blockVariable) assert.ok(t.dataSync().every((v) => v === 0), `${name} is not zero for a canary row`);
          }
          tf.dispose([...result.clippedSum.values(), ...batch.x, batch.y]);
        }
        const real = gather([0, 1, 2, 3]);
        const result = computeClippedGradients(wrapped.model, real.x, real.y, { l2NormClip: 0.5, loss });
        assert.ok((result.clippedSum.get(wrapped.blockVariable)?.dataSync() as Float32Array).every((v) => v === 0));
        assert.ok(result.lossSum > 0);
        tf.dispose([...result.clippedSum.values(), ...real.x, real.y]);
      } finally {
        data.dispose();
        wrapped.dispose();
        model.dispose();
      }
      assert.equal(tf.memory().numTensors, before);
    });

    it('guesses: top k "in", bottom k "out"; the default k set is fixed in advance', () => {
      const scores = Float64Array.from([5, 4, 3, 2, 1, 0]);
      assert.equal(countCorrect(scores, Uint8Array.from([1, 1, 0, 1, 0, 0]), 2), 4);
      assert.equal(countCorrect(scores, Uint8Array.from([0, 1, 0, 1, 0, 1]), 2), 2);
      assert.equal(countCorrect(scores, Uint8Array.from([0, 0, 1, 1, 1, 1]), 2), 0);
      assert.deepEqual(guessCounts(2000), [20, 50, 100, 200, 500, 1000]);
      assert.deepEqual(guessCounts(2000, 30), [30]);
      assert.throws(() => guessCounts(10, 6), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'guessesPerSide');
    });
  });

  describe('audits through the real DP step', () => {
    const base = (): AuditOptions => ({ canaries: 2000, steps: 1, sampleRate: 1, l2NormClip: 1, noiseMultiplier: 2, delta: 1e-5, optimizer: 'sgd', learningRate: 0.1 });

    it('(a) σ = 2, one step, 2000 canaries: ε_audit ≤ certified ε', async () => {
      const before = tf.memory().numTensors;
      const model = smallModel();
      const r = await runAudit(model, { x, y }, base());
      model.dispose();
      assert.equal(tf.memory().numTensors, before, 'tensors leaked by runAudit');
      // The certified ε of one Gaussian step (q = 1) is the analytic Gaussian mechanism's (μ = 1/σ).
      assert.ok(Math.abs(r.epsilonCertified - gaussianEpsilon(1e-5, 0.5)) < 1e-3, `certified ${r.epsilonCertified}`);
      assert.equal(r.kind, 'lower');
      assert.equal(r.confidence, 0.95);
      assert.deepEqual(r.insecureTestHooks, []);
      if (r.epsilonAudit > r.epsilonCertified) {
        assert.fail(`PRIVACY BUG: ε_audit ${r.epsilonAudit} (lower, 95%) exceeds the certified ε ${r.epsilonCertified}: `
          + `${r.correctGuesses}/${r.guesses} correct guesses with σ = 2 — the DP step leaks more than accounted`);
      }
      assert.equal(r.privacyBug, false);
      // The canaries were seen: the mean score gap is C per sampled step (≈ 1; sd 0.09 over ~1000 canaries each).
      assert.ok(Math.abs(r.meanScoreIncluded - r.meanScoreExcluded - 1) < 0.45, `${r.meanScoreIncluded} vs ${r.meanScoreExcluded}`);
      assert.ok(r.epsilonAudit > 0, 'the audit found no signal at all');
      assert.ok(r.canariesIncluded > 800 && r.canariesIncluded < 1200);
    });

    it('(b) noise switched off by the insecure hook: ε_audit clearly above the certified ε claimed', async () => {
      const model = smallModel();
      const r = await runAudit(model, { x, y }, {
        ...base(), insecureTestHooks: { acknowledge: INSECURE_ACKNOWLEDGEMENT, disableNoise: true },
      });
      model.dispose();
      assert.deepEqual(r.insecureTestHooks, ['noise-off']);
      assert.equal(r.noise.secure, false);
      assert.equal(r.privacyBug, true);
      assert.ok(r.epsilonAudit > 2 * r.epsilonCertified, `ε_audit ${r.epsilonAudit} vs certified ${r.epsilonCertified}`);
    });

    it('(c) clipping disabled by the insecure hook: detected', async () => {
      const model = smallModel();
      const r = await runAudit(model, { x, y }, {
        ...base(), insecureTestHooks: { acknowledge: INSECURE_ACKNOWLEDGEMENT, disableClipping: true },
      });
      model.dispose();
      assert.deepEqual(r.insecureTestHooks, ['clipping-off']);
      assert.equal(r.privacyBug, true, `ε_audit ${r.epsilonAudit} vs certified ${r.epsilonCertified}`);
      // Unclipped canaries push 10·C per step: the score gap is ≈ 10.
      assert.ok(r.meanScoreIncluded - r.meanScoreExcluded > 8);
    });

    it('the insecure hooks need their acknowledgement and cannot come from a configuration', async () => {
      const model = smallModel();
      try {
        await assert.rejects(runAudit(model, { x, y }, { ...base(), insecureTestHooks: { acknowledge: 'yes', disableNoise: true } }),
          (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'insecureTestHooks.acknowledge');
        await assert.rejects(runAudit(model, { x, y }, { ...base(), canaries: 1 }),
          (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'canaries');
      } finally {
        model.dispose();
      }
      const config = {
        experimentName: 'x', data: { kind: 'spam-assassin' }, model: { kind: 'transformer-classifier', embedding: 'random' },
        training: { steps: 1, expectedBatchSize: 8, l2NormClip: 1, optimizer: 'sgd', learningRate: 0.1 },
        privacy: { noiseMultiplier: 1, delta: 1e-5, insecureTestHooks: { acknowledge: INSECURE_ACKNOWLEDGEMENT, disableNoise: true } },
      };
      const { insecureTestHooks: _h, ...privacy } = config.privacy;
      validateConfig({ ...config, privacy }); // valid without the hooks
      const refused = (value: unknown, word: string) => assert.throws(() => validateConfig(value),
        (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.includes(word)), word);
      refused(config, 'insecureTestHooks');
      refused({ ...config, privacy, audit: { disableNoise: true } }, 'audit');
    });
  });

  describe('ewtune audit', () => {
    const dirs: string[] = [];
    after(async () => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      await tf.setBackend('cpu');
    });

    it('--json against a real MLflow server: one JSON object, ε_audit ≤ certified, metrics and tags labelled lower', async () => {
      const uri = await sharedMlflowServer();
      const dir = mkdtempSync(join(tmpdir(), 'ewtune-audit-'));
      dirs.push(dir);
      const path = join(dir, 'config.json');
      writeFileSync(path, JSON.stringify({
        name: 'audit-cli', experimentName: 'ewtune-tests',
        data: { kind: 'spam-assassin', maxTokens: 8, vocabularySize: 20000, maxExamples: 300 },
        model: { kind: 'transformer-classifier', embedding: 'wink-glove-100d', dModel: 8, heads: 2, ffnDim: 16, layers: 1 },
        training: { steps: 1, expectedBatchSize: 300, l2NormClip: 1, optimizer: 'adam', learningRate: 0.01, backend: 'cpu' },
        privacy: { noiseMultiplier: 2, delta: 1e-5 },
        tracking: { runDir: join(dir, 'runs') },
      }));
      const out: string[] = [];
      const err: string[] = [];
      const code = await main(['audit', path, '--canaries', '1000', '--json', '--tracking-uri', uri], { out: (t) => out.push(t), err: (t) => err.push(t) });
      assert.equal(out.length, 1, 'exactly one JSON object on stdout');
      const r = JSON.parse(out[0]) as Record<string, unknown>;
      for (const key of ['epsilonAudit', 'kind', 'confidence', 'epsilonCertified', 'delta', 'canaries', 'correctGuesses', 'guesses']) {
        assert.ok(key in r, `missing ${key}`);
      }
      assert.equal(r.kind, 'lower');
      assert.equal(r.confidence, 0.95);
      assert.equal(r.canaries, 1000);
      assert.equal(r.delta, 1e-5);
      assert.ok((r.epsilonAudit as number) <= (r.epsilonCertified as number), `PRIVACY BUG through the CLI: ${out[0]}`);
      assert.equal(code, 0, err.join('\n'));
      const client = MlflowClient.fromEnv(uri, {});
      try {
        const run = await client.getRun(r.runId as string);
        const tags = Object.fromEntries(run.tags.map((t) => [t.key, t.value]));
        assert.equal(tags['ewtune.audit.kind'], 'lower');
        assert.equal(tags['ewtune.audit.confidence'], '0.95');
        assert.equal(tags['ewtune.run_kind'], 'audit');
        assert.equal(JSON.parse(tags['ewtune.metric_kinds'])['privacy/epsilon_audit'], 'lower');
        const history = await client.getMetricHistory(r.runId as string, 'privacy/epsilon_audit');
        assert.equal(history.length, 1);
        assert.equal(history[0].value, r.epsilonAudit);
        assert.equal(history[0].step, 1);
        const certified = await client.getMetricHistory(r.runId as string, 'privacy/epsilon_certified');
        assert.equal(certified[0].value, r.epsilonCertified);
        assert.equal(run.info.status, 'FINISHED');
      } finally {
        client.close();
      }
    });

    it('a lower bound above the certified ε: exit 3 and "privacy bug" (also with --json)', () => {
      const result = { epsilonAudit: 5.2, epsilonCertified: 1.99, privacyBug: true } as Parameters<typeof reportAudit>[0];
      for (const json of [false, true]) {
        const out: string[] = [];
        const err: string[] = [];
        const code = reportAudit({ ...result, kind: 'lower', confidence: 0.95, delta: 1e-5, canaries: 2000, canariesIncluded: 1000, correctGuesses: 1000, guesses: 1000, guessesPerSide: 500, steps: 1, sampleRate: 1, noiseMultiplier: 2, runDir: '/tmp/x' } as Parameters<typeof reportAudit>[0],
          json, { out: (t) => out.push(t), err: (t) => err.push(t) });
        assert.equal(code, 3);
        assert.match(err.join('\n'), /privacy bug/);
        if (json) assert.equal((JSON.parse(out[0]) as { epsilonAudit: number }).epsilonAudit, 5.2);
        else assert.match(out.join('\n'), /privacy bug/);
      }
    });

    it('refuses bad flags with exit 2 before any work', async () => {
      const err: string[] = [];
      const io = { out: () => undefined, err: (t: string) => err.push(t) };
      assert.equal(await main(['audit', '/nonexistent.json', '--canaries', '1'], io), 2);
      assert.equal(await main(['audit', '/nonexistent.json', '--max-steps', '0'], io), 2);
      assert.equal(await main(['audit', '/nonexistent.json'], io), 2);
      assert.match(err.join('\n'), /--canaries/);
    });
  });
});
