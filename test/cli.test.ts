/** CLI contract (issue 2): real `node bin/ewtune.mjs` invocations plus in-process calls of main(). */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../src/cli/main.ts';
import { createAccountant } from '../src/accounting/factory.ts';
import { PrivacyLedger } from '../src/accounting/ledger.ts';

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/ewtune.mjs', ...args], { encoding: 'utf8', timeout: 60000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function inProcess(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

function eps(name: 'edgeworth' | 'rdp' | 'pld' | 'gdp', q: number, sigma: number, steps: number, delta: number) {
  const acc = createAccountant(name);
  acc.compose({ sampleRate: q, noiseMultiplier: sigma }, steps);
  return acc.getEpsilon(delta);
}

describe('ewtune CLI', function () {
  this.timeout(60000);

  it('epsilon --accountant all --json (spawned): one object per accountant with the contract fields', () => {
    const r = run(['epsilon', '--noise-multiplier', '1', '--sample-rate', '0.01', '--steps', '200', '--delta', '1e-5', '--accountant', 'all', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { results } = JSON.parse(r.stdout) as { results: Record<string, unknown>[] };
    assert.deepEqual(results.map((x) => x.accountant), ['edgeworth', 'rdp', 'pld', 'gdp']);
    for (const x of results) {
      assert.equal(x.delta, 1e-5);
      assert.equal(x.epsilon, eps(x.accountant as 'rdp', 0.01, 1, 200, 1e-5).epsilon);
    }
    assert.deepEqual(results.map((x) => x.kind), ['estimate', 'upper', 'upper', 'estimate']);
    const ew = results[0];
    assert.ok('epsilonUpper' in ew && 'epsilonLower' in ew);
    for (const k of ['epsilonUpper', 'epsilonLower']) assert.ok(ew[k] === null || typeof ew[k] === 'number');
  });

  it('bad arguments exit 2 with a message naming the argument (spawned)', () => {
    const r = run(['epsilon', '--noise-multiplier', '1', '--sample-rate', '2', '--steps', '10', '--delta', '1e-5', '--json']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--sample-rate must be in \(0, 1\]; got 2/);
  });

  it('bad arguments in process: each names its flag, exit 2', async () => {
    const base = ['--noise-multiplier', '1', '--sample-rate', '0.01', '--steps', '10', '--delta', '1e-5'];
    const set = (flag: string, value: string) => {
      const a = [...base];
      a[a.indexOf(flag) + 1] = value;
      return a;
    };
    const cases: [string[], RegExp][] = [
      [['epsilon', ...set('--noise-multiplier', '0')], /--noise-multiplier must be/],
      [['epsilon', ...set('--noise-multiplier', 'NaN')], /--noise-multiplier must be a finite number; got "NaN"/],
      [['epsilon', ...set('--steps', '1.5')], /--steps must be a positive integer; got 1.5/],
      [['epsilon', ...set('--delta', '1')], /--delta must be in \(0, 1\)/],
      [['epsilon', ...base, '--accountant', 'moments'], /--accountant must be one of/],
      [['epsilon', ...base, '--order', '3'], /--order must be 1 or 2/],
      [['epsilon', ...base, '--bogus'], /bogus/],
      [['epsilon', '--sample-rate', '0.1', '--steps', '10', '--delta', '1e-5'], /--noise-multiplier is required/],
      [['calibrate', '--target-epsilon', '0', '--delta', '1e-5', '--sample-rate', '0.1', '--steps', '10'], /--target-epsilon must be/],
      [['calibrate', '--target-epsilon', '1', '--delta', '1e-5', '--sample-rate', '0.1', '--steps', '10', '--epochs', '2'], /--epochs/],
      [['ledger', '--delta', '1e-5'], /<file>/],
      [['nosuch'], /unknown command/],
    ];
    for (const [args, pattern] of cases) {
      const r = await inProcess(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.err, pattern, args.join(' '));
    }
  });

  it('calibrate --json (edgeworth by name) reports σ, ε ≤ target and the certified PLD ε', async () => {
    const r = await inProcess(['calibrate', '--target-epsilon', '3', '--delta', '1e-5', '--sample-rate', '0.01', '--steps', '300', '--accountant', 'edgeworth', '--json']);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.equal(j.accountant, 'edgeworth');
    assert.ok(j.epsilon <= 3);
    assert.equal(j.epsilon, eps('edgeworth', 0.01, j.noiseMultiplier, 300, 1e-5).epsilon);
    assert.equal(j.certifiedEpsilon.accountant, 'pld');
    assert.equal(j.certifiedEpsilon.epsilon, eps('pld', 0.01, j.noiseMultiplier, 300, 1e-5).epsilon);
  });

  it('ledger <file> --json gives the replayed ε; a table without --json; --help', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ewtune-cli-'));
    try {
      const file = path.join(dir, 'l.jsonl');
      const ledger = await PrivacyLedger.create(file, { accountant: 'rdp', sampler: 'poisson', adjacency: 'add-remove' });
      for (let i = 0; i < 50; i++) ledger.appendStepSync({ sampleRate: 0.02, noiseMultiplier: 1.2 });
      ledger.closeSync();
      const r = await inProcess(['ledger', file, '--delta', '1e-5', '--json']);
      assert.equal(r.code, 0, r.err);
      const j = JSON.parse(r.out);
      assert.equal(j.accountant, 'rdp');
      assert.equal(j.steps, 50);
      assert.equal(j.epsilon, eps('rdp', 0.02, 1.2, 50, 1e-5).epsilon);
      const t = await inProcess(['ledger', file, '--delta', '1e-5']);
      assert.match(t.out, /50 steps/);
      assert.match(t.out, /rdp\s+\d/);
      fs.writeFileSync(file, 'not json\n');
      const bad = await inProcess(['ledger', file, '--delta', '1e-5']);
      assert.equal(bad.code, 1);
      assert.match(bad.err, /:1: corrupt record/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const h = await inProcess(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.out, /epsilon/);
    assert.match(h.out, /calibrate/);
  });
});
