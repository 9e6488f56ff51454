/** The package version (from package.json), logged as the run tag `ewtune.version`. */
import { readFileSync } from 'node:fs';
import { packagePath } from '../src/package-root.ts';

export const EWTUNE_VERSION: string = (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
