/** The package version (from package.json), logged as the run tag `ewtune.version`. */
import { readFileSync } from 'node:fs';
import { packagePath } from '../src/package-root.ts';

/**
 * The package version (package.json's `version`, e.g. `0.1.0`): logged as the param `ewtune_version` and the tag `ewtune.version`.
 */
export const EWTUNE_VERSION: string = (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
