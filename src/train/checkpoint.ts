/**
 * Training checkpoints: model weights and optimizer state, written atomically, so a killed run can continue
 * (`ewtune train --resume <run dir>`, plugin/resume.ts).
 *
 * Layout of a checkpoint directory (format `ewtune-checkpoint/1`):
 * ```
 * <dir>/
 *   weights-<updates>.bin   the trainable weights' and the optimizer's values, little-endian float32/int32,
 *                           concatenated in manifest order
 *   manifest.json           { format, updates, ledgerSteps, ledgerId, createdAt, file, bytes, sha256, tensors: [
 *                             { group: 'model' | 'optimizer', name, dtype, shape, offset, bytes } ],
 *                             frozen: [{ name, dtype, shape, sha256 }], extra }
 * ```
 * Only trainable weights are stored: DP training never changes a frozen weight (BatchNormalization statistics are
 * refused unless frozen), so a resumed run rebuilds them as the run started (e.g. from the pre-trained checkpoint) —
 * for a LoRA or top-k fine-tuning that is the bulk of the model (~90 MB for MiniLM) not rewritten every N steps. Each
 * frozen weight's SHA-256 is recorded, and a restore refuses a model whose frozen weights differ (e.g. a frozen layer
 * with a random initialiser, or another pre-trained checkpoint). Format 1 checkpoints (every weight stored) still
 * restore.
 * Write order (each file: write to a temporary name, fsync, rename, fsync the directory): the binary file first, then
 * the manifest that names it. The manifest's rename is the commit point: a crash before it leaves the previous
 * checkpoint in force (the new binary is unreferenced and removed by the next write); after it, the new one. Binary
 * files the manifest does not name are deleted only after the commit.
 *
 * Why a checkpoint is never ahead of the ledger: the ledger record of a step is fsynced before that step's update is
 * applied (dpFit awaits `appendStep` before `applyGradients`), and a checkpoint is taken after an update, recording the
 * ledger's step count at that moment (`ledgerSteps`, which includes the step whose update it holds). So on disk,
 * ledger steps ≥ checkpoint `ledgerSteps` always; a resume refuses a checkpoint that claims more (see plugin/resume.ts).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { EwtuneError, InvalidArgumentError } from '../errors.ts';
import type { TrainableModel } from './types.ts';

export const CHECKPOINT_FORMAT = 'ewtune-checkpoint/2';
/** The earlier format (every weight stored, no `frozen`): still restored. */
export const CHECKPOINT_FORMAT_1 = 'ewtune-checkpoint/1';
export const CHECKPOINT_MANIFEST = 'manifest.json';

/** One stored tensor. `offset`/`bytes` locate its values in the binary file. */
export interface CheckpointTensor {
  readonly group: 'model' | 'optimizer';
  readonly name: string;
  readonly dtype: 'float32' | 'int32';
  readonly shape: number[];
  readonly offset: number;
  readonly bytes: number;
}

/** Contents of manifest.json. */
export interface CheckpointManifest {
  readonly format: typeof CHECKPOINT_FORMAT | typeof CHECKPOINT_FORMAT_1;
  /** Optimizer updates applied to the stored weights (over the whole, possibly resumed, run). */
  readonly updates: number;
  /** The ledger's step count when the checkpoint was taken (≥ every step whose update is in the weights). */
  readonly ledgerSteps: number;
  /** The ledger (header.ledgerId) the checkpoint belongs to. */
  readonly ledgerId?: string;
  readonly createdAt: string;
  /** Binary file name (in the same directory), its size and SHA-256 (hex). */
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly tensors: CheckpointTensor[];
  /** Format 2: the frozen (not stored) weights, in model order, with the SHA-256 of their values. */
  readonly frozen?: FrozenWeight[];
  /** Caller data (JSON). */
  readonly extra?: Record<string, unknown>;
}

/** A frozen weight: not stored, fingerprinted. */
export interface FrozenWeight {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  /** SHA-256 (hex) of the values' bytes. */
  readonly sha256: string;
}

/** A checkpoint that is missing a file, corrupt, or does not fit the model/optimizer it is restored into. */
export class CheckpointError extends EwtuneError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('ERR_CHECKPOINT', `${path}: ${message}`);
    this.path = path;
  }
}

/** What {@link writeCheckpoint} stores. */
export interface CheckpointInput {
  readonly model: TrainableModel;
  /** Optimizer whose state (`getWeights()`: iteration count, moments) is stored; omit for none. */
  readonly optimizer?: tf.Optimizer;
  readonly updates: number;
  readonly ledgerSteps: number;
  readonly ledgerId?: string;
  readonly extra?: Record<string, unknown>;
}

interface ModelWeight { name: string; value: tf.Variable | tf.Tensor; trainable: boolean; assign: (t: tf.Tensor) => void }

