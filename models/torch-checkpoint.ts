// Reads the tensors of a PyTorch state dict saved by torch.save (the zip format, torch ≥ 1.6):
// RIFE publishes its weights only so (flownet.pkl). No code from the file runs: its pickle is
// read by a small interpreter that knows the few opcodes and the few names a state dict uses
// (OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter, torch.*Storage) and
// refuses anything else, as torch.load(weights_only=True) does.
import { readFileSync } from 'node:fs';
import { bfloat16ArrayToFloat32, halfArrayToFloat32 } from './half.js';

export class TorchCheckpointError extends Error {
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'TorchCheckpointError';
  }
}

export interface CheckpointTensor {
  shape: number[];
  /** Float32 values, row-major (whatever the stored type: float, half or bfloat16). */
  data: Float32Array;
}

const STORAGE_TYPES: Record<string, { bytes: number; read: (b: Uint8Array) => Float32Array }> = {
  FloatStorage: { bytes: 4, read: (b) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) },
  HalfStorage: { bytes: 2, read: (b) => halfArrayToFloat32(new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))) },
  BFloat16Storage: { bytes: 2, read: (b) => bfloat16ArrayToFloat32(new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))) },
};

/** Every tensor of the state dict in `path`, by its key. */
export function readTorchStateDict(path: string): Map<string, CheckpointTensor> {
  const entries = readStoredZip(path, readFileSync(path));
  const pickleName = [...entries.keys()].find((n) => n.endsWith('/data.pkl') || n === 'data.pkl');
  if (!pickleName) throw new TorchCheckpointError(path, 'has no data.pkl: not a torch.save checkpoint');
  const root = pickleName.slice(0, -'data.pkl'.length);
  const storage = (key: string) => {
    const bytes = entries.get(`${root}data/${key}`);
    if (!bytes) throw new TorchCheckpointError(path, `its pickle names storage ${key}, which the archive lacks`);
    return bytes;
  };
  const top = unpickle(path, entries.get(pickleName)!);
  if (!(top instanceof Map)) throw new TorchCheckpointError(path, 'does not hold a state dict (a mapping of names to tensors)');
  const out = new Map<string, CheckpointTensor>();
  for (const [key, value] of top) {
    if (typeof key !== 'string' || !(value instanceof TensorRef)) continue;
    out.set(key, value.materialise(path, storage));
  }
  return out;
}

// ---- zip (torch writes its entries stored, uncompressed) ------------------------------------

function readStoredZip(path: string, buf: Buffer): Map<string, Uint8Array> {
  const bad = (problem: string) => new TorchCheckpointError(path, problem);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65_535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    throw bad(
      buf[0] === 0x80
        ? 'is a torch checkpoint in the legacy (pre-1.6) format, which is not read here; re-save it with torch.save in a current PyTorch'
        : 'is not a torch.save checkpoint (no zip directory)',
    );
  }
  let count = buf.readUInt16LE(eocd + 10);
  let dirOffset = buf.readUInt32LE(eocd + 16);
  if (dirOffset === 0xffffffff || count === 0xffff) {
    // Zip64: the real values are in the zip64 end record the locator points to.
    const locator = eocd - 20;
    if (locator < 0 || buf.readUInt32LE(locator) !== 0x07064b50) throw bad('has a damaged zip64 directory');
    const rec = Number(buf.readBigUInt64LE(locator + 8));
    count = Number(buf.readBigUInt64LE(rec + 32));
    dirOffset = Number(buf.readBigUInt64LE(rec + 48));
  }
  const entries = new Map<string, Uint8Array>();
  let p = dirOffset;
  for (let n = 0; n < count; n++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw bad('has a damaged zip directory');
    const method = buf.readUInt16LE(p + 10);
    let size = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    let local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    // Zip64 sizes and offsets, in the order of the fields that overflowed.
    for (let e = p + 46 + nameLen; e < p + 46 + nameLen + extraLen; ) {
      const id = buf.readUInt16LE(e);
      const len = buf.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff) {
          q += 8; // uncompressed size (same as compressed when stored)
          size = Number(buf.readBigUInt64LE(q));
          q += 8;
        }
        if (local === 0xffffffff) local = Number(buf.readBigUInt64LE(q));
      }
      e += 4 + len;
    }
    if (method !== 0) throw bad(`entry ${name} is compressed (method ${method}); torch.save stores entries uncompressed`);
    if (buf.readUInt32LE(local) !== 0x04034b50) throw bad(`entry ${name} has no local header`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    if (start + size > buf.length) throw bad(`entry ${name} runs past the end of the file (cut off?)`);
    entries.set(name, buf.subarray(start, start + size));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

// ---- pickle ---------------------------------------------------------------------------------

/** A storage named by a persistent id: its archive key and element type. */
class StorageRef {
  constructor(
    readonly key: string,
    readonly type: string,
  ) {}
}

class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}

  materialise(path: string, bytesOf: (key: string) => Uint8Array): CheckpointTensor {
    const kind = STORAGE_TYPES[this.storage.type];
    if (!kind) throw new TorchCheckpointError(path, `holds a ${this.storage.type} tensor; only float, half and bfloat16 weights are read`);
    const all = kind.read(bytesOf(this.storage.key));
    const n = this.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    // Row-major walk of the shape through the stored strides (contiguous tensors are one copy).
    const contiguous = this.stride.every((s, i) => s === this.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    if (contiguous) {
      if (this.offset + n > all.length) throw new TorchCheckpointError(path, `a tensor reaches past its storage ${this.storage.key}`);
      out.set(all.subarray(this.offset, this.offset + n));
      return { shape: this.shape, data: out };
    }
    const index = new Array<number>(this.shape.length).fill(0);
    for (let i = 0; i < n; i++) {
      let at = this.offset;
      for (let d = 0; d < index.length; d++) at += index[d]! * this.stride[d]!;
      out[i] = all[at]!;
      for (let d = index.length - 1; d >= 0; d--) {
        if (++index[d]! < this.shape[d]!) break;
        index[d] = 0;
      }
    }
    return { shape: this.shape, data: out };
  }
}

