/**
 * The native TensorFlow backend, built from registry packages only (`npm run setup:native`, `ewtune setup native`).
 *
 * `@tensorflow/tfjs-node(-gpu)`'s own install script downloads libtensorflow from a storage host this project cannot
 * reach. Instead, {@link setupNative}:
 * 1. fetches the package tarball with `npm pack` (sha512 pinned) and its runtime dependencies with `npm ci
 *    --ignore-scripts` from a committed lock file (./native-deps/) — never `@tensorflow/tfjs` itself, which must
 *    resolve from the project so that one tfjs-core engine serves both;
 * 2. fetches PyPI's TensorFlow wheel with `pip download --no-deps` (version, file name and sha256 pinned), extracts
 *    `libtensorflow_cc.so.2`, `libtensorflow_framework.so.2` and the C headers into the package's `deps/`, and links
 *    `libtensorflow.so` (the name the binding links and the package's own install script checks) to them;
 * 3. builds the N-API binding with node-pre-gyp/node-gyp against the system's Node headers (nothing downloaded);
 * 4. places the package into `node_modules/@tensorflow/<package>` (a real directory: its `require('@tensorflow/tfjs')`
 *    then resolves to the project's copy) with `deps/` a symbolic link into the cache, and
 * 5. verifies, in a child process with `LD_BIND_NOW=1` (so a missing symbol fails at load, not at first call), that
 *    the project's own `import * as tf from '@tensorflow/tfjs'` then reports `tf.getBackend() === 'tensorflow'` and
 *    computes a small product correctly.
 *
 * Everything heavy lives in the cache `${EWTUNE_CACHE:-<project>/.ewtune-cache}/native/<variant>/` (git-ignored),
 * stamped with the build inputs (wheel sha256, versions, Node ABI/N-API, compiler); a second run with the same
 * inputs only re-places and re-verifies, so it survives `npm ci` (which wipes node_modules) in a second or two.
 * Every failure is a {@link NativeSetupError} saying what is missing and what to run.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync, createReadStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync,
  rmSync, statfsSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EwtuneError } from '../errors.ts';
import { PACKAGE_ROOT } from '../package-root.ts';

/** Bumped whenever the recipe below changes what ends up in the cache (forces a rebuild). */
export const NATIVE_RECIPE_VERSION = 1;

/** A failed native setup: `message` says what is wrong and what to run. */
export class NativeSetupError extends EwtuneError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NATIVE_SETUP', message, options);
  }
}

/** One pinned wheel. */
export interface PinnedWheel {
  /** PyPI project name, e.g. `tensorflow-cpu`. */
  readonly project: string;
  readonly version: string;
  /** The exact file `pip download` must produce. */
  readonly file: string;
  /** sha256 of that file (hex), observed when the pin was made. */
  readonly sha256: string;
  /** pip's target selection, so the same file is chosen whatever the local Python is. */
  readonly pythonVersion: string;
  readonly abi: string;
  readonly platform: string;
}

/** A native variant: which npm package, which wheel. */
export interface NativeVariant {
  readonly id: 'cpu' | 'gpu';
  readonly npmPackage: '@tensorflow/tfjs-node' | '@tensorflow/tfjs-node-gpu';
  readonly npmVersion: string;
  /** npm's `dist.integrity` of the tarball (sha512, base64). */
  readonly npmIntegrity: string;
  readonly wheel: PinnedWheel;
  /** GPU: also fetch the wheel's `and-cuda` extra (the nvidia-*-cu12 wheels, pinned by the TF wheel's metadata). */
  readonly cuda: boolean;
  /** Free disk the build needs in the cache (bytes), checked before any download. */
  readonly diskNeeded: number;
}

const TFJS_VERSION = '4.22.0';
const TF_VERSION = '2.21.0';

/** The CPU variant: `@tensorflow/tfjs-node` 4.22.0 on `tensorflow-cpu==2.21.0` (cp311, manylinux_2_27 x86_64). */
export const CPU_VARIANT: NativeVariant = {
  id: 'cpu',
  npmPackage: '@tensorflow/tfjs-node',
  npmVersion: TFJS_VERSION,
  npmIntegrity: 'sha512-uHrXeUlfgkMxTZqHkESSV7zSdKdV0LlsBeblqkuKU9nnfxB1pC6DtoyYVaLxznzZy7WQSegjcohxxCjAf6Dc7w==',
  wheel: {
    project: 'tensorflow-cpu',
    version: TF_VERSION,
    file: 'tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl',
    sha256: '2b847d217b02ee7731ed91431daf3250daa0196c3c94614d23be27232e6e5b6c',
    pythonVersion: '3.11',
    abi: 'cp311',
    platform: 'manylinux_2_27_x86_64',
  },
  cuda: false,
  diskNeeded: 1.6e9,
};

/**
 * The GPU variant: `@tensorflow/tfjs-node-gpu` 4.22.0 on `tensorflow==2.21.0` + its `and-cuda` wheels. The CUDA
 * libraries are found through the framework library's RUNPATH `$ORIGIN/../nvidia/<lib>/lib` (extracted to
 * `deps/nvidia/`); `libcuda.so.1` comes from the host's driver.
 */
