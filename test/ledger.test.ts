/** Durable privacy ledger: crash recovery, refusal of corrupt/foreign ledgers, exact replay, fsync before resolve. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { PrivacyLedger, configHash, type LedgerConfig, type LedgerFileOps } from '../src/accounting/ledger.ts';
import { createAccountant } from '../src/accounting/factory.ts';
import { InvalidArgumentError, LedgerError } from '../src/errors.ts';

const config: LedgerConfig = { datasetSize: 1000, l2NormClip: 1, sampler: 'poisson', adjacency: 'add-remove', noiseMode: 'gaussian', accountant: 'rdp' };

describe('PrivacyLedger', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ewtune-ledger-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function writeSteps(file: string, n: number): Promise<PrivacyLedger> {
    const ledger = await PrivacyLedger.create(file, config);
    for (let i = 0; i < n; i++) await ledger.appendStep({ sampleRate: 0.01, noiseMultiplier: i < 3 ? 1.1 : 0.9 });
    return ledger;
  }

  it('writes a header and consecutive step records; every line is complete once appendStep resolves', async () => {
    const file = path.join(dir, 'l.jsonl');
    const ledger = await writeSteps(file, 5);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, 6);
    const header = JSON.parse(lines[0]);
    assert.equal(header.type, 'header');
    assert.equal(header.configHash, configHash(config));
    assert.deepEqual(lines.slice(1).map((l) => JSON.parse(l).seq), [1, 2, 3, 4, 5]);
    assert.deepEqual(ledger.segments(), [
      { sampleRate: 0.01, noiseMultiplier: 1.1, count: 3 },
      { sampleRate: 0.01, noiseMultiplier: 0.9, count: 2 },
    ]);
    await ledger.close();
  });

  it('replay gives exactly (===) the live accountant ε, for every accountant', async () => {
    const file = path.join(dir, 'l.jsonl');
    const ledger = await writeSteps(file, 7);
    await ledger.close();
    const reopened = await PrivacyLedger.open(file, { expectedConfig: config });
    assert.equal(reopened.steps, 7);
    for (const name of ['rdp', 'pld', 'edgeworth', 'gdp'] as const) {
      const live = createAccountant(name);
      for (let i = 0; i < 7; i++) live.compose({ sampleRate: 0.01, noiseMultiplier: i < 3 ? 1.1 : 0.9 });
      assert.equal(reopened.replayEpsilon(1e-5, name).epsilon, live.getEpsilon(1e-5).epsilon, name);
    }
    reopened.closeSync();
  });

  it('crash mid-write: a partial last line is detected, reported and truncated; earlier records survive and appends continue', async () => {
    const file = path.join(dir, 'l.jsonl');
    (await writeSteps(file, 4)).closeSync();
    const intact = fs.readFileSync(file, 'utf8');
    fs.appendFileSync(file, '{"type":"step","seq":5,"sampleRa');
    const ledger = await PrivacyLedger.open(file, { expectedConfig: config });
    assert.ok(ledger.recovered);
    assert.equal(ledger.recovered.line, 6);
    assert.ok(ledger.warnings.some((w) => /incomplete last line/.test(w)));
    assert.equal(ledger.steps, 4);
    assert.equal(fs.readFileSync(file, 'utf8'), intact);
    const rec = await ledger.appendStep({ sampleRate: 0.01, noiseMultiplier: 0.9 });
    assert.equal(rec.seq, 5);
    await ledger.close();
    const again = await PrivacyLedger.open(file);
    assert.equal(again.steps, 5);
    assert.equal(again.recovered, undefined);
    again.closeSync();
  });

  it('refuses a corrupt middle line, a seq gap, an altered header and another configuration (LedgerError path:line)', async () => {
    const file = path.join(dir, 'l.jsonl');
    (await writeSteps(file, 4)).closeSync();
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const variants: [string[], RegExp, number][] = [
      [[...lines.slice(0, 2), '{"type":"step",', ...lines.slice(3)], /corrupt record/, 3],
      [[...lines.slice(0, 2), ...lines.slice(3)], /seq 3 where 2 was expected/, 3],
      [[...lines.slice(0, 2), lines[2].replace('"noiseMultiplier":1.1', '"noiseMultiplier":-1'), ...lines.slice(3)], /noiseMultiplier/, 3],
      [[lines[0].replace('"datasetSize":1000', '"datasetSize":999'), ...lines.slice(1)], /configHash does not match/, 1],
    ];
    for (const [content, pattern, line] of variants) {
      fs.writeFileSync(file, content.join('\n'));
      await assert.rejects(PrivacyLedger.open(file), (e: unknown) => e instanceof LedgerError && pattern.test(e.message) && e.line === line && e.message.startsWith(`${file}:${line}`));
    }
    fs.writeFileSync(file, lines.join('\n'));
    await assert.rejects(
      PrivacyLedger.open(file, { expectedConfig: { ...config, l2NormClip: 2 } }),
      (e: unknown) => e instanceof LedgerError && /another configuration/.test(e.message) && /l2NormClip/.test(e.message),
    );
  });

  it('fsyncs each record before appendStep resolves', async () => {
    const file = path.join(dir, 'l.jsonl');
    const events: string[] = [];
    const write = promisify(fs.write) as unknown as (fd: number, data: string) => Promise<unknown>;
    const ops: LedgerFileOps = {
      openSync: (p, f) => fs.openSync(p, f),
      writeSync: (fd, d) => (events.push('writeSync'), fs.writeSync(fd, d)),
      fsyncSync: (fd) => (events.push('fsyncSync'), fs.fsyncSync(fd)),
      closeSync: (fd) => fs.closeSync(fd),
      write: async (fd, d) => (events.push('write'), write(fd, d)),
      fsync: async (fd) => {
        events.push('fsync');
        await promisify(fs.fsync)(fd);
      },
    };
    const ledger = await PrivacyLedger.create(file, config, { fileOps: ops });
    assert.deepEqual(events, ['writeSync', 'fsyncSync']);
    const p = ledger.appendStep({ sampleRate: 0.01, noiseMultiplier: 1 });
    await p.then(() => events.push('resolved'));
    assert.deepEqual(events.slice(2), ['write', 'fsync', 'resolved']);
    ledger.appendStepSync({ sampleRate: 0.01, noiseMultiplier: 1 });
    assert.deepEqual(events.slice(5), ['writeSync', 'fsyncSync']);
    assert.equal(fs.readFileSync(file, 'utf8').split('\n').length, 4);
    await ledger.close();
  });

  it('validates step input and refuses steps that contradict the config', async () => {
    const file = path.join(dir, 'l.jsonl');
    const ledger = await PrivacyLedger.create(file, config);
    assert.throws(() => ledger.appendStepSync({ sampleRate: 2, noiseMultiplier: 1 }), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'sampleRate');
    assert.throws(() => ledger.appendStepSync({ sampleRate: 0.1, noiseMultiplier: 0 }), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'noiseMultiplier');
    assert.throws(() => ledger.appendStepSync({ sampleRate: 0.1, noiseMultiplier: 1, sampler: 'shuffle' }), LedgerError);
    assert.equal(ledger.steps, 0);
    ledger.appendStepSync({ sampleRate: 0.1, noiseMultiplier: 1 });
    assert.equal(ledger.records[0].seq, 1); // failed appends consumed no seq
    ledger.closeSync();
    await assert.rejects(PrivacyLedger.create(file, config), LedgerError); // never overwrites
  });
});
