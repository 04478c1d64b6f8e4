// Checkpoint tensors bound into a graph: each shape-checked against what the config implies,
// optionally reshaped, sliced or folded with another tensor on the way (typed transforms, applied
// when the file is written), stored once per distinct transform, and counted as parameters.
import { elementCount, encodeFloats, type OnnxWriter } from './onnx-writer.js';
import type { GraphDType, Value } from './ops.js';
import { WeightShapeError, type WeightSource } from './weights.js';

/** Scalar functions a transform may fold into stored values, by name (so a transform stays data). */
export const SCALAR_FUNCTIONS = {
  sigmoid: (v: number) => 1 / (1 + Math.exp(-v)),
  oneMinusSigmoid: (v: number) => 1 - 1 / (1 + Math.exp(-v)),
} as const;
export type ScalarFunction = keyof typeof SCALAR_FUNCTIONS;

/**
 * One step from the checkpoint's tensor to the stored initializer. Transforms are plain data: the
 * list itself, serialised, is what tells two bindings of a tensor apart.
 */
export type WeightTransform =
  /** Rows [start, end) of the first axis. */
  | { readonly kind: 'rows'; readonly start: number; readonly end: number }
  /** [out, in] → [in, out], for MatMul. */
  | { readonly kind: 'transpose' }
  /** Axes reordered: output axis i is input axis perm[i] (e.g. [0, 2, 3, 1]: conv weights for channels-last). */
  | { readonly kind: 'permute'; readonly perm: readonly number[] }
  /** Same elements, other dims (e.g. [C, 1, 1] for a per-channel scale). */
  | { readonly kind: 'reshape'; readonly dims: readonly number[] }
  /** An elementwise function of the values (e.g. sigmoid of a mix factor). */
  | { readonly kind: 'map'; readonly fn: ScalarFunction }
  /** Multiplied by fn(first value of another checkpoint tensor), e.g. a blend factor. */
  | { readonly kind: 'scaleBy'; readonly tensor: string; readonly fn: ScalarFunction }
  /**
   * Plus another checkpoint tensor, elementwise, that has the dims the values have at this step
   * (e.g. a convolution's bias folded into the bias of the projection added to its result).
   */
  | { readonly kind: 'plus'; readonly tensor: string };

export const transform = {
  rows: (start: number, end: number): WeightTransform => ({ kind: 'rows', start, end }),
  transpose: (): WeightTransform => ({ kind: 'transpose' }),
  permute: (perm: readonly number[]): WeightTransform => ({ kind: 'permute', perm }),
  reshape: (dims: readonly number[]): WeightTransform => ({ kind: 'reshape', dims }),
  map: (fn: ScalarFunction): WeightTransform => ({ kind: 'map', fn }),
  scaleBy: (tensor: string, fn: ScalarFunction): WeightTransform => ({ kind: 'scaleBy', tensor, fn }),
  plus: (tensor: string): WeightTransform => ({ kind: 'plus', tensor }),
};

export class WeightBinding {
  private readonly bound = new Map<string, Value>();
  /** Shape of every checkpoint tensor the graph reads or checks. */
  private readonly expected = new Map<string, readonly number[]>();

  constructor(
    private readonly file: OnnxWriter,
    private readonly source: WeightSource,
    private readonly dtype: GraphDType,
  ) {}

  /** Checkpoint tensor `name`, expected to have `shape`, after `transforms` in order, stored as `dtype` (default: the graph's). */
  bind(name: string, shape: readonly number[], transforms: readonly WeightTransform[] = [], dtype: GraphDType = this.dtype): Value {
    const key = canonicalJson({ name, shape, transforms, dtype });
    const cached = this.bound.get(key);
    if (cached) return cached;
    this.check(name, shape);
    const dims = transforms.reduce(
      (d, t) => {
        if (t.kind === 'scaleBy') this.check(t.tensor, [1]);
        if (t.kind === 'plus') this.check(t.tensor, d);
        return transformedDims(name, d, t);
      },
      [...shape],
    );
    const value: Value = { name: this.file.uniqueName(`w:${name}`), dtype, shape: dims };
    const { source } = this;
    const values = () => {
      let data = source.load(name, shape);
      let d = [...shape];
      for (const t of transforms) {
        data = transformedValues(source, data, d, t);
        d = transformedDims(name, d, t);
      }
      return data;
    };
    this.file.addInitializer({ name: value.name, dims, dtype, external: true, bytes: () => encodeFloats(values(), dtype), values });
    this.bound.set(key, value);
    return value;
  }

