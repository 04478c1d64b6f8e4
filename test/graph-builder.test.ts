// The graph builder's parts: weight binding (transforms as data, never aliased), the static
// shapes values carry (checked against what onnxruntime computes), and the layers that read
// channel counts from them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { GraphBuilder, transform, type Value, type WeightTransform } from '../models/onnx/graph-builder.js';
import { ShapeError } from '../models/onnx/static-shapes.js';
import { canonicalJson, permute } from '../models/onnx/weight-binding.js';
import { RandomWeights, type WeightSource } from '../models/onnx/weights.js';
import { alphaBlend, conv2d, framesBack, framesByVideo, groupNorm, linear, resnetBlock2d, spatioTemporalResBlock, temporalConv, type FrameDims } from '../models/networks/layers.js';
import { relL2, tempDir } from './helpers.js';

/** Checkpoint tensors held in memory. */
class MemoryWeights implements WeightSource {
  readonly description = 'test weights';
  constructor(private readonly tensors: Record<string, { shape: number[]; data: number[] }>) {}
  has(name: string) {
    return name in this.tensors;
  }
  shapeOf(name: string) {
    return this.tensors[name]?.shape;
  }
  load(name: string) {
    return Float32Array.from(this.tensors[name]!.data);
  }
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

async function run(b: GraphBuilder, feeds: Record<string, ort.Tensor> = {}) {
  const path = join(tempDir('svd-graph-'), 'g.onnx');
  b.save(path);
  const s = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

describe('weight binding', () => {
  const w = { shape: [4, 2], data: [1, 2, 3, 4, 5, 6, 7, 8] };
  const tensors = {
    w,
    a: { shape: [1], data: [0.5] },
    c: { shape: [1], data: [-2] },
    d: { shape: [4, 2], data: [10, 20, 30, 40, 50, 60, 70, 80] },
    e: { shape: [2, 4], data: [-1, -2, -3, -4, -5, -6, -7, -8] },
  };
  // Every pair of these differs in one transform or one argument of a transform.
  const variants: { label: string; transforms: WeightTransform[]; expected: number[] }[] = [
    { label: 'as stored', transforms: [], expected: w.data },
    { label: 'transposed', transforms: [transform.transpose()], expected: [1, 3, 5, 7, 2, 4, 6, 8] },
    { label: 'rows 0-2', transforms: [transform.rows(0, 2)], expected: [1, 2, 3, 4] },
    { label: 'rows 2-4', transforms: [transform.rows(2, 4)], expected: [5, 6, 7, 8] },
    { label: 'rows 2-4, transposed', transforms: [transform.rows(2, 4), transform.transpose()], expected: [5, 7, 6, 8] },
    { label: 'transposed, rows 0-1', transforms: [transform.transpose(), transform.rows(0, 1)], expected: [1, 3, 5, 7] },
    { label: 'viewed as [2, 4]', transforms: [transform.reshape([2, 4])], expected: w.data },
    { label: 'viewed as [8]', transforms: [transform.reshape([8])], expected: w.data },
    { label: 'sigmoid', transforms: [transform.map('sigmoid')], expected: w.data.map(sigmoid) },
    { label: '1 − sigmoid', transforms: [transform.map('oneMinusSigmoid')], expected: w.data.map((v) => 1 - sigmoid(v)) },
    { label: 'scaled by sigmoid(a)', transforms: [transform.scaleBy('a', 'sigmoid')], expected: w.data.map((v) => v * sigmoid(0.5)) },
    { label: 'scaled by 1 − sigmoid(a)', transforms: [transform.scaleBy('a', 'oneMinusSigmoid')], expected: w.data.map((v) => v * (1 - sigmoid(0.5))) },
    { label: 'scaled by sigmoid(c)', transforms: [transform.scaleBy('c', 'sigmoid')], expected: w.data.map((v) => v * sigmoid(-2)) },
    { label: 'plus d', transforms: [transform.plus('d')], expected: [11, 22, 33, 44, 55, 66, 77, 88] },
    { label: 'transposed, plus e', transforms: [transform.transpose(), transform.plus('e')], expected: [0, 1, 2, 3, -3, -2, -1, 0] },
    {
      label: 'plus d, scaled by sigmoid(a)',
      transforms: [transform.plus('d'), transform.scaleBy('a', 'sigmoid')],
      expected: [11, 22, 33, 44, 55, 66, 77, 88].map((v) => Math.fround(v * sigmoid(0.5))),
    },
  ];

  it('gives each distinct transform of a tensor its own initializer, with the transformed values', async () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new MemoryWeights(tensors) });
    const bound = variants.map((v) => b.weight('w', [4, 2], ...v.transforms));
    expect(new Set(bound.map((v) => v.name)).size).toBe(variants.length);
    bound.forEach((v, i) => b.output(b.reshape(v, [-1]), `out${i}`, [variants[i]!.expected.length]));
    const out = await run(b);
    variants.forEach((v, i) => {
      const got = Array.from(out[`out${i}`]!.data as Float32Array);
      got.forEach((x, j) => expect(x, `${v.label}[${j}]`).toBeCloseTo(v.expected[j]!, 6));
    });
  });

