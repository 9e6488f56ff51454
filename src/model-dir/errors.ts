/** Typed errors of model directories (src/model-dir): every one names the file and, where it applies, the tensor. */
import { EwtuneError } from '../errors.ts';

/**
 * A model directory or one of its files is unusable: a missing file, a safetensors file that is truncated or has an
 * unknown dtype, a tensor whose shape does not match config.json, an architecture ewtune does not know.
 * `code` is one of ERR_MODEL_FILE_MISSING, ERR_SAFETENSORS, ERR_MODEL_SHAPE, ERR_MODEL_ARCHITECTURE, ERR_MODEL_CONFIG,
 * ERR_MODEL_FETCH.
 */
export class ModelDirError extends EwtuneError {
  /** The file concerned (absolute or as given). */
  readonly file: string;
  /** The tensor concerned, when there is one. */
  readonly tensor: string | undefined;
  constructor(code: string, file: string, message: string, options?: { tensor?: string; cause?: unknown }) {
    super(code, `${file}${options?.tensor !== undefined ? ` (tensor ${options.tensor})` : ''}: ${message}`,
      options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.file = file;
    this.tensor = options?.tensor;
  }
}
