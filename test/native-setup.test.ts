/**
 * The native backend's install step (src/setup/native.ts): its failures are one clear NativeSetupError saying what
 * is missing and what to run (checked before any download), and with the cached build it re-places the package into
 * a wiped node_modules — what `npm ci` leaves behind — and verifies it, without rebuilding.
 *
 * The re-placement test uses a scratch project whose node_modules links every installed package except
 * @tensorflow/tfjs-node (a node_modules as `npm ci` makes it) and the real cache; it needs the native backend set
 * up: it FAILS under CI=true when it is not and is skipped (with a message) elsewhere.
 */
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  cudaRequirements, defaultCacheDir, gpuVisible, nativeStatus, NativeSetupError, setupNative,
} from '../src/setup/native.ts';

const PROJECT = resolve('.');

function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'ewtune-native-setup-'));
}

describe('native backend setup (ewtune setup native)', function () {
  this.timeout(300_000);
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('a project without node_modules: one message saying to run npm ci first, then setup:native', async () => {
    const dir = scratch();
    dirs.push(dir);
    await assert.rejects(setupNative({ projectDir: dir, cacheDir: join(dir, 'cache') }), (e: unknown) =>
      e instanceof NativeSetupError && e.code === 'ERR_NATIVE_SETUP' && /run `npm ci` first, then npm run setup:native/.test(e.message)
      && !/\n\s+at /.test(e.message));
    assert.ok(!existsSync(join(dir, 'cache')), 'nothing downloaded');
  });

  it('a project with another @tensorflow/tfjs version: names both versions and says to run npm ci', async () => {
    const dir = scratch();
    dirs.push(dir);
    for (const name of ['tfjs', 'tfjs-core']) {
      mkdirSync(join(dir, 'node_modules', '@tensorflow', name), { recursive: true });
      writeFileSync(join(dir, 'node_modules', '@tensorflow', name, 'package.json'), JSON.stringify({ name: `@tensorflow/${name}`, version: '4.21.0' }));
    }
    await assert.rejects(setupNative({ projectDir: dir, cacheDir: join(dir, 'cache') }), (e: unknown) =>
      e instanceof NativeSetupError && /@tensorflow\/tfjs 4\.21\.0 is installed but @tensorflow\/tfjs-node 4\.22\.0 needs 4\.22\.0/.test(e.message)
      && /npm ci/.test(e.message));
    assert.ok(!existsSync(join(dir, 'cache')), 'nothing downloaded');
  });

  it('--gpu without a visible GPU fails before any download and says what to run instead', async function () {
    const gpu = gpuVisible();
    if (gpu.visible) {
      console.log('      (skipped: a GPU is visible here; the GPU setup itself is covered by the GPU group)');
      this.skip();
    }
    const dir = scratch();
    dirs.push(dir);
    await assert.rejects(setupNative({ gpu: true, projectDir: PROJECT, cacheDir: join(dir, 'cache') }), (e: unknown) =>
      e instanceof NativeSetupError && e.message.includes(gpu.reason) && /npm run setup:native/.test(e.message));
    assert.ok(!existsSync(join(dir, 'cache')), 'nothing downloaded');
  });

  it("nativeStatus: a placed package built for another Node ABI is not ready and says what to run", () => {
    const dir = scratch();
    dirs.push(dir);
    const pkg = join(dir, 'node_modules', '@tensorflow', 'tfjs-node');
    mkdirSync(join(pkg, 'lib', 'napi-v8'), { recursive: true });
    writeFileSync(join(pkg, 'package.json'), '{}');
    writeFileSync(join(pkg, 'lib', 'napi-v8', 'tfjs_binding.node'), '');
    writeFileSync(join(pkg, '.ewtune-native.json'), JSON.stringify({ nodeAbi: '0', tensorflowVersion: '2.21.0' }));
    const status = nativeStatus(false, dir);
    assert.equal(status.ready, false);
    assert.match(status.reason, new RegExp(`built for Node ABI 0, this is ${process.versions.modules} \\(run npm run setup:native\\)`));
    assert.match(nativeStatus(false, join(dir, 'nowhere')).reason, /not installed \(run npm run setup:native\)/);
  });

  it("cudaRequirements: the TF wheel's and-cuda requirements pinned at their lower bounds (as TF 2.21's METADATA states them)", () => {
    // Lines as in tensorflow-2.21.0's METADATA (read from the wheel), plus an exact pin and a non-CUDA line.
    assert.deepEqual(cudaRequirements([
      'numpy>=1.26.0', 'nvidia-cublas-cu12<13.0,>=12.5.3.2; extra == "and-cuda"', 'nvidia-cudnn-cu12<10.0,>=9.3.0.75; extra == "and-cuda"',
      'nvidia-nccl-cu12 (==2.27.7) ; extra == \'and-cuda\'', 'tensorboard~=2.20.0',
    ]), ['nvidia-cublas-cu12==12.5.3.2', 'nvidia-cudnn-cu12==9.3.0.75', 'nvidia-nccl-cu12==2.27.7']);
    assert.throws(() => cudaRequirements(['nvidia-nccl-cu12<3.0; extra == "and-cuda"']), NativeSetupError);
  });

  it('after npm ci (node_modules without tfjs-node), a second run re-places the cached build, verified, without rebuilding', async function () {
    const status = nativeStatus(false);
    if (!status.ready) {
      if (process.env.CI === 'true') assert.fail(`CI: the native TensorFlow backend is required: ${status.reason}`);
      console.log(`      (skipped: ${status.reason})`);
      this.skip();
    }
    const dir = scratch();
    dirs.push(dir);
    // A node_modules as npm ci makes it: every package of the project's, but no @tensorflow/tfjs-node.
    const real = join(PROJECT, 'node_modules');
    mkdirSync(join(dir, 'node_modules', '@tensorflow'), { recursive: true });
    for (const name of readdirSync(real)) {
      if (name === '@tensorflow') continue;
      symlinkSync(join(real, name), join(dir, 'node_modules', name));
    }
    for (const name of readdirSync(join(real, '@tensorflow'))) {
      if (name !== 'tfjs-node' && name !== 'tfjs-node-gpu') symlinkSync(join(real, '@tensorflow', name), join(dir, 'node_modules', '@tensorflow', name));
    }
    const cacheDir = defaultCacheDir(PROJECT);
    const lines: string[] = [];
    const first = await setupNative({ projectDir: dir, cacheDir, log: (l) => lines.push(l) });
    assert.equal(first.built, false, 'the cached build is reused');
    assert.equal(first.placed, true);
    assert.equal(first.tensorflowVersion, '2.21.0');
    assert.ok(first.diskBytes > 100e6, `cache entry ${first.diskBytes} bytes`);
    assert.ok(lines.some((l) => /cached build .* matches/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /ready — tf\.getBackend\(\) === 'tensorflow'/.test(l)), lines.join('\n'));
    const placed = join(dir, 'node_modules', '@tensorflow', 'tfjs-node');
    assert.ok(!lstatSync(placed).isSymbolicLink());
    assert.ok(nativeStatus(false, dir).ready);
    // Idempotent: nothing to do the second time.
    const second = await setupNative({ projectDir: dir, cacheDir });
    assert.equal(second.built, false);
    assert.equal(second.placed, false);
    // A damaged placement (binding gone) is placed again.
    rmSync(join(placed, 'lib'), { recursive: true });
    assert.equal(nativeStatus(false, dir).ready, false);
    const third = await setupNative({ projectDir: dir, cacheDir });
    assert.equal(third.placed, true);
    assert.ok(nativeStatus(false, dir).ready);
  });
});
