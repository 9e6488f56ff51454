/**
 * Crash safety: a child (test/fixtures/dpfit-crash-child.ts) trains with a durable ledger and is SIGKILLed at a
 * random point (after a random number of updates); the ledger must hold at least as many steps as updates applied (the child reports applied updates
 * in a side file after each update), and a resumed run continues the ledger's count.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PrivacyLedger } from '../src/accounting/ledger.ts';

/** Steps in the ledger (opening recovers a torn last line, as a resuming run would). */
function ledgerSteps(p: string): number {
  const ledger = PrivacyLedger.openSync(p);
  try {
    return ledger.steps;
  } finally {
    ledger.closeSync();
  }
}

const CHILD = path.join('test', 'fixtures', 'dpfit-crash-child.ts');

function startChild(ledgerPath: string, appliedPath: string, steps: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ledgerPath, appliedPath, String(steps)],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (d) => { stdout += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stdout }));
  });
  return { child, exited };
}

async function waitFor(pred: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const readApplied = (p: string) => (fs.existsSync(p) ? Number(fs.readFileSync(p, 'utf8')) || 0 : 0);

describe('crash safety (SIGKILL mid-training, resume)', function () {
  this.timeout(120_000);

  it('ledger steps ≥ applied updates after SIGKILL at a random moment; resume continues the count', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpfit-crash-'));
    const ledgerPath = path.join(dir, 'ledger.jsonl');
    const appliedPath = path.join(dir, 'applied.txt');
    for (let round = 0; round < 2; round++) {
      const { child, exited } = startChild(ledgerPath, appliedPath, 100_000);
      const startApplied = readApplied(appliedPath);
      // Kill at a random point of the training, chosen by a count the test controls (not by a delay): as soon as a
      // random number (1–8) of fresh updates has been seen. The kill then lands wherever the child happens to be
      // (mid-step, between ledger write and update, between update and side file): every case must hold.
      const killAfter = startApplied + randomInt(1, 9);
      await waitFor(() => readApplied(appliedPath) >= killAfter, 60_000);
      child.kill('SIGKILL');
      const { signal } = await exited;
      assert.equal(signal, 'SIGKILL');
      const applied = readApplied(appliedPath);
      const recorded = ledgerSteps(ledgerPath);
      assert.ok(applied > 0);
      assert.ok(recorded >= applied, `round ${round}: ledger ${recorded} < applied ${applied}`);
      // Over-count is at most the one step in flight (+1 if the kill fell between update and side-file write).
      assert.ok(recorded - applied <= 2, `round ${round}: ledger ${recorded}, applied ${applied}`);
      fs.writeFileSync(appliedPath, String(recorded)); // resume: what the ledger says was spent
    }
    // Resume to completion for 3 more steps: the count continues from the ledger.
    const before = ledgerSteps(ledgerPath);
    const { exited } = startChild(ledgerPath, appliedPath, 3);
    const { code, stdout } = await exited;
    assert.equal(code, 0, stdout);
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!);
    assert.deepEqual(out, { stepsTaken: 3, totalSteps: before + 3 });
    const lines = fs.readFileSync(ledgerPath, 'utf8').trim().split('\n').flatMap((l) => {
      try { return [JSON.parse(l)]; } catch { return []; }
    }).filter((r) => r.type === 'step');
    assert.deepEqual(lines.slice(-3).map((r) => r.seq), [before + 1, before + 2, before + 3]);
    assert.equal(lines.length, before + 3);
  });
});
