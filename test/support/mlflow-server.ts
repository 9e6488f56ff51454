/**
 * A real MLflow tracking server for integration tests: `mlflow server` with a SQLite backend and proxied artifacts
 * in a temporary directory, on a free loopback port. Tests that only need *a* server use {@link sharedMlflowServer}
 * (EWTUNE_TEST_MLFLOW_URI when .ci/run started one, else one server started on first use and shared by every test
 * file of this mocha process). Tests that stop and restart a server start their own with {@link startMlflowServer}.
 *
 * No mlflow binary (EWTUNE_MLFLOW_BIN or ./.venv/bin/mlflow) is a test FAILURE with a message saying how to get one,
 * never a silent skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** Path of the mlflow executable, or throws an error explaining how to install one. */
export function mlflowBin(): string {
  const candidates = [process.env.EWTUNE_MLFLOW_BIN, resolve('.venv/bin/mlflow')].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `no mlflow executable found (tried ${candidates.join(', ')}). The MLflow integration tests need a real server: ` +
        'run .ci/run (it creates .venv with the pinned mlflow), or `python3 -m venv .venv && .venv/bin/pip install mlflow==3.11.1`, ' +
        'or set EWTUNE_MLFLOW_BIN / EWTUNE_TEST_MLFLOW_URI.',
    );
  }
  return found;
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

async function healthy(uri: string): Promise<boolean> {
  try {
    const r = await fetch(`${uri}/health`, { signal: AbortSignal.timeout(2000) });
    return r.ok;
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A server this process started: stop/start/restart keep the same port, database and artifact directory. */
export class MlflowServer {
  readonly dir: string;
  readonly port: number;
  readonly uri: string;
  private child: ChildProcess | undefined;

  constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
    this.uri = `http://127.0.0.1:${port}`;
  }

  get logPath(): string {
    return join(this.dir, 'server.log');
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the server and waits until GET /health answers (up to `timeoutMs`, default 90 s). */
  async start(timeoutMs = 90_000): Promise<void> {
    if (this.running) return;
    const bin = mlflowBin();
    const log = openSync(this.logPath, 'a');
    const child = spawn(
      bin,
      ['server', '--backend-store-uri', `sqlite:///${join(this.dir, 'mlflow.db')}`, '--artifacts-destination', join(this.dir, 'artifacts'), '--host', '127.0.0.1', '--port', String(this.port), '--workers', '1'],
      { detached: true, stdio: ['ignore', log, log], env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true', DO_NOT_TRACK: 'true' } },
    );
    closeSync(log);
    // Do not keep the test process alive for the server: a process-exit handler kills its group.
    child.unref();
    this.child = child;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`mlflow server exited (code ${child.exitCode}, signal ${child.signalCode}); log:\n${this.logTail()}`);
      if (await healthy(this.uri)) return;
      await sleep(250);
    }
    await this.stop();
    throw new Error(`mlflow server did not answer /health within ${timeoutMs} ms; log:\n${this.logTail()}`);
  }

  /** Stops the server (its whole process group: gunicorn/uvicorn workers too) and waits until it has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running || child.pid === undefined) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    const killed = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
    if (!killed) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await exited;
    }
    // Workers of the group may outlive the parent for a moment: wait until the port is free.
    for (let i = 0; i < 40 && (await healthy(this.uri)); i++) await sleep(250);
    this.child = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Synchronous kill for process-exit handlers. */
  killNow(): void {
    if (this.child?.pid !== undefined && this.running) {
      try {
        process.kill(-this.child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  /** Stops the server and deletes its directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(lines = 40): string {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

const started = new Set<MlflowServer>();
let cleanupInstalled = false;

/** Kills every server this process started when it exits, also on SIGINT/SIGTERM (e.g. a CI timeout). */
function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  const killAll = (): void => {
    for (const s of started) s.killNow();
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.kill(process.pid, signal); // default action, now that the handler is gone
    });
  }
}

/** Starts a new server on a free port with a fresh temporary directory. */
export async function startMlflowServer(): Promise<MlflowServer> {
  const server = new MlflowServer(mkdtempSync(join(tmpdir(), 'ewtune-mlflow-')), await freePort());
  installCleanup();
  started.add(server);
  await server.start();
  return server;
}

let shared: Promise<string> | undefined;

/**
 * URI of a server shared by all tests of this process: EWTUNE_TEST_MLFLOW_URI if set (checked with /health), else a
 * server started here on first call and killed when the process exits.
 */
export function sharedMlflowServer(): Promise<string> {
  shared ??= (async () => {
    const given = process.env.EWTUNE_TEST_MLFLOW_URI;
    if (given) {
      const uri = given.replace(/\/+$/, '');
      if (!(await healthy(uri))) throw new Error(`EWTUNE_TEST_MLFLOW_URI=${uri} does not answer GET /health`);
      return uri;
    }
    const server = await startMlflowServer();
    process.on('exit', () => rmSync(server.dir, { recursive: true, force: true }));
    return server.uri;
  })();
  return shared;
}
