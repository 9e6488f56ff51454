/**
 * PrivacyTrackingCallback: the tfjs-style callback that puts a DP run's privacy curve into MLflow (or the local run
 * directory). Register it in `dpFit(..., { callbacks: [callback, ...your tfjs callbacks] })`. After each step
 * (onBatchEnd, whose logs carry the step's sampleRate and accounted noiseMultiplier) it records, synchronously and
 * O(1) into the sink's spool:
 *   privacy/epsilon_edgeworth  Edgeworth ε at the target δ          (estimate)
 *   privacy/delta              Edgeworth δ at the target ε          (estimate; only with a target ε)
 *   privacy/delta_log10        log10 of privacy/delta               (estimate; readable where δ ~ 1e-6 plots as "0")
 *   privacy/epsilon_rdp        RDP ε at the target δ                 (upper bound)
 *   train/loss, train/batch_size                                     (statistics of private data, NOT covered by ε)
 * and, asynchronously (worker thread) at step 1, every `certifiedEveryFraction` of the planned steps and at the end,
 *   privacy/epsilon_certified  PLD ε at the target δ                 (upper bound)
 *   privacy/budget_used        certified ε / target ε               (upper bound; only with a target ε)
 * MLflow step = number of DP steps taken so far (the ε after that many steps). `finish()` writes the ledger-based
 * charts, the final tags and ends the run with the status of its stop reason.
 */
import { PrivacyMonitor } from '../src/monitor/privacy-monitor.ts';
import { WorkerCertifiedEvaluator, InlineCertifiedEvaluator, type CertifiedEvaluator } from '../src/monitor/certified-evaluator.ts';
import type { EpsilonResult, StepSegment } from '../src/accounting/types.ts';
import type { TrackingSink, CloseResult } from '../src/tracking/sink.ts';
import type { RunStatus } from '../src/tracking/mlflow-client.ts';
import type { DpCallback, DpHistory } from '../src/train/types.ts';
import { epsilonVsStepSvg, epsilonDeltaSvg, deltaVsStepSvg, reportHtml, type EpsilonPoint, type EpsilonDeltaPoint, type DeltaPoint } from '../src/report/charts.ts';
import { pldEpsilon } from '../src/accounting/pld/index.ts';
import { rdpEpsilon } from '../src/accounting/rdp/index.ts';
import { InvalidArgumentError } from '../src/errors.ts';
import { EWTUNE_VERSION } from './version.ts';

/** How long a run stopped by a signal may spend uploading its artifacts at the end (the rest stays for replay). */
const SIGNALLED_ARTIFACT_DEADLINE_MS = 30_000;

/**
 * Every metric key ewtune logs and what kind of number it is: `estimate` (an approximation, not a bound), `upper` (a
 * certified upper bound), or `none` (a plain statistic, not a privacy quantity). Logged as the tag
 * `ewtune.metric_kinds`; the README's "What is logged" table and plugin.json's `metrics` describe each key.
 */
export const METRIC_KINDS = {
  /** Edgeworth ε at the target δ after each step (not a bound). */
  'privacy/epsilon_edgeworth': 'estimate',
  /** Edgeworth δ at the target ε after each step (raw, ~1e-6). */
  'privacy/delta': 'estimate',
  /** log10 of privacy/delta (readable ticks in the MLflow UI). */
  'privacy/delta_log10': 'estimate',
  /** RDP ε at the target δ after each step. */
  'privacy/epsilon_rdp': 'upper',
  /** PLD ε at the target δ: the guarantee (step 1, every certifiedEveryFraction, the end). */
  'privacy/epsilon_certified': 'upper',
  /** Certified ε / target ε at each certified point (1 = budget used up). */
  'privacy/budget_used': 'upper',
  /** Mean training loss of the step's batch (private data, not covered by ε). */
  'train/loss': 'none',
  /** Realised Poisson batch size (private data, not covered by ε). */
  'train/batch_size': 'none',
  /** Accuracy on the held-out test split, after every epoch and at the end. */
  'eval/accuracy': 'none',
  /** Mean cross-entropy (nats) on the held-out test split, after every epoch and at the end. */
  'eval/loss': 'none',
  /** Accuracy on the validation split, after every epoch and at the end. */
  'eval/validation_accuracy': 'none',
  /** Mean cross-entropy (nats) on the validation split, after every epoch and at the end. */
  'eval/validation_loss': 'none',
} as const;

