/**
 * Tests that need a fetched asset (a corpus, a model, the native backend): in CI (CI=true) a missing asset is a
 * failure, since .ci/install fetches it; locally the test is skipped with a message saying how to fetch it.
 */
import { existsSync } from 'node:fs';

/** Skip (locally) or fail (CI=true) `context`'s test unless `path` exists. */
export function requireFetched(context: Mocha.Context, path: string, fetchCommand: string): void {
  if (existsSync(path)) return;
  const message = `${path} is missing; fetch it with \`${fetchCommand}\``;
  if (process.env.CI === 'true') throw new Error(`${message} (.ci/install should have done so)`);
  console.log(`      skipped: ${message}`);
  context.skip();
}
