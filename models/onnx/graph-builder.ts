// A small ONNX graph builder whose calls read like the math (in the spirit of WebNN's
// MLGraphBuilder): `b.conv2d(x, w, bias, { pads })`, `b.layerNorm(x, g, beta, eps)`.
// Weights are recorded lazily and streamed to one external-data file on save, so the 3 GB
// fp16 UNet is written one tensor at a time and the protobuf itself stays small.
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import onnxProto from 'onnx-proto';
import { float32ArrayToHalf } from '../half.js';
import { WeightShapeError, type WeightSource } from './weights.js';

const { onnx } = onnxProto;

export type ElemType = 'float32' | 'float16' | 'int64';
export type GraphDType = 'float32' | 'float16';
const ONNX_TYPE: Record<ElemType, number> = { float32: 1, float16: 10, int64: 7 };

export interface Value {
  readonly name: string;
  readonly dtype: ElemType;
}

/** A dimension inside a shape: a fixed size, or a [1]-int64 value computed in the graph. */
export type Dim = number | Value;

export type AttentionImpl = 'mha' | 'matmul';

/**
 * Provider-specific ways to express the same network (named build options, chosen per provider
 * by `graphFormsFor` in models/pipeline/runtime.ts); every form gives the same values.
 */
export interface GraphForms {
  /**
   * Temporal self-attention (sequences of one frame count, 18,432 of them at 1024x576):
   * WebGPU runs plain MatMul attention faster there (7.08 vs 7.22 s per UNet step on an H100);
   * the CUDA provider's fused kernel handles short sequences well.
   */
  temporalAttention: AttentionImpl;
  /**
   * The decoder's widest full-resolution layers run on two halves of the chunk: WebGPU fails a
   * convolution whose output passes ~2 GiB (8 frames x 256 channels at 1024x576).
   */
  decoderFrameHalves: boolean;
}

/** The forms every provider can run (WebGPU's, which the earlier graphs used). */
export const PORTABLE_FORMS: GraphForms = { temporalAttention: 'matmul', decoderFrameHalves: true };

export interface BuilderOptions {
  /** Element type of activations and weights inside the graph. */
  dtype: GraphDType;
  /** How attention is expressed: the fused com.microsoft MultiHeadAttention, or MatMul/Softmax/MatMul. */
  attention: AttentionImpl;
  weights: WeightSource;
  /** Default: PORTABLE_FORMS. */
  forms?: GraphForms;
}

type Attr = { i: number } | { f: number } | { ints: number[] } | { floats: number[] } | { s: string };
export const attr = {
  int: (i: number): Attr => ({ i }),
  float: (f: number): Attr => ({ f }),
  ints: (ints: number[]): Attr => ({ ints }),
  string: (s: string): Attr => ({ s }),
};

interface Initializer {
  name: string;
  dims: number[];
  dtype: ElemType;
  /** Produces the little-endian bytes when the model is written. */
  bytes(): Uint8Array;
  external: boolean;
}

interface WeightOptions {
  /** Stored as [in, out] for MatMul instead of the checkpoint's [out, in]. */
  transpose?: boolean;
  /** Graph-side dims (same element count), e.g. [C, 1, 1] for a per-channel scale. */
  reshape?: number[];
  /** Keep this weight in float32 even in an fp16 graph. */
  dtype?: GraphDType;
  /** Only rows [start, end) of the first axis (applied before `transpose`). */
  rows?: [number, number];
  /** Folds an elementwise function into the stored values (e.g. sigmoid of a mix factor). */
  map?: { id: string; fn: (v: number) => number };
  /** Multiplies the values by fn(first value of another checkpoint tensor), e.g. a blend factor. */
  scaleBy?: { name: string; id: string; fn: (v: number) => number };
}

export interface SaveResult {
  modelPath: string;
  dataPath: string;
  modelBytes: number;
  dataBytes: number;
  initializers: number;
  nodes: number;
}

