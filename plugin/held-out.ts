/**
 * Held-out scoring of a classifier: accuracy and mean loss on a split that DP-SGD never trains on (the test split or
 * the validation split), in inference mode and in batches (no tensor kept). The loss is the training loss
 * (sparse categorical cross-entropy on the model's probabilities, Keras semantics, src/dp/per-example/losses.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { resolveLoss } from '../src/dp/per-example/losses.ts';
import { InvalidArgumentError } from '../src/errors.ts';

/** Accuracy (fraction in [0, 1]) and mean sparse categorical cross-entropy (nats) on one held-out split. */
export interface HeldOutScore {
  readonly accuracy: number;
  readonly loss: number;
}

const crossEntropy = resolveLoss('sparseCategoricalCrossentropy');

/**
 * Scores `model` on `x` (one input tensor or one per model input, batch axis first) against integer labels `y` [N].
 * Returns `undefined` for an empty split. Throws {@link InvalidArgumentError} (`batchSize`) unless batchSize is a
 * positive integer.
 */
export function scoreHeldOut(model: tf.LayersModel, x: tf.Tensor | readonly tf.Tensor[], y: tf.Tensor, batchSize: number): HeldOutScore | undefined {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new InvalidArgumentError('batchSize', batchSize, 'a positive integer');
  const inputs = Array.isArray(x) ? x as readonly tf.Tensor[] : [x as tf.Tensor];
  const n = y.shape[0];
  if (n === 0) return undefined;
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const [c, l] = tf.tidy(() => {
      const batch = inputs.map((t) => tf.slice(t, start, size));
      const probs = model.predict(batch.length === 1 ? batch[0] : batch) as tf.Tensor;
      const labels = tf.cast(tf.slice(y, start, size), 'int32');
      const hits = tf.sum(tf.equal(tf.argMax(probs, -1), labels));
      const loss = tf.sum(crossEntropy(labels, probs));
      return [hits.dataSync()[0], loss.dataSync()[0]];
    });
    correct += c;
    lossSum += l;
  }
  return { accuracy: correct / n, loss: lossSum / n };
}
