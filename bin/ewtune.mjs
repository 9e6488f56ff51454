#!/usr/bin/env node
// The `ewtune` command. Runs the compiled CLI (dist/, built by `npm run build`, `prepare` and `prepack`); no
// TypeScript loader at run time. In a source checkout (src/ next to dist/, with the dev dependency tsx installed)
// it runs the TypeScript sources through tsx instead, so the tests and a developer's edits never meet a stale
// build. EWTUNE_RUN_FROM=dist or =source forces either.
import { existsSync } from 'node:fs';

const sourceMain = new URL('../src/cli/main.ts', import.meta.url);
const from = process.env.EWTUNE_RUN_FROM ?? (existsSync(sourceMain) ? 'source' : 'dist');
let main;
if (from === 'source') {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(sourceMain.href));
} else if (from === 'dist') {
  ({ main } = await import('../dist/src/cli/main.js'));
} else {
  process.stderr.write(`ewtune: EWTUNE_RUN_FROM must be "dist" or "source", not ${JSON.stringify(from)}\n`);
  process.exit(2);
}
process.exitCode = await main(process.argv.slice(2));
