/**
 * runAudit: a one-run privacy audit of the DP step (Steinke, Nasr, Jagielski 2023, "Privacy Auditing with One (1)
 * Training Run"). One real training run with M gradient canaries (see canaries.ts), each included with probability
 * 1/2; Poisson sampling of real data AND included canaries at the run's rate q; every step is the library's dpStep
 * (per-example clipping, node:crypto noise, division by the expected batch size, the optimizer). The auditor sees
 * every privatised gradient (white-box: all iterates released — the threat model the accountant's composition
 * covers), scores each canary by the alignment of their sum with the canary's direction, guesses the top k "in" and
 * the bottom k "out", and turns the number of correct guesses into an ε lower bound at δ (bound.ts).
 *
 * Choosing k after looking at the scores would void the bound; instead a fixed, small set of k (or the caller's one
 * k) is tested with a Bonferroni correction: each at significance (1 − confidence)/|K|, the reported ε is the
 * largest, and the probability that any of them is wrong is still ≤ 1 − confidence.
 *
 * Insecure test hooks (noise off, clipping off) exist only here, behind `insecureTestHooks` with a spelled-out
 * acknowledgement; no configuration file or CLI flag reaches them.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.ts';
import { createNoiseSource, type NoiseDescription, type NoiseSource } from '../dp/noise.ts';
import { poissonSample } from '../dp/sampling.ts';
import type { BuiltinLossName, ClippingStrategy, PerExampleLossFn } from '../dp/per-example/index.ts';
import { pldEpsilon } from '../accounting/pld/index.ts';
import type { StepSegment } from '../accounting/types.ts';
import { accountedNoiseMultiplier, dpStep } from '../train/dp-step.ts';
import type { DpData } from '../train/types.ts';
import { assertDelta, assertNoiseMultiplier, assertSampleRate, assertSteps } from '../validate.ts';
import { epsilonLowerBound } from './bound.ts';
import { buildAuditData, canaryAwareLoss, drawInclusion, withCanaryBlock } from './canaries.ts';

/** Fractions of M tried as k (guesses per side) by default, under a Bonferroni correction. */
export const DEFAULT_GUESS_FRACTIONS: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5];
/** Default crafted canary gradient norm, in units of l2NormClip (> 1: clipping must bring it down to C). */
export const DEFAULT_CANARY_GRADIENT_SCALE = 10;
/** Default number of canaries. */
export const DEFAULT_CANARIES = 1000;
/** The exact text `insecureTestHooks.acknowledge` must carry. */
export const INSECURE_ACKNOWLEDGEMENT = 'this run is not differentially private';
/** Factor by which the clipping bound is raised when clipping is disabled by the test hook. */
const CLIPPING_OFF_FACTOR = 1e6;

/**
 * TEST-ONLY hooks that break the DP step on purpose, to show that the audit catches the bug. Reachable only from the
 * library API; the result lists them and the CLI has no way to set them.
 */
export interface InsecureAuditHooks {
  /** Must equal {@link INSECURE_ACKNOWLEDGEMENT}. */
  readonly acknowledge: string;
  /** No noise is added (the accountant still claims σ). */
  readonly disableNoise?: boolean;
  /** Examples are clipped at 10⁶·C instead of C (the noise and the accountant still use C). */
  readonly disableClipping?: boolean;
}