export const GPU_VARIANT: NativeVariant = {
  id: 'gpu',
  npmPackage: '@tensorflow/tfjs-node-gpu',
  npmVersion: TFJS_VERSION,
  npmIntegrity: 'sha512-p//NN6DGiN4hInUmIkRffaFVMcdTREUMjPyjW04J7OXvB2zBlQimj61eFKSgRrH3f5TnOfKzb0n56he/B6a4bw==',
  wheel: {
    project: 'tensorflow',
    version: TF_VERSION,
    file: 'tensorflow-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl',
    sha256: '9056fbc9ba04235810b71ae6cbd958a196e8804fb53bbcffbf3e23b56155f124',
    pythonVersion: '3.11',
    abi: 'cp311',
    platform: 'manylinux_2_27_x86_64',
  },
  cuda: true,
  diskNeeded: 9e9,
};

/** Options of {@link setupNative}. */
export interface NativeSetupOptions {
  /** Set up `@tensorflow/tfjs-node-gpu` instead (default false). */
  readonly gpu?: boolean;
  /** Project root (holds node_modules/@tensorflow/tfjs); default: this checkout. */
  readonly projectDir?: string;
  /** Cache root; default `$EWTUNE_CACHE` or `<projectDir>/.ewtune-cache`. The build goes to `<cache>/native/`. */
  readonly cacheDir?: string;
  /** Rebuild even when the stamp matches (default false). */
  readonly force?: boolean;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
  /**
   * GPU variant only: build and verify even though no GPU is visible (TensorFlow then runs on the CPU). Default
   * false: `--gpu` without a GPU fails before downloading anything. For checking the recipe on a machine without one.
   */
  readonly allowNoGpu?: boolean;
}

/** What {@link setupNative} did. */
export interface NativeSetupResult {
  /** Which TensorFlow build: CPU (`@tensorflow/tfjs-node`) or GPU (`@tensorflow/tfjs-node-gpu`). */
  readonly variant: 'cpu' | 'gpu';
  /** The npm package placed (`@tensorflow/tfjs-node` or `@tensorflow/tfjs-node-gpu`). */
  readonly npmPackage: string;
  /** True when the binding was built in this call (false: the cached build matched the stamp). */
  readonly built: boolean;
  /** True when the package was (re)placed into node_modules in this call. */
  readonly placed: boolean;
  /** The build directory in the cache. */
  readonly buildDir: string;
  /** Where the package now is. */
  readonly installedAt: string;
  /** Bytes on disk of the build directory (the cache entry). */
  readonly diskBytes: number;
  /** Wall time of this call (ms). */
  readonly elapsedMs: number;
  /** The TensorFlow version the binding reports. */
  readonly tensorflowVersion: string;
  /** The stamp written / matched. */
  readonly stamp: NativeStamp;
}

/** The build inputs; a cached build is reused only when all of them match. */
export interface NativeStamp {
  readonly recipe: number;
  readonly npmPackage: string;
  readonly npmVersion: string;
  readonly npmIntegrity: string;
  readonly wheel: string;
  readonly wheelSha256: string;
  readonly tensorflowVersion: string;
  readonly nodeAbi: string;
  readonly napiVersion: string;
  readonly nodeVersion: string;
  readonly platform: string;
  readonly compiler: string;
  readonly cudaWheels?: readonly { file: string; sha256: string }[];
}

const PROJECT_DIR = PACKAGE_ROOT;
const RUNTIME_DEPS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'native-deps');
const PLACEMENT_MARKER = '.ewtune-native.json';

/** The variant for `gpu`. */
export function nativeVariant(gpu: boolean): NativeVariant {
  return gpu ? GPU_VARIANT : CPU_VARIANT;
}

/** `<cache>/native/<variant>-<npm version>-tf<version>`, the build directory of a variant. */
export function nativeBuildDir(variant: NativeVariant, cacheDir: string = defaultCacheDir()): string {
  return join(cacheDir, 'native', `${variant.id}-tfjs${variant.npmVersion}-tf${variant.wheel.version}`);
}

/** `$EWTUNE_CACHE` or `<project>/.ewtune-cache`. */
export function defaultCacheDir(projectDir: string = PROJECT_DIR): string {
  const env = process.env.EWTUNE_CACHE;
  return env !== undefined && env !== '' ? resolve(env) : join(projectDir, '.ewtune-cache');
}

function setupCommand(variant: NativeVariant): string {
  return variant.id === 'gpu' ? 'npx ewtune setup native --gpu' : 'npm run setup:native';
}

function run(cmd: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, {
    cwd: options.cwd, env: options.env ?? process.env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024,
  });
}

/** Last `n` non-empty lines of a tool's output, for an error message. */
function tail(result: SpawnSyncReturns<string>, n = 6): string {
  const text = `${result.stdout ?? ''}\n${result.stderr ?? ''}`.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
  return text.slice(-n).map((l) => `    ${l}`).join('\n');
}

