/**
 * Text → token ids for the examples. The vocabulary comes from a PUBLIC source (the pre-trained embedding's
 * own word list, ordered by corpus frequency), never from the private training texts: choosing words by
 * their frequency in the private data would itself leak, outside the DP guarantee.
 */

export const PAD_ID = 0;
export const UNK_ID = 1;

/** Lower-cased word tokens; HTML tags and e-mail header lines are removed by the caller. */
export function tokenize(text: string): string[] {
  return text.toLowerCase().match(/[a-z][a-z']*|[0-9]+/g) ?? [];
}

/** Maps words to ids: 0 = padding, 1 = unknown, 2.. = the given public word list in order. */
export class Vocabulary {
  readonly words: readonly string[];
  readonly #index = new Map<string, number>();
  constructor(publicWords: readonly string[]) {
    this.words = publicWords;
    publicWords.forEach((w, i) => {
      if (!this.#index.has(w)) this.#index.set(w, i + 2);
    });
  }
  /** Number of ids including padding and unknown. */
  get size(): number {
    return this.words.length + 2;
  }
  id(word: string): number {
    return this.#index.get(word) ?? UNK_ID;
  }
  /** Token ids of `text`, truncated or padded to exactly `maxTokens`. */
  encode(tokens: readonly string[], maxTokens: number): Int32Array {
    const ids = new Int32Array(maxTokens); // zero = PAD_ID
    for (let i = 0; i < Math.min(maxTokens, tokens.length); i++) ids[i] = this.id(tokens[i]);
    return ids;
  }
}
