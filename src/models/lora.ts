/**
 * LoRA (Hu et al. 2021) for tfjs-layers: a Dense layer whose base kernel W [in, out] and bias b are frozen and whose
 * update is the low-rank product of two trainable matrices A [in, r] and B [r, out]:
 *
 *   y = act(x·W + b + (alpha/r)·(drop(x)·A)·B)
 *
 * B starts at zero, so a fresh adapter leaves the base model's output unchanged; A starts like PEFT's
 * kaiming_uniform(a = √5), i.e. U(−1/√in, 1/√in) (tf.initializers.varianceScaling with scale 1/3, fan-in, uniform;
 * initialisation is not on the privacy path). {@link LoraDense.merge} folds the adapter into the kernel for saving in
 * the Hugging Face layout. DP-LoRA (Yu et al. 2022): only A, B (and the head) are trained with DP-SGD; the per-example
 * rule is src/dp/per-example/lora-rule.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.ts';
import { createSecureRandom } from '../dp/csprng.ts';
import type { RandomSource } from '../dp/csprng.ts';

/** An activation name tfjs-layers accepts (its ActivationIdentifier, e.g. `gelu`, `tanh`, `softmax`). */
export type LinearActivation = string;

/** Arguments of a Linear layer as the BERT builder's `options.linear` factory receives them. */
export interface LinearArgs {
  /** The layer name (a Hugging Face module path, e.g. `encoder.layer.0.attention.self.query`). */
  name: string;
  /** Output width. */
  units: number;
  useBias: boolean;
  activation?: LinearActivation;
}

/** Builds the Linear (Dense-like) layers of an encoder. */
export type LinearFactory = (args: LinearArgs) => tf.layers.Layer;

/** Arguments of {@link LoraDense}. */
export interface LoraDenseArgs {
  /** Output width (out). */
  units: number;
  /** Adapter rank r ≥ 1. */
  rank: number;
  /** LoRA alpha; the update is scaled by alpha / r. Default: rank (scale 1). */
  alpha?: number;
  /** Base bias b (frozen unless `trainBias`). Default true. */
  useBias?: boolean;
  /** Train the bias too (LoRA + bias). Default false. */
  trainBias?: boolean;
  /** Activation after the sum. Default `linear`. */
  activation?: LinearActivation;
  /** Dropout rate on the adapter's input, in [0, 1); only in training mode. Default 0. */
  dropout?: number;
  /** Layer name (tfjs default when absent). */
  name?: string;
}

/** Default LoRA rank and alpha (PEFT's defaults: r = 8, alpha = 8). */
export const DEFAULT_LORA_RANK = 8;

/**
 * The dropout mask source of LoRA layers in training mode: node:crypto (never TF.js random ops). Replaceable for
 * tests through {@link setLoraDropoutRandom}.
 */
let dropoutRandom: RandomSource | null = null;

/** Replaces the random source of LoRA dropout masks (null: the OS CSPRNG, created on first use). */
export function setLoraDropoutRandom(source: RandomSource | null): void {
  dropoutRandom = source;
}

/**
 * A LoRA linear layer (class name `LoraDense`). Weights: `kernel` [in, out] and `bias` [out] (frozen: created
 * non-trainable), `lora_A` [in, r] and `lora_B` [r, out] (trainable).
 */
export class LoraDense extends tf.layers.Layer {
  /** tfjs serialisation class name. */
  static className = 'LoraDense';
  /** Output width (out). */
  readonly units: number;
  /** Adapter rank r. */
  readonly rank: number;
  /** LoRA alpha: the adapter update B·A is scaled by alpha / r. */
  readonly alpha: number;
  /** Whether the layer has a bias. */
  readonly useBias: boolean;
  /** Whether the bias is trainable (default false: frozen with the kernel). */
  readonly trainBias: boolean;
  /** The activation's name ('linear' for none). */
  readonly activationName: LinearActivation;
  /** Dropout rate on the adapter's input in training mode, in [0, 1). */
  readonly dropoutRate: number;
  /** The activation function object (read by the per-example rule like Dense's `activation`). */
  readonly activation: {
    /** Applies the activation elementwise. */
    apply(x: tf.Tensor): tf.Tensor;
  } | null;
  /** The frozen pre-trained kernel [in, out]. */
  kernel!: tf.LayerVariable;
  /** The bias [out], or null without one. */
  bias: tf.LayerVariable | null = null;
  /** Trainable adapter A [in, r] (`lora_A`). */
  loraA!: tf.LayerVariable;
  /** Trainable adapter B [r, out] (`lora_B`), initialised to zero. */
  loraB!: tf.LayerVariable;