  it('binds the same transform of a tensor once', () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new MemoryWeights(tensors) });
    for (const v of variants) {
      // A fresh but equal description (other object identity, other key order) finds the same value.
      const again = v.transforms.map((t) => Object.fromEntries(Object.entries(t).reverse()) as WeightTransform);
      expect(b.weight('w', [4, 2], ...again), v.label).toBe(b.weight('w', [4, 2], ...v.transforms));
    }
  });

  it('counts each checkpoint tensor once however often it is bound', () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new MemoryWeights(tensors) });
    for (const v of variants) b.weight('w', [4, 2], ...v.transforms);
    // w (8), the two scale tensors a and c (1 each) and the two added ones d and e (8 each).
    expect(b.parameterCount).toBe(26);
  });

  it('rejects transforms that do not fit the tensor', () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new MemoryWeights(tensors) });
    expect(() => b.weight('w', [4, 2], transform.rows(3, 5))).toThrow(/rows \[3, 5\) of w \[4, 2\] are out of range/);
    expect(() => b.weight('w', [4, 2], transform.reshape([3, 3]))).toThrow(/cannot view w \[4, 2\] as \[3, 3\]/);
    expect(() => b.weight('a', [1], transform.transpose())).toThrow(/transpose needs a 2-D weight/);
    // The added tensor must have the dims the values have where it is added.
    expect(() => b.weight('w', [4, 2], transform.plus('e'))).toThrow(/tensor "e" has shape \[2, 4\] but config.json implies \[4, 2\]/);
    expect(() => b.weight('w', [4, 2], transform.transpose(), transform.plus('d'))).toThrow(/tensor "d" has shape \[4, 2\] but config.json implies \[2, 4\]/);
    expect(() => b.weight('w', [4, 2], transform.plus('missing'))).toThrow(/missing tensor "missing"/);
  });

  it('keys are canonical JSON, and what JSON would drop is refused', () => {
    expect(canonicalJson({ b: [1, { d: 2, c: 'x' }], a: null })).toBe(canonicalJson({ a: null, b: [1, { c: 'x', d: 2 }] }));
    expect(() => canonicalJson({ fn: (v: number) => v })).toThrow(TypeError);
    expect(() => canonicalJson({ x: undefined })).toThrow(TypeError);
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(TypeError);
  });
});

