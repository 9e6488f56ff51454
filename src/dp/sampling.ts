/**
 * Batch samplers for the DP step, from the CSPRNG (`node:crypto`) only.
 *
 * - {@link poissonSample}: each example is in the batch independently with probability q (the sampler the
 *   accountants assume: add/remove adjacency). Empty batches happen and are valid steps.
 * - {@link shuffledBatches}: fixed-size batches of a random permutation; labelled `'shuffle'`, NOT Poisson — ε
 *   computed as if it were Poisson is not a valid guarantee for it (Chua et al., 2024). A one-time warning says so.
 * - {@link splitVirtualBatch}: physical micro-batches of one logical batch (one privacy step per logical batch).
 */
import { InvalidArgumentError } from '../errors.ts';
import { createSecureRandom } from './csprng.ts';
import type { RandomSource } from './csprng.ts';

/** The sampler actually used, recorded in the ledger. */
export type SamplerName = 'poisson' | 'shuffle';

let defaultRandom: RandomSource | undefined;
function secureDefault(): RandomSource {
  defaultRandom ??= createSecureRandom();
  return defaultRandom;
}

function assertDatasetSize(datasetSize: unknown): asserts datasetSize is number {
  if (typeof datasetSize !== 'number' || !Number.isSafeInteger(datasetSize) || datasetSize < 1 || datasetSize > 0x7fffffff) {
    throw new InvalidArgumentError('datasetSize', datasetSize, 'an integer in [1, 2^31 − 1]');
  }
}

function assertRandom(rng: unknown): asserts rng is RandomSource {
  if (rng === null || typeof rng !== 'object' || typeof (rng as RandomSource).uniform !== 'function') {
    throw new InvalidArgumentError('rng', rng, 'a RandomSource (see src/dp/csprng.ts)');
  }
}

/** Below this rate the sampler skips geometrically; above it, one uniform per example is as cheap. */
const GEOMETRIC_SKIP_BELOW = 0.1;

/**
 * Poisson sampling: the sorted indices of the examples drawn, each independently with probability `sampleRate`.
 * For q < 0.1 the gaps are drawn as geometric variables ⌊ln U / ln(1 − q)⌋ with U uniform in (0, 1] (expected
 * work O(N·q)); otherwise one 53-bit uniform per example (U < q). May return an empty array.
 */
export function poissonSample(datasetSize: number, sampleRate: number, rng: RandomSource = secureDefault()): Int32Array {
  assertDatasetSize(datasetSize);
  if (typeof sampleRate !== 'number' || !Number.isFinite(sampleRate) || !(sampleRate > 0 && sampleRate <= 1)) {
    throw new InvalidArgumentError('sampleRate', sampleRate, 'in (0, 1]');
  }
  assertRandom(rng);
  if (sampleRate === 1) return Int32Array.from({ length: datasetSize }, (_, i) => i);
  const picked: number[] = [];
  if (sampleRate < GEOMETRIC_SKIP_BELOW) {
    const logKeep = Math.log1p(-sampleRate); // ln(1 − q) < 0
    let index = -1;
    for (;;) {
      // P(gap ≥ k) = (1 − q)^k: the number of examples skipped before the next one drawn.
      const gap = Math.floor(Math.log(rng.uniformPositive()) / logKeep);
      index += gap + 1;
      if (!(index < datasetSize)) break;
      picked.push(index);
    }
  } else {
    for (let i = 0; i < datasetSize; i++) if (rng.uniform() < sampleRate) picked.push(i);
  }
  return Int32Array.from(picked);
}

/** Fixed-size batches of a random permutation, labelled as what they are. */
export interface ShuffledBatches {
  readonly sampler: 'shuffle';
  /** Batches of `batchSize` indices (the last one shorter unless `dropRemainder`). */
  readonly batches: Int32Array[];
  /** Warning text: ε computed for Poisson sampling is not valid for this sampler. */
  readonly warning: string;
}

/** The warning attached to shuffled batches. */
export const SHUFFLE_WARNING = 'shuffled fixed-size batches are not Poisson sampling: an epsilon computed by a '
  + 'Poisson-subsampled accountant is not a valid guarantee for them (it can be several times too small; '
  + 'Chua et al. 2024). The ledger records sampler "shuffle".';

let shuffleWarned = false;

/** Whether the one-time shuffle warning has been emitted in this process. */
export function shuffleWarningIssued(): boolean {
  return shuffleWarned;
}

/**
 * Shuffled fixed-size batches (Fisher–Yates with exact uniform integers from the CSPRNG). Emits a process
 * warning (code EWTUNE_SHUFFLE_NOT_POISSON) the first time it is called.
 */
export function shuffledBatches(datasetSize: number, batchSize: number,
  options: { dropRemainder?: boolean; rng?: RandomSource } = {}): ShuffledBatches {
  assertDatasetSize(datasetSize);
  if (typeof batchSize !== 'number' || !Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > datasetSize) {
    throw new InvalidArgumentError('batchSize', batchSize, `an integer in [1, datasetSize = ${datasetSize}]`);
  }
  const rng = options.rng ?? secureDefault();
  assertRandom(rng);
  if (!shuffleWarned) {
    shuffleWarned = true;
    process.emitWarning(SHUFFLE_WARNING, { code: 'EWTUNE_SHUFFLE_NOT_POISSON' });
  }
  const order = Int32Array.from({ length: datasetSize }, (_, i) => i);
  for (let i = datasetSize - 1; i > 0; i--) {
    const j = rng.uniformInt(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const batches: Int32Array[] = [];
  for (let start = 0; start < datasetSize; start += batchSize) {
    const end = Math.min(start + batchSize, datasetSize);
    if (end - start < batchSize && options.dropRemainder === true) break;
    batches.push(order.slice(start, end));
  }
  return { sampler: 'shuffle', batches, warning: SHUFFLE_WARNING };
}

/**
 * Split one logical batch into physical micro-batches of at most `maxPhysicalBatchSize` indices (views, in order).
 * An empty logical batch gives no micro-batch — the privacy step (noise only) is still taken by the caller.
 * The sampling rate of the step is the logical batch's, never a micro-batch's.
 */
export function splitVirtualBatch(indices: Int32Array, maxPhysicalBatchSize: number): Int32Array[] {
  if (!(indices instanceof Int32Array)) throw new InvalidArgumentError('indices', indices, 'an Int32Array');
  if (typeof maxPhysicalBatchSize !== 'number' || !Number.isSafeInteger(maxPhysicalBatchSize) || maxPhysicalBatchSize < 1) {
    throw new InvalidArgumentError('maxPhysicalBatchSize', maxPhysicalBatchSize, 'a positive integer');
  }
  const parts: Int32Array[] = [];
  for (let start = 0; start < indices.length; start += maxPhysicalBatchSize) {
    parts.push(indices.subarray(start, Math.min(start + maxPhysicalBatchSize, indices.length)));
  }
  return parts;
}
