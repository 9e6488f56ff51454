/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors, format section): 8-byte little-endian
 * header length N, N bytes of JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {..}}`,
 * then the little-endian tensor bytes, offsets relative to the end of the header.
 *
 * Written here because no maintained npm package reads safetensors into plain typed arrays without pulling in a
 * runtime (the format is ~100 lines to read and check). Every malformed input raises ModelDirError (code
 * ERR_SAFETENSORS) naming the file and, where it applies, the tensor.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { ModelDirError } from './errors.ts';

/** Dtypes this reader accepts (others are refused with a typed error). */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** Largest header accepted (the reference implementation's limit is 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** One tensor as stored: values decoded to float32 (floating dtypes) or int32 (integer/bool dtypes). */
export interface StoredTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Decoded values, row-major. */
  values: Float32Array | Int32Array;
}

/** A parsed safetensors file. */
export interface SafetensorsFile {
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
}

function fail(file: string, message: string, tensor?: string): never {
  throw new ModelDirError('ERR_SAFETENSORS', file, message, tensor !== undefined ? { tensor } : undefined);
}

function isDtype(d: unknown): d is SafetensorsDtype {
  return typeof d === 'string' && Object.prototype.hasOwnProperty.call(BYTES, d);
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? Number.NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

function decode(file: string, name: string, dtype: SafetensorsDtype, bytes: Buffer, count: number): Float32Array | Int32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32': {
      // Little-endian host: one aligned copy of the bytes is the array.
      if (LITTLE_ENDIAN_HOST) return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 4 * count));
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(count);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u[i] = view.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'I64': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = view.getBigInt64(8 * i, true);
        if (v > 2147483647n || v < -2147483648n) fail(file, `I64 value ${v} at index ${i} does not fit int32`, name);
        out[i] = Number(v);
      }
      return out;
    }
    case 'I32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true);
      return out;
    }
    case 'I16': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(2 * i, true);
      return out;
    }
    case 'I8': return Int32Array.from(new Int8Array(bytes.buffer, bytes.byteOffset, count));
    case 'U8':
    case 'BOOL': return Int32Array.from(bytes.subarray(0, count));
  }
}

/**
 * Parses safetensors bytes. `file` only names the source in errors.
 * @throws ModelDirError (ERR_SAFETENSORS) on a short file, a bad header, an unknown dtype, a bad shape, offsets out of
 *   range or not matching the shape, or overlapping tensors.
 */
export function parseSafetensors(bytes: Buffer, file = '<buffer>'): SafetensorsFile {
  if (bytes.byteLength < 8) fail(file, `file is ${bytes.byteLength} bytes, shorter than the 8-byte header length (truncated?)`);
  const headerLength = bytes.readBigUInt64LE(0);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(file, `header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes (not a safetensors file?)`);
  const n = Number(headerLength);
  if (8 + n > bytes.byteLength) fail(file, `header of ${n} bytes does not fit in the ${bytes.byteLength}-byte file (truncated?)`);
  let header: unknown;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  } catch (err) {
    fail(file, `header is not valid JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail(file, 'header is not a JSON object');
  const dataStart = 8 + n;
  const dataLength = bytes.byteLength - dataStart;
  const tensors = new Map<string, StoredTensor>();
  let metadata: Record<string, string> = {};
  const ranges: Array<[number, number, string]> = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry !== null && typeof entry === 'object') metadata = entry as Record<string, string>;
      continue;
    }
    if (entry === null || typeof entry !== 'object') fail(file, 'header entry is not an object', name);
    const { dtype, shape, data_offsets: offsets } = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDtype(dtype)) fail(file, `unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(BYTES).join(', ')})`, name);
    if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
      fail(file, `shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0) || offsets[1] < offsets[0]) {
      fail(file, `data_offsets ${JSON.stringify(offsets)} are not [begin, end] with 0 ≤ begin ≤ end`, name);
    }
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end - begin !== count * BYTES[dtype]) {
      fail(file, `data_offsets span ${end - begin} bytes but shape ${JSON.stringify(shape)} of ${dtype} needs ${count * BYTES[dtype]}`, name);
    }
    if (end > dataLength) fail(file, `data_offsets end ${end} is beyond the ${dataLength} data bytes (truncated?)`, name);
    ranges.push([begin, end, name]);
    tensors.set(name, {
      dtype, shape: shape as number[],
      values: decode(file, name, dtype, bytes.subarray(dataStart + begin, dataStart + end), count),
    });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) fail(file, `bytes overlap those of ${ranges[i - 1][2]}`, ranges[i][2]);
  }
  return { tensors, metadata };
}

/** Reads and parses a safetensors file. @throws ModelDirError (ERR_FILE_MISSING if absent, else ERR_SAFETENSORS). */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ModelDirError('ERR_MODEL_FILE_MISSING', path, `cannot read (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
  }
  return parseSafetensors(bytes, path);
}

/** A stored tensor as a tf tensor (float32 or int32). The caller owns it. */
export function toTfTensor(t: StoredTensor): tf.Tensor {
  return tf.tensor(t.values, t.shape, t.values instanceof Float32Array ? 'float32' : 'int32');
}

/** A tensor to write: F32 from float32 values, I32 or I64 from int32 values. */
export interface TensorToWrite {
  dtype: 'F32' | 'I32' | 'I64';
  shape: number[];
  values: Float32Array | Int32Array;
}

/**
 * Serialises tensors as safetensors bytes (names sorted, header padded with spaces to a multiple of 8 bytes as the
 * reference writer does). @throws ModelDirError if a tensor's value count does not match its shape.
 */
export function serialiseSafetensors(tensors: Map<string, TensorToWrite>, metadata: Record<string, string> = { format: 'pt' }, file = '<buffer>'): Buffer {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.values.length) fail(file, `${t.values.length} values for shape ${JSON.stringify(t.shape)}`, name);
    const size = count * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  while (Buffer.byteLength(json) % 8 !== 0) json += ' ';
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.byteLength + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.byteLength), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.byteLength;
  for (const name of names) {
    const t = tensors.get(name)!;
    for (let i = 0; i < t.values.length; i++) {
      if (t.dtype === 'F32') { out.writeFloatLE(t.values[i], pos); pos += 4; }
      else if (t.dtype === 'I32') { out.writeInt32LE(t.values[i], pos); pos += 4; }
      else { out.writeBigInt64LE(BigInt(t.values[i]), pos); pos += 8; }
    }
  }
  return out;
}

/** Writes tensors to a safetensors file. */
export async function writeSafetensors(path: string, tensors: Map<string, TensorToWrite>, metadata?: Record<string, string>): Promise<void> {
  await writeFile(path, serialiseSafetensors(tensors, metadata, path));
}
