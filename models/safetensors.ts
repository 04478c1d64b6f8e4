// Lazy safetensors reader: parses and validates the header, then reads one tensor at a time
// with positioned reads, so a 3 GB UNet file never has to fit in memory.
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { z } from 'zod';
import { formatError } from '../common/messages.js';
import { bfloat16ArrayToFloat32, halfArrayToFloat32 } from './half.js';

export type StoredDType = 'F32' | 'F16' | 'BF16' | 'U8';
const BYTES: Record<StoredDType, number> = { F32: 4, F16: 2, BF16: 2, U8: 1 };
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  readonly dtype: StoredDType;
  readonly shape: readonly number[];
  /** Byte range inside the data section (after the header). */
  readonly begin: number;
  readonly end: number;
}

export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'SafetensorsError';
  }
}

const entrySchema = z.object({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
});

export class SafetensorsFile {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  private fd: number | undefined;
  private readonly dataStart: number;

  private constructor(
    readonly path: string,
    fd: number,
    tensors: Map<string, TensorInfo>,
    metadata: Record<string, string>,
    dataStart: number,
  ) {
    this.fd = fd;
    this.tensors = tensors;
    this.metadata = metadata;
    this.dataStart = dataStart;
  }

  static open(path: string): SafetensorsFile {
    const fd = openSync(path, 'r');
    try {
      const { tensors, metadata, dataStart } = parseHeader(path, fd);
      return new SafetensorsFile(path, fd, tensors, metadata, dataStart);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(this.path, `no tensor named "${name}"`);
    return info;
  }

  /** Raw little-endian bytes of one tensor. */
  readBytes(name: string): Uint8Array {
    const info = this.info(name);
    if (this.fd === undefined) throw new SafetensorsError(this.path, 'file already closed');
    const out = new Uint8Array(info.end - info.begin);
    let done = 0;
    while (done < out.length) {
      const n = readSync(this.fd, out, done, out.length - done, this.dataStart + info.begin + done);
      if (n === 0) throw new SafetensorsError(this.path, `unexpected end of file while reading "${name}" (the file is truncated)`);
      done += n;
    }
    return out;
  }

  /** One tensor as float32, upcasting F16/BF16. */
  readFloat32(name: string): Float32Array {
    const info = this.info(name);
    const bytes = this.readBytes(name);
    switch (info.dtype) {
      case 'F32':
        return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      case 'F16':
        return halfArrayToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
      case 'BF16':
        return bfloat16ArrayToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
      case 'U8':
        return Float32Array.from(bytes);
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

function parseHeader(path: string, fd: number) {
  const fileSize = fstatSync(fd).size;
  if (fileSize < 8) throw new SafetensorsError(path, `file is ${fileSize} bytes, too short to hold a safetensors header (truncated or not a safetensors file)`);
  const lenBuf = Buffer.alloc(8);
  readSync(fd, lenBuf, 0, 8, 0);
  const headerLen = Number(lenBuf.readBigUInt64LE(0));
  if (headerLen < 2 || headerLen > MAX_HEADER_BYTES) {
    throw new SafetensorsError(path, `header length ${headerLen} is outside 2..${MAX_HEADER_BYTES} bytes (corrupt or not a safetensors file)`);
  }
  if (8 + headerLen > fileSize) {
    throw new SafetensorsError(path, `header claims ${headerLen} bytes but the file has only ${fileSize - 8} after the length field (truncated)`);
  }
  const headerBuf = Buffer.alloc(headerLen);
  readSync(fd, headerBuf, 0, headerLen, 8);
  let raw: unknown;
  try {
    raw = JSON.parse(headerBuf.toString('utf8'));
  } catch (err) {
    throw new SafetensorsError(path, `header is not valid JSON (${(err as Error).message}); the file is corrupt`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SafetensorsError(path, 'header is not a JSON object');

  const dataSize = fileSize - 8 - headerLen;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (name === '__metadata__') {
      const parsed = z.record(z.string(), z.string()).safeParse(value);
      if (!parsed.success) throw new SafetensorsError(path, '__metadata__ must map strings to strings');
      metadata = parsed.data;
      continue;
    }
    const parsed = entrySchema.safeParse(value);
    if (!parsed.success) throw new SafetensorsError(path, `tensor "${name}" has a malformed header entry: ${formatError(parsed.error)}`);
    const {
      dtype,
      shape,
      data_offsets: [begin, end],
    } = parsed.data;
    if (!(dtype in BYTES)) throw new SafetensorsError(path, `tensor "${name}" has dtype ${dtype}; only F32, F16, BF16 and U8 are supported`);
    const bytes = byteSize(shape, dtype as StoredDType);
    if (end < begin) throw new SafetensorsError(path, `tensor "${name}" has data_offsets [${begin}, ${end}] that end before they begin`);
    if (end - begin !== bytes) throw new SafetensorsError(path, `tensor "${name}" (${dtype} [${shape.join(', ')}]) needs ${bytes} bytes but its data_offsets span ${end - begin}`);
    if (end > dataSize) throw new SafetensorsError(path, `tensor "${name}" ends at byte ${end} of the data section, which has only ${dataSize} bytes (the file is truncated)`);
    tensors.set(name, { dtype: dtype as StoredDType, shape, begin, end });
  }
  const sorted = [...tensors.entries()].sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < sorted.length; i++) {
    const [prevName, prev] = sorted[i - 1]!;
    const [name, cur] = sorted[i]!;
    if (cur.begin < prev.end) throw new SafetensorsError(path, `tensors "${prevName}" and "${name}" overlap in the data section (corrupt file)`);
  }
  return { tensors, metadata, dataStart: 8 + headerLen };
}

export interface TensorToWrite {
  dtype: StoredDType;
  shape: number[];
  data: Uint8Array;
}

/** Writes a safetensors file (used for --frames-out and to make test files). */
export function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): void {
  // Checked before the file is opened, so a wrong tensor leaves no partial file behind.
  for (const [name, t] of Object.entries(tensors)) checkByteLength(name, t.shape, t.dtype, t.data);
  writeSafetensorsStreamed(
    path,
    Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, bytes: () => t.data })),
    metadata,
  );
}

export interface TensorToStream {
  name: string;
  dtype: StoredDType;
  shape: readonly number[];
  /** The tensor's bytes, asked for once, when it is written: one tensor in memory at a time. */
  bytes(): Uint8Array;
}

function byteSize(shape: readonly number[], dtype: StoredDType): number {
  return shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
}

function checkByteLength(name: string, shape: readonly number[], dtype: StoredDType, data: Uint8Array): Uint8Array {
  const expected = byteSize(shape, dtype);
  if (expected !== data.byteLength) throw new Error(`writeSafetensors: "${name}" has ${data.byteLength} bytes, shape needs ${expected}`);
  return data;
}

/** Writes a safetensors file one tensor at a time (files larger than memory or a Buffer allows). */
export function writeSafetensorsStreamed(path: string, tensors: readonly TensorToStream[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const size = byteSize(t.shape, t.dtype);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, prefix);
    writeSync(fd, headerBytes);
    for (const t of tensors) {
      const data = checkByteLength(t.name, t.shape, t.dtype, t.bytes());
      for (let done = 0; done < data.byteLength; ) done += writeSync(fd, data, done, data.byteLength - done);
    }
  } finally {
    closeSync(fd);
  }
}

export function float32Tensor(shape: number[], data: Float32Array): TensorToWrite {
  return { dtype: 'F32', shape, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
