/**
 * The tokenizer of a model directory: `tokenizer.json` (+ `tokenizer_config.json`) through @huggingface/tokenizers,
 * which ignores the file's truncation/padding settings. ewtune adds the special tokens, truncates and pads itself,
 * as Hugging Face's fast tokenizers do with `truncation=True` (strategy longest_first) and `padding`:
 * single texts `[CLS] a [SEP]`, pairs `[CLS] a [SEP] b [SEP]` with token_type_ids 0…0 1…1; truncation removes tokens
 * from the texts (never the special tokens).
 */
import * as tf from '@tensorflow/tfjs';
import { Tokenizer } from '@huggingface/tokenizers';
import { InvalidArgumentError } from '../errors.ts';
import { ModelDirError } from './errors.ts';

/** One encoded example. */
export interface EncodedText {
  /** Token ids, [CLS] … [SEP] (… [SEP] for a pair). */
  inputIds: number[];
  /** Segment ids: 0 for the first text, 1 for the second of a pair. */
  tokenTypeIds: number[];
  /** 1 for tokens, 0 for padding. */
  attentionMask: number[];
  /** Whether tokens were dropped to fit maxLength. */
  truncated: boolean;
}

/** Options of {@link BertTokenizer.encode}. */
export interface EncodeOptions {
  /** Second text of a pair. */
  textPair?: string;
  /** Longest sequence in tokens, special tokens included; default and maximum: max_position_embeddings. */
  maxLength?: number;
  /** Pad with the pad token to this length (≤ maxLength); default: no padding. */
  padTo?: number;
}

/** Options of {@link BertTokenizer.encodeBatch}. */
export interface EncodeBatchOptions {
  /** Second texts of a pair task, one per text. */
  textPairs?: readonly string[];
  /** Longest sequence in tokens, special tokens included; default and maximum: max_position_embeddings. */
  maxLength?: number;
  /** 'longest' (default: the longest sequence of the batch) or a fixed length ≤ maxLength. */
  padTo?: 'longest' | number;
}

/** A padded batch as tensors (the caller owns them). */
export interface EncodedBatch {
  /** Token ids [B, T] (int32). */
  inputIds: tf.Tensor2D;
  /** Segment ids [B, T] (int32). */
  tokenTypeIds: tf.Tensor2D;
  /** 1 for tokens, 0 for padding [B, T]. */
  attentionMask: tf.Tensor2D;
  /** How many examples were truncated. */
  truncatedCount: number;
}

/**
 * Split budget of HF tokenizers' longest_first truncation (tokenizers/src/utils/truncation.rs): keep the shorter
 * text whole if it fits in half, else both get half (the second one the odd token).
 */
export function longestFirstLengths(n1: number, n2: number, budget: number): [number, number] {
  if (n1 + n2 <= budget) return [n1, n2];
  let a = n1;
  let b = n2;
  const swap = a > b;
  if (swap) [a, b] = [b, a];
  b = a > budget ? a : Math.max(a, budget - a);
  if (a + b > budget) {
    a = Math.floor(budget / 2);
    b = a + (budget % 2);
  }
  return swap ? [b, a] : [a, b];
}

/** A BERT-family WordPiece tokenizer with ewtune's truncation and padding. */
export class BertTokenizer {
  /** Id of [CLS]. */
  readonly clsId: number;
  /** Id of [SEP]. */
  readonly sepId: number;
  /** Id of [PAD]. */
  readonly padId: number;
  /** max_position_embeddings of the model: the longest sequence it can take. */
  readonly maxPositions: number;
  private readonly tokenizer: Tokenizer;
  private readonly file: string;
  private warned = false;

  /**
   * @param tokenizerJson parsed tokenizer.json. @param tokenizerConfig parsed tokenizer_config.json ({} if absent).
   * @throws ModelDirError (ERR_MODEL_CONFIG) if the tokenizer cannot be built or lacks [CLS]/[SEP]/[PAD].
   */
  constructor(tokenizerJson: unknown, tokenizerConfig: Record<string, unknown>, options: { maxPositions: number; file?: string }) {
    this.file = options.file ?? 'tokenizer.json';
    this.maxPositions = options.maxPositions;
    try {
      this.tokenizer = new Tokenizer(tokenizerJson as object, tokenizerConfig);
    } catch (err) {
      throw new ModelDirError('ERR_MODEL_CONFIG', this.file, `cannot build the tokenizer (${(err as Error).message})`, { cause: err });
    }
    const id = (key: string, fallback: string): number => {
      const token = typeof tokenizerConfig[key] === 'string' ? tokenizerConfig[key] as string : fallback;
      const v = this.tokenizer.token_to_id(token);
      if (v === undefined) throw new ModelDirError('ERR_MODEL_CONFIG', this.file, `the vocabulary has no ${key} ${JSON.stringify(token)}`);
      return v;
    };
    this.clsId = id('cls_token', '[CLS]');
    this.sepId = id('sep_token', '[SEP]');
    this.padId = id('pad_token', '[PAD]');
  }