function firstLine(result: SpawnSyncReturns<string>): string {
  return `${result.stdout ?? ''}${result.stderr ?? ''}`.split('\n')[0].trim();
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function integrityOf(path: string): Promise<string> {
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha512-${hash.digest('base64')}`;
}

/** Bytes on disk under `path` (allocated blocks; symbolic links are not followed). */
export function diskUsage(path: string): number {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return 0;
  }
  let total = st.blocks * 512;
  if (st.isDirectory()) for (const name of readdirSync(path)) total += diskUsage(join(path, name));
  return total;
}

function formatBytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(0)} MB`;
}

// ---------------------------------------------------------------------------------------------------------------
// Preflight: tools, Node headers, disk, the project's tfjs.

interface Toolchain {
  readonly python: string;
  readonly compiler: string;
  readonly nodeGyp: string;
  readonly nodeDir: string;
}

function checkPlatform(): void {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new NativeSetupError(`the native backend recipe supports linux x64 only (this is ${process.platform} ${process.arch}); ` +
      "use backend 'wasm' (the default fallback of 'auto')");
  }
}

/** The project's `@tensorflow/tfjs` and `tfjs-core` must be the version the native package is built for. */
function checkProjectTfjs(projectDir: string, variant: NativeVariant): void {
  for (const name of ['@tensorflow/tfjs', '@tensorflow/tfjs-core']) {
    const file = join(projectDir, 'node_modules', name, 'package.json');
    if (!existsSync(file)) {
      throw new NativeSetupError(`${name} is not installed in ${projectDir}/node_modules; run \`npm ci\` first, then ${setupCommand(variant)}`);
    }
    const version = (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version;
    if (version !== variant.npmVersion) {
      throw new NativeSetupError(`${name} ${String(version)} is installed but ${variant.npmPackage} ${variant.npmVersion} needs ${variant.npmVersion}; ` +
        'run `npm ci` to restore the locked versions');
    }
  }
}

function checkToolchain(variant: NativeVariant): Toolchain {
  const missing: string[] = [];
  let python = '';
  const fromEnv = process.env.EWTUNE_PYTHON;
  for (const candidate of fromEnv !== undefined && fromEnv !== '' ? [fromEnv] : ['python3', 'python']) {
    const r = run(candidate, ['-m', 'pip', '--version']);
    if (r.status === 0) {
      python = candidate;
      break;
    }
  }
  if (python === '') missing.push(`Python 3 with pip (${fromEnv ? `EWTUNE_PYTHON=${fromEnv} has no pip` : 'apt-get install -y python3 python3-pip'})`);
  const gxx = run('g++', ['--version']);
  const compiler = gxx.status === 0 ? firstLine(gxx) : '';
  if (compiler === '') missing.push('a C++ compiler (apt-get install -y g++)');
  if (run('make', ['--version']).status !== 0) missing.push('make (apt-get install -y make)');
  const npmGyp = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const nodeGyp = process.env.npm_config_node_gyp !== undefined && existsSync(process.env.npm_config_node_gyp)
    ? process.env.npm_config_node_gyp : npmGyp;
  if (!existsSync(nodeGyp)) missing.push('node-gyp (it comes with npm; or npm i -g node-gyp and set npm_config_node_gyp)');
  const nodeDir = resolve(dirname(process.execPath), '..');
  if (!existsSync(join(nodeDir, 'include', 'node', 'node_api.h'))) {
    missing.push(`Node's C headers (${nodeDir}/include/node/node_api.h; Debian's/NodeSource's nodejs package ships them)`);
  }
  if (missing.length > 0) {
    throw new NativeSetupError(`cannot build the native backend: missing ${missing.join('; ')}. Install, then run ${setupCommand(variant)}`);
  }
  return { python, compiler, nodeGyp, nodeDir };
}

function checkDisk(dir: string, needed: number, variant: NativeVariant): void {
  mkdirSync(dir, { recursive: true });
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  if (free < needed) {
    throw new NativeSetupError(`not enough disk for the native backend: ${formatBytes(free)} free under ${dir}, ` +
      `${formatBytes(needed)} needed; free some space or set EWTUNE_CACHE to a larger disk, then run ${setupCommand(variant)}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Build.

function stampFor(variant: NativeVariant, compiler: string): NativeStamp {
  return {
    recipe: NATIVE_RECIPE_VERSION,
    npmPackage: variant.npmPackage,
    npmVersion: variant.npmVersion,
    npmIntegrity: variant.npmIntegrity,
    wheel: variant.wheel.file,
    wheelSha256: variant.wheel.sha256,
    tensorflowVersion: variant.wheel.version,
    nodeAbi: process.versions.modules,
    napiVersion: process.versions.napi ?? '',
    nodeVersion: process.version,
    platform: `${process.platform}-${process.arch}`,
    compiler,
  };
}

/** Compares the inputs of two stamps (the CUDA wheel list is an output of the GPU build, not an input). */
function sameInputs(a: NativeStamp, b: NativeStamp): boolean {
  const keys: (keyof NativeStamp)[] = ['recipe', 'npmPackage', 'npmVersion', 'npmIntegrity', 'wheel', 'wheelSha256',
    'tensorflowVersion', 'nodeAbi', 'napiVersion', 'nodeVersion', 'platform', 'compiler'];
  return keys.every((k) => a[k] === b[k]);
}

function readStamp(path: string): NativeStamp | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as NativeStamp;
  } catch {
    return undefined;
  }
}

function bindingPath(packageDir: string): string | undefined {
  const lib = join(packageDir, 'lib');
  if (!existsSync(lib)) return undefined;
  for (const dir of readdirSync(lib)) {
    const file = join(lib, dir, 'tfjs_binding.node');
    if (dir.startsWith('napi-v') && existsSync(file)) return file;
  }
  return undefined;
}

/** `npm pack` the package into `dir`, verify its sha512 against the pin, unpack it to `dir/package`. */
async function fetchNpmPackage(variant: NativeVariant, dir: string, log: (l: string) => void): Promise<string> {
  const spec = `${variant.npmPackage}@${variant.npmVersion}`;
  log(`  npm pack ${spec}`);
  const pack = run('npm', ['pack', spec, '--pack-destination', dir, '--silent'], { cwd: dir });
  if (pack.status !== 0) {
    throw new NativeSetupError(`npm pack ${spec} failed (is the npm registry reachable?):\n${tail(pack)}\nthen run ${setupCommand(variant)}`);
  }
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (tgz === undefined) throw new NativeSetupError(`npm pack ${spec} produced no tarball; run ${setupCommand(variant)} again`);
  const integrity = await integrityOf(join(dir, tgz));
  if (integrity !== variant.npmIntegrity) {
    throw new NativeSetupError(`${spec} tarball has integrity ${integrity}, expected ${variant.npmIntegrity} (corrupt or altered download); ` +
      `run ${setupCommand(variant)} again`);
  }
  const untar = run('tar', ['xzf', tgz], { cwd: dir });
  if (untar.status !== 0) throw new NativeSetupError(`cannot unpack ${tgz}:\n${tail(untar)}`);
  rmSync(join(dir, tgz));
  return join(dir, 'package');
}

/** The runtime dependencies (without @tensorflow/tfjs) from the committed lock, into `packageDir/node_modules`. */
function installRuntimeDeps(packageDir: string, work: string, variant: NativeVariant, log: (l: string) => void): void {
  const depsDir = join(work, 'runtime-deps');
  mkdirSync(depsDir, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(RUNTIME_DEPS_DIR, f), join(depsDir, f));
  log('  npm ci --ignore-scripts (runtime dependencies of the package, from src/setup/native-deps/package-lock.json)');
  const ci = run('npm', ['ci', '--ignore-scripts', '--omit=dev', '--no-audit', '--no-fund', '--silent'], { cwd: depsDir });
  if (ci.status !== 0) {
    throw new NativeSetupError(`npm ci of the native package's runtime dependencies failed:\n${tail(ci)}\nthen run ${setupCommand(variant)}`);
  }
  renameSync(join(depsDir, 'node_modules'), join(packageDir, 'node_modules'));
  rmSync(depsDir, { recursive: true, force: true });
}

/** `pip download --no-deps` one pinned wheel into `dir`; returns its path after the name and sha256 checks. */
async function downloadWheel(python: string, wheel: PinnedWheel, dir: string, variant: NativeVariant,
  log: (l: string) => void, expectSha = true): Promise<string> {
  const spec = `${wheel.project}==${wheel.version}`;
  log(`  pip download --no-deps ${spec} (${wheel.abi}, ${wheel.platform})`);
  mkdirSync(dir, { recursive: true });
  const r = run(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '-q',
    '--python-version', wheel.pythonVersion, '--implementation', 'cp', '--abi', wheel.abi, '--platform', wheel.platform,
    '-d', dir, spec]);
  if (r.status !== 0) {
    throw new NativeSetupError(`pip download ${spec} failed (is PyPI reachable? is ${wheel.version} published for ${wheel.abi} ${wheel.platform}?):\n` +
      `${tail(r)}\nthen run ${setupCommand(variant)}`);
  }
  const path = join(dir, wheel.file);
  if (!existsSync(path)) {
    const got = readdirSync(dir).filter((f) => f.endsWith('.whl')).join(', ');
    throw new NativeSetupError(`pip download ${spec} gave ${got || 'no wheel'}, not the pinned ${wheel.file} (wrong wheel version?); ` +
      `delete ${dir} and run ${setupCommand(variant)} again`);
  }
  if (expectSha) {
    const sha = await sha256File(path);
    if (sha !== wheel.sha256) {
      throw new NativeSetupError(`${wheel.file} has sha256 ${sha}, expected ${wheel.sha256} (corrupt or altered download); ` +
        `run ${setupCommand(variant)} again (it downloads afresh)`);
    }
  }
  return path;
}

/**
 * The Python helper that reads a wheel (a zip): checks METADATA's Version, then extracts the members matching the
 * rules, stripping a prefix, and prints JSON {version, extracted, requires}. Python's zipfile, since pip (hence
 * Python) is a requirement of this recipe anyway.
 */
const EXTRACT_PY = String.raw`
import json, os, re, shutil, sys, zipfile
wheel, dest, rules, want_version = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
z = zipfile.ZipFile(wheel)
names = z.namelist()
meta = [n for n in names if n.endswith('.dist-info/METADATA')]
text = z.read(meta[0]).decode('utf8') if meta else ''
m = re.search(r'^Version: (.+)$', text, re.M)
version = m.group(1).strip() if m else ''
if want_version and version != want_version:
    print(json.dumps({'version': version, 'extracted': 0, 'requires': []})); sys.exit(3)
requires = [l.split(':', 1)[1].strip() for l in text.splitlines() if l.startswith('Requires-Dist:')]
n = 0
for name in names:
    if name.endswith('/'):
        continue
    for prefix, strip, pattern, into in rules:
        if name.startswith(prefix) and re.search(pattern, name):
            rel = into + name[len(strip):]
            out = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, 'wb') as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            n += 1
            break
print(json.dumps({'version': version, 'extracted': n, 'requires': requires}))
`;

interface Extracted {
  readonly version: string;
  readonly extracted: number;
  readonly requires: readonly string[];
}

/** Extraction rules: [member prefix, prefix to strip, regex on the member name, prefix to add]. */
type Rules = readonly (readonly [string, string, string, string])[];

function extractWheel(python: string, wheelPath: string, dest: string, rules: Rules, wantVersion: string,
  variant: NativeVariant): Extracted {
  const r = run(python, ['-c', EXTRACT_PY, wheelPath, dest, JSON.stringify(rules), wantVersion]);
  let parsed: Extracted | undefined;
  try {
    parsed = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Extracted;
  } catch {
    parsed = undefined;
  }
  if (r.status === 3 && parsed !== undefined) {
    throw new NativeSetupError(`${wheelPath} is version ${parsed.version}, not ${wantVersion} (wrong wheel); run ${setupCommand(variant)} again`);
  }
  if (r.status !== 0 || parsed === undefined) {
    throw new NativeSetupError(`cannot read ${wheelPath} (corrupt download?):\n${tail(r)}\nrun ${setupCommand(variant)} again`);
  }
  return parsed;
}

/** The members of the TensorFlow wheel the binding needs: the two libraries and the C API headers. */
const TF_RULES: Rules = [
  ['tensorflow/libtensorflow_cc.so.2', 'tensorflow/', '.', 'lib/'],
  ['tensorflow/libtensorflow_framework.so.2', 'tensorflow/', '.', 'lib/'],
  ['tensorflow/include/tensorflow/c/', 'tensorflow/', '\\.h$', ''],
  ['tensorflow/include/tensorflow/core/platform/ctstring', 'tensorflow/', '\\.h$', ''],
  ['tensorflow/include/tsl/platform/', 'tensorflow/', '\\.h$', ''],
  ['tensorflow/include/xla/tsl/c/', 'tensorflow/', '\\.h$', ''],
];

/**
 * The `and-cuda` extra of the TF wheel's metadata, as pinned `name==version` specs. TF 2.21 states ranges
 * (`nvidia-cublas-cu12<13.0,>=12.5.3.2; extra == "and-cuda"`): each is pinned to its lower bound, the version TF
 * was built against, so the set is fixed by the (sha256-pinned) TF wheel. A requirement without a lower bound is
 * refused.
 */
export function cudaRequirements(requires: readonly string[]): string[] {
  const out: string[] = [];
  for (const req of requires) {
    const [spec, marker] = req.split(';').map((s) => s.trim());
    if (marker === undefined || !/extra\s*==\s*["']and-cuda["']/.test(marker)) continue;
    const m = /^([A-Za-z0-9_.-]+)\s*\(?([^)]*)\)?$/.exec(spec);
    const clauses = (m?.[2] ?? '').split(',').map((c) => c.trim());
    const lower = clauses.map((c) => /^(?:==|>=)\s*([A-Za-z0-9_.+-]+)$/.exec(c)?.[1]).find((v) => v !== undefined);
    if (m === null || lower === undefined) {
      throw new NativeSetupError(`the TensorFlow wheel's and-cuda requirement '${spec}' has no exact version or lower bound to pin`);
    }
    out.push(`${m[1]}==${lower}`);
  }
  return out;
}

async function fetchCudaWheels(python: string, requires: readonly string[], work: string, deps: string,
  variant: NativeVariant, log: (l: string) => void): Promise<{ file: string; sha256: string }[]> {
  const specs = cudaRequirements(requires);
  if (specs.length === 0) throw new NativeSetupError(`the ${variant.wheel.project} ${variant.wheel.version} wheel lists no and-cuda requirements`);
  const dir = join(work, 'cuda-wheels');
  const done: { file: string; sha256: string }[] = [];
  for (const spec of specs) {
    log(`  pip download --no-deps ${spec}`);
    mkdirSync(dir, { recursive: true });
    // pip checks each file against the sha256 the index lists for it; its own sha256 goes into the stamp.
    const r = run(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '-q',
      '--python-version', variant.wheel.pythonVersion, '--implementation', 'cp', '--abi', variant.wheel.abi,
      '--platform', variant.wheel.platform, '--platform', 'manylinux2014_x86_64', '--platform', 'manylinux_2_17_x86_64',
      '-d', dir, spec]);
    if (r.status !== 0) throw new NativeSetupError(`pip download ${spec} failed:\n${tail(r)}\nthen run ${setupCommand(variant)}`);
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.whl'))) {
      const path = join(dir, file);
      done.push({ file, sha256: await sha256File(path) });
      // nvidia/<lib>/lib/*.so* → deps/nvidia/<lib>/lib, where the framework library's RUNPATH looks.
      extractWheel(python, path, deps, [['nvidia/', '', '/lib/[^/]*\\.so[.0-9]*$', '']], '', variant);
      rmSync(path);
    }
  }
  return done;
}

