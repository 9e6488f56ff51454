/**
 * Uniform random numbers for the privacy path, from `node:crypto` only.
 *
 * Two byte sources feed the same {@link RandomStream}:
 * - {@link createSecureRandom}: `crypto.randomFillSync` (the OS CSPRNG) into a reusable buffer — the default;
 * - {@link createInsecureSeededRandom}: an AES-256-CTR keystream keyed by SHA-256 of a seed — deterministic,
 *   for tests only, refused unless the caller passes `{ insecure: true }`.
 *
 * No non-cryptographic generator (the JavaScript engine's PRNG, TF.js random ops) is used here or by its callers.
 */
import { createCipheriv, createHash, randomFillSync } from 'node:crypto';
import { InvalidArgumentError } from '../errors.ts';

/** A source of uniform random numbers (53-bit uniforms, exact uniform integers). */
export interface RandomSource {
  /** True for the OS CSPRNG; false for the seeded test stream. */
  readonly secure: boolean;
  /** A uniform float64 in [0, 1): a uniformly random multiple of 2⁻⁵³. */
  uniform(): number;
  /** A uniform float64 in (0, 1]: a uniformly random multiple of 2⁻⁵³, never 0 (safe for log). */
  uniformPositive(): number;
  /** A uniform 32-bit unsigned integer. */
  uint32(): number;
  /** A uniform integer in [0, n) for a safe integer 1 ≤ n ≤ 2⁵³, exact (rejection sampling, no modulo bias). */
  uniformInt(n: number): number;
}

const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;
const INV_TWO_POW_53 = 1 / TWO_POW_53;

/** Words drawn from the byte source per refill (1 MiB: one randomFillSync call per ~100k Gaussians). */
const BUFFER_WORDS = 262144;

/**
 * A buffered stream of uint32 words from a byte-filling function; all derived draws are exact.
 */
export class RandomStream implements RandomSource {
  readonly secure: boolean;
  private readonly fill: (target: Uint8Array) => void;
  private readonly bytes: Uint8Array;
  /** The word buffer; read directly only by tight loops (fillGaussian) that keep {@link position} in step. */
  readonly words: Uint32Array;
  /** Index of the next unread word in {@link words} (BUFFER_WORDS: exhausted, call {@link refill}). */
  position: number;

  constructor(fill: (target: Uint8Array) => void, secure: boolean) {
    this.fill = fill;
    this.secure = secure;
    this.words = new Uint32Array(BUFFER_WORDS);
    this.bytes = new Uint8Array(this.words.buffer);
    this.position = BUFFER_WORDS;
  }

  /** Reloads the whole word buffer from the byte source and rewinds {@link position} to 0. */
  refill(): void {
    this.fill(this.bytes);
    this.position = 0;
  }

  uint32(): number {
    if (this.position >= BUFFER_WORDS) this.refill();
    return this.words[this.position++];
  }

  /** A uniform integer in [0, 2⁵³). */
  uint53(): number {
    const hi = this.uint32() >>> 5; // 27 bits
    const lo = this.uint32() >>> 6; // 26 bits
    return hi * TWO_POW_26 + lo;
  }

  uniform(): number {
    return this.uint53() * INV_TWO_POW_53;
  }

  uniformPositive(): number {
    return (this.uint53() + 1) * INV_TWO_POW_53;
  }

  uniformInt(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1 || n > TWO_POW_53) {
      throw new InvalidArgumentError('n', n, 'a safe integer in [1, 2^53]');
    }
    if (n <= 0x100000000) {
      // 32-bit rejection: accept r < floor(2^32 / n) * n.
      const limit = Math.floor(0x100000000 / n) * n;
      for (;;) {
        const r = this.uint32();
        if (r < limit) return r % n;
      }
    }
    const limit = Math.floor(TWO_POW_53 / n) * n;
    for (;;) {
      const r = this.uint53();
      if (r < limit) return r % n;
    }
  }
}

/** The default source: the OS CSPRNG through `crypto.randomFillSync`. */
export function createSecureRandom(): RandomStream {
  return new RandomStream((target) => {
    randomFillSync(target);
  }, true);
}

/** Option object that must be passed to obtain a deterministic (insecure) stream. */
export interface InsecureOptions {
  /** Must be `true`: acknowledges that the stream is reproducible and gives no privacy. */
  readonly insecure: true;
}

/** A seed: a string, a safe integer, or bytes. */
export type Seed = string | number | Uint8Array;

function seedBytes(seed: Seed): Uint8Array {
  if (typeof seed === 'string') return new TextEncoder().encode(seed);
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError('seed', seed, 'a safe integer, a string or bytes');
    return new TextEncoder().encode(`int:${seed}`);
  }
  if (seed instanceof Uint8Array) return seed;
  throw new InvalidArgumentError('seed', seed, 'a safe integer, a string or bytes');
}

/**
 * A deterministic stream for tests: the AES-256-CTR keystream (zero IV) under key SHA-256("ewtune-seed\0" ‖ seed).
 * Throws InvalidArgumentError unless `options.insecure === true`.
 */
export function createInsecureSeededRandom(seed: Seed, options: InsecureOptions): RandomStream {
  if (options === null || typeof options !== 'object' || options.insecure !== true) {
    throw new InvalidArgumentError('options.insecure', (options as { insecure?: unknown } | undefined)?.insecure,
      'true (a seeded stream is reproducible and gives no privacy; use it only in tests)');
  }
  const key = createHash('sha256').update('ewtune-seed\0').update(seedBytes(seed)).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16, 0));
  const zeros = new Uint8Array(BUFFER_WORDS * 4);
  return new RandomStream((target) => {
    // Encrypting zeros yields the raw keystream; `update` on CTR returns exactly as many bytes as given.
    const out = cipher.update(zeros.subarray(0, target.length));
    target.set(out);
  }, false);
}
