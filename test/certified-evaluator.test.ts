/**
 * The certified-ε evaluators of the live privacy curve: the worker thread answers exactly what the inline PLD
 * accountant answers, in request order; a dead worker rejects later requests at once instead of hanging.
 */
import assert from 'node:assert/strict';
import { pldEpsilon } from '../src/accounting/pld/index.ts';
import { InlineCertifiedEvaluator, WorkerCertifiedEvaluator } from '../src/monitor/certified-evaluator.ts';
import { PrivacyMonitor } from '../src/monitor/privacy-monitor.ts';

describe('certified evaluators', function () {
  this.timeout(60_000);

  it('the worker answers the same ε as pldEpsilon (labelled upper), for concurrent requests', async () => {
    const worker = new WorkerCertifiedEvaluator();
    try {
      const histories = [
        [{ sampleRate: 0.01, noiseMultiplier: 1.1, count: 10 }],
        [{ sampleRate: 0.01, noiseMultiplier: 1.1, count: 10 }, { sampleRate: 0.02, noiseMultiplier: 0.9, count: 5 }],
        [{ sampleRate: 0.3, noiseMultiplier: 2, count: 1 }],
      ];
      const answers = await Promise.all(histories.map((h) => worker.epsilon(h, 1e-5)));
      answers.forEach((a, i) => {
        const inline = pldEpsilon(histories[i], 1e-5);
        assert.equal(a.epsilon, inline.epsilon);
        assert.equal(a.kind, 'upper');
      });
    } finally {
      await worker.close();
    }
  });

  it('after close (or a dead worker) requests reject at once', async () => {
    const worker = new WorkerCertifiedEvaluator();
    await worker.close();
    await assert.rejects(worker.epsilon([{ sampleRate: 0.1, noiseMultiplier: 1, count: 1 }], 1e-5), /closed/);
  });

  it('PrivacyMonitor: certified ε at step 1, every 1% of the plan and at the end; estimates labelled', async () => {
    const certified: number[] = [];
    const monitor = new PrivacyMonitor({
      delta: 1e-5, targetEpsilon: 3, plannedSteps: 300, certified: new InlineCertifiedEvaluator(),
      onCertified: (step) => void certified.push(step),
    });
    for (let i = 0; i < 10; i++) {
      const p = monitor.record({ sampleRate: 0.01, noiseMultiplier: 1 });
      assert.equal(p.epsilonEdgeworth.kind, 'estimate');
      assert.equal(p.epsilonRdp.kind, 'upper');
      assert.equal(p.deltaEdgeworth?.kind, 'estimate');
    }
    const final = await monitor.finish();
    assert.deepEqual(certified.sort((a, b) => a - b), [1, 3, 6, 9, 10]);
    assert.equal(final.certified?.epsilon, pldEpsilon([{ sampleRate: 0.01, noiseMultiplier: 1, count: 10 }], 1e-5).epsilon);
  });
});
