/**
 * Parameter groups with their own optimizer (and so their own learning rate), as `torch.optim` parameter groups:
 * e.g. a freshly initialised classifier head at a larger learning rate than the pre-trained layers under it.
 *
 * Privacy: the groups only change how the privatised gradient (clipped per example, noised, averaged by the DP
 * step) is applied — post-processing of a DP output — so the guarantee is the same as with one optimizer.
 *
 * TF.js has no parameter groups (`tf.Optimizer.applyGradients` takes one learning rate), hence this small wrapper: it
 * routes each variable's gradient to its group's optimizer, and its state (`getWeights` / `setWeights`, for
 * checkpoints) is the groups' states with each weight name prefixed by the group name.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.ts';

/** A named tensor (tfjs-core's NamedTensor, not re-exported by @tensorflow/tfjs). */
type NamedTensor = { name: string; tensor: tf.Tensor };

/** One parameter group: the variables (by tf variable name) that `optimizer` updates. */
export interface OptimizerGroup {
  /** Group name (prefixes its optimizer's weight names in `getWeights`; unique, no `/`). */
  readonly name: string;
  readonly optimizer: tf.Optimizer;
  /** Names of the tf variables of this group. A variable may be in one group only. */
  readonly variables: readonly string[];
}

/**
 * Whether `x` is a tf.Optimizer. (`instanceof tf.Optimizer` is duck-typed by tfjs-core's Symbol.hasInstance, which
 * dereferences its operand: it throws on null.)
 */
function isOptimizer(x: unknown): x is tf.Optimizer {
  return x !== null && typeof x === 'object' && x instanceof tf.Optimizer;
}

type NamedGradients = tf.NamedTensorMap | NamedTensor[];

/** An optimizer that applies each variable's gradient with the optimizer of its group (the default group otherwise). */
export class GroupedOptimizer extends tf.Optimizer {
  /** The serialisation class name (tfjs convention). */
  static readonly className = 'GroupedOptimizer';

  private readonly groups: readonly OptimizerGroup[];
  private readonly defaultGroup: OptimizerGroup;
  private readonly groupOf = new Map<string, OptimizerGroup>();

  /**
   * @param groups the named groups (each with its variables).
   * @param defaultOptimizer updates every variable that is in no group (group name `default`).
   * @throws InvalidArgumentError for a group without a name or optimizer, a duplicate or `default` name, or a
   *   variable listed in two groups.
   */
  constructor(groups: readonly OptimizerGroup[], defaultOptimizer: tf.Optimizer) {
    super();
    if (!Array.isArray(groups)) throw new InvalidArgumentError('groups', groups, 'an array of { name, optimizer, variables }');
    if (!isOptimizer(defaultOptimizer)) throw new InvalidArgumentError('defaultOptimizer', defaultOptimizer, 'a tf.Optimizer');
    const names = new Set<string>(['default']);
    groups.forEach((g, i) => {
      if (typeof g?.name !== 'string' || g.name === '' || g.name.includes('/')) throw new InvalidArgumentError(`groups[${i}].name`, g?.name, 'a non-empty string without "/"');
      if (names.has(g.name)) throw new InvalidArgumentError(`groups[${i}].name`, g.name, 'a name not used by another group (nor "default")');
      names.add(g.name);
      if (!isOptimizer(g.optimizer)) throw new InvalidArgumentError(`groups[${i}].optimizer`, g.optimizer, 'a tf.Optimizer');
      if (!Array.isArray(g.variables)) throw new InvalidArgumentError(`groups[${i}].variables`, g.variables, 'an array of variable names');
      for (const v of g.variables) {
        if (this.groupOf.has(v)) throw new InvalidArgumentError(`groups[${i}].variables`, v, 'variables that belong to one group only');
        this.groupOf.set(v, g);
      }
    });
    this.groups = groups;
    this.defaultGroup = { name: 'default', optimizer: defaultOptimizer, variables: [] };
  }

  private all(): OptimizerGroup[] {
    return [this.defaultGroup, ...this.groups];
  }

  /** Applies each gradient with its group's optimizer (the default one for variables in no group). */
  override applyGradients(variableGradients: NamedGradients): void {
    const entries: Array<[string, tf.Tensor]> = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor])
      : Object.entries(variableGradients);
    const split = new Map<OptimizerGroup, tf.NamedTensorMap>();
    for (const [name, tensor] of entries) {
      const g = this.groupOf.get(name) ?? this.defaultGroup;
      const map = split.get(g) ?? {};
      map[name] = tensor;
      split.set(g, map);
    }
    for (const g of this.all()) {
      const map = split.get(g);
      if (map) g.optimizer.applyGradients(map);
    }
    this.incrementIterations();
  }

  /** Every group's optimizer state, each weight named `<group>/<name>`. */
  override async getWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [];
    for (const g of this.all()) {
      for (const w of await g.optimizer.getWeights()) out.push({ name: `${g.name}/${w.name}`, tensor: w.tensor });
    }
    return out;
  }

  /** Restores what {@link getWeights} returned (each group gets its own weights, in order). */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    for (const g of this.all()) {
      const prefix = `${g.name}/`;
      const mine = weightValues.filter((w) => w.name.startsWith(prefix)).map((w) => ({ name: w.name.slice(prefix.length), tensor: w.tensor }));
      if (mine.length > 0) await g.optimizer.setWeights(mine);
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { groups: this.all().map((g) => ({ name: g.name, optimizer: g.optimizer.getClassName(), variables: [...g.variables] })) };
  }

  override dispose(): void {
    for (const g of this.all()) g.optimizer.dispose();
    super.dispose();
  }
}
