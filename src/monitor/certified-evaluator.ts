/**
 * Where certified ε is computed for the live privacy curve: in-process (simple, blocks) or in a worker
 * thread (default for training: the certified PLD answer costs 10–1000× an Edgeworth query, and a worker
 * keeps it off the training thread; on 2 cores it runs beside the step).
 */
import { Worker } from 'node:worker_threads';
import { pldEpsilon } from '../accounting/pld/index.ts';
import type { EpsilonResult, StepSegment } from '../accounting/types.ts';

/**
 * The worker thread's entry. Compiled (dist/), it is the worker module itself. From the TypeScript sources (tests,
 * benches, under tsx) it is a plain-JS entry that registers tsx in the worker thread first: a worker's
 * `--import tsx` execArgv is not honoured by every Node 20 release.
 */
const CERTIFIED_WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL('./certified-worker-entry.mjs', import.meta.url)
  : new URL('./certified-worker.js', import.meta.url);

/** Computes the certified (PLD, upper bound) ε of a composed history, off or on the training thread. */
export interface CertifiedEvaluator {
  /**
   * The PLD ε upper bound of `segments` at `delta` ∈ (0, 1); rejects with InvalidArgumentError on invalid input.
   */
  epsilon(segments: readonly StepSegment[], delta: number): Promise<EpsilonResult>;
  /** Releases the evaluator's resources (the worker thread); call once when done. */
  close(): Promise<void>;
}

/** Options of the certified evaluators. */
export interface PldEvaluatorOptions {
  /** PLD grid width h (default 1e-4, {@link DEFAULT_VALUE_DISCRETIZATION_INTERVAL}). */
  valueDiscretizationInterval?: number;
}

/** Computes on the calling thread. */
export class InlineCertifiedEvaluator implements CertifiedEvaluator {
  constructor(private readonly options: PldEvaluatorOptions = {}) {}
  async epsilon(segments: readonly StepSegment[], delta: number): Promise<EpsilonResult> {
    return pldEpsilon(segments, delta, this.options);
  }
  async close(): Promise<void> {}
}

/** Computes in one worker thread, requests answered in order. */
export class WorkerCertifiedEvaluator implements CertifiedEvaluator {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (r: EpsilonResult) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #closed = false;
  /** Set once the worker died: later requests fail at once instead of waiting forever. */
  #dead: Error | undefined;

  constructor(private readonly options: PldEvaluatorOptions = {}) {
    this.#worker = new Worker(CERTIFIED_WORKER_URL);
    this.#worker.unref();
    this.#worker.on('message', (msg: { id: number; result?: EpsilonResult; error?: string }) => {
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.error !== undefined || !msg.result) p.reject(new Error(`certified accountant failed: ${msg.error}`));
      else p.resolve(msg.result);
    });
    this.#worker.on('error', (err) => {
      this.#dead ??= err;
      this.#failAll(err);
    });
    this.#worker.on('exit', (code) => {
      this.#dead ??= new Error(`certified accountant worker exited with code ${code}`);
      this.#failAll(this.#dead);
    });
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  epsilon(segments: readonly StepSegment[], delta: number): Promise<EpsilonResult> {
    if (this.#closed) return Promise.reject(new Error('certified evaluator is closed'));
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise<EpsilonResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#pending.size === 1) this.#worker.ref();
      this.#worker.postMessage({ id, segments: segments.map((s) => ({ ...s })), delta, options: this.options });
    }).finally(() => {
      if (this.#pending.size === 0) this.#worker.unref();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#worker.terminate();
  }
}