function linkLibraries(lib: string): void {
  const links: [string, string][] = [
    ['libtensorflow.so', 'libtensorflow_cc.so.2'],
    ['libtensorflow.so.2', 'libtensorflow_cc.so.2'],
    // The package's own install script skips its download when this file exists.
    ['libtensorflow.so.2.9.1', 'libtensorflow_cc.so.2'],
    ['libtensorflow_framework.so', 'libtensorflow_framework.so.2'],
  ];
  for (const [name, target] of links) {
    rmSync(join(lib, name), { force: true });
    symlinkSync(target, join(lib, name));
  }
}

function buildBinding(packageDir: string, tools: Toolchain, variant: NativeVariant, log: (l: string) => void): void {
  log(`  node-pre-gyp install --build-from-source --nodedir=${tools.nodeDir} (${tools.compiler})`);
  const preGyp = join(packageDir, 'node_modules', '@mapbox', 'node-pre-gyp', 'bin', 'node-pre-gyp');
  const r = run(process.execPath, [preGyp, 'install', '--build-from-source', `--nodedir=${tools.nodeDir}`], {
    cwd: packageDir,
    env: { ...process.env, npm_config_node_gyp: tools.nodeGyp, npm_config_nodedir: tools.nodeDir, JOBS: '2' },
  });
  if (r.status !== 0 || bindingPath(packageDir) === undefined) {
    throw new NativeSetupError(`building the ${variant.npmPackage} binding failed:\n${tail(r, 12)}\n` +
      `fix the cause above (compiler, headers), then run ${setupCommand(variant)}`);
  }
  // Keep the binding, drop the object files.
  for (const dir of readdirSync(packageDir)) {
    if (dir === 'build' || dir.startsWith('build-tmp-')) rmSync(join(packageDir, dir), { recursive: true, force: true });
  }
}