export class GraphBuilder {
  readonly dtype: GraphDType;
  readonly attentionImpl: AttentionImpl;
  readonly forms: GraphForms;
  readonly weights: WeightSource;
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly inits: Initializer[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly constCache = new Map<string, Value>();
  private readonly weightCache = new Map<string, Value>();
  private readonly scopes: string[] = [];
  /** Element count of every checkpoint tensor the graph reads or checks. */
  private readonly params = new Map<string, number>();
  private counter = 0;

  constructor(opts: BuilderOptions) {
    this.dtype = opts.dtype;
    this.attentionImpl = opts.attention;
    this.forms = opts.forms ?? PORTABLE_FORMS;
    this.weights = opts.weights;
  }

  // ---- graph interface -------------------------------------------------------------------

  input(name: string, dtype: ElemType, dims: (number | string)[]): Value {
    this.inputs.push(valueInfo(name, dtype, dims));
    return { name, dtype };
  }

  output(value: Value, name: string, dims: (number | string)[]): void {
    this.nodes.push({ opType: 'Identity', input: [value.name], output: [name], name: `${name}/Identity` });
    this.outputs.push(valueInfo(name, value.dtype, dims));
  }

  /** Names nodes after the module they belong to, for readable graphs and profiles. */
  scope<T>(name: string, fn: () => T): T {
    this.scopes.push(name);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  /** A checkpoint tensor, shape-checked against what the config implies. */
  weight(name: string, shape: number[], opts: WeightOptions = {}): Value {
    const key = `${name}|${opts.transpose ? 'T' : ''}|${opts.reshape?.join(',') ?? ''}|${opts.dtype ?? ''}|${opts.map?.id ?? ''}|${opts.rows?.join('-') ?? ''}|${opts.scaleBy ? `${opts.scaleBy.name}:${opts.scaleBy.id}` : ''}`;
    const cached = this.weightCache.get(key);
    if (cached) return cached;
    this.checkWeight(name, shape);
    if (opts.scaleBy) this.checkWeight(opts.scaleBy.name, [1]);
    const dtype: GraphDType = opts.dtype ?? this.dtype;
    const source = this.weights;
    const rows = opts.rows;
    const kept = rows ? [rows[1] - rows[0], ...shape.slice(1)] : [...shape];
    let dims = [...kept];
    if (opts.transpose) {
      if (kept.length !== 2) throw new Error(`transpose needs a 2-D weight, ${name} is [${shape.join(', ')}]`);
      dims = [kept[1]!, kept[0]!];
    }
    if (opts.reshape) {
      if (count(opts.reshape) !== count(kept)) throw new Error(`cannot view ${name} [${kept}] as [${opts.reshape}]`);
      dims = opts.reshape;
    }
    const value: Value = { name: this.unique(`w:${name}`), dtype };
    this.inits.push({
      name: value.name,
      dims,
      dtype,
      external: true,
      bytes: () => {
        let data = source.load(name, shape);
        if (rows) {
          const stride = count(shape.slice(1));
          data = data.slice(rows[0] * stride, rows[1] * stride);
        }
        if (opts.transpose) data = transpose2d(data, kept[0]!, kept[1]!);
        if (opts.map) data = data.map(opts.map.fn);
        if (opts.scaleBy) {
          const k = opts.scaleBy.fn(source.load(opts.scaleBy.name, [1])[0]!);
          data = data.map((v) => v * k);
        }
        return encode(data, dtype);
      },
    });
    this.weightCache.set(key, value);
    return value;
  }

  /** Checks that a checkpoint tensor exists with the expected shape without adding it to the graph. */
  checkWeight(name: string, shape: readonly number[]): void {
    this.params.set(name, count(shape));
    if (!this.weights.has(name)) {
      throw new WeightShapeError(`${this.weights.description}: missing tensor "${name}" (expected shape [${shape.join(', ')}] from config.json)`);
    }
    const stored = this.weights.shapeOf(name);
    if (stored && (stored.length !== shape.length || stored.some((d, i) => d !== shape[i]))) {
      throw new WeightShapeError(
        `${this.weights.description}: tensor "${name}" has shape [${stored.join(', ')}] but config.json implies [${shape.join(', ')}]; the weights do not belong to this config`,
      );
    }
  }

  /** A small constant stored inline (shapes, scalars, frequency tables). */
  constant(values: ArrayLike<number>, dtype: ElemType, dims: number[] = [values.length]): Value {
    const arr = Array.from(values);
    const key = `${dtype}|${dims.join(',')}|${arr.join(',')}`;
    const cached = this.constCache.get(key);
    if (cached) return cached;
    const value: Value = { name: this.unique('const'), dtype };
    this.inits.push({
      name: value.name,
      dims,
      dtype,
      external: false,
      bytes: () => (dtype === 'int64' ? new Uint8Array(BigInt64Array.from(arr, (v) => BigInt(v)).buffer) : encode(Float32Array.from(arr), dtype)),
    });
    this.constCache.set(key, value);
    return value;
  }

  /** A scalar of the given value's element type, for broadcasting arithmetic. */
  scalar(v: number, like: Value | ElemType = this.dtype): Value {
    return this.constant([v], typeof like === 'string' ? like : like.dtype, []);
  }

  ints(values: number[]): Value {
    return this.constant(values, 'int64');
  }

  /** Adds a node; outputs take the first input's element type unless told. */
  node(opType: string, inputs: (Value | null)[], attrs: Record<string, Attr> = {}, opts: { domain?: string; outputs?: number; dtype?: ElemType } = {}): Value[] {
    const base = this.unique(`${this.scopes.join('/') || 'g'}/${opType}`);
    const n = opts.outputs ?? 1;
    const dtype = opts.dtype ?? inputs.find((v): v is Value => v !== null)?.dtype ?? this.dtype;
    const outs = Array.from({ length: n }, (_, i) => ({ name: n === 1 ? base : `${base}:${i}`, dtype }));
    this.nodes.push({
      opType,
      domain: opts.domain,
      name: base,
      input: inputs.map((v) => (v ? v.name : '')),
      output: outs.map((o) => o.name),
      attribute: Object.entries(attrs).map(([name, a]) => toAttribute(name, a)),
    });
    return outs;
  }

  private op(opType: string, inputs: (Value | null)[], attrs?: Record<string, Attr>, opts?: { domain?: string; dtype?: ElemType }): Value {
    return this.node(opType, inputs, attrs, opts)[0]!;
  }

  // ---- elementwise -----------------------------------------------------------------------

  add(a: Value, b: Value | number): Value {
    return this.op('Add', [a, this.asValue(b, a)]);
  }
  sub(a: Value, b: Value | number): Value {
    return this.op('Sub', [a, this.asValue(b, a)]);
  }
  mul(a: Value, b: Value | number): Value {
    return this.op('Mul', [a, this.asValue(b, a)]);
  }
  div(a: Value, b: Value | number): Value {
    return this.op('Div', [a, this.asValue(b, a)]);
  }
  sigmoid(x: Value): Value {
    return this.op('Sigmoid', [x]);
  }
  sin(x: Value): Value {
    return this.op('Sin', [x]);
  }
  cos(x: Value): Value {
    return this.op('Cos', [x]);
  }
  silu(x: Value): Value {
    return this.mul(x, this.sigmoid(x));
  }
  /** Exact GELU, 0.5·x·(1 + erf(x/√2)), as torch's default. */
  gelu(x: Value): Value {
    const e = this.op('Erf', [this.mul(x, Math.SQRT1_2)]);
    return this.mul(this.mul(x, 0.5), this.add(e, 1));
  }
  quickGelu(x: Value): Value {
    return this.mul(x, this.sigmoid(this.mul(x, 1.702)));
  }
  cast(x: Value, to: ElemType): Value {
    if (x.dtype === to) return x;
    return this.op('Cast', [x], { to: attr.int(ONNX_TYPE[to]) }, { dtype: to });
  }

  // ---- linear algebra --------------------------------------------------------------------

  matmul(a: Value, b: Value): Value {
    return this.op('MatMul', [a, b]);
  }
  /**
   * x·W + b with W stored as [in, out]. Inputs of rank > 2 are flattened to 2-D so that
   * onnxruntime fuses MatMul + Add into one Gemm (the bias costs no extra pass over memory).
   */
  linear(x: Value, w: Value, bias: Value | undefined, outFeatures: number): Value {
    if (!bias) return this.matmul(x, w);
    const flat = this.reshape(x, [-1, this.dim(x, -1)]);
    const y = this.add(this.matmul(flat, w), bias);
    return this.reshape(y, this.concat([this.shape(x, 0, -1), this.ints([outFeatures])], 0));
  }
  /** Exact GELU as one fused com.microsoft operator (CPU, CUDA and WebGPU implement it). */
  geluFused(x: Value): Value {
    return this.op('Gelu', [x], {}, { domain: 'com.microsoft' });
  }
  conv(x: Value, w: Value, bias: Value | undefined, opts: { strides?: number[]; pads?: number[]; group?: number } = {}): Value {
    const attrs: Record<string, Attr> = {};
    if (opts.strides) attrs.strides = attr.ints(opts.strides);
    if (opts.pads) attrs.pads = attr.ints(opts.pads);
    if (opts.group) attrs.group = attr.int(opts.group);
    return this.op('Conv', bias ? [x, w, bias] : [x, w], attrs);
  }

  // ---- normalisation (in float32 inside fp16 graphs: variance in fp16 overflows) --------

  layerNorm(x: Value, scale: Value, bias: Value, eps: number): Value {
    // LayerNormalization computes in float32 (stash_type 1) whatever the input type.
    return this.op('LayerNormalization', [x, scale, bias], { axis: attr.int(-1), epsilon: attr.float(eps) });
  }

  /**
   * GroupNorm over [N, C, ...] as Reshape → InstanceNormalization → Reshape → affine: the fused
   * GroupNormalization op expands into many small kernels on GPU providers.
   */
  groupNorm(x: Value, groups: number, scale: Value, bias: Value, eps: number): Value {
    // In the graph's own precision: the providers accumulate the statistics in float32 anyway
    // (fp16 at SVD-XT's largest GroupNorm on WebGPU: rms error 3.3e-4, below fp16's own rounding;
    // `npm run check:norm-precision`), and float32 casts around it cost two passes per norm.
    const ones = this.constant(new Array(groups).fill(1), x.dtype);
    const zeros = this.constant(new Array(groups).fill(0), x.dtype);
    const normed = this.op('InstanceNormalization', [this.reshape(x, [0, groups, -1]), ones, zeros], { epsilon: attr.float(eps) });
    const back = this.reshape(normed, this.shape(x));
    return this.add(this.mul(back, scale), bias);
  }

  softmax(x: Value, axis = -1): Value {
    const y = this.op('Softmax', [this.cast(x, 'float32')], { axis: attr.int(axis) });
    return this.cast(y, x.dtype);
  }

  // ---- attention -------------------------------------------------------------------------

  /**
   * Scaled dot-product attention on [B, S, H·D] projections. With the fused op the S×L score
   * matrix is never materialised in full; the MatMul form is kept for providers without it.
   */
  attention(q: Value, k: Value, v: Value, heads: number, headDim: number, impl: AttentionImpl = this.attentionImpl): Value {
    const scale = 1 / Math.sqrt(headDim);
    if (impl === 'mha') {
      return this.op('MultiHeadAttention', [q, k, v], { num_heads: attr.int(heads), scale: attr.float(scale) }, { domain: 'com.microsoft' });
    }
    const split = (t: Value) => this.transpose(this.reshape(t, [0, 0, heads, headDim]), [0, 2, 1, 3]);
    const qh = split(q);
    const kt = this.transpose(this.reshape(k, [0, 0, heads, headDim]), [0, 2, 3, 1]);
    const vh = split(v);
    const scores = this.mul(this.matmul(qh, kt), scale);
    const probs = this.softmax(scores, -1);
    const out = this.transpose(this.matmul(probs, vh), [0, 2, 1, 3]);
    return this.reshape(out, [0, 0, heads * headDim]);
  }

  // ---- shapes ----------------------------------------------------------------------------

  /** Shape(x)[start:end] as a 1-D int64 value. */
  shape(x: Value, start?: number, end?: number): Value {
    const attrs: Record<string, Attr> = {};
    if (start !== undefined) attrs.start = attr.int(start);
    if (end !== undefined) attrs.end = attr.int(end);
    return this.op('Shape', [x], attrs, { dtype: 'int64' });
  }
  /** Dimension i of x as a [1] int64 value. */
  dim(x: Value, i: number): Value {
    return i === -1 ? this.shape(x, -1) : this.shape(x, i, i + 1);
  }
  /** Builds a 1-D int64 shape from fixed sizes and graph values ([1] or [n] int64). */
  shapeOf(dims: Dim[] | Value): Value {
    if (!Array.isArray(dims)) return dims;
    if (dims.every((d): d is number => typeof d === 'number')) return this.ints(dims);
    const parts: Value[] = [];
    let run: number[] = [];
    for (const d of dims) {
      if (typeof d === 'number') run.push(d);
      else {
        if (run.length) parts.push(this.ints(run));
        run = [];
        parts.push(d);
      }
    }
    if (run.length) parts.push(this.ints(run));
    return parts.length === 1 ? parts[0]! : this.concat(parts, 0);
  }
  mulDims(a: Value, b: Value): Value {
    return this.op('Mul', [a, b]);
  }
  reshape(x: Value, dims: Dim[] | Value): Value {
    return this.op('Reshape', [x, this.shapeOf(dims)]);
  }
  transpose(x: Value, perm: number[]): Value {
    return this.op('Transpose', [x], { perm: attr.ints(perm) });
  }
  concat(xs: Value[], axis: number): Value {
    return this.op('Concat', xs, { axis: attr.int(axis) });
  }
  slice(x: Value, starts: number[], ends: number[], axes: number[]): Value {
    return this.op('Slice', [x, this.ints(starts), this.ints(ends), this.ints(axes)]);
  }
  /** x[starts:ends] along `axis`, the bounds [1] int64 graph values. */
  sliceAt(x: Value, start: Value, end: Value, axis: number): Value {
    return this.op('Slice', [x, start, end, this.ints([axis])]);
  }
  gather(x: Value, indices: Value, axis: number): Value {
    return this.op('Gather', [x, indices], { axis: attr.int(axis) });
  }
  /** start, start + 1, …, end − 1 as int64, the bounds [1] int64 graph values. */
  rangeInt(start: Value, end: Value): Value {
    const scalar = (v: Value) => this.op('Squeeze', [v, this.ints([0])]);
    return this.op('Range', [scalar(start), scalar(end), this.constant([1], 'int64', [])], {}, { dtype: 'int64' });
  }
  unsqueeze(x: Value, axes: number[]): Value {
    return this.op('Unsqueeze', [x, this.ints(axes)]);
  }
  expand(x: Value, dims: Dim[] | Value): Value {
    return this.op('Expand', [x, this.shapeOf(dims)]);
  }
  /** Nearest-neighbour 2× upsampling of the last two axes, as torch's interpolate(scale_factor=2). */
  upsampleNearest2x(x: Value): Value {
    const scales = this.constant([1, 1, 2, 2], 'float32');
    return this.op('Resize', [x, null, scales], {
      mode: attr.string('nearest'),
      coordinate_transformation_mode: attr.string('asymmetric'),
      nearest_mode: attr.string('floor'),
    });
  }
  /** 0, 1, …, n-1 as float32, n a [1] int64 value. */
  rangeFloat(n: Value): Value {
    const limit = this.cast(this.op('Squeeze', [n, this.ints([0])]), 'float32');
    return this.op('Range', [this.scalar(0, 'float32'), limit, this.scalar(1, 'float32')], {}, { dtype: 'float32' });
  }

  // ---- output ----------------------------------------------------------------------------

  /** Writes `<name>.onnx` and `<name>.onnx_data` (all weights, 64-byte aligned). */
  save(modelPath: string, onProgress?: (written: number, total: number) => void): SaveResult {
    const dataPath = `${modelPath}_data`;
    const location = basename(dataPath);
    const fd = openSync(dataPath, 'w');
    const initializer: onnxProto.onnx.ITensorProto[] = [];
    let offset = 0;
    const external = this.inits.filter((i) => i.external);
    const total = external.reduce((s, i) => s + count(i.dims) * (i.dtype === 'float16' ? 2 : i.dtype === 'float32' ? 4 : 8), 0);
    try {
      for (const init of this.inits) {
        const bytes = init.bytes();
        const proto: onnxProto.onnx.ITensorProto = { name: init.name, dims: init.dims, dataType: ONNX_TYPE[init.dtype] };
        if (init.external) {
          offset = Math.ceil(offset / 64) * 64;
          writeAll(fd, bytes, offset);
          proto.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
          proto.externalData = [
            { key: 'location', value: location },
            { key: 'offset', value: String(offset) },
            { key: 'length', value: String(bytes.byteLength) },
          ];
          offset += bytes.byteLength;
          onProgress?.(offset, total);
        } else {
          proto.rawData = bytes;
        }
        initializer.push(proto);
      }
    } finally {
      closeSync(fd);
    }
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'svd-studio',
      opsetImport: [
        { domain: '', version: 17 },
        { domain: 'com.microsoft', version: 1 },
      ],
      graph: { name: basename(modelPath, '.onnx'), node: this.nodes, initializer, input: this.inputs, output: this.outputs },
    });
    const buf = onnx.ModelProto.encode(model).finish();
    writeFileSync(modelPath, buf);
    return { modelPath, dataPath, modelBytes: buf.byteLength, dataBytes: offset, initializers: this.inits.length, nodes: this.nodes.length };
  }

  get nodeCount() {
    return this.nodes.length;
  }

  /** Parameters of the checkpoint the graph accounts for (comparable to torch's numel sum). */
  get parameterCount() {
    let n = 0;
    for (const c of this.params.values()) n += c;
    return n;
  }

  private asValue(v: Value | number, like: Value): Value {
    return typeof v === 'number' ? this.scalar(v, like) : v;
  }

  private unique(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }
}

function valueInfo(name: string, dtype: ElemType, dims: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_TYPE[dtype],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function toAttribute(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('i' in a) return { name, type: T.INT, i: a.i };
  if ('f' in a) return { name, type: T.FLOAT, f: a.f };
  if ('ints' in a) return { name, type: T.INTS, ints: a.ints };
  if ('floats' in a) return { name, type: T.FLOATS, floats: a.floats };
  return { name, type: T.STRING, s: new TextEncoder().encode(a.s) };
}

function encode(data: Float32Array, dtype: ElemType): Uint8Array {
  if (dtype === 'float16') {
    const h = float32ArrayToHalf(data);
    return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

function writeAll(fd: number, bytes: Uint8Array, position: number) {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
}

export function count(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}
