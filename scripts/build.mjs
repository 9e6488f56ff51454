#!/usr/bin/env node
// `npm run build` (also `prepare` and `prepack`): compiles src/ and plugin/ with tsc (tsconfig.build.json) into a
// fresh dist/ — ESM JavaScript, .d.ts and source maps — then copies the non-TypeScript files the compiled code
// reads next to itself. Plain JS so it runs before anything is compiled.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
// Files read at run time relative to the module that reads them (src/setup/native.ts: the lock of the native
// backend's runtime dependencies).
const ASSETS = ['src/setup/native-deps'];

// `npm pack` / `npm publish` run both prepack and prepare: build once (in prepack).
const lifecycle = process.env.npm_lifecycle_event;
if (lifecycle === 'prepare' && ['pack', 'publish'].includes(process.env.npm_command ?? '')) process.exit(0);

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (result.status !== 0) {
  console.error(`build: tsc failed (exit ${result.status ?? result.signal})`);
  process.exit(1);
}
for (const asset of ASSETS) cpSync(join(root, asset), join(dist, asset), { recursive: true });
