// The operator vocabulary graphs are written in, in the spirit of WebNN's MLGraphBuilder: calls
// read like the math (`b.conv2d(x, w, { bias, pads })`, `b.layerNorm(x, { scale, bias, epsilon })`),
// values flow between them, and names appear only at the edges (inputs, outputs, weights).
// Each value carries what is known of its shape while the graph is defined, so the layers above
// read channel counts from their inputs instead of taking them by hand.
import { attr, encodeFloats, ONNX_TYPE, type Attr, type ElemType, type OnnxWriter } from './onnx-writer.js';
import { broadcast, concatShape, convShape, formatShape, gatherShape, matmulShape, reshapeShape, ShapeError, sliceShape, transposeShape, unsqueezeShape, type Shape } from './static-shapes.js';

export { attr, type Attr, type ElemType } from './onnx-writer.js';
export type { Shape } from './static-shapes.js';

export type GraphDType = 'float32' | 'float16';

export interface Value {
  readonly name: string;
  readonly dtype: ElemType;
  /** What is known of the shape while defining the graph (absent: not even the rank). */
  readonly shape?: Shape;
  /** For small 1-D int64 values (shapes, dims): the elements known while defining, null where computed. */
  readonly contents?: Shape;
}

/** A dimension inside a shape: a fixed size, or a [1]-int64 value computed in the graph. */
export type Dim = number | Value;

export type AttentionImpl = 'mha' | 'matmul';

export interface OpsOptions {
  /** Element type of activations and weights inside the graph. */
  dtype: GraphDType;
  /** How attention is expressed unless a call says: the fused com.microsoft MultiHeadAttention, or MatMul/Softmax/MatMul. */
  attention: AttentionImpl;
}

/** The size of `axis` of x, which must be known while defining the graph (a channel count, a width). */
export function staticDim(x: Value, axis: number, what: string): number {
  const size = x.shape?.[axis < 0 ? axis + x.shape.length : axis];
  if (typeof size !== 'number') throw new ShapeError(`${what}: the size of axis ${axis} of ${formatShape(x.shape)} is not known while defining the graph`);
  return size;
}

export class Ops {
  readonly dtype: GraphDType;
  readonly attentionImpl: AttentionImpl;
  private readonly constCache = new Map<string, Value>();
  private readonly scopes: string[] = [];

  constructor(
    protected readonly file: OnnxWriter,
    opts: OpsOptions,
  ) {
    this.dtype = opts.dtype;
    this.attentionImpl = opts.attention;
  }

  // ---- edges -----------------------------------------------------------------------------

  /** A graph input; string dimensions are dynamic and named in the file. */
  input(name: string, dtype: ElemType, dims: (number | string)[]): Value {
    this.file.addInput(name, dtype, dims);
    return { name, dtype, shape: dims.map((d) => (typeof d === 'number' ? d : null)) };
  }

