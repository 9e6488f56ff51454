/**
 * src/model-dir/safetensors.ts: the reader against files written by hand here (byte layout from the format spec,
 * not our writer), the writer read back, and every malformed input → ModelDirError naming the tensor / file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelDirError } from '../src/model-dir/errors.ts';
import { parseSafetensors, readSafetensors, serialiseSafetensors, writeSafetensors } from '../src/model-dir/safetensors.ts';

/** A safetensors file built byte by byte: header JSON (unpadded) and raw data. */
function handMade(header: Record<string, unknown>, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

function f32(values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeFloatLE(v, 4 * i));
  return b;
}

function rejects(bytes: Buffer, pattern: RegExp, tensor?: string): void {
  assert.throws(() => parseSafetensors(bytes, 'x.safetensors'), (err: unknown) => {
    assert.ok(err instanceof ModelDirError, String(err));
    assert.equal(err.code, 'ERR_SAFETENSORS');
    assert.equal(err.file, 'x.safetensors');
    assert.equal(err.tensor, tensor);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('safetensors', () => {
  it('reads F32, I64, F16, BF16 tensors at their offsets (an unaligned header too)', () => {
    const i64 = Buffer.alloc(16);
    i64.writeBigInt64LE(7n, 0);
    i64.writeBigInt64LE(-3n, 8);
    // F16 1.5 = 0x3e00, -2 = 0xc000; BF16 of 3.0 = 0x4040
    const f16 = Buffer.from([0x00, 0x3e, 0x00, 0xc0]);
    const bf16 = Buffer.from([0x40, 0x40]);
    const data = Buffer.concat([f32([1, -2.5, 3, 4, 5, 6]), i64, f16, bf16]);
    const bytes = handMade({
      __metadata__: { format: 'pt' },
      'a.weight': { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
      ids: { dtype: 'I64', shape: [1, 2], data_offsets: [24, 40] },
      h: { dtype: 'F16', shape: [2], data_offsets: [40, 44] },
      b: { dtype: 'BF16', shape: [], data_offsets: [44, 46] },
    }, data);
    const file = parseSafetensors(bytes);
    assert.deepEqual(file.metadata, { format: 'pt' });
    assert.deepEqual(file.tensors.get('a.weight')!.shape, [2, 3]);
    assert.deepEqual(Array.from(file.tensors.get('a.weight')!.values), [1, -2.5, 3, 4, 5, 6]);
    assert.deepEqual(Array.from(file.tensors.get('ids')!.values), [7, -3]);
    assert.ok(file.tensors.get('ids')!.values instanceof Int32Array);
    assert.deepEqual(Array.from(file.tensors.get('h')!.values), [1.5, -2]);
    assert.deepEqual(Array.from(file.tensors.get('b')!.values), [3]);
  });

  it('writer output is read back exactly, header padded to 8 bytes, names sorted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ewtune-st-'));
    try {
      const path = join(dir, 'w.safetensors');
      await writeSafetensors(path, new Map([
        ['z', { dtype: 'F32', shape: [3], values: Float32Array.from([0.1, 0.2, -7]) }],
        ['a', { dtype: 'I64', shape: [2, 1], values: Int32Array.from([5, -9]) }],
      ]));
      const bytes = serialiseSafetensors(new Map([['z', { dtype: 'F32', shape: [3], values: Float32Array.from([0.1, 0.2, -7]) }]]));
      assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0);
      const back = await readSafetensors(path);
      assert.deepEqual([...back.tensors.keys()], ['a', 'z']);
      assert.deepEqual(Array.from(back.tensors.get('z')!.values), Array.from(Float32Array.from([0.1, 0.2, -7])));
      assert.deepEqual(Array.from(back.tensors.get('a')!.values), [5, -9]);
      assert.equal(back.tensors.get('a')!.dtype, 'I64');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a file shorter than the length field, a header longer than the file, a non-JSON header', () => {
    rejects(Buffer.alloc(5), /shorter than the 8-byte header length/);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(1000n);
    rejects(Buffer.concat([len, Buffer.from('{}')]), /does not fit/);
    const bad = Buffer.from('{"a": ');
    const l2 = Buffer.alloc(8);
    l2.writeBigUInt64LE(BigInt(bad.length));
    rejects(Buffer.concat([l2, bad]), /not valid JSON/);
    rejects(handMade([] as unknown as Record<string, unknown>, Buffer.alloc(0)), /not a JSON object/);
  });

  it('refuses an unknown dtype, naming the tensor', () => {
    rejects(handMade({ q: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, Buffer.alloc(2)), /unknown dtype "F8_E4M3"/, 'q');
  });

  it('refuses truncated data, offsets not matching the shape, bad shapes, overlaps', () => {
    // 4 floats announced, 3 present: the file was cut.
    rejects(handMade({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32([1, 2, 3])), /beyond the 12 data bytes \(truncated\?\)/, 'w');
    rejects(handMade({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, f32([1, 2, 3, 4])), /span 12 bytes but shape \[2,2\] of F32 needs 16/, 'w');
    rejects(handMade({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32([1])), /not a list of non-negative integers/, 'w');
    rejects(handMade({ w: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, f32([1, 2, 3])), /begin ≤ end/, 'w');
    rejects(handMade({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    }, f32([1, 2, 3])), /overlap those of a/, 'b');
  });

  it('refuses an I64 value outside int32, naming the tensor', () => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(2n ** 40n);
    rejects(handMade({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, b), /does not fit int32/, 'ids');
  });

  it('a missing file is ERR_MODEL_FILE_MISSING naming it', async () => {
    const path = join(tmpdir(), 'ewtune-no-such-file.safetensors');
    await assert.rejects(readSafetensors(path), (err: unknown) => err instanceof ModelDirError && err.code === 'ERR_MODEL_FILE_MISSING' && err.file === path);
  });
});
