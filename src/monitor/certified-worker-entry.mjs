// Worker entry in plain JS: registers tsx in this thread (a worker's `--import tsx` execArgv is not honoured by
// every Node 20 release), then loads the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./certified-worker.ts');
