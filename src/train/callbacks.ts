/**
 * Drives tfjs-style callbacks from dpFit: tf.Callback / CustomCallback instances (setParams, setModel) and plain
 * objects of hooks, in the order given, each hook awaited. Logs are numbers only (non-finite values dropped, as an
 * MLflow sink could not send them).
 */
import { InvalidArgumentError } from '../errors.ts';
import type { DpCallback } from './types.ts';

const HOOKS = ['onTrainBegin', 'onTrainEnd', 'onEpochBegin', 'onEpochEnd', 'onBatchBegin', 'onBatchEnd'] as const;

/** Keep only finite numeric entries. */
export function numericLogs(logs: Record<string, number | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(logs)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

/** A list of callbacks called in order. */
export class DpCallbackList {
  readonly callbacks: DpCallback[];

  constructor(callbacks: DpCallback | DpCallback[] | undefined) {
    const list = callbacks === undefined ? [] : Array.isArray(callbacks) ? callbacks : [callbacks];
    list.forEach((cb, i) => {
      if (cb === null || typeof cb !== 'object') throw new InvalidArgumentError(`callbacks[${i}]`, cb, 'an object');
      if (!HOOKS.some((h) => typeof (cb as Record<string, unknown>)[h] === 'function')) {
        throw new InvalidArgumentError(`callbacks[${i}]`, cb, `an object with at least one of ${HOOKS.join(', ')}`);
      }
    });
    this.callbacks = list;
  }

  setModel(model: unknown): void {
    for (const cb of this.callbacks) cb.setModel?.(model);
  }

  setParams(params: Record<string, unknown>): void {
    for (const cb of this.callbacks) cb.setParams?.(params);
  }

  async onTrainBegin(logs: Record<string, number> = {}): Promise<void> {
    for (const cb of this.callbacks) await cb.onTrainBegin?.(logs);
  }

  async onTrainEnd(logs: Record<string, number> = {}): Promise<void> {
    for (const cb of this.callbacks) await cb.onTrainEnd?.(logs);
  }

  async onEpochBegin(epoch: number, logs: Record<string, number> = {}): Promise<void> {
    for (const cb of this.callbacks) await cb.onEpochBegin?.(epoch, logs);
  }

  async onEpochEnd(epoch: number, logs: Record<string, number> = {}): Promise<void> {
    for (const cb of this.callbacks) await cb.onEpochEnd?.(epoch, logs);
  }

  async onBatchBegin(batch: number, logs: Record<string, number> = {}): Promise<void> {
    for (const cb of this.callbacks) await cb.onBatchBegin?.(batch, logs);
  }

  async onBatchEnd(batch: number, logs: Record<string, number> = {}): Promise<void> {
    for (const cb of this.callbacks) await cb.onBatchEnd?.(batch, logs);
  }
}
