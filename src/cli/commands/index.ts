/**
 * The subcommand table. To add a subcommand (e.g. `train`, `mlflow replay`), write src/cli/commands/<name>.ts
 * exporting a CliCommand and add it here; main.ts needs no change. A command whose name has a space (e.g.
 * 'mlflow replay') is matched against the first two arguments.
 */
import type { CliCommand } from '../args.ts';
import { auditCommand } from './audit.ts';
import { calibrateCommand } from './calibrate.ts';
import { dataFetchCommand } from './data.ts';
import { encodeCommand } from './encode.ts';
import { epsilonCommand } from './epsilon.ts';
import { ledgerCommand } from './ledger.ts';
import { mlflowReplayCommand } from './mlflow-replay.ts';
import { modelsFetchCommand } from './models.ts';
import { setupCommand } from './setup.ts';
import { trainCommand } from './train.ts';

export const COMMANDS: readonly CliCommand[] = [trainCommand, epsilonCommand, calibrateCommand, ledgerCommand, mlflowReplayCommand, setupCommand, auditCommand, dataFetchCommand, modelsFetchCommand, encodeCommand];
