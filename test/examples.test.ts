/**
 * examples/library-use.mjs — the file README §"Library use" shows — runs as documented (local mode, certified ε ≤
 * target), and the README's copy of it is the file itself (no drift). It imports `ewtune` and `ewtune/plugin` by
 * name; inside this repository that self-reference resolves through package.json `exports`, and the
 * `ewtune-source` condition (`node --conditions=ewtune-source --import tsx`) maps it to the TypeScript sources, so
 * this test needs no build. test/consumer.test.ts runs the same file from the packed, installed package.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PrivacyLedger } from '../src/accounting/ledger.ts';

const EXAMPLE = 'examples/library-use.mjs';

/** The code block between the README's `<!-- library-use.mjs -->` markers. */
function readmeLibraryExample(readme: string): string | undefined {
  const m = /<!-- begin examples\/library-use\.mjs -->\n```js\n([\s\S]*?)```\n<!-- end examples\/library-use\.mjs -->/.exec(readme);
  return m?.[1];
}

describe('examples', function () {
  this.timeout(180_000);
  it('README §"Library use" shows examples/library-use.mjs exactly', () => {
    const shown = readmeLibraryExample(readFileSync('README.md', 'utf8'));
    assert.ok(shown !== undefined, 'README.md has no <!-- begin/end examples/library-use.mjs --> block');
    assert.equal(shown, readFileSync(EXAMPLE, 'utf8'));
  });

  it('library-use.mjs: dpFit + ledger + tracking callback next to a tfjs callback (sources, local mode)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewtune-example-'));
    try {
      const runDir = join(dir, 'run');
      const env = { ...process.env };
      delete env.MLFLOW_TRACKING_URI;
      const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=ewtune-source', '--import', 'tsx', EXAMPLE, runDir], { env });
      const r = JSON.parse(stdout.trim().split('\n').pop() as string) as { status: string; steps: number; epochs: number; epsilonCertified: number; accuracy: number; mlflowRunId: string | null };
      assert.equal(r.status, 'FINISHED');
      assert.equal(r.steps, 60);
      assert.equal(r.epochs, 2);
      assert.ok(r.epsilonCertified <= 3 && r.epsilonCertified > 2.9, String(r.epsilonCertified));
      assert.ok(r.accuracy > 0.9, String(r.accuracy));
      assert.equal(r.mlflowRunId, null);
      for (const f of ['artifacts/report.html', 'artifacts/privacy/epsilon_vs_step.svg', 'spool.jsonl']) assert.ok(existsSync(join(runDir, f)), f);
      const ledger = PrivacyLedger.openSync(join(runDir, 'artifacts', 'privacy', 'ledger.jsonl'));
      assert.equal(ledger.steps, 60);
      ledger.closeSync();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
