/**
 * Probes: an identity op on a layer's pre-activation output whose gradient function records the upstream
 * gradient G = ∂(Σ_i loss_i)/∂z. One backward pass with respect to a zero scalar `seed` (an input of every probe)
 * walks exactly the activation-gradient chain of the model: tfjs prunes the tape to the paths from the seed, so no
 * weight gradient is ever formed (tfjs-core engine.gradients / getFilteredNodesXToY).
 */
import * as tf from '@tensorflow/tfjs';

export class ProbeSet {
  /** Tensors this step owns outside any tidy scope (captured G, kept activations, caches); disposed by dispose(). */
  private readonly owned: tf.Tensor[] = [];
  private readonly captured = new Map<number, tf.Tensor>();
  private nextId = 0;
  /** The scalar 0 the backward pass differentiates with respect to (set by the step before the forward pass). */
  seed: tf.Tensor | null = null;

  /** Identity on z whose backward pass stores dL/dz; returns the probe's output and its id. */
  attach(z: tf.Tensor): { output: tf.Tensor; id: number } {
    if (this.seed === null) throw new Error('ProbeSet.attach called before the seed was set');
    const id = this.nextId++;
    const probe = tf.customGrad(((zIn: tf.Tensor, seed: tf.Tensor) => ({
      value: tf.clone(zIn),
      gradFunc: (dy: tf.Tensor) => {
        const previous = this.captured.get(id);
        const g = this.own(previous ? tf.add(previous, dy) : dy); // own() keeps a copy of dy
        this.captured.set(id, g);
        return [dy, tf.zerosLike(seed)];
      },
    })) as unknown as Parameters<typeof tf.customGrad>[0]);
    return { output: probe(z, this.seed), id };
  }

  /** The recorded output gradient of probe `id`, or undefined if the loss does not depend on it. */
  gradient(id: number): tf.Tensor | undefined {
    return this.captured.get(id);
  }

  /** Keeps `t` (a clone, so the tape's own disposal of saved tensors cannot free it) until dispose(). */
  own<T extends tf.Tensor>(t: T): T {
    const kept = tf.keep(t.clone() as T);
    this.owned.push(kept);
    return kept;
  }

  dispose(): void {
    tf.dispose(this.owned);
    this.owned.length = 0;
    this.captured.clear();
  }
}