describe('static shapes', () => {
  it('match the shapes onnxruntime computes, with the dynamic sizes left open', async () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'matmul', weights: new MemoryWeights({}) });
    const x = b.input('x', 'float32', ['n', 6, 'h', 'w']);
    const t = b.input('t', 'float32', ['n', 5, 8]);
    const fixed = b.input('fixed', 'float32', [2, 6, 5, 7]);
    const c = (dims: number[], v = 0.1) => b.constant(new Array(dims.reduce((p, q) => p * q, 1)).fill(v), 'float32', dims);
    const values: Record<string, Value> = {
      conv: b.conv2d(x, c([4, 6, 3, 3]), { bias: c([4]), pads: [1, 1, 1, 1] }),
      strided: b.conv2d(x, c([4, 3, 3, 3]), { strides: [2, 2], pads: [0, 0, 1, 1], groups: 2 }),
      stridedFixed: b.conv2d(fixed, c([4, 3, 3, 3]), { strides: [2, 2], pads: [0, 0, 1, 1], groups: 2 }),
      upsampledFixed: b.upsampleNearest2x(fixed),
      slicedFixed: b.slice(fixed, [1, -3], [100, -1], [2, 3]),
      flattenedFixed: b.reshape(fixed, [0, -1]),
      upsampled: b.upsampleNearest2x(x),
      grouped: b.groupNorm(x, { groups: 3, scale: c([6, 1, 1], 1), bias: c([6, 1, 1]), epsilon: 1e-5 }),
      tokens: b.transpose(b.reshape(x, [0, 6, -1]), [0, 2, 1]),
      linear: b.linear(t, c([8, 3]), { bias: c([3]) }),
      matmul: b.matmul(t, c([8, 2])),
      normed: b.layerNorm(t, { scale: c([8], 1), bias: c([8]), epsilon: 1e-5 }),
      attention: b.attention(t, t, t, { heads: 2 }),
      fused: b.attention(t, t, t, { heads: 2, impl: 'mha' }),
      joined: b.concat([t, b.slice(t, [0], [2], [1])], 1),
      expanded: b.expand(c([1, 1, 8]), [b.dim(t, 0), 3, 8]),
      unsqueezed: b.unsqueeze(t, [1, 3]),
      gathered: b.gather(t, b.ints([0, 2, 4, 1]), 1),
      reshaped: b.reshape(b.reshape(t, [-1, 8]), b.shape(t)),
      positions: b.rangeFloat(b.dim(t, 1)),
      softmax: b.softmax(t, -1),
    };
    const expectShapes: Record<string, (number | null)[]> = {
      conv: [null, 4, null, null],
      strided: [null, 4, null, null],
      stridedFixed: [2, 4, 2, 3],
      upsampledFixed: [2, 6, 10, 14],
      slicedFixed: [2, 6, 4, 2],
      flattenedFixed: [2, 210],
      upsampled: [null, 6, null, null],
      grouped: [null, 6, null, null],
      tokens: [null, null, 6],
      linear: [null, 5, 3],
      matmul: [null, 5, 2],
      normed: [null, 5, 8],
      attention: [null, 5, 8],
      fused: [null, 5, 8],
      joined: [null, 7, 8],
      expanded: [null, 3, 8],
      unsqueezed: [null, 1, 5, 1, 8],
      gathered: [null, 4, 8],
      reshaped: [null, 5, 8],
      positions: [5],
      softmax: [null, 5, 8],
    };
    for (const [name, v] of Object.entries(values)) {
      expect(v.shape, name).toEqual(expectShapes[name]);
      b.output(
        v,
        name,
        v.shape!.map((d, i) => d ?? `${name}_${i}`),
      );
    }
    const feeds = {
      x: new ort.Tensor(
        'float32',
        new Float32Array(2 * 6 * 5 * 7).map((_, i) => Math.sin(i)),
        [2, 6, 5, 7],
      ),
      t: new ort.Tensor(
        'float32',
        new Float32Array(2 * 5 * 8).map((_, i) => Math.cos(i)),
        [2, 5, 8],
      ),
      fixed: new ort.Tensor(
        'float32',
        new Float32Array(2 * 6 * 5 * 7).map((_, i) => Math.sin(i)),
        [2, 6, 5, 7],
      ),
    };
    const out = await run(b, feeds);
    for (const [name, v] of Object.entries(values)) {
      out[name]!.dims.forEach((d, i) => {
        if (v.shape![i] !== null) expect(d, `${name} axis ${i}`).toBe(v.shape![i]);
      });
    }
    // The sizes left open are the ones that follow the input's: n = 2, h = 5, w = 7.
    expect(out.conv!.dims).toEqual([2, 4, 5, 7]);
    expect(out.strided!.dims).toEqual([2, 4, 2, 3]);
    expect(out.tokens!.dims).toEqual([2, 35, 6]);
  });

  it('reject what the operator would reject, while the graph is defined', () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new MemoryWeights({}) });
    const x = b.input('x', 'float32', ['n', 6, 4]);
    expect(() => b.add(x, b.constant([1, 2, 3], 'float32'))).toThrow(ShapeError);
    expect(() => b.matmul(x, b.constant(new Array(15).fill(0), 'float32', [5, 3]))).toThrow(/inner sizes 4 and 5 differ/);
    expect(() => b.conv2d(b.reshape(x, [0, 6, 2, 2]), b.constant(new Array(9).fill(0), 'float32', [1, 1, 3, 3]))).toThrow(/has 6 channels but the weights/);
    expect(() => b.output(x, 'y', ['n', 6, 5])).toThrow(/declared \[n, 6, 5\] but the graph computes \[\?, 6, 4\]/);
  });
});