/** The model's weights in a stable order: a LayersModel's `weights` (trainable and frozen), else `variables`. */
function modelWeights(model: TrainableModel): ModelWeight[] {
  if (model instanceof tf.LayersModel) {
    return model.weights.map((w) => ({ name: w.originalName, value: w.read(), trainable: w.trainable, assign: (t: tf.Tensor) => w.write(t) }));
  }
  const vars = (model as { variables?: unknown }).variables;
  if (!Array.isArray(vars)) throw new InvalidArgumentError('model', model, 'a tf.LayersModel or { variables: tf.Variable[] }');
  return (vars as tf.Variable[]).map((v) => ({ name: v.name, value: v, trainable: v.trainable, assign: (t: tf.Tensor) => v.assign(t) }));
}

async function fingerprint(w: ModelWeight): Promise<FrozenWeight> {
  const values = await w.value.data();
  const sha256 = createHash('sha256').update(Buffer.from(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
  return { name: w.name, dtype: w.value.dtype, shape: [...w.value.shape], sha256 };
}

function checkDtype(path: string, name: string, dtype: string): 'float32' | 'int32' {
  if (dtype === 'float32' || dtype === 'int32') return dtype;
  throw new CheckpointError(path, `tensor ${JSON.stringify(name)} has dtype ${dtype}; only float32 and int32 are stored`);
}

function writeFileDurable(path: string, data: Buffer | string): void {
  const fd = fs.openSync(path, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let written = 0;
    while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Write `data` to `dir/name` atomically and durably: temporary file + fsync + rename + fsync of the directory. */
export function writeFileAtomic(dir: string, name: string, data: Buffer | string): void {
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  writeFileDurable(tmp, data);
  fs.renameSync(tmp, join(dir, name));
  fsyncDir(dir);
}

/**
 * Write a checkpoint of `input.model` (and `input.optimizer`'s state) into `dir` (created if missing), atomically (see
 * the module comment). Returns the manifest written. Throws InvalidArgumentError for bad counts, CheckpointError for an
 * unsupported dtype; file-system errors propagate.
 */
export async function writeCheckpoint(dir: string, input: CheckpointInput): Promise<CheckpointManifest> {
  if (!Number.isSafeInteger(input.updates) || input.updates < 0) throw new InvalidArgumentError('updates', input.updates, 'an integer ≥ 0');
  if (!Number.isSafeInteger(input.ledgerSteps) || input.ledgerSteps < 0) throw new InvalidArgumentError('ledgerSteps', input.ledgerSteps, 'an integer ≥ 0');
  fs.mkdirSync(dir, { recursive: true });
  const chunks: Buffer[] = [];
  const tensors: CheckpointTensor[] = [];
  let offset = 0;
  const add = async (group: CheckpointTensor['group'], name: string, t: tf.Tensor): Promise<void> => {
    const dtype = checkDtype(dir, name, t.dtype);
    const values = await t.data();
    const buf = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    chunks.push(Buffer.from(buf)); // copy: the typed array may be reused by the backend
    tensors.push({ group, name, dtype, shape: [...t.shape], offset, bytes: buf.length });
    offset += buf.length;
  };
  const frozen: FrozenWeight[] = [];
  for (const w of modelWeights(input.model)) {
    if (w.trainable) await add('model', w.name, w.value);
    else frozen.push(await fingerprint(w));
  }
  if (input.optimizer) {
    const named = await input.optimizer.getWeights();
    try {
      for (const { name, tensor } of named) await add('optimizer', name, tensor);
    } finally {
      // getWeights() returns the optimizer's own variables plus fresh tensors (the iteration count): dispose only those.
      for (const { tensor } of named) if (!(tensor instanceof tf.Variable)) tensor.dispose();
    }
  }
  const data = Buffer.concat(chunks);
  const file = `weights-${input.updates}.bin`;
  writeFileAtomic(dir, file, data);
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT, updates: input.updates, ledgerSteps: input.ledgerSteps, ledgerId: input.ledgerId,
    createdAt: new Date().toISOString(), file, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex'),
    tensors, frozen, extra: input.extra,
  };
  writeFileAtomic(dir, CHECKPOINT_MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`);
  for (const name of fs.readdirSync(dir)) {
    if (name !== file && /^weights-\d+\.bin$|^\.weights-\d+\.bin\.tmp-\d+$/.test(name)) fs.rmSync(join(dir, name), { force: true });
  }
  return manifest;
}

/** The manifest in `dir`, or undefined when there is no checkpoint. A corrupt manifest is a CheckpointError. */
export function readCheckpointManifest(dir: string): CheckpointManifest | undefined {
  const path = join(dir, CHECKPOINT_MANIFEST);
  if (!fs.existsSync(path)) return undefined;
  let m: CheckpointManifest;
  try {
    m = JSON.parse(fs.readFileSync(path, 'utf8')) as CheckpointManifest;
  } catch (e) {
    throw new CheckpointError(path, `cannot read the manifest (${(e as Error).message})`);
  }
  if (m?.format !== CHECKPOINT_FORMAT && m?.format !== CHECKPOINT_FORMAT_1) {
    throw new CheckpointError(path, `unknown format ${JSON.stringify(m?.format)} (expected ${CHECKPOINT_FORMAT})`);
  }
  if (m.format === CHECKPOINT_FORMAT && !Array.isArray(m.frozen)) throw new CheckpointError(path, 'the manifest lacks frozen');
  if (!Number.isSafeInteger(m.updates) || !Number.isSafeInteger(m.ledgerSteps) || !Array.isArray(m.tensors) || typeof m.file !== 'string') {
    throw new CheckpointError(path, 'the manifest lacks updates, ledgerSteps, file or tensors');
  }
  return m;
}

/**
 * Restore the checkpoint in `dir` into `model` (its trainable weights, in order; shapes must match; its frozen
 * weights must equal the ones the checkpoint was taken with) and `optimizer` (its state via `setWeights`; give a
 * fresh optimizer of the same kind). Returns the manifest, or undefined when `dir` holds no checkpoint. Throws
 * CheckpointError for a missing/corrupt binary (size or SHA-256 mismatch), a model that does not fit, or frozen
 * weights that differ.
 */
export async function restoreCheckpoint(dir: string, model: TrainableModel, optimizer?: tf.Optimizer): Promise<CheckpointManifest | undefined> {
  const manifest = readCheckpointManifest(dir);
  if (!manifest) return undefined;
  const binPath = join(dir, manifest.file);
  let data: Buffer;
  try {
    data = fs.readFileSync(binPath);
  } catch (e) {
    throw new CheckpointError(binPath, `cannot read the weights (${(e as Error).message})`);
  }
  if (data.length !== manifest.bytes) throw new CheckpointError(binPath, `${data.length} bytes where the manifest says ${manifest.bytes}`);
  if (createHash('sha256').update(data).digest('hex') !== manifest.sha256) throw new CheckpointError(binPath, 'SHA-256 differs from the manifest (corrupt file)');
  const toTensor = (t: CheckpointTensor): tf.Tensor => {
    if (t.offset < 0 || t.offset + t.bytes > data.length || t.bytes % 4 !== 0) throw new CheckpointError(binPath, `tensor ${JSON.stringify(t.name)} lies outside the file`);
    const copy = new Uint8Array(t.bytes);
    copy.set(data.subarray(t.offset, t.offset + t.bytes));
    const values = t.dtype === 'int32' ? new Int32Array(copy.buffer) : new Float32Array(copy.buffer);
    if (values.length !== t.shape.reduce((a, b) => a * b, 1)) throw new CheckpointError(binPath, `tensor ${JSON.stringify(t.name)}: ${values.length} values for shape [${t.shape}]`);
    return tf.tensor(values, t.shape, t.dtype);
  };
  const stored = manifest.tensors.filter((t) => t.group === 'model');
  const all = modelWeights(model);
  // Format 1 stored every weight; format 2 the trainable ones and a fingerprint of each frozen one.
  const weights = manifest.frozen ? all.filter((w) => w.trainable) : all;
  if (stored.length !== weights.length) {
    throw new CheckpointError(binPath, `${stored.length} ${manifest.frozen ? 'trainable ' : ''}model weights stored, the model has ${weights.length}`);
  }
  if (manifest.frozen) {
    const frozen = all.filter((w) => !w.trainable);
    if (frozen.length !== manifest.frozen.length) {
      throw new CheckpointError(binPath, `the checkpoint was taken with ${manifest.frozen.length} frozen weights, the model has ${frozen.length}`);
    }
    for (let i = 0; i < frozen.length; i++) {
      const want = manifest.frozen[i];
      const got = await fingerprint(frozen[i]);
      if (got.sha256 !== want.sha256 || got.shape.join() !== want.shape.join()) {
        throw new CheckpointError(binPath, `frozen weight ${i} (${JSON.stringify(got.name)}) differs from the one the checkpoint was taken with `
          + `(${JSON.stringify(want.name)}): rebuild the model as the run started (same pre-trained weights, same frozen layers)`);
      }
    }
  }
  weights.forEach((w, i) => {
    const t = stored[i];
    if (t.shape.length !== w.value.shape.length || t.shape.some((d, j) => d !== w.value.shape[j])) {
      throw new CheckpointError(binPath, `weight ${i} (${JSON.stringify(w.name)}): stored shape [${t.shape}] (${JSON.stringify(t.name)}), model shape [${w.value.shape}]`);
    }
  });
  weights.forEach((w, i) => {
    const t = toTensor(stored[i]);
    try {
      w.assign(t);
    } finally {
      t.dispose();
    }
  });
  const opt = manifest.tensors.filter((t) => t.group === 'optimizer');
  if (optimizer && opt.length > 0) {
    const named = opt.map((t) => ({ name: t.name, tensor: toTensor(t) }));
    try {
      await optimizer.setWeights(named);
    } finally {
      // setWeights makes its own variables from these (reference-counted): ours can go.
      for (const { tensor } of named) tensor.dispose();
    }
  }
  return manifest;
}