async function build(variant: NativeVariant, buildDir: string, tools: Toolchain, stamp: NativeStamp,
  log: (l: string) => void): Promise<NativeStamp> {
  const work = `${buildDir}.partial`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const packageDir = await fetchNpmPackage(variant, work, log);
  installRuntimeDeps(packageDir, work, variant, log);
  const wheelPath = await downloadWheel(tools.python, variant.wheel, join(work, 'wheel'), variant, log);
  const deps = join(packageDir, 'deps');
  log(`  extract libtensorflow_cc.so.2, libtensorflow_framework.so.2 and the C API headers into deps/`);
  const tfWheel = extractWheel(tools.python, wheelPath, deps, TF_RULES, variant.wheel.version, variant);
  rmSync(join(work, 'wheel'), { recursive: true, force: true });
  for (const f of ['lib/libtensorflow_cc.so.2', 'lib/libtensorflow_framework.so.2', 'include/tensorflow/c/c_api.h', 'include/tensorflow/c/eager/c_api.h']) {
    if (!existsSync(join(deps, f))) {
      throw new NativeSetupError(`${variant.wheel.file} has no ${f.replace(/^lib\//, 'tensorflow/').replace(/^include\//, 'tensorflow/include/')} ` +
        `(not the wheel this recipe was written for); run ${setupCommand(variant)} again`);
    }
  }
  linkLibraries(join(deps, 'lib'));
  let cudaWheels: { file: string; sha256: string }[] | undefined;
  if (variant.cuda) cudaWheels = await fetchCudaWheels(tools.python, tfWheel.requires, work, deps, variant, log);
  buildBinding(packageDir, tools, variant, log);
  const finalStamp: NativeStamp = cudaWheels ? { ...stamp, cudaWheels } : stamp;
  writeFileSync(join(work, 'stamp.json'), `${JSON.stringify(finalStamp, null, 2)}\n`);
  rmSync(buildDir, { recursive: true, force: true });
  renameSync(work, buildDir);
  return finalStamp;
}