  /** A graph output; its fixed dimensions must agree with what the graph computes. */
  output(value: Value, name: string, dims: (number | string)[]): void {
    const known = value.shape;
    if (known && (known.length !== dims.length || dims.some((d, i) => typeof d === 'number' && known[i] !== null && known[i] !== d))) {
      throw new ShapeError(`output ${name}: declared [${dims.join(', ')}] but the graph computes ${formatShape(known)}`);
    }
    this.file.addNode({ opType: 'Identity', name: `${name}/Identity`, inputs: [value.name], outputs: [name], attrs: {} });
    this.file.addOutput(name, value.dtype, dims);
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

  // ---- constants -------------------------------------------------------------------------

  /** A small constant stored inline (shapes, scalars, frequency tables). */
  constant(values: ArrayLike<number>, dtype: ElemType, dims: number[] = [values.length]): Value {
    const arr = Array.from(values);
    const key = `${dtype}|${dims.join(',')}|${arr.join(',')}`;
    const cached = this.constCache.get(key);
    if (cached) return cached;
    const value: Value = { name: this.file.uniqueName('const'), dtype, shape: dims, ...(dtype === 'int64' && dims.length === 1 ? { contents: arr } : {}) };
    this.file.addInitializer({
      name: value.name,
      dims,
      dtype,
      external: false,
      bytes: () => (dtype === 'int64' ? new Uint8Array(BigInt64Array.from(arr, (v) => BigInt(v)).buffer) : dtype === 'uint8' ? Uint8Array.from(arr) : encodeFloats(Float32Array.from(arr), dtype)),
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

  /**
   * Adds any node (operators without a method here); outputs take the first input's element type
   * unless told, and an unknown shape.
   */
  node(opType: string, inputs: (Value | null)[], attrs: Record<string, Attr> = {}, opts: { domain?: string; outputs?: number; dtype?: ElemType; shape?: Shape; contents?: Shape } = {}): Value[] {
    const base = this.file.uniqueName(`${this.scopes.join('/') || 'g'}/${opType}`);
    const n = opts.outputs ?? 1;
    const dtype = opts.dtype ?? inputs.find((v): v is Value => v !== null)?.dtype ?? this.dtype;
    const outs: Value[] = Array.from({ length: n }, (_, i) => ({
      name: n === 1 ? base : `${base}:${i}`,
      dtype,
      ...(opts.shape ? { shape: opts.shape } : {}),
      ...(opts.contents ? { contents: opts.contents } : {}),
    }));
    this.file.addNode({ opType, domain: opts.domain, name: base, inputs: inputs.map((v) => (v ? v.name : '')), outputs: outs.map((o) => o.name), attrs, outputShapes: outs.map((o) => o.shape) });
    return outs;
  }

  private op(opType: string, inputs: (Value | null)[], shape: Shape | undefined, attrs?: Record<string, Attr>, opts?: { domain?: string; dtype?: ElemType; contents?: Shape }): Value {
    return this.node(opType, inputs, attrs, { ...opts, shape })[0]!;
  }

  // ---- elementwise -----------------------------------------------------------------------

  add(a: Value, b: Value | number): Value {
    return this.binary('Add', a, b);
  }
  sub(a: Value, b: Value | number): Value {
    return this.binary('Sub', a, b);
  }
  mul(a: Value, b: Value | number): Value {
    return this.binary('Mul', a, b);
  }
  div(a: Value, b: Value | number): Value {
    return this.binary('Div', a, b);
  }
  sigmoid(x: Value): Value {
    return this.op('Sigmoid', [x], x.shape);
  }
  sin(x: Value): Value {
    return this.op('Sin', [x], x.shape);
  }
  cos(x: Value): Value {
    return this.op('Cos', [x], x.shape);
  }
  leakyRelu(x: Value, alpha: number): Value {
    return this.op('LeakyRelu', [x], x.shape, { alpha: attr.float(alpha) });
  }
  silu(x: Value): Value {
    return this.mul(x, this.sigmoid(x));
  }
  /** Exact GELU, 0.5·x·(1 + erf(x/√2)), as torch's default. */
  gelu(x: Value): Value {
    const e = this.op('Erf', [this.mul(x, Math.SQRT1_2)], x.shape);
    return this.mul(this.mul(x, 0.5), this.add(e, 1));
  }
  /** Exact GELU as one fused com.microsoft operator (CPU, CUDA and WebGPU implement it). */
  geluFused(x: Value): Value {
    return this.op('Gelu', [x], x.shape, {}, { domain: 'com.microsoft' });
  }
  quickGelu(x: Value): Value {
    return this.mul(x, this.sigmoid(this.mul(x, 1.702)));
  }
  /** Clamped to [min, max]; NaN stays NaN. */
  clip(x: Value, min: number, max: number): Value {
    return this.op('Clip', [x, this.scalar(min, x), this.scalar(max, x)], x.shape);
  }
  /** Rounded to the nearest integer, halves to even (as numpy's round). */
  round(x: Value): Value {
    return this.op('Round', [x], x.shape);
  }
  cast(x: Value, to: ElemType): Value {
    if (x.dtype === to) return x;
    return this.op('Cast', [x], x.shape, { to: attr.int(ONNX_TYPE[to]) }, { dtype: to });
  }

  // ---- linear algebra --------------------------------------------------------------------

  matmul(a: Value, b: Value): Value {
    return this.op('MatMul', [a, b], matmulShape(a.shape, b.shape));
  }
  /**
   * x·W (+ bias) with W stored as [in, out]. With a bias, inputs of rank > 2 are flattened to 2-D
   * so that onnxruntime fuses MatMul + Add into one Gemm (the bias costs no extra pass over memory).
   */
  linear(x: Value, w: Value, opts: { bias?: Value } = {}): Value {
    if (!opts.bias) return this.matmul(x, w);
    const outFeatures = staticDim(w, 1, 'linear weights');
    const flat = this.reshape(x, [-1, this.dim(x, -1)]);
    const y = this.add(this.matmul(flat, w), opts.bias);
    return this.reshape(y, this.concat([this.shape(x, 0, -1), this.ints([outFeatures])], 0));
  }
  /** 2-D convolution of [N, C, H, W] by weights [M, C / groups, kH, kW]; `pads` in ONNX order (begins, then ends). */
  conv2d(x: Value, w: Value, opts: { bias?: Value; strides?: number[]; pads?: number[]; groups?: number } = {}): Value {
    const attrs: Record<string, Attr> = {};
    if (opts.strides) attrs.strides = attr.ints(opts.strides);
    if (opts.pads) attrs.pads = attr.ints(opts.pads);
    if (opts.groups) attrs.group = attr.int(opts.groups);
    const shape = convShape(x.shape, w.shape, { strides: opts.strides, pads: opts.pads, group: opts.groups });
    return this.op('Conv', opts.bias ? [x, w, opts.bias] : [x, w], shape, attrs);
  }
  /**
   * Transposed 2-D convolution of [N, C, H, W] by torch ConvTranspose2d weights [C, M, kH, kW]
   * (ONNX keeps torch's order); output side (in − 1)·stride − 2·pad + k.
   */
  convTranspose2d(x: Value, w: Value, opts: { bias?: Value; stride: number; pad: number }): Value {
    const [outC, k] = [staticDim(w, 1, 'ConvTranspose weights'), staticDim(w, 2, 'ConvTranspose weights')];
    const side = (d: number | null | undefined) => (typeof d === 'number' ? (d - 1) * opts.stride - 2 * opts.pad + k : null);
    const shape = x.shape && [x.shape[0]!, outC, side(x.shape[2]), side(x.shape[3])];
    const attrs = { strides: attr.ints([opts.stride, opts.stride]), pads: attr.ints([opts.pad, opts.pad, opts.pad, opts.pad]), kernel_shape: attr.ints([k, k]) };
    return this.op('ConvTranspose', opts.bias ? [x, w, opts.bias] : [x, w], shape, attrs);
  }

  // ---- normalisation ---------------------------------------------------------------------

  /** LayerNormalization over the last axis; it computes in float32 (stash_type 1) whatever the input type. */
  layerNorm(x: Value, opts: { scale: Value; bias: Value; epsilon: number }): Value {
    return this.op('LayerNormalization', [x, opts.scale, opts.bias], x.shape, { axis: attr.int(-1), epsilon: attr.float(opts.epsilon) });
  }

  /**
   * GroupNorm over [N, C, ...] as Reshape → InstanceNormalization → Reshape → affine: the fused
   * GroupNormalization op expands into many small kernels on GPU providers. `scale` and `bias`
   * broadcast over the axes after C ([C, 1, 1] for [N, C, H, W]).
   */
  groupNorm(x: Value, opts: { groups: number; scale: Value; bias: Value; epsilon: number }): Value {
    // In the graph's own precision: the providers accumulate the statistics in float32 anyway
    // (fp16 at SVD-XT's largest GroupNorm on WebGPU: rms error 3.3e-4, below fp16's own rounding;
    // `npm run check:norm-precision`), and float32 casts around it cost two passes per norm.
    const { groups } = opts;
    const ones = this.constant(new Array(groups).fill(1), x.dtype);
    const zeros = this.constant(new Array(groups).fill(0), x.dtype);
    const grouped = this.reshape(x, [0, groups, -1]);
    const normed = this.op('InstanceNormalization', [grouped, ones, zeros], grouped.shape, { epsilon: attr.float(opts.epsilon) });
    const back = this.reshape(normed, this.shape(x));
    return this.add(this.mul(back, opts.scale), opts.bias);
  }

  /** Softmax in float32 (exponentials of fp16 scores overflow), back in x's type. */
  softmax(x: Value, axis = -1): Value {
    const y = this.op('Softmax', [this.cast(x, 'float32')], x.shape, { axis: attr.int(axis) });
    return this.cast(y, x.dtype);
  }

  // ---- attention -------------------------------------------------------------------------

  /**
   * Scaled dot-product attention on [B, S, H·D] projections, H = `heads`. With the fused op the
   * S×L score matrix is never materialised in full; the MatMul form is kept for providers without it.
   */
  attention(q: Value, k: Value, v: Value, opts: { heads: number; impl?: AttentionImpl }): Value {
    const { heads } = opts;
    const width = staticDim(q, -1, 'attention queries');
    if (width % heads !== 0) throw new ShapeError(`attention: query width ${width} is not divisible by ${heads} heads`);
    const headDim = width / heads;
    const scale = 1 / Math.sqrt(headDim);
    if ((opts.impl ?? this.attentionImpl) === 'mha') {
      const shape = q.shape && v.shape ? [q.shape[0]!, q.shape[1]!, v.shape[2]!] : undefined;
      return this.op('MultiHeadAttention', [q, k, v], shape, { num_heads: attr.int(heads), scale: attr.float(scale) }, { domain: 'com.microsoft' });
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
    const contents = x.shape?.slice(start ?? 0, end ?? x.shape.length);
    return this.op('Shape', [x], contents && [contents.length], attrs, { dtype: 'int64', contents });
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
  /** The product of two [1] int64 dims. */
  mulDims(a: Value, b: Value): Value {
    const [x, y] = [a.contents?.[0], b.contents?.[0]];
    return this.op('Mul', [a, b], [1], {}, { contents: [x != null && y != null ? x * y : null] });
  }
  reshape(x: Value, dims: Dim[] | Value): Value {
    const target = this.shapeOf(dims);
    return this.op('Reshape', [x, target], reshapeShape(x.shape, knownContents(target)));
  }
  transpose(x: Value, perm: number[]): Value {
    return this.op('Transpose', [x], transposeShape(x.shape, perm), { perm: attr.ints(perm) });
  }
  concat(xs: Value[], axis: number): Value {
    const shape = concatShape(
      xs.map((x) => x.shape),
      axis,
    );
    const parts = xs.map(knownContents);
    const contents = axis === 0 && xs.every((x) => x.dtype === 'int64' && x.shape?.length === 1) && parts.every((p) => p) ? parts.flatMap((p) => p!) : undefined;
    return this.op('Concat', xs, shape, { axis: attr.int(axis) }, { contents });
  }
  slice(x: Value, starts: number[], ends: number[], axes: number[]): Value {
    return this.op('Slice', [x, this.ints(starts), this.ints(ends), this.ints(axes)], sliceShape(x.shape, starts, ends, axes));
  }
  /** x[start:end] along `axis`, the bounds [1] int64 graph values. */
  sliceAt(x: Value, start: Value, end: Value, axis: number): Value {
    const shape = x.shape?.map((d, i) => (i === (axis < 0 ? axis + x.shape!.length : axis) ? null : d));
    return this.op('Slice', [x, start, end, this.ints([axis])], shape);
  }
  gather(x: Value, indices: Value, axis: number): Value {
    return this.op('Gather', [x, indices], gatherShape(x.shape, indices.shape, axis), { axis: attr.int(axis) });
  }
  /** start, start + 1, …, end − 1 as int64, the bounds [1] int64 graph values. */
  rangeInt(start: Value, end: Value): Value {
    const scalar = (v: Value) => this.op('Squeeze', [v, this.ints([0])], []);
    return this.op('Range', [scalar(start), scalar(end), this.constant([1], 'int64', [])], [null], {}, { dtype: 'int64' });
  }
  unsqueeze(x: Value, axes: number[]): Value {
    return this.op('Unsqueeze', [x, this.ints(axes)], unsqueezeShape(x.shape, axes));
  }
  expand(x: Value, dims: Dim[] | Value): Value {
    const target = this.shapeOf(dims);
    return this.op('Expand', [x, target], broadcast(x.shape, knownContents(target), 'Expand'));
  }
  /** Nearest-neighbour 2× upsampling of [N, C, H, W], as torch's interpolate(scale_factor=2). */
  upsampleNearest2x(x: Value): Value {
    const scales = this.constant([1, 1, 2, 2], 'float32');
    const shape = x.shape?.map((d, i) => (i < 2 || d === null ? d : d * 2));
    return this.op('Resize', [x, null, scales], shape, {
      mode: attr.string('nearest'),
      coordinate_transformation_mode: attr.string('asymmetric'),
      nearest_mode: attr.string('floor'),
    });
  }
  /**
   * Bilinear resize of [N, C, H, W] by `scale` on both image axes, as torch's
   * interpolate(scale_factor=scale, mode='bilinear', align_corners=False) without antialiasing:
   * half-pixel centres, two taps per axis even when shrinking.
   */
  resizeBilinear(x: Value, scale: number): Value {
    const scales = this.constant([1, 1, scale, scale], 'float32');
    const shape = x.shape?.map((d, i) => (i < 2 || d === null ? d : Math.floor(d * scale)));
    return this.op('Resize', [x, null, scales], shape, { mode: attr.string('linear'), coordinate_transformation_mode: attr.string('half_pixel') });
  }
  /**
   * Samples [N, C, H, W] at `grid` [N, Ho, Wo, 2] (x, y in [-1, 1], corners on the outer pixel
   * centres) bilinearly, coordinates outside taken from the border: torch's grid_sample with
   * mode 'bilinear', padding_mode 'border', align_corners True. The com.microsoft form: its CUDA
   * kernel is in every onnxruntime we load, where ONNX's own GridSample has one only in newer
   * builds and otherwise runs on the CPU with copies to and from the card.
   */
  gridSampleBorder(x: Value, grid: Value): Value {
    const shape = x.shape && grid.shape ? [x.shape[0]!, x.shape[1]!, grid.shape[1]!, grid.shape[2]!] : undefined;
    return this.op('GridSample', [x, grid], shape, { mode: attr.string('bilinear'), padding_mode: attr.string('border'), align_corners: attr.int(1) }, { domain: 'com.microsoft' });
  }
  /** [N, C·b², H, W] → [N, C, H·b, W·b] as torch's PixelShuffle(b) (DepthToSpace, CRD order). */
  pixelShuffle(x: Value, block: number): Value {
    const shape = x.shape && [x.shape[0]!, x.shape[1] === null ? null : x.shape[1]! / (block * block), ...x.shape.slice(2).map((d) => (d === null ? null : d * block))];
    return this.op('DepthToSpace', [x], shape, { blocksize: attr.int(block), mode: attr.string('CRD') });
  }
  /** 0, 1, …, n-1 as float32, n a [1] int64 value. */
  rangeFloat(n: Value): Value {
    const limit = this.cast(this.op('Squeeze', [n, this.ints([0])], []), 'float32');
    return this.op('Range', [this.scalar(0, 'float32'), limit, this.scalar(1, 'float32')], [n.contents?.[0] ?? null], {}, { dtype: 'float32' });
  }

  private binary(opType: string, a: Value, b: Value | number): Value {
    const bv = typeof b === 'number' ? this.scalar(b, a) : b;
    return this.op(opType, [a, bv], broadcast(a.shape, bv.shape, opType));
  }

  /** Rounded down to an integer (on values ≥ 0, torch's truncating `.byte()` conversion). */
  floor(x: Value): Value {
    return this.op('Floor', [x], x.shape);
  }
  /** x with `value` added around it (constant mode); `pads` in ONNX order: every axis's count before, then every axis's count after. */
  pad(x: Value, pads: Dim[] | Value, value = 0): Value {
    const counts = this.shapeOf(pads);
    const known = knownContents(counts);
    const rank = x.shape?.length ?? 0;
    const side = (d: number | null, i: number) => {
      const [before, after] = [known?.[i], known?.[i + rank]];
      return d === null || before == null || after == null ? null : d + before + after;
    };
    const shape = x.shape && known?.length === 2 * rank ? x.shape.map(side) : undefined;
    return this.op('Pad', [x, counts, this.scalar(value, x)], shape, { mode: attr.string('constant') });
  }
}

/** The known elements of a 1-D int64 value: its contents, or as many unknowns as its length. */
function knownContents(v: Value): Shape | undefined {
  if (v.contents) return v.contents;
  const n = v.shape?.length === 1 ? v.shape[0] : undefined;
  return typeof n === 'number' ? new Array<null>(n).fill(null) : undefined;
}