describe('layers read channel counts from their input', () => {
  it('conv2d, groupNorm and linear ask the checkpoint for weights of the input width', () => {
    const weights = new MemoryWeights({
      'c.weight': { shape: [8, 4, 3, 3], data: new Array(288).fill(0) },
      'c.bias': { shape: [8], data: new Array(8).fill(0) },
      'n.weight': { shape: [8], data: new Array(8).fill(1) },
      'n.bias': { shape: [8], data: new Array(8).fill(0) },
      'l.weight': { shape: [3, 8], data: new Array(24).fill(0) },
      'l.bias': { shape: [3], data: new Array(3).fill(0) },
    });
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights });
    const x = b.input('x', 'float32', ['n', 4, 'h', 'w']);
    const h = groupNorm(b, conv2d(b, x, 'c', 8, 3), 'n', 1e-5, { groups: 4 });
    expect(h.shape).toEqual([null, 8, null, null]);
    const y = linear(b, b.transpose(h, [0, 2, 3, 1]), 'l', 3);
    expect(y.shape).toEqual([null, null, null, 3]);
    expect(b.parameterCount).toBe(288 + 8 + 8 + 8 + 24 + 3);
  });

  it('and say which module needed a size the graph does not know', () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new MemoryWeights({}) });
    const x = b.input('x', 'float32', ['n', 'c', 'h', 'w']);
    expect(() => conv2d(b, x, 'down.conv', 8, 3)).toThrow(/down\.conv: the size of axis 1 of \[\?, \?, \?, \?\] is not known/);
  });
});

describe('weight permute transform', () => {
  it('reorders axes like a naive index walk (conv weights [M, C, kH, kW] → [M, kH, kW, C])', () => {
    const dims = [3, 4, 2, 5];
    const data = Float32Array.from({ length: 120 }, (_, i) => i);
    const perm = [0, 2, 3, 1];
    const out = permute(data, dims, perm);
    const outDims = perm.map((p) => dims[p]!);
    for (let a = 0; a < outDims[0]!; a++)
      for (let b2 = 0; b2 < outDims[1]!; b2++)
        for (let c = 0; c < outDims[2]!; c++)
          for (let d = 0; d < outDims[3]!; d++) {
            const o = [a, b2, c, d];
            const src = [0, 0, 0, 0];
            perm.forEach((p, i) => (src[p] = o[i]!));
            const srcIndex = ((src[0]! * dims[1]! + src[1]!) * dims[2]! + src[2]!) * dims[3]! + src[3]!;
            expect(out[((a * outDims[1]! + b2) * outDims[2]! + c) * outDims[3]! + d]).toBe(data[srcIndex]);
          }
  });
});

