// `node --import <this file> …` appends the URL of every module the ESM loader loads (our modules, packages imported
// from them, CommonJS entry points reached by import) to the file named by EWTUNE_MODULE_TRACE, one per line.
// Plain JS: it runs in the child being inspected, before any TypeScript loader. The same file is the hooks module.
import { appendFileSync } from 'node:fs';
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) register(import.meta.url);

export async function load(url, context, nextLoad) {
  if (process.env.EWTUNE_MODULE_TRACE) appendFileSync(process.env.EWTUNE_MODULE_TRACE, `${url}\n`);
  return nextLoad(url, context);
}