  /** Checks that a checkpoint tensor exists with the expected shape, and counts it, without binding it. */
  check(name: string, shape: readonly number[]): void {
    this.expected.set(name, [...shape]);
    if (!this.source.has(name)) {
      throw new WeightShapeError(`${this.source.description}: missing tensor "${name}" (expected shape [${shape.join(', ')}] from config.json)`);
    }
    const stored = this.source.shapeOf(name);
    if (stored && (stored.length !== shape.length || stored.some((d, i) => d !== shape[i]))) {
      throw new WeightShapeError(
        `${this.source.description}: tensor "${name}" has shape [${stored.join(', ')}] but config.json implies [${shape.join(', ')}]; the weights do not belong to this config`,
      );
    }
  }

  /** Parameters of the checkpoint the graph accounts for (comparable to torch's numel sum). */
  get parameterCount(): number {
    let n = 0;
    for (const shape of this.expected.values()) n += elementCount(shape);
    return n;
  }

  /** The checkpoint the graph expects: every tensor it reads or checks, with its stored shape. */
  get checkpointShapes(): ReadonlyMap<string, readonly number[]> {
    return this.expected;
  }
}

function transformedDims(name: string, dims: number[], t: WeightTransform): number[] {
  switch (t.kind) {
    case 'rows':
      if (!(0 <= t.start && t.start < t.end && t.end <= dims[0]!)) throw new Error(`rows [${t.start}, ${t.end}) of ${name} [${dims.join(', ')}] are out of range`);
      return [t.end - t.start, ...dims.slice(1)];
    case 'transpose':
      if (dims.length !== 2) throw new Error(`transpose needs a 2-D weight, ${name} is [${dims.join(', ')}]`);
      return [dims[1]!, dims[0]!];
    case 'permute':
      if (t.perm.length !== dims.length || [...t.perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
        throw new Error(`permute [${t.perm.join(', ')}] does not reorder the ${dims.length} axes of ${name} [${dims.join(', ')}]`);
      }
      return t.perm.map((p) => dims[p]!);
    case 'reshape':
      if (elementCount(t.dims) !== elementCount(dims)) throw new Error(`cannot view ${name} [${dims.join(', ')}] as [${t.dims.join(', ')}]`);
      return [...t.dims];
    case 'map':
    case 'scaleBy':
    case 'plus':
      return dims;
  }
}

function transformedValues(source: WeightSource, data: Float32Array, dims: readonly number[], t: WeightTransform): Float32Array {
  switch (t.kind) {
    case 'rows': {
      const stride = elementCount(dims.slice(1));
      return data.slice(t.start * stride, t.end * stride);
    }
    case 'transpose':
      return transpose2d(data, dims[0]!, dims[1]!);
    case 'permute':
      return permute(data, dims, t.perm);
    case 'reshape':
      return data;
    case 'map':
      return data.map(SCALAR_FUNCTIONS[t.fn]);
    case 'scaleBy': {
      const k = SCALAR_FUNCTIONS[t.fn](source.load(t.tensor, [1])[0]!);
      return data.map((v) => v * k);
    }
    case 'plus': {
      const other = source.load(t.tensor, dims);
      return data.map((v, i) => v + other[i]!);
    }
  }
}

/**
 * JSON with object keys sorted, so equal descriptions give equal strings; anything JSON would
 * drop or mangle (functions, undefined, non-finite numbers) is refused rather than ignored, so
 * a transform field can never be left out of the key.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} has no JSON form`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new TypeError(`canonicalJson: a ${typeof value} has no JSON form`);
}

/** Row-major `data` of shape `dims` with its axes reordered by `perm`. */
export function permute(data: Float32Array, dims: readonly number[], perm: readonly number[]): Float32Array {
  return new Float32Array(permuteElements(asBytes(data), dims, perm, 4).buffer);
}

export const asBytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Row-major elements of `elementBytes` each, of shape `dims`, with their axes reordered by `perm` (output axis i is input axis perm[i]). */
export function permuteElements(data: Uint8Array, dims: readonly number[], perm: readonly number[], elementBytes: number): Uint8Array {
  const aligned = data.slice();
  const words = elementBytes === 2 ? new Uint16Array(aligned.buffer) : elementBytes === 4 ? new Uint32Array(aligned.buffer) : elementBytes === 8 ? new BigUint64Array(aligned.buffer) : aligned;
  const out = new (words.constructor as Uint8ArrayConstructor)(words.length);
  const rank = dims.length;
  const strides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; s *= dims[i]!, i--) strides[i] = s;
  const outDims = perm.map((p) => dims[p]!);
  const moved = perm.map((p) => strides[p]!);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = words[src] as number;
    for (let a = rank - 1; a >= 0; a--) {
      idx[a]!++;
      src += moved[a]!;
      if (idx[a]! < outDims[a]!) break;
      src -= moved[a]! * outDims[a]!;
      idx[a] = 0;
    }
  }
  return asBytes(out);
}

function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}