/** Options of {@link runAudit}. */
export interface AuditOptions {
  /** M, the number of canaries (default 1000). */
  readonly canaries?: number;
  /** Number of DP steps T. */
  readonly steps: number;
  /** Poisson rate q ∈ (0, 1] applied to every row (real and canary); the gradient is divided by q·(N + M/2). */
  readonly sampleRate: number;
  /** Per-example clipping bound C > 0. */
  readonly l2NormClip: number;
  /** σ > 0. */
  readonly noiseMultiplier: number;
  /** δ ∈ (0, 1) of the audit bound and of the certified ε. */
  readonly delta: number;
  /** An optimizer instance or a tf.train name (default 'sgd'). */
  readonly optimizer?: tf.Optimizer | 'sgd' | 'adam' | 'momentum' | 'rmsprop' | 'adagrad';
  /** Learning rate for a named optimizer (default 0.01 for sgd/momentum, 0.001 otherwise). */
  readonly learningRate?: number;
  /** The model's per-example loss on real rows (default 'sparseCategoricalCrossentropy'). */
  readonly loss?: BuiltinLossName | PerExampleLossFn;
  /** Per-example clipping strategy of the DP step (default 'auto', as dpFit). */
  readonly strategy?: ClippingStrategy;
  /** Largest physical micro-batch (as dpFit's). */
  readonly maxPhysicalBatchSize?: number;
  /** Secure noise mode (default 'gaussian'). */
  readonly noise?: 'gaussian' | 'hardened';
  /** Confidence of the lower bound (default 0.95). */
  readonly confidence?: number;
  /** k, guesses per side, fixed in advance (default: Bonferroni over k = round(f·M), M canaries, for f in 0.01, 0.025, 0.05, 0.1, 0.25, 0.5). */
  readonly guessesPerSide?: number;
  /** Crafted canary gradient norm / C (default 10). */
  readonly canaryGradientScale?: number;
  /** Certified ε of the (q, σ, T) history at δ (default: the PLD accountant, an upper bound). */
  readonly certifiedEpsilon?: (segments: readonly StepSegment[], delta: number) => number;
  /** Called after each step with the number of steps done. */
  readonly onStep?: (step: number, steps: number) => void;
  /** TEST ONLY: see {@link InsecureAuditHooks}. */
  readonly insecureTestHooks?: InsecureAuditHooks;
}

/** What one audit found. */
export interface AuditResult {
  /** ε lower bound at δ with the stated confidence (0 when nothing could be rejected). */
  readonly epsilonAudit: number;
  /** `epsilonAudit` is a lower bound (with probability ≥ confidence). */
  readonly kind: 'lower';
  /** Confidence of the lower bound, in (0, 1). */
  readonly confidence: number;
  /** Certified ε (upper bound) of the run as accounted. */
  readonly epsilonCertified: number;
  /** `epsilonCertified` is an upper bound. */
  readonly certifiedKind: 'upper';
  /** δ of both ε's. */
  readonly delta: number;
  /** M. */
  readonly canaries: number;
  /** Canaries included in the training set (≈ M/2). */
  readonly canariesIncluded: number;
  /** r = guesses made (2k). */
  readonly guesses: number;
  /** k of the reported bound. */
  readonly guessesPerSide: number;
  /** v = correct guesses among the r. */
  readonly correctGuesses: number;
  /** The k values tested (Bonferroni); each at significance (1 − confidence)/|K|. */
  readonly guessesPerSideTested: number[];
  /** epsilonAudit > epsilonCertified: the implementation leaks more than it claims. */
  readonly privacyBug: boolean;
  /** DP steps trained. */
  readonly steps: number;
  /** Poisson sample rate q. */
  readonly sampleRate: number;
  /** Noise multiplier σ used. */
  readonly noiseMultiplier: number;
  /** σ given to the accountant (effective one in hardened mode). */
  readonly accountedNoiseMultiplier: number;
  /** Clipping bound C. */
  readonly l2NormClip: number;
  /** The noise source used (mode, whether from a CSPRNG). */
  readonly noise: NoiseDescription;
  /** Names of the insecure hooks that were on (empty for a real audit). */
  readonly insecureTestHooks: string[];
  /** Real training rows. */
  readonly datasetSize: number;
  /** Mean canary score of included / excluded canaries (in units of C per step sampled; diagnostics). */
  readonly meanScoreIncluded: number;
  /** Mean canary score of excluded canaries (same units). */
  readonly meanScoreExcluded: number;
}

const OPTIMIZERS = ['sgd', 'adam', 'momentum', 'rmsprop', 'adagrad'] as const;

