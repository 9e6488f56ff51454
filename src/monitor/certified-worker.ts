/**
 * Worker thread that computes certified (PLD, pessimistic) ε for a run's step history, so the live privacy
 * curve gets its certified points without blocking training. Messages: { id, segments, delta, options } →
 * { id, result } | { id, error }.
 */
import { parentPort } from 'node:worker_threads';
import { pldEpsilon } from '../accounting/pld/index.ts';
import type { StepSegment } from '../accounting/types.ts';

interface Request {
  id: number;
  segments: StepSegment[];
  delta: number;
  options: { valueDiscretizationInterval?: number };
}

if (!parentPort) throw new Error('certified-worker must run in a worker thread');
const port = parentPort;
port.on('message', (req: Request) => {
  try {
    const result = pldEpsilon(req.segments, req.delta, req.options);
    port.postMessage({ id: req.id, result });
  } catch (error) {
    port.postMessage({ id: req.id, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  }
});