class Global {
  constructor(readonly name: string) {}
}

const MARK = Symbol('mark');
type PickleValue = unknown;

/** The callables a state dict's pickle may name; anything else is refused. */
function call(path: string, fn: PickleValue, args: PickleValue[]): PickleValue {
  const name = fn instanceof Global ? fn.name : String(fn);
  switch (name) {
    case 'collections.OrderedDict':
      return new Map();
    case 'torch._utils._rebuild_tensor_v2': {
      const [storage, offset, shape, stride] = args as [StorageRef, number, number[], number[]];
      if (!(storage instanceof StorageRef)) throw new TorchCheckpointError(path, 'a tensor without a storage');
      return new TensorRef(storage, offset, [...shape], [...stride]);
    }
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return args[0];
    default:
      throw new TorchCheckpointError(path, `its pickle calls ${name}, which a state dict does not need (refused: reading it could run code)`);
  }
}

function unpickle(path: string, data: Uint8Array): PickleValue {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const stack: PickleValue[] = [];
  const memo = new Map<number, PickleValue>();
  let p = 0;
  const popMark = (): PickleValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new TorchCheckpointError(path, 'a damaged pickle (no mark)');
    return stack.splice(i).slice(1);
  };
  const line = () => {
    const end = buf.indexOf(0x0a, p);
    const s = buf.toString('latin1', p, end);
    p = end + 1;
    return s;
  };
  const setItems = (target: PickleValue, kv: PickleValue[]) => {
    if (!(target instanceof Map)) throw new TorchCheckpointError(path, 'a damaged pickle (items set on a non-mapping)');
    for (let i = 0; i < kv.length; i += 2) target.set(kv[i], kv[i + 1]);
  };
  while (p < buf.length) {
    const op = buf[p++]!;
    switch (op) {
      case 0x80: // PROTO
        p++;
        break;
      case 0x95: // FRAME
        p += 8;
        break;
      case 0x2e: // STOP
        return stack.pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
        stack.push(buf[p++]);
        break;
      case 0x4d: // BININT2
        stack.push(buf.readUInt16LE(p));
        p += 2;
        break;
      case 0x4a: // BININT
        stack.push(buf.readInt32LE(p));
        p += 4;
        break;
      case 0x8a: {
        // LONG1
        const n = buf[p++]!;
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[p + i]!);
        if (n > 0 && buf[p + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        p += n;
        stack.push(Number(v));
        break;
      }
      case 0x47: // BINFLOAT
        stack.push(buf.readDoubleBE(p));
        p += 8;
        break;
      case 0x58: {
        // BINUNICODE
        const n = buf.readUInt32LE(p);
        stack.push(buf.toString('utf8', p + 4, p + 4 + n));
        p += 4 + n;
        break;
      }
      case 0x8c: {
        // SHORT_BINUNICODE
        const n = buf[p++]!;
        stack.push(buf.toString('utf8', p, p + n));
        p += n;
        break;
      }
      case 0x63: {
        // GLOBAL module\nname\n
        const module = line();
        stack.push(new Global(`${module}.${line()}`));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = stack.pop();
        const module = stack.pop();
        stack.push(new Global(`${String(module)}.${String(name)}`));
        break;
      }
      case 0x71: // BINPUT
        memo.set(buf[p++]!, stack.at(-1));
        break;
      case 0x72: // LONG_BINPUT
        memo.set(buf.readUInt32LE(p), stack.at(-1));
        p += 4;
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, stack.at(-1));
        break;
      case 0x68: // BINGET
        stack.push(memo.get(buf[p++]!));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memo.get(buf.readUInt32LE(p)));
        p += 4;
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([stack.pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = stack.pop();
        stack.push([stack.pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = stack.pop();
        const b = stack.pop();
        stack.push([stack.pop(), b, c]);
        break;
      }
      case 0x61: {
        // APPEND
        const v = stack.pop();
        (stack.at(-1) as PickleValue[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        (stack.at(-1) as PickleValue[]).push(...items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = stack.pop();
        const k = stack.pop();
        setItems(stack.at(-1), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(stack.at(-1), kv);
        break;
      }
      case 0x51: {
        // BINPERSID: ('storage', storage_type, key, location, numel)
        const pid = stack.pop() as PickleValue[];
        if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof Global)) throw new TorchCheckpointError(path, 'an unknown persistent id in its pickle');
        stack.push(new StorageRef(String(pid[2]), pid[1].name.replace(/^torch\./, '')));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = stack.pop() as PickleValue[];
        const fn = stack.pop();
        stack.push(call(path, fn, args));
        break;
      }
      case 0x62: // BUILD: the state of an OrderedDict (state_dict's _metadata) is not needed
        stack.pop();
        break;
      default:
        throw new TorchCheckpointError(path, `its pickle uses opcode 0x${op.toString(16)}, which a torch.save state dict does not (damaged or not a checkpoint)`);
    }
  }
  throw new TorchCheckpointError(path, 'its pickle ends without STOP (cut off?)');
}
