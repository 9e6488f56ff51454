/** The package version (from package.json), logged as the run tag `ewtune.version`. */
import { readFileSync } from 'node:fs';

export const EWTUNE_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