/** Options of {@link PrivacyTrackingCallback} (and, without `sink`, of {@link createPrivacyCallback}). */
export interface PrivacyTrackingCallbackOptions {
  /** Where the metrics go: an open {@link TrackingSink} (MLflow or the local run directory). */
  readonly sink: TrackingSink;
  /** δ at which ε is reported. */
  readonly delta: number;
  /** ε at which δ is reported and the budget line is drawn (optional). */
  readonly targetEpsilon?: number;
  /** Planned steps (sets the certified checkpoints). */
  readonly plannedSteps: number;
  /** Certified ε at least every this fraction of `plannedSteps`, in (0, 1]; default 0.01 (every 1%). */
  readonly certifiedEveryFraction?: number;
  /** Order of the Edgeworth estimate, 1 (default) or 2. */
  readonly edgeworthOrder?: 1 | 2;
  /** Where the certified ε is computed: 'worker' (default) or 'inline'. */
  readonly certifiedIn?: 'worker' | 'inline' | CertifiedEvaluator;
  /** Steps already in the ledger of a resumed run (composed without emitting metrics). */
  readonly resumeSegments?: readonly StepSegment[];
}

/** The final ε of a run, as {@link PrivacyTrackingCallback.finish} computed them (each labelled with its kind). */
export interface FinalEpsilons {
  readonly steps: number;
  readonly certified?: EpsilonResult;
  readonly edgeworth?: EpsilonResult;
  readonly rdp?: EpsilonResult;
}

/** The outcome of {@link PrivacyTrackingCallback.finish}. */
export interface TrackingSummary {
  /** The run's final status: FINISHED, KILLED (budget stop, stop request) or FAILED. */
  readonly status: Exclude<RunStatus, 'RUNNING' | 'SCHEDULED'>;
  /** Why training ended (the tag `ewtune.stop_reason`). */
  readonly stopReason: string;
  /** DP steps composed (resumed ones included). */
  readonly steps: number;
  /** Final Edgeworth ε at δ (estimate). */
  readonly epsilonEdgeworth?: EpsilonResult;
  /** Final RDP ε at δ (upper bound). */
  readonly epsilonRdp?: EpsilonResult;
  /** Final certified PLD ε at δ (upper bound): the guarantee. */
  readonly epsilonCertified?: EpsilonResult;
  /** What the sink's close reported (everything acknowledged by the server or not, uploaded artifacts). */
  readonly close: CloseResult;
}

function finite(x: number | undefined): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/**
 * The dpFit callback that logs a DP run's privacy curve (metrics in the README's "What is logged" table and
 * {@link METRIC_KINDS}) to MLflow or the local run directory, and ends the run with `finish()`. The constructor throws
 * {@link InvalidArgumentError} (`options.sink`) without a sink, and for an invalid δ, target ε, plannedSteps or
 * certifiedEveryFraction before any step.
 */
export class PrivacyTrackingCallback implements DpCallback {
  /** The sink the metrics are recorded in. */
  readonly sink: TrackingSink;
  readonly #monitor: PrivacyMonitor;
  readonly #evaluator: CertifiedEvaluator;
  readonly #ownsEvaluator: boolean;
  readonly #options: PrivacyTrackingCallbackOptions;
  readonly #points: EpsilonPoint[] = [];
  readonly #deltaPoints: DeltaPoint[] = [];
  #finished = false;
  #lastEdgeworth: number | undefined;

