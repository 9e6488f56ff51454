/**
 * privacy.json of a saved private model: exactly what guarantee the weights carry. Every ε is labelled with its kind
 * (`upper` = certified bound, `estimate` = not a bound) and the accountant that computed it; δ, σ, q, the steps, the
 * clipping bound, the sampler and the adjacency are those of the ledger the run wrote before each update.
 */
import { EWTUNE_VERSION } from './version.ts';
import type { FinalEpsilons } from './callback.ts';
import type { TrainingConfig } from './config.ts';
import type { Evaluation } from './prepared-model.ts';
import type { EpsilonResult } from '../src/accounting/types.ts';

/** The schema version of privacy.json. */
export const PRIVACY_RECORD_VERSION = 1;

export interface PrivacyRecordInput {
  readonly config: TrainingConfig;
  readonly final: FinalEpsilons;
  readonly noiseMultiplier: number;
  /** σ the accountant used (≥ noiseMultiplier; larger only in hardened mode). */
  readonly accountedNoiseMultiplier: number;
  readonly sampleRate: number;
  readonly datasetSize: number;
  readonly stopReason: string;
  readonly accuracy: Evaluation;
}

function epsilon(result: EpsilonResult | undefined, accountant: string): Record<string, unknown> | null {
  if (!result || !Number.isFinite(result.epsilon)) return null;
  return { value: result.epsilon, kind: result.kind, accountant };
}

/** The object written to privacy.json. */
export function privacyRecord(input: PrivacyRecordInput): Record<string, unknown> {
  const { config, final } = input;
  const certifiedBy = config.privacy.accountant === 'rdp' ? 'rdp' : 'pld';
  const certified = certifiedBy === 'rdp' ? final.rdp : final.certified;
  return {
    version: PRIVACY_RECORD_VERSION,
    guarantee: certified && Number.isFinite(certified.epsilon)
      ? `(${certified.epsilon.toPrecision(4)}, ${config.privacy.delta})-DP under add/remove adjacency of one training example, `
        + `for the released weights (${certifiedBy.toUpperCase()} upper bound); the pre-trained weights are public and not covered`
      : 'no finite certified ε',
    epsilon: {
      certified: epsilon(certified, certifiedBy),
      pld: epsilon(final.certified, 'pld'),
      rdp: epsilon(final.rdp, 'rdp'),
      edgeworth: epsilon(final.edgeworth, `edgeworth (order ${config.privacy.edgeworthOrder})`),
    },
    delta: config.privacy.delta,
    targetEpsilon: config.privacy.targetEpsilon ?? null,
    noiseMultiplier: input.noiseMultiplier,
    accountedNoiseMultiplier: input.accountedNoiseMultiplier,
    sampleRate: input.sampleRate,
    expectedBatchSize: config.training.expectedBatchSize,
    datasetSize: input.datasetSize,
    steps: final.steps,
    l2NormClip: config.training.l2NormClip,
    sampler: config.privacy.sampler,
    adjacency: 'add-remove',
    noiseMode: config.privacy.noiseMode,
    noiseSource: 'node:crypto',
    accountant: certifiedBy,
    stopReason: input.stopReason,
    finetune: config.model.kind === 'pretrained-encoder' ? config.model.finetune : null,
    heldOutAccuracy: { test: input.accuracy.test ?? null, validation: input.accuracy.validation ?? null, note: 'statistics of held-out data, not covered by ε' },
    ledger: 'artifacts/privacy/ledger.jsonl of the run (replay it with `ewtune ledger`)',
    ewtuneVersion: EWTUNE_VERSION,
  };
}
