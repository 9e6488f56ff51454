/**
 * The package as a user gets it (issue 11): `npm pack`, then the tarball installed from the registry's way into a
 * fresh plain-JS ESM project together with @tensorflow/tfjs. From there: the README's library example
 * (examples/library-use.mjs, byte for byte) runs in local mode and against a real MLflow server; strict TypeScript
 * type-checks it and a typed consumer with `moduleResolution` node16 and bundler, and the typed consumer runs; the
 * installed bin answers; a CommonJS consumer gets what Node's require(esm) gives (stated below). Nothing here loads
 * tsx: the installed package has no TypeScript and tsx is not installed in the consumer project.
 *
 * One install is shared: the TypeScript projects are sub-directories of the ESM project, so they resolve the same
 * node_modules by Node's and TypeScript's ordinary upward lookup.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { MlflowClient } from '../src/tracking/mlflow-client.ts';
import { sharedMlflowServer } from './support/mlflow-server.ts';

const run = promisify(execFile);
const REPO = resolve('.');
const TFJS_VERSION = '4.22.0';
/** @types/node as the repo pins it, so the install can come from the npm cache. */
const TYPES_NODE_VERSION = (JSON.parse(readFileSync('node_modules/@types/node/package.json', 'utf8')) as { version: string }).version;
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

interface ExampleOutput {
  runDir: string; backend: string; status: string; steps: number; epochs: number; noiseMultiplier: number;
  epsilonCertified: number; epsilonEdgeworth: number; accuracy: number; mlflowRunId: string | null;
}

function lastJsonLine<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').pop() as string) as T;
}

/** The environment of a child: no tracking URI unless given, no NODE_OPTIONS (mocha's tsx must not leak in). */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!('MLFLOW_TRACKING_URI' in extra)) delete env.MLFLOW_TRACKING_URI;
  delete env.NODE_OPTIONS;
  return env;
}

/** Errors tsc reports, one per diagnostic line, except those inside @tensorflow's own declaration files. */
function typeErrors(output: string): string[] {
  return output.split('\n').filter((l) => /^\S.*\(\d+,\d+\): error TS\d+/.test(l) && !l.startsWith('node_modules/@tensorflow/'));
}

function tsconfig(moduleResolution: 'node16' | 'bundler', emit: boolean): string {
  return JSON.stringify({
    compilerOptions: {
      strict: true,
      module: moduleResolution === 'node16' ? 'node16' : 'esnext',
      moduleResolution,
      target: 'ES2022',
      lib: ['ES2022', 'DOM'], // tfjs's declarations name DOM types (WebGL, ImageData)
      types: ['node'],
      allowJs: true,
      checkJs: true,
      // Our declaration files are checked too; tfjs 4.22's own ones fail strict checks, so typeErrors() skips them.
      skipLibCheck: false,
      ...(emit ? { outDir: 'out', noEmitOnError: false } : { noEmit: true }),
    },
    include: ['../library-use.mjs', 'typed-use.ts'],
  }, null, 2);
}

