/**
 * Runs one bench/finetune-run.ts job (a DP run, a non-private run or a step timing) in a child process of its own —
 * its own peak RSS, its own backend — and returns the job's result (the last line of its stdout). Used by
 * bench:finetune, bench:finetune-sweep and bench:backends.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FinetuneJob, FinetuneJobResult } from './finetune-run.ts';

export interface FinetuneJobOptions {
  /** Pass the child's stderr through (live progress) instead of keeping its last lines for the error. */
  readonly inheritStderr?: boolean;
  /** Extra environment for the child. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Lines of TensorFlow's own start-up chatter, left out of error messages. */
const NATIVE_CHATTER = /^I0000|absl|oneDNN|cpu_feature|To enable/;

export function runFinetuneJob(job: FinetuneJob, label: string, options: FinetuneJobOptions = {}): Promise<FinetuneJobResult> {
  const script = fileURLToPath(new URL('./finetune-run.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', options.inheritStderr ? 'inherit' : 'pipe'],
      env: { ...process.env, ...options.env },
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => { out += d; });
    child.stderr?.on('data', (d) => { err += d; });
    child.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1);
      if (code === 0 && last) resolve(JSON.parse(last) as FinetuneJobResult);
      else reject(new Error(`${label}: exit ${code}\n${err.split('\n').filter((l) => !NATIVE_CHATTER.test(l)).slice(-15).join('\n')}`));
    });
  });
}

/** An example configuration (examples/<name>) as a plain object, without its `$schema` line. */
export function readExample(name: string): Record<string, Record<string, unknown>> {
  const config = JSON.parse(readFileSync(fileURLToPath(new URL(`../examples/${name}`, import.meta.url)), 'utf8')) as Record<string, Record<string, unknown>>;
  delete config.$schema;
  return config;
}
