/**
 * The pip-backed cache (src/cache.ts) on a wheel the test builds and serves to pip from a local folder
 * (PIP_NO_INDEX=1, PIP_FIND_LINKS=<folder>): a real `python3 -m pip download`, no network. Pinned hashes checked
 * for the archive and the extracted file, idempotence (a second fetch never runs pip), wrong hash, missing member,
 * no pip, no such package (what pip reports without network), and .tar.gz members.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { strToU8, zipSync } from 'fflate';
import { packTar } from 'modern-tar';
import { execFileSync } from 'node:child_process';
import { ensurePypiFile, FetchError, pipDownload, readArchiveMembers, type PypiMember } from '../src/cache.ts';
import { main } from '../src/cli/main.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const dir = mkdtempSync(join(tmpdir(), 'ewtune-fetch-'));
const index = join(dir, 'index');
mkdirSync(index);

const member = 'ewtunefake/corpora/data.csv';
const content = strToU8('"1","a sentence"\n');
const metadata = 'Metadata-Version: 2.1\nName: ewtunefake\nVersion: 1.0\n';
const wheelInfo = 'Wheel-Version: 1.0\nGenerator: ewtune-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n';
const files: Record<string, Uint8Array> = {
  [member]: content,
  'ewtunefake/__init__.py': strToU8(''),
  'ewtunefake-1.0.dist-info/METADATA': strToU8(metadata),
  'ewtunefake-1.0.dist-info/WHEEL': strToU8(wheelInfo),
};
const record = [...Object.entries(files).map(([name, data]) => `${name},sha256=${Buffer.from(createHash('sha256').update(data).digest()).toString('base64url')},${data.length}`),
  'ewtunefake-1.0.dist-info/RECORD,,'].join('\n');
const wheel = zipSync({ ...files, 'ewtunefake-1.0.dist-info/RECORD': strToU8(`${record}\n`) });
const wheelName = 'ewtunefake-1.0-py3-none-any.whl';
writeFileSync(join(index, wheelName), wheel);

const good: PypiMember = {
  artifact: { requirement: 'ewtunefake==1.0', format: 'wheel', filename: wheelName, sha256: sha(wheel) },
  member,
  sha256: sha(content),
};

function fetchError(code: string, pattern: RegExp) {
  return (e: unknown) => e instanceof FetchError && e.code === code && pattern.test(e.message);
}

describe('cache: pip download into the sha256-checked cache', function () {
  const saved = { noIndex: process.env.PIP_NO_INDEX, findLinks: process.env.PIP_FIND_LINKS };
  before(() => {
    process.env.PIP_NO_INDEX = '1';
    process.env.PIP_FIND_LINKS = index;
  });
  after(() => {
    for (const [key, value] of [['PIP_NO_INDEX', saved.noIndex], ['PIP_FIND_LINKS', saved.findLinks]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('fetches, checks both hashes and writes the member; a second call does nothing (pip is not run again)', async () => {
    const out = join(dir, 'ok', 'data.csv');
    const archives = join(dir, 'ok', 'archives');
    const first = await ensurePypiFile(good, out, { archiveDir: archives });
    assert.deepEqual(first, { path: out, fetched: true });
    assert.deepEqual(readFileSync(out), Buffer.from(content));
    assert.deepEqual(readdirSync(archives), [wheelName]); // no staging folder left behind
    const second = await ensurePypiFile(good, out, { archiveDir: archives, python: join(dir, 'no-such-python') });
    assert.deepEqual(second, { path: out, fetched: false });
  });

  it('a cached archive with the wrong bytes is replaced by a fresh download', async () => {
    const archives = join(dir, 'replace');
    mkdirSync(archives);
    writeFileSync(join(archives, wheelName), 'truncated');
    const path = await pipDownload(good.artifact, archives);
    assert.equal(sha(readFileSync(path)), good.artifact.sha256);
  });

  it('wrong archive hash: ERR_FETCH_HASH naming both hashes, nothing kept', async () => {
    const archives = join(dir, 'badhash');
    const wrong = { ...good.artifact, sha256: '0'.repeat(64) };
    await assert.rejects(pipDownload(wrong, archives), fetchError('ERR_FETCH_HASH', new RegExp(`sha256 ${good.artifact.sha256}, expected 0{64}`)));
    assert.deepEqual(readdirSync(archives), []);
  });

  it('wrong hash of the extracted file: ERR_FETCH_HASH, no output file', async () => {
    const out = join(dir, 'badmember', 'data.csv');
    await assert.rejects(ensurePypiFile({ ...good, sha256: 'f'.repeat(64) }, out, { archiveDir: join(dir, 'badmember', 'a') }),
      fetchError('ERR_FETCH_HASH', /ewtunefake\/corpora\/data\.csv in .* has sha256/));
    assert.equal(existsSync(out), false);
  });

  it('a member the archive lacks: ERR_FETCH_ARCHIVE naming it', async () => {
    await assert.rejects(ensurePypiFile({ ...good, member: 'ewtunefake/other.csv' }, join(dir, 'nomember', 'x'), { archiveDir: join(dir, 'nomember') }),
      fetchError('ERR_FETCH_ARCHIVE', /no member "ewtunefake\/other\.csv"/));
  });

  it('no Python / no pip: ERR_FETCH_TOOL; a package pip cannot find (as without network): ERR_FETCH_DOWNLOAD', async () => {
    await assert.rejects(pipDownload(good.artifact, join(dir, 'nopython'), { python: join(dir, 'no-such-python') }), fetchError('ERR_FETCH_TOOL', /not found/));
    const venv = join(dir, 'venv-without-pip');
    execFileSync('python3', ['-m', 'venv', '--without-pip', venv]);
    await assert.rejects(pipDownload(good.artifact, join(dir, 'nopip'), { python: join(venv, 'bin', 'python') }), fetchError('ERR_FETCH_TOOL', /has no pip/));
    const missing = { ...good.artifact, requirement: 'ewtunemissing==1.0', filename: 'ewtunemissing-1.0-py3-none-any.whl' };
    await assert.rejects(pipDownload(missing, join(dir, 'missing')), fetchError('ERR_FETCH_DOWNLOAD', /ewtunemissing==1\.0/));
  });

  it('reads members of a .tar.gz sdist; a corrupt archive is ERR_FETCH_ARCHIVE', async () => {
    const tar = await packTar([
      { header: { name: 'pkg-1.0/test/corpora/a&b.csv', size: content.length, type: 'file' }, body: content },
      { header: { name: 'pkg-1.0/setup.py', size: 0, type: 'file' }, body: new Uint8Array(0) },
    ]);
    const path = join(dir, 'pkg-1.0.tar.gz');
    writeFileSync(path, gzipSync(tar));
    const got = await readArchiveMembers(path, ['pkg-1.0/test/corpora/a&b.csv']);
    assert.deepEqual(Buffer.from(got.get('pkg-1.0/test/corpora/a&b.csv') as Uint8Array), Buffer.from(content));
    const corrupt = join(dir, 'corrupt.tar.gz');
    writeFileSync(corrupt, 'not gzip');
    await assert.rejects(readArchiveMembers(corrupt, ['x']), fetchError('ERR_FETCH_ARCHIVE', /cannot be read as an archive/));
  });
});

describe('cli: ewtune data fetch', () => {
  it('an unknown corpus or a missing name is a usage error (exit 2) naming the argument', async () => {
    const err: string[] = [];
    const io = { out: () => undefined, err: (t: string) => void err.push(t) };
    assert.equal(await main(['data', 'fetch', 'sst2'], io), 2);
    assert.match(err.join(''), /<corpus> must be one of polarity, tweets, all; got "sst2"/);
    assert.equal(await main(['data', 'fetch'], io), 2);
  });
});