  /** Token ids of a text without special tokens. */
  tokenize(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** The token of an id (for display). */
  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  private checkMaxLength(maxLength: number | undefined, pair: boolean): number {
    const m = maxLength ?? this.maxPositions;
    const least = pair ? 3 : 2;
    if (!Number.isInteger(m) || m < least || m > this.maxPositions) {
      throw new InvalidArgumentError('maxLength', m, `an integer in [${least}, ${this.maxPositions}] (max_position_embeddings)`);
    }
    return m;
  }

  private warnTruncated(tokens: number, maxLength: number): void {
    if (this.warned) return;
    this.warned = true;
    console.warn(`ewtune: a sequence of ${tokens} tokens is longer than maxLength ${maxLength}` +
      `${maxLength === this.maxPositions ? ' (max_position_embeddings)' : ''}; truncated (keeping [SEP]). Further truncations are not reported.`);
  }

  /**
   * Encodes a text or a pair. @throws InvalidArgumentError naming text / textPair / maxLength / padTo.
   */
  encode(text: string, options: EncodeOptions = {}): EncodedText {
    if (typeof text !== 'string') throw new InvalidArgumentError('text', text, 'a string');
    const pair = options.textPair !== undefined;
    if (pair && typeof options.textPair !== 'string') throw new InvalidArgumentError('textPair', options.textPair, 'a string');
    const maxLength = this.checkMaxLength(options.maxLength, pair);
    let a = this.tokenize(text);
    let b = pair ? this.tokenize(options.textPair as string) : [];
    const special = pair ? 3 : 2;
    const total = a.length + b.length + special;
    const truncated = total > maxLength;
    if (truncated) {
      this.warnTruncated(total, maxLength);
      if (pair) {
        const [n1, n2] = longestFirstLengths(a.length, b.length, maxLength - special);
        a = a.slice(0, n1);
        b = b.slice(0, n2);
      } else {
        a = a.slice(0, maxLength - special);
      }
    }
    const inputIds = [this.clsId, ...a, this.sepId, ...(pair ? [...b, this.sepId] : [])];
    const tokenTypeIds = inputIds.map((_, i) => (i < a.length + 2 ? 0 : 1));
    const attentionMask = inputIds.map(() => 1);
    if (options.padTo !== undefined) {
      if (!Number.isInteger(options.padTo) || options.padTo < 1 || options.padTo > maxLength) {
        throw new InvalidArgumentError('padTo', options.padTo, `an integer in [1, ${maxLength}] (maxLength)`);
      }
      while (inputIds.length < options.padTo) { inputIds.push(this.padId); tokenTypeIds.push(0); attentionMask.push(0); }
    }
    return { inputIds, tokenTypeIds, attentionMask, truncated };
  }

  /**
   * Encodes a batch, padded to one length: int32 input ids and token types, float32 attention mask, all [B, T].
   * @throws InvalidArgumentError naming texts / textPairs / maxLength / padTo.
   */
  encodeBatch(texts: readonly string[], options: EncodeBatchOptions = {}): EncodedBatch {
    if (!Array.isArray(texts) || texts.length === 0) throw new InvalidArgumentError('texts', texts, 'a non-empty array of strings');
    const pairs = options.textPairs;
    if (pairs !== undefined && (!Array.isArray(pairs) || pairs.length !== texts.length)) {
      throw new InvalidArgumentError('textPairs', pairs, `an array of ${texts.length} strings (one per text)`);
    }
    const encoded = texts.map((t, i) => this.encode(t, { ...(pairs ? { textPair: pairs[i] } : {}), ...(options.maxLength !== undefined ? { maxLength: options.maxLength } : {}) }));
    const longest = Math.max(...encoded.map((e) => e.inputIds.length));
    const padTo = options.padTo === undefined || options.padTo === 'longest' ? longest : options.padTo;
    if (!Number.isInteger(padTo) || padTo < longest) {
      throw new InvalidArgumentError('padTo', options.padTo, `'longest' or an integer ≥ the longest encoded example (${longest})`);
    }
    const B = texts.length;
    const ids = new Int32Array(B * padTo).fill(this.padId);
    const types = new Int32Array(B * padTo);
    const mask = new Float32Array(B * padTo);
    encoded.forEach((e, i) => {
      ids.set(e.inputIds, i * padTo);
      types.set(e.tokenTypeIds, i * padTo);
      mask.fill(1, i * padTo, i * padTo + e.inputIds.length);
    });
    return {
      inputIds: tf.tensor2d(ids, [B, padTo], 'int32'),
      tokenTypeIds: tf.tensor2d(types, [B, padTo], 'int32'),
      attentionMask: tf.tensor2d(mask, [B, padTo], 'float32'),
      truncatedCount: encoded.filter((e) => e.truncated).length,
    };
  }
}