describe('consumer: the packed tarball installed in fresh ESM and TypeScript projects', function () {
  this.timeout(900_000);
  let dir: string;
  let app: string;
  let packedFiles: string[];
  let mlflowUri: string;

  before(async () => {
    const fromEnv = process.env.EWTUNE_TEST_MLFLOW_URI;
    if (process.env.CI === 'true' && !fromEnv) throw new Error('CI=true but EWTUNE_TEST_MLFLOW_URI is not set: .ci/run starts the MLflow server the consumer test logs to');
    mlflowUri = await sharedMlflowServer();
    dir = mkdtempSync(join(tmpdir(), 'ewtune-consumer-'));
    // prepack builds dist/ (tsc); --json lists what the tarball holds.
    const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: REPO, env: childEnv(), maxBuffer: 64 << 20 });
    const info = (JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[])[0];
    packedFiles = info.files.map((f) => f.path);
    app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'ewtune-consumer', private: true, type: 'module' }, null, 2));
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, info.filename), `@tensorflow/tfjs@${TFJS_VERSION}`, `@types/node@${TYPES_NODE_VERSION}`],
      { cwd: app, env: childEnv(), maxBuffer: 64 << 20 });
    copyFileSync('examples/library-use.mjs', join(app, 'library-use.mjs'));
    for (const [name, moduleResolution, emit] of [['ts-node16', 'node16', true], ['ts-bundler', 'bundler', false]] as const) {
      mkdirSync(join(app, name));
      writeFileSync(join(app, name, 'tsconfig.json'), tsconfig(moduleResolution, emit));
      copyFileSync('test/fixtures/consumer/typed-use.ts', join(app, name, 'typed-use.ts'));
    }
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the tarball holds dist (JS, .d.ts, maps), bin, schemas, plugin.json, README.md, LICENSE — no tests, benches or .ts sources', () => {
    for (const f of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/index.js.map', 'dist/plugin/index.js', 'dist/plugin/index.d.ts',
      'dist/src/monitor/certified-worker.js', 'dist/src/setup/native-deps/package-lock.json', 'bin/ewtune.mjs',
      'schemas/config.schema.json', 'schemas/ledger.schema.json', 'plugin.json', 'README.md', 'LICENSE', 'package.json']) {
      assert.ok(packedFiles.includes(f), `${f} missing from the tarball`);
    }
    const stray = packedFiles.filter((f) => /^(test|bench|examples|src|plugin|scripts)\//.test(f) || (/\.ts$/.test(f) && !f.endsWith('.d.ts')));
    assert.deepEqual(stray, []);
    const installed = join(app, 'node_modules', 'ewtune');
    const manifest = JSON.parse(readFileSync(join(installed, 'plugin.json'), 'utf8')) as { entry: string; configSchema: string };
    assert.ok(existsSync(join(installed, manifest.entry)), `plugin.json entry ${manifest.entry}`);
    assert.ok(existsSync(join(installed, manifest.configSchema)), manifest.configSchema);
    assert.equal(existsSync(join(app, 'node_modules', 'tsx')), false, 'tsx is a dev dependency: not installed for a consumer');
  });

  it('plain ESM: the README example runs with `node` in local mode (WASM backend, certified ε ≤ 3, run directory written)', async () => {
    const runDir = join(dir, 'run-local');
    const { stdout } = await run(process.execPath, ['library-use.mjs', runDir], { cwd: app, env: childEnv() });
    const r = lastJsonLine<ExampleOutput>(stdout);
    assert.equal(r.status, 'FINISHED');
    assert.equal(r.backend, 'wasm');
    assert.equal(r.steps, 60);
    assert.equal(r.epochs, 2);
    assert.ok(r.epsilonCertified <= 3 && r.epsilonCertified > 2.9, String(r.epsilonCertified));
    assert.ok(r.accuracy > 0.9, String(r.accuracy));
    assert.equal(r.mlflowRunId, null);
    // report.html and the SVG charts (vega, read from the package's own dependencies), the ledger, the spool.
    for (const f of ['artifacts/report.html', 'artifacts/privacy/epsilon_vs_step.svg', 'artifacts/privacy/ledger.jsonl', 'spool.jsonl']) {
      assert.ok(existsSync(join(runDir, f)), f);
    }
  });

  it('plain ESM: the README example logs to a real MLflow server (run FINISHED, certified ε as printed)', async () => {
    const runDir = join(dir, 'run-mlflow');
    const { stdout } = await run(process.execPath, ['library-use.mjs', runDir], { cwd: app, env: childEnv({ MLFLOW_TRACKING_URI: mlflowUri }) });
    const r = lastJsonLine<ExampleOutput>(stdout);
    assert.equal(r.status, 'FINISHED');
    assert.equal(typeof r.mlflowRunId, 'string');
    const client = MlflowClient.fromEnv(mlflowUri, {});
    try {
      const remote = await client.getRun(r.mlflowRunId as string);
      assert.equal(remote.info.status, 'FINISHED');
      const history = await client.getMetricHistory(r.mlflowRunId as string, 'privacy/epsilon_edgeworth');
      assert.equal(history.length, 60);
      const certified = remote.metrics.find((m) => m.key === 'privacy/epsilon_certified');
      assert.ok(certified, 'privacy/epsilon_certified logged');
      assert.ok(Math.abs(certified.value - r.epsilonCertified) < 1e-9, `${certified.value} vs ${r.epsilonCertified}`);
    } finally {
      client.close();
    }
  });

  for (const [name, moduleResolution] of [['ts-node16', 'node16'], ['ts-bundler', 'bundler']] as const) {
    it(`TypeScript strict, moduleResolution ${moduleResolution}: the README example (checkJs) and a typed consumer type-check`, async () => {
      const r = await run(process.execPath, [TSC, '-p', name], { cwd: app, env: childEnv() }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? String(err) }));
      assert.deepEqual(typeErrors(r.stdout), []);
      if (moduleResolution === 'node16') {
        // The emitted typed consumer runs against the installed package.
        const out = await run(process.execPath, [join(name, 'out', name, 'typed-use.js')], { cwd: app, env: childEnv() });
        const typed = lastJsonLine<{ version: string; epsilon: number; kind: string; rejectedArgument: string; configProblems: string[] }>(out.stdout);
        assert.equal(typed.version, (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version);
        assert.equal(typed.kind, 'upper');
        assert.ok(typed.epsilon > 0 && Number.isFinite(typed.epsilon));
        assert.equal(typed.rejectedArgument, 'delta');
        assert.ok(typed.configProblems.includes('/data is required'), JSON.stringify(typed.configProblems));
      }
    });
  }

  it('the installed bin: `ewtune --help` and `ewtune epsilon` run the compiled CLI', async () => {
    const bin = join(app, 'node_modules', '.bin', 'ewtune');
    const help = await run(bin, ['--help'], { cwd: app, env: childEnv() });
    assert.match(help.stdout, /^ewtune: differentially private fine-tuning/);
    assert.match(help.stdout, /epsilon +epsilon of a DP-SGD run/);
    const eps = await run(bin, ['epsilon', '--noise-multiplier', '1.1', '--sample-rate', '0.01', '--steps', '1000', '--delta', '1e-5', '--json'], { cwd: app, env: childEnv() });
    const e = JSON.parse(eps.stdout) as { accountant: string; epsilon: number; kind: string };
    assert.equal(e.accountant, 'pld');
    assert.equal(e.kind, 'upper');
    const bad = await run(bin, ['epsilon', '--noise-multiplier', '0', '--sample-rate', '0.01', '--steps', '10', '--delta', '1e-5'], { cwd: app, env: childEnv() })
      .then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--noise-multiplier/);
  });

  it('lazy CLI: `ewtune --help` loads only the CLI shell; `ewtune epsilon` loads the accountants but not tfjs (module trace)', async () => {
    const bin = join(app, 'node_modules', 'ewtune', 'bin', 'ewtune.mjs');
    const loaded = async (args: string[]): Promise<string[]> => {
      const trace = join(dir, `trace-${args[0].replace(/\W/g, '')}.txt`);
      await run(process.execPath, ['--import', pathToFileURL(resolve('test/support/module-trace.mjs')).href, bin, ...args], { cwd: app, env: childEnv({ EWTUNE_MODULE_TRACE: trace }) });
      const installed = pathToFileURL(join(app, 'node_modules')).href + '/';
      return readFileSync(trace, 'utf8').trim().split('\n').map((u) => u.replace(installed, ''));
    };
    const help = await loaded(['--help']);
    assert.deepEqual(help.filter((u) => u.startsWith('ewtune/')).sort(),
      ['ewtune/bin/ewtune.mjs', 'ewtune/dist/src/cli/command.js', 'ewtune/dist/src/cli/commands/index.js', 'ewtune/dist/src/cli/main.js', 'ewtune/dist/src/errors.js']);
    assert.deepEqual(help.filter((u) => !u.startsWith('ewtune/') && !u.startsWith('node:')), [], 'no other package loads for --help');
    const epsilon = await loaded(['epsilon', '--noise-multiplier', '1.1', '--sample-rate', '0.01', '--steps', '100', '--delta', '1e-5']);
    assert.ok(epsilon.includes('ewtune/dist/src/accounting/pld/index.js'), 'the PLD accountant is loaded for epsilon');
    assert.deepEqual(epsilon.filter((u) => /@tensorflow|vega|tsx/.test(u)), [], 'epsilon loads neither tfjs, vega nor tsx');
  });

  it("CommonJS: require('ewtune') works (Node ≥ 20.19 require(esm)); require('ewtune/plugin') fails clearly (top-level await below it), import() works", async () => {
    const cjs = join(app, 'cjs');
    mkdirSync(cjs, { recursive: true });
    writeFileSync(join(cjs, 'package.json'), JSON.stringify({ type: 'commonjs' }));
    writeFileSync(join(cjs, 'use.cjs'), [
      "const ewtune = require('ewtune');",
      'const out = { engine: typeof ewtune.dpFit, epsilon: ewtune.pldEpsilon([{ sampleRate: 0.01, noiseMultiplier: 1.1, count: 100 }], 1e-5).kind };',
      "try { require('ewtune/plugin'); out.pluginRequire = 'loaded'; } catch (err) { out.pluginRequire = err.code; out.message = err.message; }",
      "import('ewtune/plugin').then((p) => { out.pluginImport = typeof p.createPrivacyCallback; console.log(JSON.stringify(out)); });",
    ].join('\n'));
    const { stdout } = await run(process.execPath, ['use.cjs'], { cwd: cjs, env: childEnv() });
    const r = lastJsonLine<{ engine: string; epsilon: string; pluginRequire: string; message?: string; pluginImport: string }>(stdout);
    assert.equal(r.engine, 'function');
    assert.equal(r.epsilon, 'upper');
    assert.equal(r.pluginRequire, 'ERR_REQUIRE_ASYNC_MODULE');
    assert.match(r.message ?? '', /Use import\(\) instead/);
    assert.equal(r.pluginImport, 'function');
  });
});
