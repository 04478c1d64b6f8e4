import { readFileSync, truncateSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { floatToHalf, halfToFloat } from '../models/half.js';
import { SafetensorsFile, writeSafetensors } from '../models/safetensors.js';
import { FIXTURE_MODEL, tempDir } from './helpers.js';

const UNET = join(FIXTURE_MODEL, 'unet', 'diffusion_pytorch_model.fp16.safetensors');

function rawFile(header: unknown, dataBytes: number): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + dataBytes);
  out.writeBigUInt64LE(BigInt(json.length));
  json.copy(out, 8);
  return out;
}

describe('safetensors reader', () => {
  it('reads the fixture header and upcasts F16 tensors lazily', () => {
    const f = SafetensorsFile.open(UNET);
    expect(f.tensors.size).toBe(1026);
    expect(f.info('conv_in.weight')).toMatchObject({ dtype: 'F16', shape: [32, 8, 3, 3] });
    const w = f.readFloat32('conv_in.weight');
    expect(w.length).toBe(32 * 8 * 9);
    expect(w.every(Number.isFinite)).toBe(true);
    f.close();
  });

  it('round-trips F32, F16, BF16 and U8 tensors', () => {
    const path = join(tempDir(), 'x.safetensors');
    const values = [1, -2.5, 0.1, 65504, 1e-7];
    const half = Uint16Array.from(values, floatToHalf);
    const bf = Uint16Array.from(new Uint32Array(Float32Array.from(values).buffer), (u) => u >>> 16);
    writeSafetensors(path, {
      a: { dtype: 'F32', shape: [5], data: new Uint8Array(Float32Array.from(values).buffer) },
      b: { dtype: 'F16', shape: [5], data: new Uint8Array(half.buffer) },
      c: { dtype: 'BF16', shape: [1, 5], data: new Uint8Array(bf.buffer) },
      d: { dtype: 'U8', shape: [2], data: Uint8Array.from([3, 250]) },
    });
    const f = SafetensorsFile.open(path);
    expect([...f.readFloat32('a')]).toEqual([...Float32Array.from(values)]);
    expect([...f.readFloat32('b')]).toEqual(values.map((v) => halfToFloat(floatToHalf(v))));
    expect(f.readFloat32('c')[1]).toBe(-2.5);
    expect([...f.readFloat32('d')]).toEqual([3, 250]);
    expect(() => f.readFloat32('missing')).toThrow(/no tensor named "missing"/);
    f.close();
  });

  it('rounds float32 to half to nearest even', () => {
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(floatToHalf(70000)).toBe(0x7c00);
    expect(halfToFloat(floatToHalf(2 ** -20))).toBe(2 ** -20); // subnormal
  });

  it('names the file and the problem for a truncated file', () => {
    const path = join(tempDir(), 'unet.safetensors');
    copyFileSync(UNET, path);
    truncateSync(path, 4_000_000);
    expect(() => SafetensorsFile.open(path)).toThrow(new RegExp(`${path}: tensor ".+" ends at byte \\d+ .* truncated`));
    truncateSync(path, 5);
    expect(() => SafetensorsFile.open(path)).toThrow(/too short/);
    truncateSync(path, 100);
    expect(() => SafetensorsFile.open(path)).toThrow(/header claims \d+ bytes but the file has only 92 .*\(truncated\)/);
  });

  it('rejects a corrupt header', () => {
    const dir = tempDir();
    const garbage = join(dir, 'garbage.safetensors');
    const bytes = readFileSync(UNET);
    bytes.write('x', 8 + 1);
    writeFileSync(garbage, bytes);
    expect(() => SafetensorsFile.open(garbage)).toThrow(/garbage.safetensors: header is not valid JSON/);

    const huge = join(dir, 'huge.safetensors');
    const h = Buffer.alloc(16);
    h.writeBigUInt64LE(2n ** 40n);
    writeFileSync(huge, h);
    expect(() => SafetensorsFile.open(huge)).toThrow(/header length 1099511627776 is outside .*\(corrupt/);
  });

  it('rejects overlapping tensors, wrong sizes and unknown dtypes', () => {
    const dir = tempDir();
    const overlap = join(dir, 'overlap.safetensors');
    writeFileSync(overlap, rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12));
    expect(() => SafetensorsFile.open(overlap)).toThrow(/"a" and "b" overlap/);

    const size = join(dir, 'size.safetensors');
    writeFileSync(size, rawFile({ a: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, 8));
    expect(() => SafetensorsFile.open(size)).toThrow(/needs 6 bytes but its data_offsets span 8/);

    const dtype = join(dir, 'dtype.safetensors');
    writeFileSync(dtype, rawFile({ a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8));
    expect(() => SafetensorsFile.open(dtype)).toThrow(/dtype I64; only F32, F16, BF16 and U8/);

    const malformed = join(dir, 'malformed.safetensors');
    writeFileSync(malformed, rawFile({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4));
    expect(() => SafetensorsFile.open(malformed)).toThrow(/"a" has a malformed header entry/);
  });
});