  /** @throws InvalidArgumentError for a non-integer units/rank, alpha ≤ 0 or dropout outside [0, 1). */
  constructor(args: LoraDenseArgs) {
    super({ name: args.name });
    if (!Number.isInteger(args.units) || args.units < 1) throw new InvalidArgumentError('units', args.units, 'a positive integer');
    if (!Number.isInteger(args.rank) || args.rank < 1) throw new InvalidArgumentError('rank', args.rank, 'a positive integer');
    const alpha = args.alpha ?? args.rank;
    if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) {
      throw new InvalidArgumentError('alpha', alpha, 'a finite number > 0');
    }
    const dropout = args.dropout ?? 0;
    if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) {
      throw new InvalidArgumentError('dropout', dropout, 'a number in [0, 1)');
    }
    this.units = args.units;
    this.rank = args.rank;
    this.alpha = alpha;
    this.useBias = args.useBias ?? true;
    this.trainBias = args.trainBias ?? false;
    this.activationName = args.activation ?? 'linear';
    this.dropoutRate = dropout;
    const act = (tf.layers.activation({ activation: this.activationName as 'linear' }) as unknown as
      { activation: { apply(x: tf.Tensor): tf.Tensor; getClassName(): string } }).activation;
    this.activation = this.activationName === 'linear' ? null : act;
  }

  /** alpha / r. */
  get scale(): number {
    return this.alpha / this.rank;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const inDim = shape[shape.length - 1];
    if (typeof inDim !== 'number') throw new InvalidArgumentError('inputShape', shape, 'a known last dimension');
    this.kernel = this.addWeight('kernel', [inDim, this.units], 'float32', tf.initializers.glorotUniform({}),
      undefined, false);
    if (this.useBias) {
      this.bias = this.addWeight('bias', [this.units], 'float32', tf.initializers.zeros(), undefined, this.trainBias);
    }
    this.loraA = this.addWeight('lora_A', [inDim, this.rank], 'float32',
      tf.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanIn', distribution: 'uniform' }));
    this.loraB = this.addWeight('lora_B', [this.rank, this.units], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [...shape.slice(0, -1), this.units];
  }

  /**
   * The inverted-dropout mask (values 0 or 1/(1−p)) of the adapter input, shape `shape`, or null when dropout is off
   * or not training. Randomness from node:crypto.
   */
  dropoutMask(shape: number[], training: boolean): tf.Tensor | null {
    if (!training || this.dropoutRate === 0) return null;
    dropoutRandom ??= createSecureRandom();
    const n = shape.reduce((a, b) => a * b, 1);
    const keep = 1 - this.dropoutRate;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = dropoutRandom.uniform() < keep ? 1 / keep : 0;
    return tf.tensor(data, shape, 'float32');
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown> = {}): tf.Tensor {
    return tf.tidy(() => {
      const x0 = Array.isArray(inputs) ? inputs[0] : inputs;
      const x = x0.dtype === 'float32' ? x0 : tf.cast(x0, 'float32');
      const mask = this.dropoutMask(x.shape, kwargs.training === true);
      const z = this.preActivation(x, mask);
      return this.activation ? this.activation.apply(z) : z;
    });
  }

  /** x·W + b + s·((x ⊙ mask)·A)·B on the last axis of x (any rank). */
  preActivation(x: tf.Tensor, mask: tf.Tensor | null): tf.Tensor {
    const inDim = x.shape[x.rank - 1];
    const flat = tf.reshape(x, [-1, inDim]);
    const dropped = mask ? tf.reshape(tf.mul(x, mask), [-1, inDim]) : flat;
    let z = tf.matMul(flat, this.kernel.read());
    if (this.bias) z = tf.add(z, this.bias.read());
    const u = tf.matMul(dropped, this.loraA.read());
    z = tf.add(z, tf.mul(tf.matMul(u, this.loraB.read()), this.scale));
    return tf.reshape(z, [...x.shape.slice(0, -1), this.units]);
  }

  /** The merged kernel W + (alpha/r)·A·B, [in, out] (a new tensor; the caller disposes it). */
  merge(): tf.Tensor2D {
    return tf.tidy(() => tf.add(this.kernel.read(), tf.mul(tf.matMul(this.loraA.read(), this.loraB.read()), this.scale))) as tf.Tensor2D;
  }

  /** Copies a base kernel [in, out] (and bias [out]) into the frozen weights, e.g. from a loaded Dense layer. */
  setBase(kernel: tf.Tensor, bias: tf.Tensor | null): void {
    if (!this.built) throw new InvalidArgumentError('layer', this.name, 'a built LoraDense (apply it to an input first)');
    const k = this.kernel.read().shape;
    if (kernel.shape.length !== 2 || kernel.shape[0] !== k[0] || kernel.shape[1] !== k[1]) {
      throw new InvalidArgumentError(`${this.name}.kernel`, kernel.shape, `of shape [${k.join(', ')}]`);
    }
    this.kernel.write(kernel);
    if (this.bias) {
      if (!bias || bias.shape.length !== 1 || bias.shape[0] !== this.units) {
        throw new InvalidArgumentError(`${this.name}.bias`, bias?.shape ?? null, `of shape [${this.units}]`);
      }
      this.bias.write(bias);
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      rank: this.rank,
      alpha: this.alpha,
      useBias: this.useBias,
      trainBias: this.trainBias,
      activation: this.activationName,
      dropout: this.dropoutRate,
    };
  }
}
tf.serialization.registerClass(LoraDense);

/** Options of {@link loraLinearFactory}. */
export interface LoraFactoryOptions {
  /** Adapter rank r, a positive integer. Default 8. */
  rank?: number;
  /** LoRA alpha (scale alpha / r). Default: rank. */
  alpha?: number;
  /** Adapter-input dropout rate. Default 0. */
  dropout?: number;
  /**
   * Which Linear layers get adapters: a layer gets one when its full name or a trailing run of its path components
   * is listed (`query` matches `encoder.layer.0.attention.self.query`; `intermediate.dense` matches every layer's
   * intermediate projection; `dense` matches every `….dense`). Default `['query', 'value']`.
   */
  targets?: readonly string[];
  /** Train the adapted layers' biases too. Default false. */
  trainBias?: boolean;
}

/** Default LoRA targets: the attention query and value projections (Hu et al. 2021; Yu et al. 2022). */
export const DEFAULT_LORA_TARGETS: readonly string[] = ['query', 'value'];

/**
 * Whether a layer named `name` is one of `targets`: a target matches the full name or a trailing run of its
 * dot-separated path components (`query`, `self.query`, `intermediate.dense`, `encoder.layer.0.output.dense`).
 */
export function isLoraTarget(name: string, targets: readonly string[]): boolean {
  return targets.some((t) => name === t || name.endsWith(`.${t}`));
}

/**
 * A {@link LinearFactory} that builds {@link LoraDense} layers for the targets and ordinary tf.layers.dense
 * elsewhere (frozen or trainable as the fine-tuning mode decides).
 *
 * @throws InvalidArgumentError for an empty target list or bad rank/alpha/dropout (checked before any layer is built).
 */
export function loraLinearFactory(options: LoraFactoryOptions = {}): LinearFactory {
  const rank = options.rank ?? DEFAULT_LORA_RANK;
  const targets = options.targets ?? DEFAULT_LORA_TARGETS;
  if (!Array.isArray(targets) || targets.length === 0 || !targets.every((t) => typeof t === 'string' && t.length > 0)) {
    throw new InvalidArgumentError('lora.targets', targets, 'a non-empty list of layer names');
  }
  // Validates rank, alpha and dropout once, up front.
  new LoraDense({ units: 1, rank, alpha: options.alpha, dropout: options.dropout });
  return (args) => (isLoraTarget(args.name, targets)
    ? new LoraDense({
      units: args.units, rank, alpha: options.alpha, dropout: options.dropout, useBias: args.useBias,
      trainBias: options.trainBias, activation: args.activation, name: args.name,
    })
    : tf.layers.dense({ units: args.units, useBias: args.useBias, activation: args.activation as 'linear', name: args.name }));
}