describe("a resnet's conv1 bias folded into its time-embedding projection", () => {
  const [channels, eps] = [64, 1e-5];
  /** diffusers' ResnetBlock2D and TemporalResnetBlock + AlphaBlender as written there: conv1 with its bias, the blend as a blend. */
  const reference = {
    resnet(b: GraphBuilder, x: Value, name: string, temb: Value) {
      let h = conv2d(b, groupNorm(b, x, `${name}.norm1`, eps, { silu: true }), `${name}.conv1`, channels, 3);
      h = b.add(h, b.unsqueeze(linear(b, temb, `${name}.time_emb_proj`, channels), [2, 3]));
      return b.add(x, conv2d(b, groupNorm(b, h, `${name}.norm2`, eps, { silu: true }), `${name}.conv2`, channels, 3));
    },
    spatioTemporal(b: GraphBuilder, x: Value, name: string, temb: Value, frames: FrameDims) {
      const spatial = reference.resnet(b, x, `${name}.spatial_res_block`, temb);
      const t = framesByVideo(b, spatial, frames);
      const r = `${name}.temporal_res_block`;
      let h = temporalConv(b, groupNorm(b, t, `${r}.norm1`, eps, { silu: true }), `${r}.conv1`, channels, 3);
      const proj = b.reshape(linear(b, temb, `${r}.time_emb_proj`, channels), [frames.batch, frames.frames, channels]);
      h = b.add(h, b.unsqueeze(b.transpose(proj, [0, 2, 1]), [3]));
      h = b.add(t, temporalConv(b, groupNorm(b, h, `${r}.norm2`, eps, { silu: true }), `${r}.conv2`, channels, 3));
      return framesBack(b, alphaBlend(b, `${name}.time_mixer`, t, h, false), spatial);
    },
  };

  function define(b: GraphBuilder, folded: boolean) {
    const x = b.input('x', 'float32', ['f', channels, 'h', 'w']);
    const temb = b.silu(b.input('temb', 'float32', ['f', 8]));
    const frames: FrameDims = { batch: b.ints([1]), frames: b.dim(x, 0) };
    const opts = { eps, temporalEps: eps, switchMix: false, frames, temb };
    b.output(folded ? resnetBlock2d(b, x, 'res', channels, eps, temb) : reference.resnet(b, x, 'res', temb), 'resnet', ['f', channels, 'h', 'w']);
    b.output(folded ? spatioTemporalResBlock(b, x, 'st', channels, opts) : reference.spatioTemporal(b, x, 'st', temb, frames), 'spatio_temporal', ['f', channels, 'h', 'w']);
    // The decoder's resnets have no time embedding: conv1 keeps its bias.
    b.output(resnetBlock2d(b, x, 'plain', channels, eps), 'plain', ['f', channels, 'h', 'w']);
  }

  it('builds conv1 without a bias where a time embedding is added to it, and computes the same', async () => {
    const weights = new RandomWeights(11);
    const [folded, unfolded] = [true, false].map((f) => {
      const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights });
      define(b, f);
      return b;
    }) as [GraphBuilder, GraphBuilder];
    expect(folded.parameterCount).toBe(unfolded.parameterCount);
    const path = join(tempDir('svd-fold-'), 'g.onnx');
    folded.save(path);
    const graph = onnxProto.onnx.ModelProto.decode(readFileSync(path)).graph!;
    const convs = graph.node!.filter((n) => n.opType === 'Conv').map((n) => [n.input![1]!.replace(/^w:|_\d+$/g, ''), n.input!.length]);
    expect(Object.fromEntries(convs)).toEqual({
      'res.conv1.weight': 2,
      'res.conv2.weight': 3,
      'st.spatial_res_block.conv1.weight': 2,
      'st.spatial_res_block.conv2.weight': 3,
      'st.temporal_res_block.conv1.weight': 2,
      'st.temporal_res_block.conv2.weight': 3,
      'plain.conv1.weight': 3,
      'plain.conv2.weight': 3,
    });
    const feeds = {
      x: new ort.Tensor(
        'float32',
        Float32Array.from({ length: 3 * channels * 5 * 4 }, (_, i) => Math.sin(i * 0.37)),
        [3, channels, 5, 4],
      ),
      temb: new ort.Tensor(
        'float32',
        Float32Array.from({ length: 3 * 8 }, (_, i) => Math.cos(i)),
        [3, 8],
      ),
    };
    const [a, b] = [await run(folded, feeds), await run(unfolded, feeds)];
    for (const name of ['resnet', 'spatio_temporal', 'plain']) {
      expect(a[name]!.dims, name).toEqual(b[name]!.dims);
      expect(relL2(a[name]!.data as Float32Array, b[name]!.data as Float32Array), name).toBeLessThan(1e-6);
    }
  });
});