function makeOptimizer(o: AuditOptions['optimizer'], learningRate: number | undefined): { optimizer: tf.Optimizer; owned: boolean } {
  if (o !== null && typeof o === 'object' && o instanceof tf.Optimizer) return { optimizer: o, owned: false };
  const name = o ?? 'sgd';
  if (typeof name !== 'string' || !(OPTIMIZERS as readonly string[]).includes(name)) {
    throw new InvalidArgumentError('optimizer', o, `a tf.Optimizer or one of ${OPTIMIZERS.join(', ')}`);
  }
  const lr = learningRate ?? (name === 'sgd' || name === 'momentum' ? 0.01 : 0.001);
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0) throw new InvalidArgumentError('learningRate', lr, 'a finite number > 0');
  switch (name) {
    case 'sgd': return { optimizer: tf.train.sgd(lr), owned: true };
    case 'adam': return { optimizer: tf.train.adam(lr), owned: true };
    case 'momentum': return { optimizer: tf.train.momentum(lr, 0.9), owned: true };
    case 'rmsprop': return { optimizer: tf.train.rmsprop(lr), owned: true };
    default: return { optimizer: tf.train.adagrad(lr), owned: true };
  }
}

/**
 * The optimizer handed to dpStep: shows each privatised gradient of the canary block to the auditor, then applies
 * every gradient with the real optimizer unchanged. (An auditor reading released iterates learns the same.)
 */
class ObservingOptimizer extends tf.Optimizer {
  static className = 'EwtuneAuditObservingOptimizer';
  readonly #inner: tf.Optimizer;
  readonly #observe: (grads: tf.NamedTensorMap) => void;

  constructor(inner: tf.Optimizer, observe: (grads: tf.NamedTensorMap) => void) {
    super();
    this.#inner = inner;
    this.#observe = observe;
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | Array<{ name: string; tensor: tf.Tensor }>): void {
    const map: tf.NamedTensorMap = Array.isArray(variableGradients)
      ? Object.fromEntries(variableGradients.map((g) => [g.name, g.tensor])) : variableGradients;
    this.#observe(map);
    this.#inner.applyGradients(variableGradients);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return this.#inner.getConfig();
  }
}

/** A NoiseSource that adds nothing: the insecure noise-off hook. */
function noNoise(): NoiseSource {
  const describe = (): NoiseDescription => ({ mode: 'insecure-seeded', secure: false, generator: 'INSECURE audit test hook: no noise at all' });
  return {
    mode: 'insecure-seeded',
    secure: false,
    gaussian: (n: number) => new Float64Array(n),
    perturb: (values: ArrayLike<number>) => Float64Array.from(values as ArrayLike<number>),
    describe,
  };
}

function assertHooks(hooks: unknown): asserts hooks is InsecureAuditHooks | undefined {
  if (hooks === undefined) return;
  if (hooks === null || typeof hooks !== 'object' || (hooks as InsecureAuditHooks).acknowledge !== INSECURE_ACKNOWLEDGEMENT) {
    throw new InvalidArgumentError('insecureTestHooks.acknowledge', (hooks as { acknowledge?: unknown } | null)?.acknowledge,
      `exactly ${JSON.stringify(INSECURE_ACKNOWLEDGEMENT)} (these hooks break the DP step on purpose; tests only)`);
  }
}

/** k values to test: the caller's one, or the default fractions of M (each ≥ 1, ≤ ⌊M/2⌋, distinct). */
export function guessCounts(canaries: number, guessesPerSide?: number): number[] {
  const most = Math.floor(canaries / 2);
  if (most < 1) throw new InvalidArgumentError('canaries', canaries, 'at least 2 (one guess per side)');
  if (guessesPerSide !== undefined) {
    if (!Number.isSafeInteger(guessesPerSide) || guessesPerSide < 1 || guessesPerSide > most) {
      throw new InvalidArgumentError('guessesPerSide', guessesPerSide, `an integer in [1, ${most}] (⌊canaries / 2⌋)`);
    }
    return [guessesPerSide];
  }
  const ks = DEFAULT_GUESS_FRACTIONS.map((f) => Math.min(most, Math.max(1, Math.round(f * canaries))));
  return [...new Set(ks)];
}

