/** `ewtune mlflow replay <run dir>`: push a local run directory (spool, params, tags, artifacts) to an MLflow server. */
import { MlflowClient } from '../../tracking/mlflow-client.ts';
import { replayRunDir } from '../../tracking/replay.ts';
import { parseFlags, trackingUriFlag, UsageError, type CliCommand } from '../args.ts';
import { InvalidArgumentError } from '../../errors.ts';

export const mlflowReplayCommand: CliCommand = {
  usage: 'ewtune mlflow replay <run dir> [--tracking-uri URI] [--experiment NAME] [--run-id ID] [--json]\n'
    + '  Tracking server: --tracking-uri, else MLFLOW_TRACKING_URI. Credentials: MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN.',
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      'tracking-uri': { type: 'string' }, experiment: { type: 'string' }, 'run-id': { type: 'string' }, json: { type: 'boolean', default: false },
    }, true);
    if (positionals.length !== 1) throw new UsageError(`<run dir> must be exactly one path; got ${positionals.length}`);
    const uri = trackingUriFlag(values['tracking-uri'] ?? process.env.MLFLOW_TRACKING_URI);
    if (!uri) throw new InvalidArgumentError('--tracking-uri', uri, 'given (or MLFLOW_TRACKING_URI set)');
    const client = MlflowClient.fromEnv(uri);
    try {
      const r = await replayRunDir(positionals[0], client, { experimentName: values.experiment, runId: values['run-id'] });
      if (values.json) io.out(JSON.stringify(r));
      else {
        const url = `${r.remote.trackingUri.replace(/\/$/, '')}/#/experiments/${r.remote.experimentId}/runs/${r.remote.runId}`;
        io.out(`replayed ${positionals[0]}: ${r.metrics} metric points, ${r.params} params, ${r.tags} tags, `
          + `${r.artifacts.length} artifacts${r.created ? ' (new run)' : ''}${r.crashed ? '; its process had died without ending the run: marked FAILED (ewtune.stop_reason=crashed)' : ''}${r.invalidLines ? `; ${r.invalidLines} invalid spool lines skipped` : ''}\n${url}`);
      }
    } finally {
      client.close();
    }
    return 0;
  },
};
