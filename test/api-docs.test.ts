/**
 * The API reference (`npm run docs`, TypeDoc, typedoc.json) documents every public export of `ewtune` (src/index.ts)
 * and `ewtune/plugin` (plugin/index.ts): TypeDoc's own validation (`notDocumented` over typedoc.json's
 * `requiredToBeDocumented`, and `invalidLink`) must report nothing. The check is shown to fail on a fixture package
 * with one undocumented export.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Application, Logger, LogLevel, TSConfigReader, TypeDocReader, type TypeDocOptions } from 'typedoc';

/** Collects what TypeDoc logs at warning level or above while `collecting` is set. */
class CollectingLogger extends Logger {
  readonly messages: string[] = [];
  collecting = false;
  override log(message: string, level: LogLevel): void {
    if (this.collecting && level >= LogLevel.Warn) this.messages.push(message);
  }
}

/**
 * Converts with typedoc.json's options (or the config file `overrides.options`) and runs TypeDoc's validation;
 * returns what the validation reported (conversion problems fail the assertion inside).
 */
async function apiDocProblems(overrides: Partial<TypeDocOptions> = {}): Promise<string[]> {
  const app = await Application.bootstrapWithPlugins({ ...overrides }, [new TypeDocReader(), new TSConfigReader()]);
  const logger = new CollectingLogger();
  app.logger = logger;
  assert.equal(app.options.getValue('treatValidationWarningsAsErrors'), true, 'typedoc.json must make `npm run docs` fail on these');
  assert.equal(app.options.getValue('validation').notDocumented, true);
  const project = await app.convert();
  assert.ok(project, 'TypeDoc could not convert the entry points');
  logger.collecting = true;
  app.validate(project);
  logger.collecting = false;
  return logger.messages;
}

describe('API reference (TypeDoc)', function () {
  this.timeout(240_000);
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('every public export of ewtune and ewtune/plugin has a doc comment, and every {@link} resolves', async () => {
    const problems = await apiDocProblems();
    assert.deepEqual(problems, [], `${problems.length} problems:\n${problems.join('\n')}`);
  });

  it('the check fails on an export without a doc comment and on a broken {@link} (fixture package)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewtune-api-docs-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', target: 'ES2022', noEmit: true }, files: ['index.ts'] }));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'fixture', version: '1.0.0', type: 'module' }));
    writeFileSync(join(dir, 'index.ts'), [
      '/** Documented: the sum a + b. */',
      'export function documentedSum(a: number, b: number): number { return a + b; }',
      'export function undocumentedProduct(a: number, b: number): number { return a * b; }',
      '/** Options with a documented interface. */',
      'export interface FixtureOptions { /** Width, in pixels. */ readonly width: number }',
      '/** Like {@link NoSuchExport}. */',
      'export const fixtureLimit = 3;',
      '',
    ].join('\n'));
    // The fixture's typedoc.json extends the project's (same validation settings) with its own entry point and tsconfig.
    writeFileSync(join(dir, 'typedoc.json'), JSON.stringify({ extends: [join(process.cwd(), 'typedoc.json')], entryPoints: ['index.ts'], tsconfig: 'tsconfig.json' }));
    const problems = await apiDocProblems({ options: join(dir, 'typedoc.json') });
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.ok(problems.some((p) => /undocumentedProduct.*does not have any documentation/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /NoSuchExport/.test(p)), problems.join('\n'));
  });
});