/** Correct guesses when the k highest scores are guessed "in" and the k lowest "out" (ties by canary index). */
export function countCorrect(scores: Float64Array, included: Uint8Array, guessesPerSide: number): number {
  const order = Int32Array.from(scores.keys()).sort((a, b) => (scores[b] - scores[a]) || (a - b));
  let correct = 0;
  for (let i = 0; i < guessesPerSide; i++) if (included[order[i]] === 1) correct++;
  for (let i = 0; i < guessesPerSide; i++) if (included[order[order.length - 1 - i]] === 0) correct++;
  return correct;
}

/** The audit bound from scores: Bonferroni over `ks`, the largest ε wins. */
export function boundFromScores(scores: Float64Array, included: Uint8Array, ks: readonly number[], delta: number, confidence: number):
  { epsilon: number; guessesPerSide: number; correct: number } {
  const perTest = 1 - (1 - confidence) / ks.length;
  let best = { epsilon: 0, guessesPerSide: ks[0], correct: countCorrect(scores, included, ks[0]) };
  for (const k of ks) {
    const correct = countCorrect(scores, included, k);
    const { epsilon } = epsilonLowerBound({ canaries: scores.length, guesses: 2 * k, correct }, { delta, confidence: perTest });
    if (epsilon > best.epsilon) best = { epsilon, guessesPerSide: k, correct };
  }
  return best;
}

/**
 * Run a one-run audit: trains `model` (its weights ARE updated, as in a real run) on `data` plus the canaries for
 * `steps` DP steps and returns the audit ε lower bound beside the certified ε.
 * @throws InvalidArgumentError (before any work) for bad counts, rates, σ, C, δ, confidence, optimizer, k, hooks,
 *   a model without exactly one [B, K] output, or data that does not fit the model.
 */
