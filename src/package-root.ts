/**
 * Where the installed ewtune package lives on disk, for the files the runtime reads next to the code
 * (`package.json`, `schemas/`, `plugin.json`). The same answer whether this module runs from the TypeScript
 * sources (`src/package-root.ts`, under tsx) or from the compiled package (`dist/src/package-root.js`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'ewtune') return dir;
    if (dirname(dir) === dir) throw new Error(`ewtune: no package.json named "ewtune" above ${start}`);
  }
}

/** Absolute path of the ewtune package directory (the one holding its `package.json`). */
export const PACKAGE_ROOT: string = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

/** Absolute path of a file in the package, e.g. `packagePath('schemas', 'config.schema.json')`. */
export function packagePath(...segments: string[]): string {
  return join(PACKAGE_ROOT, ...segments);
}
