/** The plugin manifest and the training configuration: ajv-checked, defaults filled, errors naming the field. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, validateConfig } from '../plugin/config.ts';
import { METRIC_KINDS } from '../plugin/callback.ts';
import { EWTUNE_VERSION } from '../plugin/version.ts';

const example = JSON.parse(readFileSync('examples/spam-assassin.json', 'utf8')) as Record<string, Record<string, unknown>>;

function problemsOf(value: unknown): string[] {
  try {
    validateConfig(value);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return [...e.problems];
  }
  return [];
}

function withChange(section: string, key: string, value: unknown): unknown {
  const copy = structuredClone(example);
  if (value === undefined) delete copy[section][key];
  else copy[section] = { ...copy[section], [key]: value };
  return copy;
}

describe('plugin manifest and configuration', () => {
  it('plugin.json: entry and schemas exist, version = package.json, metric kinds = what the callback logs', () => {
    const manifest = JSON.parse(readFileSync('plugin.json', 'utf8')) as {
      name: string; version: string; entry: string; configSchema: string; schemas: Record<string, string>;
      metrics: Record<string, { kind: string }>;
    };
    assert.equal(manifest.name, 'ewtune');
    assert.equal(manifest.version, EWTUNE_VERSION);
    // The entry is the compiled plugin module (dist/ exists once built; the consumer test checks it in the installed package).
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, Record<string, string>> };
    assert.equal(manifest.entry, pkg.exports['./plugin'].default);
    for (const p of [manifest.configSchema, ...Object.values(manifest.schemas)]) assert.ok(existsSync(p), p);
    assert.deepEqual(Object.fromEntries(Object.entries(manifest.metrics).map(([k, v]) => [k, v.kind])), METRIC_KINDS);
  });

  it('the example config is valid; defaults are filled in', () => {
    const c = validateConfig(example);
    assert.equal(c.privacy.accountant, 'pld');
    assert.equal(c.tracking.runDir, 'ewtune-runs');
    assert.equal(c.tracking.certifiedEveryFraction, 0.01);
    assert.equal(c.model.numClasses, 2);
    assert.equal(c.training.evaluate, true);
  });

  it('bad values are refused with the JSON path of the field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [withChange('training', 'l2NormClip', 0), /\/training\/l2NormClip must be > 0/],
      [withChange('privacy', 'delta', 1), /\/privacy\/delta must be < 1/],
      [withChange('privacy', 'targetEpsilon', -1), /\/privacy\/targetEpsilon must be > 0/],
      [withChange('privacy', 'accountant', 'moments'), /\/privacy\/accountant must be one of/],
      [withChange('training', 'expectedBatchSize', undefined), /\/training\/expectedBatchSize is required/],
      [withChange('training', 'steps', 10), /\/training/],
      [withChange('training', 'bogus', 1), /\/training\/bogus is not allowed/],
      [withChange('model', 'heads', 3), /\/model\/dModel \(64\) must be divisible by \/model\/heads \(3\)/],
      [withChange('privacy', 'accountant', 'edgeworth'), /allowEstimate/],
      [withChange('tracking', 'trackingUri', 'ftp://x'), /\/tracking\/trackingUri must match pattern/],
      [withChange('data', 'kind', 'jsonl'), /\/data\/path is required/],
    ];
    for (const [value, pattern] of cases) {
      const problems = problemsOf(value);
      assert.ok(problems.some((p) => pattern.test(p)), `${pattern} not in ${JSON.stringify(problems)}`);
    }
    const allowed = structuredClone(example);
    allowed.privacy = { ...allowed.privacy, accountant: 'edgeworth', allowEstimate: true };
    assert.deepEqual(problemsOf(allowed), []);
  });

  it('loadConfig: overrides from the command line are validated too; unreadable and non-JSON files are ConfigErrors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewtune-config-'));
    try {
      const path = join(dir, 'c.json');
      writeFileSync(path, JSON.stringify(example));
      const c = loadConfig(path, { maxSteps: 7, targetEpsilon: 2, trackingUri: 'http://127.0.0.1:1' });
      assert.equal(c.training.maxSteps, 7);
      assert.equal(c.privacy.targetEpsilon, 2);
      assert.equal(c.tracking.trackingUri, 'http://127.0.0.1:1');
      assert.throws(() => loadConfig(path, { maxSteps: 0 }), (e: unknown) => e instanceof ConfigError && /\/training\/maxSteps must be >= 1/.test(e.message));
      writeFileSync(path, '{ not json');
      assert.throws(() => loadConfig(path), (e: unknown) => e instanceof ConfigError && /not valid JSON/.test(e.message));
      assert.throws(() => loadConfig(join(dir, 'missing.json')), (e: unknown) => e instanceof ConfigError && /cannot be read/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