export async function runAudit(model: tf.LayersModel, data: DpData, options: AuditOptions): Promise<AuditResult> {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options', options, 'an object');
  const canaries = options.canaries ?? DEFAULT_CANARIES;
  if (!Number.isSafeInteger(canaries) || canaries < 2) throw new InvalidArgumentError('canaries', canaries, 'an integer >= 2');
  assertSteps(options.steps, 'steps');
  assertSampleRate(options.sampleRate, 'sampleRate');
  assertNoiseMultiplier(options.noiseMultiplier, 'noiseMultiplier');
  const C = options.l2NormClip;
  if (typeof C !== 'number' || !Number.isFinite(C) || C <= 0) throw new InvalidArgumentError('l2NormClip', C, 'a finite number > 0');
  assertDelta(options.delta, 'delta');
  const confidence = options.confidence ?? 0.95;
  if (typeof confidence !== 'number' || !(confidence > 0 && confidence < 1)) throw new InvalidArgumentError('confidence', confidence, 'a number in (0, 1)');
  const scale = options.canaryGradientScale ?? DEFAULT_CANARY_GRADIENT_SCALE;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) throw new InvalidArgumentError('canaryGradientScale', scale, 'a finite number > 0');
  const noiseMode = options.noise ?? 'gaussian';
  if (noiseMode !== 'gaussian' && noiseMode !== 'hardened') throw new InvalidArgumentError('noise', noiseMode, "'gaussian' or 'hardened'");
  assertHooks(options.insecureTestHooks);
  const ks = guessCounts(canaries, options.guessesPerSide);
  const hooks = options.insecureTestHooks;
  const hookNames = [...(hooks?.disableNoise ? ['noise-off'] : []), ...(hooks?.disableClipping ? ['clipping-off'] : [])];
  const { optimizer: inner, owned } = makeOptimizer(options.optimizer, options.learningRate);

  const included = drawInclusion(canaries);
  const wrapped = withCanaryBlock(model, canaries);
  let auditData: ReturnType<typeof buildAuditData> | undefined;
  try {
    auditData = buildAuditData(data, included, model.inputs.length);
    const rows = auditData.y.shape[0];
    // q·(N + M/2): the expected number of rows, fixed before the inclusion bits are drawn. (q·rows would divide the
    // released gradient by a number that depends on how many canaries were included.)
    const expectedBatchSize = options.sampleRate * (auditData.realSize + canaries / 2);
    const noise = hooks?.disableNoise ? noNoise() : createNoiseSource(noiseMode);
    const loss = canaryAwareLoss(options.loss ?? 'sparseCategoricalCrossentropy', auditData.layout, wrapped.outputWidth, scale * C);
    // Clipping off: clip at 10⁶·C while the noise std stays σ·C (σ' = σ/10⁶ of the raised bound).
    const clipUsed = hooks?.disableClipping ? C * CLIPPING_OFF_FACTOR : C;
    const sigmaUsed = hooks?.disableClipping ? options.noiseMultiplier / CLIPPING_OFF_FACTOR : options.noiseMultiplier;
    const scores = new Float64Array(canaries);
    const block = wrapped.blockVariable;
    const observing = new ObservingOptimizer(inner, (grads) => {
      const g = grads[block];
      if (!g) throw new Error(`the privatised gradient has no entry for the canary block ${block}`);
      const values = g.dataSync();
      // Row j + 1 is canary j; the canary's own gradient direction is −e_{j+1}: score = −g̃ · (expected batch size / C).
      for (let j = 0; j < canaries; j++) scores[j] -= (values[j + 1] * expectedBatchSize) / C;
    });
    for (let t = 0; t < options.steps; t++) {
      const indices = poissonSample(rows, options.sampleRate);
      await dpStep(wrapped.model, auditData, indices, {
        l2NormClip: clipUsed, noiseMultiplier: sigmaUsed, expectedBatchSize, noise, optimizer: observing, loss,
        strategy: options.strategy, maxPhysicalBatchSize: options.maxPhysicalBatchSize,
      });
      options.onStep?.(t + 1, options.steps);
    }
    const dimension = wrapped.model.trainableWeights.reduce((s, w) => s + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
    const accounted = accountedNoiseMultiplier(noise, options.noiseMultiplier, C, dimension);
    const segments: StepSegment[] = [{ sampleRate: options.sampleRate, noiseMultiplier: accounted, count: options.steps }];
    const epsilonCertified = (options.certifiedEpsilon ?? ((s, d) => pldEpsilon(s, d).epsilon))(segments, options.delta);
    const best = boundFromScores(scores, included, ks, options.delta, confidence);
    let sumIn = 0;
    let sumOut = 0;
    let nIn = 0;
    for (let j = 0; j < canaries; j++) {
      if (included[j] === 1) { sumIn += scores[j]; nIn++; } else sumOut += scores[j];
    }
    return {
      epsilonAudit: best.epsilon, kind: 'lower', confidence, epsilonCertified, certifiedKind: 'upper', delta: options.delta,
      canaries, canariesIncluded: nIn, guesses: 2 * best.guessesPerSide, guessesPerSide: best.guessesPerSide,
      correctGuesses: best.correct, guessesPerSideTested: ks, privacyBug: best.epsilon > epsilonCertified,
      steps: options.steps, sampleRate: options.sampleRate, noiseMultiplier: options.noiseMultiplier,
      accountedNoiseMultiplier: accounted, l2NormClip: C, noise: noise.describe(), insecureTestHooks: hookNames,
      datasetSize: auditData.realSize,
      meanScoreIncluded: nIn > 0 ? sumIn / nIn : NaN, meanScoreExcluded: nIn < canaries ? sumOut / (canaries - nIn) : NaN,
    };
  } finally {
    auditData?.dispose();
    wrapped.dispose();
    if (owned) inner.dispose();
  }
}