  constructor(options: PrivacyTrackingCallbackOptions) {
    if (options === null || typeof options !== 'object' || typeof options.sink?.record !== 'function') {
      throw new InvalidArgumentError('options.sink', options?.sink, 'a TrackingSink');
    }
    this.#options = options;
    this.sink = options.sink;
    const where = options.certifiedIn ?? 'worker';
    this.#ownsEvaluator = typeof where === 'string';
    this.#evaluator = where === 'worker' ? new WorkerCertifiedEvaluator() : where === 'inline' ? new InlineCertifiedEvaluator() : where;
    this.#monitor = new PrivacyMonitor({
      delta: options.delta,
      targetEpsilon: options.targetEpsilon,
      plannedSteps: options.plannedSteps,
      certifiedEveryFraction: options.certifiedEveryFraction,
      edgeworthOrder: options.edgeworthOrder,
      certified: this.#evaluator,
      onCertified: (step, result) => {
        if (finite(result.epsilon)) {
          this.sink.record('privacy/epsilon_certified', result.epsilon, step);
          // The fraction of the ε budget spent, as certified (an upper bound on it): 1 means the budget is used up.
          if (options.targetEpsilon !== undefined) this.sink.record('privacy/budget_used', result.epsilon / options.targetEpsilon, step);
        }
        this.#points.push({ step, epsilon: result.epsilon, series: 'PLD (certified upper bound)' });
      },
      onCertifiedError: (step, error) => {
        console.warn(`ewtune: certified ε at step ${step} failed (${error.message}); the live estimate goes on, the budget stop is unaffected`);
      },
    });
    if (options.resumeSegments && options.resumeSegments.length > 0) this.#monitor.resume(options.resumeSegments);
  }

  /** Steps composed so far (resumed ones included). */
  get steps(): number {
    return this.#monitor.steps;
  }

  /** Composed history (run-length encoded). */
  get segments(): readonly StepSegment[] {
    return this.#monitor.segments;
  }

  /** Edgeworth ε estimate after the last step (undefined before the first). */
  get lastEpsilonEdgeworth(): number | undefined {
    return this.#lastEdgeworth;
  }

  /**
   * Records the step's privacy metrics (ε estimate and RDP bound, δ and log10 δ with a target ε) and training
   * statistics; requests the certified ε at its checkpoints. Throws {@link InvalidArgumentError} (`logs`) when the logs
   * lack dpFit's `sampleRate` and `noiseMultiplier`.
   */
  onBatchEnd(_batch: number, logs: Record<string, number> = {}): void {
    const { sampleRate, noiseMultiplier } = logs;
    if (!finite(sampleRate) || !finite(noiseMultiplier)) {
      throw new InvalidArgumentError('logs', logs, 'onBatchEnd logs with sampleRate and noiseMultiplier (use the callback with dpFit)');
    }
    const p = this.#monitor.record({ sampleRate, noiseMultiplier });
    const step = p.step;
    this.#lastEdgeworth = p.epsilonEdgeworth.epsilon;
    this.sink.record('privacy/epsilon_edgeworth', p.epsilonEdgeworth.epsilon, step);
    if (p.deltaEdgeworth) {
      const d = p.deltaEdgeworth.delta;
      this.sink.record('privacy/delta', d, step);
      // δ ~ 1e-6 is drawn by the MLflow UI with every tick labelled "0": its log10 is the readable curve (δ = 0 has none).
      if (d > 0 && finite(d)) {
        this.sink.record('privacy/delta_log10', Math.log10(d), step);
        this.#deltaPoints.push({ step, delta: d, series: 'Edgeworth δ at the target ε (estimate)' });
      }
    }
    this.sink.record('privacy/epsilon_rdp', p.epsilonRdp.epsilon, step);
    if (finite(logs.loss)) this.sink.record('train/loss', logs.loss, step);
    if (finite(logs.size)) this.sink.record('train/batch_size', logs.size, step);
    this.#points.push({ step, epsilon: p.epsilonEdgeworth.epsilon, series: 'Edgeworth (estimate)' });
    this.#points.push({ step, epsilon: p.epsilonRdp.epsilon, series: 'RDP (upper bound)' });
  }

  /**
   * End the run: the certified ε of the final step, the tags (stop reason, final ε's, steps, version), the ε-vs-step
   * and ε–δ charts and an HTML report as artifacts, and the run status: FINISHED after a completed run or max-steps,
   * KILLED after a budget stop or a stop request (`status` overrides, e.g. FAILED after an error).
   */
  /**
   * Ends the run: final ε (certified, Edgeworth, RDP), tags, charts and report, then closes the sink (status, artifact
   * upload). `beforeClose` runs after the final ε is known and before the artifacts are uploaded: write files that
   * depend on the final ε there (e.g. the saved model's privacy.json under artifacts/); a failure in it fails the run.
   */
  async finish(outcome: {
    history?: DpHistory; stopReason?: string; status?: TrackingSummary['status']; extraSummary?: ReadonlyArray<readonly [string, string]>;
    beforeClose?: (final: FinalEpsilons) => Promise<void>;
  } = {}): Promise<TrackingSummary> {
    if (this.#finished) throw new InvalidArgumentError('finish', 'called twice', 'called once');
    this.#finished = true;
    const final = await this.#monitor.finish();
    if (this.#ownsEvaluator) await this.#evaluator.close();
    const stopReason = outcome.stopReason ?? outcome.history?.stopReason ?? 'completed';
    const status = outcome.status ?? (stopReason === 'completed' || stopReason === 'max-steps' || stopReason === 'max-epochs' ? 'FINISHED' : 'KILLED');
    const s = this.sink;
    s.setTag('ewtune.stop_reason', stopReason);
    s.setTag('ewtune.steps_taken', String(final.steps));
    s.setTag('ewtune.version', EWTUNE_VERSION);
    s.setTag('ewtune.metric_kinds', JSON.stringify(METRIC_KINDS));
    if (final.certified && finite(final.certified.epsilon)) s.setTag('ewtune.final_epsilon_certified', String(final.certified.epsilon));
    if (final.edgeworth && finite(final.edgeworth.epsilon)) s.setTag('ewtune.final_epsilon_edgeworth', String(final.edgeworth.epsilon));
    if (final.rdp && finite(final.rdp.epsilon)) s.setTag('ewtune.final_epsilon_rdp', String(final.rdp.epsilon));
    try {
      await this.#writeCharts(final, stopReason, outcome.extraSummary ?? []);
    } catch (e) {
      console.warn(`ewtune: could not render the privacy charts (${(e as Error).message})`);
    }
    if (outcome.beforeClose) {
      try {
        await outcome.beforeClose({ steps: final.steps, certified: final.certified, edgeworth: final.edgeworth, rdp: final.rdp });
      } catch (error) {
        s.setTag('ewtune.error', String((error as Error).message ?? error).slice(0, 4000));
        await s.close({ status: 'FAILED' }).catch(() => undefined);
        throw error;
      }
    }
    // A run stopped by a signal (a scheduler's shutdown, with its grace period) bounds its artifact uploads; any
    // other end uploads the model however long it takes (bounded per request by the client's inactivity timeout).
    const artifactDeadlineMs = stopReason.startsWith('signal:') ? SIGNALLED_ARTIFACT_DEADLINE_MS : undefined;
    const close = await s.close({ status, artifactDeadlineMs });
    return { status, stopReason, steps: final.steps, epsilonEdgeworth: final.edgeworth, epsilonRdp: final.rdp, epsilonCertified: final.certified, close };
  }

  async #writeCharts(final: Awaited<ReturnType<PrivacyMonitor['finish']>>, stopReason: string, extra: ReadonlyArray<readonly [string, string]>): Promise<void> {
    const { delta, targetEpsilon } = this.#options;
    const segments = this.#monitor.segments;
    if (final.steps === 0) return;
    const stepSvg = await epsilonVsStepSvg(this.#points, { delta, budgetEpsilon: targetEpsilon });
    // ε–δ trade-off of the final composition: PLD (upper bound), RDP (upper bound), Edgeworth (estimate).
    const curve: EpsilonDeltaPoint[] = [];
    for (let e = -10; e <= -2; e += 1) {
      const d = 10 ** e;
      curve.push({ delta: d, epsilon: pldEpsilon(segments, d).epsilon, series: 'PLD (certified upper bound)' });
      curve.push({ delta: d, epsilon: rdpEpsilon(segments, d).epsilon, series: 'RDP (upper bound)' });
      curve.push({ delta: d, epsilon: this.#monitor.edgeworthEpsilon(d).epsilon, series: 'Edgeworth (estimate)' });
    }
    const deltaSvg = await epsilonDeltaSvg(curve);
    this.sink.writeArtifact('privacy/epsilon_vs_step.svg', stepSvg);
    this.sink.writeArtifact('privacy/epsilon_delta.svg', deltaSvg);
    const svgs = [stepSvg, deltaSvg];
    if (this.#deltaPoints.length > 0 && targetEpsilon !== undefined) {
      const deltaStepSvg = await deltaVsStepSvg(this.#deltaPoints, { epsilon: targetEpsilon, budgetDelta: delta });
      this.sink.writeArtifact('privacy/delta_vs_step.svg', deltaStepSvg);
      svgs.push(deltaStepSvg);
    }
    const fmt = (r?: EpsilonResult) => (r && finite(r.epsilon) ? `${r.epsilon.toPrecision(5)} (${r.kind})` : 'n/a');
    const html = reportHtml({
      title: 'ewtune privacy report',
      summary: [
        ['steps', String(final.steps)],
        ['stop reason', stopReason],
        ['δ', String(delta)],
        ['ε certified (PLD)', fmt(final.certified)],
        ['ε RDP', fmt(final.rdp)],
        ['ε Edgeworth', fmt(final.edgeworth)],
        ...extra,
      ],
      svgs,
      notes: ['The Edgeworth ε is an estimate, not a bound; the PLD ε is a certified upper bound (pessimistic discretisation). '
        + 'Training metrics (loss, batch size) are statistics of the private data and are not covered by ε; held-out accuracy '
        + 'and loss are measured on the test split, which is not training data.'],
    });
    this.sink.writeArtifact('report.html', html);
  }
}