// ---------------------------------------------------------------------------------------------------------------
// Placement into node_modules and verification.

/**
 * Copy the built package (everything but `deps/`, a few MB) into `node_modules/<package>` and link `deps` to the
 * cache. A real directory, not a link to the cache: Node resolves a linked package's requires from its real path,
 * which would load a second `@tensorflow/tfjs-core` and register 'tensorflow' on an engine the project never sees.
 * The binding's RUNPATH `$ORIGIN/../../deps/lib` then goes through the `deps` link.
 */
function place(buildDir: string, target: string, stamp: NativeStamp): boolean {
  const packageDir = join(buildDir, 'package');
  const deps = join(packageDir, 'deps');
  const marker = readStamp(join(target, PLACEMENT_MARKER));
  let linked = false;
  try {
    linked = readlinkSync(join(target, 'deps')) === deps;
  } catch {
    linked = false;
  }
  if (marker !== undefined && sameInputs(marker, stamp) && linked && bindingPath(target) !== undefined) return false;
  rmSync(target, { recursive: true, force: true });
  mkdirSync(dirname(target), { recursive: true });
  cpSync(packageDir, target, { recursive: true, verbatimSymlinks: true, filter: (src) => src !== deps });
  symlinkSync(deps, join(target, 'deps'));
  writeFileSync(join(target, PLACEMENT_MARKER), `${JSON.stringify(stamp, null, 2)}\n`);
  return true;
}

