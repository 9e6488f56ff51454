/** examples/library-usage.ts (the README's library example) runs as documented: local mode, certified ε ≤ target. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PrivacyLedger } from '../src/accounting/ledger.ts';

describe('examples', function () {
  this.timeout(180_000);
  it('library-usage.ts: dpFit + ledger + tracking callback next to a tfjs callback', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewtune-example-'));
    try {
      const runDir = join(dir, 'run');
      const env = { ...process.env };
      delete env.MLFLOW_TRACKING_URI;
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/library-usage.ts', runDir], { env });
      const r = JSON.parse(stdout.trim().split('\n').pop() as string) as { status: string; steps: number; epochs: number; epsilonCertified: number; accuracy: number };
      assert.equal(r.status, 'FINISHED');
      assert.equal(r.steps, 60);
      assert.equal(r.epochs, 2);
      assert.ok(r.epsilonCertified <= 3 && r.epsilonCertified > 2.9, String(r.epsilonCertified));
      assert.ok(r.accuracy > 0.9, String(r.accuracy));
      for (const f of ['artifacts/report.html', 'artifacts/privacy/epsilon_vs_step.svg', 'spool.jsonl']) assert.ok(existsSync(join(runDir, f)), f);
      const ledger = PrivacyLedger.openSync(join(runDir, 'artifacts', 'privacy', 'ledger.jsonl'));
      assert.equal(ledger.steps, 60);
      ledger.closeSync();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