/** The check a child process runs from the project root (so resolution is the project's own). */
const VERIFY_JS = String.raw`
import * as tf from '@tensorflow/tfjs';
const name = process.argv[1];
await import(name);
await tf.setBackend('tensorflow');
const backend = tf.getBackend();
const y = tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])).dataSync();
const binding = tf.backend().binding;
console.log(JSON.stringify({ backend, product: Array.from(y), tensorflowVersion: binding?.TF_Version ?? '' }));
`;

/** Load the placed package in a child process; returns the TF version or throws a NativeSetupError. */
export function verifyNative(projectDir: string, variant: NativeVariant): string {
  const r = run(process.execPath, ['--input-type=module', '-e', VERIFY_JS, variant.npmPackage], {
    cwd: projectDir, env: { ...process.env, LD_BIND_NOW: '1', TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  const out = `${r.stdout}\n${r.stderr}`;
  const symbol = /undefined symbol: (\S+)/.exec(out);
  if (symbol) {
    throw new NativeSetupError(`the ${variant.npmPackage} binding needs symbol ${symbol[1]}, which libtensorflow from ${variant.wheel.file} does not export ` +
      `(a wheel of another TensorFlow version?); delete ${nativeBuildDir(variant, defaultCacheDir(projectDir))} and run ${setupCommand(variant)}`);
  }
  if (/NODE_MODULE_VERSION|was compiled against a different Node\.js version|invalid ELF header|wrong ELF class/.test(out)) {
    throw new NativeSetupError(`the ${variant.npmPackage} binding was built for another Node.js (this is ${process.version}, ABI ${process.versions.modules}); ` +
      `run ${setupCommand(variant)} (it rebuilds for this Node)`);
  }
  const missingLib = /(lib[\w.+-]+\.so[.\d]*): cannot open shared object file/.exec(out);
  if (missingLib) {
    throw new NativeSetupError(`the ${variant.npmPackage} binding cannot load ${missingLib[1]}` +
      `${missingLib[1].startsWith('libcuda') ? ' (the NVIDIA driver; no GPU driver on this machine)' : ` (is ${join(projectDir, 'node_modules', variant.npmPackage, 'deps')} intact?)`}; run ${setupCommand(variant)}`);
  }
  let parsed: { backend?: string; product?: number[]; tensorflowVersion?: string } | undefined;
  try {
    parsed = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as typeof parsed;
  } catch {
    parsed = undefined;
  }
  if (r.status !== 0 || parsed === undefined) {
    throw new NativeSetupError(`loading ${variant.npmPackage} failed:\n${tail(r, 8)}\nrun ${setupCommand(variant)}`);
  }
  if (parsed.backend !== 'tensorflow') {
    throw new NativeSetupError(`after importing ${variant.npmPackage}, the project's @tensorflow/tfjs reports backend '${String(parsed.backend)}', not 'tensorflow' ` +
      `(a second copy of @tensorflow/tfjs-core under node_modules/${variant.npmPackage}/node_modules?); run ${setupCommand(variant)}`);
  }
  if (JSON.stringify(parsed.product) !== JSON.stringify([19, 22, 43, 50])) {
    throw new NativeSetupError(`${variant.npmPackage} computed [[1,2],[3,4]]·[[5,6],[7,8]] = ${JSON.stringify(parsed.product)}, not [19,22,43,50]`);
  }
  return parsed.tensorflowVersion ?? '';
}

/** Whether a visible NVIDIA driver (libcuda.so.1) and device exist on this machine. */
export function gpuVisible(): { visible: boolean; reason: string } {
  const devices = existsSync('/dev') ? readdirSync('/dev').filter((f) => /^nvidia\d+$/.test(f)) : [];
  const ldconfig = run('/sbin/ldconfig', ['-p']);
  const libcuda = ldconfig.status === 0 && /libcuda\.so\.1\b/.test(ldconfig.stdout);
  if (devices.length > 0 && libcuda) return { visible: true, reason: `${devices.length} NVIDIA device(s) and libcuda.so.1` };
  if (devices.length === 0 && !libcuda) return { visible: false, reason: 'no NVIDIA device (/dev/nvidia*) and no driver (libcuda.so.1)' };
  return { visible: false, reason: devices.length === 0 ? 'libcuda.so.1 present but no /dev/nvidia* device' : '/dev/nvidia* present but no libcuda.so.1' };
}

/**
 * Set up the native backend (see the module comment). Idempotent: with an unchanged stamp it only re-places the
 * package into node_modules (after `npm ci`) and verifies it. Throws {@link NativeSetupError} with what is wrong and
 * what to run; nothing it does touches the wasm or cpu backends.
 */
export async function setupNative(options: NativeSetupOptions = {}): Promise<NativeSetupResult> {
  const started = performance.now();
  const variant = nativeVariant(options.gpu === true);
  const log = options.log ?? (() => {});
  const projectDir = resolve(options.projectDir ?? PROJECT_DIR);
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir(projectDir));
  checkPlatform();
  checkProjectTfjs(projectDir, variant);
  if (variant.cuda) {
    const gpu = gpuVisible();
    if (!gpu.visible && options.allowNoGpu === true) log(`ewtune setup native --gpu: ${gpu.reason}; building anyway (allowNoGpu), TensorFlow will run on the CPU`);
    else if (!gpu.visible) {
      throw new NativeSetupError(`--gpu: ${gpu.reason}, so ${variant.npmPackage} cannot be verified here; ` +
        'on a machine with an NVIDIA driver run `npx ewtune setup native --gpu`; here use `npm run setup:native` (CPU), ' +
        'or `npx ewtune setup native --gpu --allow-no-gpu` to build it anyway (TensorFlow then runs on the CPU)');
    }
  }
  const buildDir = nativeBuildDir(variant, cacheDir);
  const gxx = run('g++', ['--version']);
  const stamp = stampFor(variant, gxx.status === 0 ? firstLine(gxx) : '');
  const cached = readStamp(join(buildDir, 'stamp.json'));
  let built = false;
  let finalStamp: NativeStamp;
  if (!options.force && cached !== undefined && sameInputs(cached, stamp) && bindingPath(join(buildDir, 'package')) !== undefined) {
    log(`ewtune setup native: cached build ${buildDir} matches (${variant.wheel.file}, sha256 ${variant.wheel.sha256.slice(0, 12)}…, Node ABI ${stamp.nodeAbi})`);
    finalStamp = cached;
  } else {
    log(`ewtune setup native: building ${variant.npmPackage} ${variant.npmVersion} on ${variant.wheel.project} ${variant.wheel.version} in ${buildDir}` +
      (cached !== undefined ? ' (stamp changed)' : ''));
    const tools = checkToolchain(variant);
    checkDisk(cacheDir, variant.diskNeeded, variant);
    finalStamp = await build(variant, buildDir, tools, stamp, log);
    built = true;
  }
  const installedAt = join(projectDir, 'node_modules', variant.npmPackage);
  const placed = place(buildDir, installedAt, finalStamp);
  log(placed ? `  placed into ${installedAt} (deps → ${join(buildDir, 'package', 'deps')})` : `  ${installedAt} already in place`);
  const tensorflowVersion = verifyNative(projectDir, variant);
  const diskBytes = diskUsage(buildDir);
  const elapsedMs = performance.now() - started;
  log(`ewtune setup native: ${variant.npmPackage} ready — tf.getBackend() === 'tensorflow', libtensorflow ${tensorflowVersion}; ` +
    `cache ${formatBytes(diskBytes)} in ${buildDir}; ${(elapsedMs / 1000).toFixed(1)} s${built ? ' (built)' : ''}`);
  return { variant: variant.id, npmPackage: variant.npmPackage, built, placed, buildDir, installedAt, diskBytes, elapsedMs, tensorflowVersion, stamp: finalStamp };
}

/**
 * Whether the native variant is set up for this project: placed in node_modules with a marker whose inputs match
 * this Node and the pinned versions (no loading; cheap). `reason` says what is missing.
 */
export function nativeStatus(gpu = false, projectDir: string = PROJECT_DIR): { ready: boolean; reason: string } {
  const variant = nativeVariant(gpu);
  const target = join(projectDir, 'node_modules', variant.npmPackage);
  if (!existsSync(join(target, 'package.json'))) return { ready: false, reason: `${variant.npmPackage} is not installed (run ${setupCommand(variant)})` };
  const marker = readStamp(join(target, PLACEMENT_MARKER));
  if (marker === undefined) return { ready: true, reason: `${variant.npmPackage} installed (not by ewtune setup)` };
  if (marker.nodeAbi !== process.versions.modules) {
    return { ready: false, reason: `${variant.npmPackage} was built for Node ABI ${marker.nodeAbi}, this is ${process.versions.modules} (run ${setupCommand(variant)})` };
  }
  if (bindingPath(target) === undefined || !existsSync(join(target, 'deps', 'lib', 'libtensorflow.so'))) {
    return { ready: false, reason: `${variant.npmPackage} is incomplete (binding or deps/lib missing; run ${setupCommand(variant)})` };
  }
  return { ready: true, reason: `${variant.npmPackage} set up by ewtune (libtensorflow ${marker.tensorflowVersion})` };
}
