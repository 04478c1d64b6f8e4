// The CUDA forms as graph passes: the full-size SVD-XT graphs of every network and form must keep
// the operator counts recorded before the fused operators moved out of the network definitions
// (test/fixtures/graph-operator-counts.json), and pass selection follows the support table.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { buildNetworkFile, defineNetwork } from '../models/build.js';
import { openModelDir } from '../models/model-dir.js';
import { formPasses, PORTABLE_FORMS, type GraphForms } from '../models/networks/forms.js';
import { ALL_FUSIONS, compareVersions, fusionPasses, fusionsFor, FUSED_OPERATOR_SUPPORT } from '../models/networks/fusions.js';
import { buildImageEncoder } from '../models/networks/image-encoder.js';
import { conv2d, feedForwardGeglu, linear, resnetBlock2d, selfAttention } from '../models/networks/layers.js';
import { buildUNet } from '../models/networks/unet.js';
import { buildVaeDecoder, buildVaeEncoder } from '../models/networks/vae.js';
import { concatInitializers } from '../models/onnx/graph-passes.js';
import { GraphBuilder, type AttentionImpl } from '../models/onnx/graph-builder.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { graphFormsFor, parseGraphForms } from '../models/runtime/runtime.js';
import { SVD_XT_IMAGE_ENCODER, SVD_XT_UNET, SVD_XT_VAE } from '../models/reference-configs.js';
import { FIXTURE_MODEL, tempDir } from './helpers.js';

interface Recorded {
  parameters: number;
  nodes: number;
  operators: Record<string, number>;
}
const recorded = JSON.parse(readFileSync(new URL('./fixtures/graph-operator-counts.json', import.meta.url), 'utf8')) as Record<string, Recorded>;

// The newest release the support table names; the counts are recorded with every fusion pass, the
// ones the defaults leave out (measured no faster) included, so each pass stays held.
const newest = Object.values(FUSED_OPERATOR_SUPPORT)
  .map((s) => s.minOnnxruntime)
  .reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b));
const cudaDefault = graphFormsFor('cuda', { provider: 'cuda', onnxruntime: newest });
const cuda: GraphForms = { ...cudaDefault, fusions: ALL_FUSIONS };
const FORMS: Record<string, [AttentionImpl, GraphForms]> = {
  'portable-mha': ['mha', PORTABLE_FORMS],
  'portable-matmul': ['matmul', PORTABLE_FORMS],
  cuda: ['mha', cuda],
  'cuda-standard-ops': ['mha', { ...cuda, fusions: [] }],
};
const NETWORKS: [string, boolean, (b: GraphBuilder, forms: GraphForms) => void][] = [
  ['image_encoder', false, (b) => buildImageEncoder(b, SVD_XT_IMAGE_ENCODER)],
  ['vae_encoder', false, (b) => buildVaeEncoder(b, SVD_XT_VAE)],
  ['unet', true, (b, forms) => buildUNet(b, SVD_XT_UNET, { forms })],
  ['vae_decoder', true, (b, forms) => buildVaeDecoder(b, SVD_XT_VAE, { forms })],
];

describe('full-size graphs per network and form, the fused operators applied by passes', () => {
  it('uses every fusion the support table chooses in the CUDA form on the release it names', () => {
    const chosen = ALL_FUSIONS.filter((f) => !['skip-group-norm', 'bias-gelu', 'bias-add', 'packed-qkv'].includes(f));
    expect(cudaDefault.fusions).toEqual(chosen);
  });
  for (const [form, [attention, forms]] of Object.entries(FORMS)) {
    for (const [network, followsLayout, define] of NETWORKS) {
      it(`${network}, ${form}: the recorded operator counts`, () => {
        const b = new GraphBuilder({ dtype: 'float16', attention, weights: new RandomWeights() });
        define(b, forms);
        b.applyPasses(formPasses(followsLayout ? forms : { ...forms, imageLayout: 'nchw' }));
        const expected = recorded[`${network} ${form}`]!;
        expect({ parameters: b.parameterCount, nodes: b.nodeCount, operators: b.operatorCounts() }).toEqual(expected);
      });
    }
  }
});

describe('fusion selection by target', () => {
  it('leaves out what the release or provider lacks', () => {
    expect(fusionsFor({ provider: 'webgpu', onnxruntime: '1.30.0' })).toEqual([]);
    expect(fusionsFor({ provider: 'cpu', onnxruntime: '1.30.0' })).toEqual([]);
    const cudaFrom = (minOnnxruntime: string, minComputeCapability?: number) => ({ providers: ['cuda'] as const, minOnnxruntime, minComputeCapability });
    const support = {
      BiasSplitGelu: cudaFrom('1.27.0'),
      GroupNorm: cudaFrom('1.19.0', 8.0),
      NhwcConv: cudaFrom('1.19.0'),
      SkipGroupNorm: cudaFrom('1.30.0'),
      SkipLayerNormalization: cudaFrom('1.30.0'),
      BiasGelu: cudaFrom('1.30.0'),
      BiasAdd: cudaFrom('1.30.0'),
      'BiasAdd (convolution)': cudaFrom('1.30.0'),
      'MultiHeadAttention (packed QKV)': cudaFrom('1.30.0'),
    };
    expect(fusionsFor({ provider: 'cuda', onnxruntime: '1.26.0', computeCapability: 7.5 }, support)).toEqual(['nhwc-conv']);
    expect(fusionsFor({ provider: 'cuda', onnxruntime: '1.26.0', computeCapability: 9.0 }, support)).toEqual(['nhwc-conv', 'group-norm-nhwc']);
    // SkipGroupNorm rewrites GroupNorm's result: it goes where GroupNorm does.
    expect(fusionsFor({ provider: 'cuda', onnxruntime: '1.30.0' }, support)).toEqual(['nhwc-conv', 'conv-bias-add', 'skip-layer-norm', 'bias-split-gelu', 'bias-gelu', 'bias-add', 'packed-qkv']);
    expect(fusionsFor({ provider: 'cuda', onnxruntime: '1.30.0', computeCapability: 9.0 }, support)).toEqual(ALL_FUSIONS);
    expect(fusionsFor({ provider: 'cuda', onnxruntime: '1.29.0', computeCapability: 9.0 }, support)).toEqual(['nhwc-conv', 'group-norm-nhwc', 'bias-split-gelu']);
  });
  it('leaves out what runs but was measured no faster, unless named', () => {
    expect(fusionsFor({ provider: 'cuda', onnxruntime: '1.30.0', computeCapability: 9.0 })).toEqual(['nhwc-conv', 'conv-bias-add', 'group-norm-nhwc', 'skip-layer-norm', 'bias-split-gelu']);
    const named = (FUSED_OPERATOR_SUPPORT as Record<string, { chosen?: false }>)['MultiHeadAttention (packed QKV)'];
    expect(named?.chosen).toBe(false);
  });
  it('orders releases by number, not by text', () => {
    expect(compareVersions('1.19.2', '1.26.0')).toBeLessThan(0);
    expect(compareVersions('1.9.0', '1.19.0')).toBeLessThan(0);
    expect(compareVersions('1.30.0', '1.30.0-dev.1')).toBe(0);
  });
});

describe('the fused graphs as written', () => {
  it('every node reads a value something defines, and no initializer is left unread', () => {
    const out = tempDir('svd-graph-forms-');
    const model = openModelDir(FIXTURE_MODEL);
    for (const network of ['unet', 'vae_decoder'] as const) {
      const path = join(out, `${network}.onnx`);
      buildNetworkFile(model, network, path, { dtype: 'float16', attention: 'mha', forms: cuda });
      const graph = onnxProto.onnx.ModelProto.decode(readFileSync(path)).graph!;
      // In the order they run: every value is defined before a node reads it.
      const defined = new Set([...graph.input!.map((i) => i.name!), ...graph.initializer!.map((i) => i.name!)]);
      const read = new Set<string>();
      for (const node of graph.node!) {
        for (const input of node.input!) {
          if (input) expect(defined.has(input), `${node.name} reads ${input}`).toBe(true);
          read.add(input);
        }
        for (const o of node.output!) defined.add(o);
      }
      expect(graph.initializer!.filter((i) => !read.has(i.name!)).map((i) => i.name)).toEqual([]);
      const fused = graph.node!.filter((n) => n.domain === 'com.microsoft' && ['GroupNorm', 'NhwcConv'].includes(n.opType!));
      expect(fused.length).toBeGreaterThan(0);
    }
  });

  it('joins two initializers along an axis row by row', () => {
    const tensor = (name: string, dims: number[], values: number[]) => ({ name, dims, dtype: 'float32' as const, external: true, bytes: () => new Uint8Array(Float32Array.from(values).buffer) });
    const a = tensor('a', [2, 2], [1, 2, 3, 4]);
    const b = tensor('b', [2, 1], [5, 6]);
    const joined = concatInitializers('ab', [a, b], 1);
    expect(joined.dims).toEqual([2, 3]);
    expect(Array.from(new Float32Array(joined.bytes().buffer))).toEqual([1, 2, 5, 3, 4, 6]);
    expect(Array.from(new Float32Array(concatInitializers('aa', [a, a], 0).bytes().buffer))).toEqual([1, 2, 3, 4, 1, 2, 3, 4]);
    expect(() => concatInitializers('x', [a, tensor('c', [3, 1], [0, 0, 0])], 1)).toThrow(/cannot join/);
  });
});

/** The graph as written to a file, with a reader for its float32 (external) and int64 (inline) initializers and each value's producer. */
function written(b: GraphBuilder) {
  const path = join(tempDir('svd-fusion-'), 'g.onnx');
  b.save(path);
  const graph = onnxProto.onnx.ModelProto.decode(readFileSync(path)).graph!;
  const data = readFileSync(`${path}_data`);
  const values = (name: string) => {
    const init = graph.initializer!.find((i) => i.name === name)!;
    const at = (key: string) => Number(init.externalData!.find((e) => e.key === key)!.value);
    return { dims: init.dims!.map(Number), data: new Float32Array(data.buffer.slice(data.byteOffset + at('offset'), data.byteOffset + at('offset') + at('length'))) };
  };
  const ints = (name: string) => {
    const raw = graph.initializer!.find((i) => i.name === name)!.rawData!;
    return Array.from(new BigInt64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), Number);
  };
  const producer = (value: string) => graph.node!.find((n) => n.output!.includes(value))!;
  return { graph, values, ints, producer, ops: graph.node!.map((n) => n.opType!) };
}

describe('the bias-split-gelu pass', () => {
  it("joins the GEGLU projection halves back into the checkpoint's proj, transposed, and its bias", () => {
    const weights = new RandomWeights(7);
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights });
    const x = b.input('x', 'float32', [1, 4, 320]);
    b.output(feedForwardGeglu(b, x, 'ff'), 'y', [1, 4, 320]);
    expect(b.applyPasses(fusionPasses(['bias-split-gelu']))).toEqual({ 'bias-split-gelu': 1 });
    const { graph, values } = written(b);
    const gelu = graph.node!.find((n) => n.opType === 'BiasSplitGelu')!;
    const matmul = graph.node!.find((n) => n.output![0] === gelu.input![0])!;
    expect(matmul.input![0]).toBe('x');
    const [w, bias] = [values(matmul.input![1]!), values(gelu.input![1]!)];
    const proj = weights.load('ff.net.0.proj.weight', [2560, 320]);
    expect(w.dims).toEqual([320, 2560]);
    expect(Array.from(w.data)).toEqual(Array.from({ length: 320 * 2560 }, (_, k) => proj[(k % 2560) * 320 + Math.floor(k / 2560)]!));
    expect(Array.from(bias.data)).toEqual(Array.from(weights.load('ff.net.0.proj.bias', [2560])));
    expect(graph.node!.map((n) => n.opType)).not.toContain('Gelu');
  });
});

describe('the bias-gelu pass', () => {
  it('takes every GELU of the fixture networks the CPU tests hold to the reference with it (networks.test.ts)', () => {
    const model = openModelDir(FIXTURE_MODEL);
    const forms: GraphForms = { ...PORTABLE_FORMS, fusions: ['bias-gelu'] };
    for (const network of ['image_encoder', 'unet'] as const) {
      const plain = defineNetwork(model, network, new RandomWeights(), { dtype: 'float32', attention: 'mha' }).operatorCounts();
      const fused = defineNetwork(model, network, new RandomWeights(), { dtype: 'float32', attention: 'mha', forms }).operatorCounts();
      expect(fused['com.microsoft:BiasGelu'], network).toBe((plain.Erf ?? 0) + (plain['com.microsoft:Gelu'] ?? 0));
      expect(fused['com.microsoft:BiasGelu'], network).toBeGreaterThan(0);
      expect((fused.Erf ?? 0) + (fused['com.microsoft:Gelu'] ?? 0), network).toBe(0);
    }
  });
});

describe('the skip-layer-norm pass', () => {
  it('takes every LayerNormalization of the UNet (the fixture networks.test.ts holds to the reference with it, and full size): residual sums, the frame embedding, the projection bias', () => {
    const model = openModelDir(FIXTURE_MODEL);
    const forms: GraphForms = { ...graphFormsFor('cuda'), fusions: ['skip-layer-norm'] };
    const plain = defineNetwork(model, 'unet', new RandomWeights(), { dtype: 'float32', attention: 'mha' }).operatorCounts();
    const fused = defineNetwork(model, 'unet', new RandomWeights(), { dtype: 'float32', attention: 'mha', forms }).operatorCounts();
    expect(plain.LayerNormalization).toBeGreaterThan(0);
    expect(fused['com.microsoft:SkipLayerNormalization']).toBe(plain.LayerNormalization);
    expect(fused.LayerNormalization ?? 0).toBe(0);
    // Each takes one Add with it.
    expect(fused.Add).toBe(plain.Add! - plain.LayerNormalization!);
    const b = new GraphBuilder({ dtype: 'float16', attention: 'mha', weights: new RandomWeights() });
    buildUNet(b, SVD_XT_UNET, { forms: cudaDefault });
    b.applyPasses(formPasses(cudaDefault));
    const counts = b.operatorCounts();
    expect(counts['com.microsoft:SkipLayerNormalization']).toBe(80);
    expect(counts.LayerNormalization ?? 0).toBe(0);
  });

  it('views a skip broadcast over the leading axes as [1, K, C] beside the input as [-1, K, C], and gives the sum where it is read', () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new RandomWeights(3) });
    const x = b.input('x', 'float32', ['b', 's', 'f', 32]);
    const emb = b.input('emb', 'float32', ['f', 32]);
    const sum = b.add(x, emb);
    const normed = b.layerNorm(sum, { scale: b.weight('n.weight', [32]), bias: b.weight('n.bias', [32]), epsilon: 1e-5 });
    b.output(b.add(sum, normed), 'y', ['b', 's', 'f', 32]);
    expect(b.applyPasses(fusionPasses(['skip-layer-norm']))).toEqual({ 'skip-layer-norm': 1 });
    const { graph, producer } = written(b);
    const fused = graph.node!.find((n) => n.opType === 'SkipLayerNormalization')!;
    expect(fused.domain).toBe('com.microsoft');
    expect(fused.output).toHaveLength(4);
    const [input, skip] = [producer(fused.input![0]!), producer(fused.input![1]!)];
    expect([input.opType, input.input![0], skip.opType, skip.input![0]]).toEqual(['Reshape', 'x', 'Reshape', 'emb']);
    // Both views end in the skip's last two sizes: [-1] and [1] before them.
    const lead = (view: typeof input) => producer(view.input![1]!).input![0]!;
    const { ints } = written(b);
    expect([ints(lead(input)), ints(lead(skip))]).toEqual([[-1], [1]]);
    expect(graph.node!.filter((n) => n.opType === 'Add')).toHaveLength(1);
  });

  it('leaves a norm alone where the sum broadcasts over an inner axis', () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new RandomWeights(3) });
    const x = b.input('x', 'float32', ['n', 's', 32]);
    const perRow = b.input('v', 'float32', ['n', 1, 32]);
    b.output(b.layerNorm(b.add(x, perRow), { scale: b.weight('n.weight', [32]), bias: b.weight('n.bias', [32]), epsilon: 1e-5 }), 'y', ['n', 's', 32]);
    expect(b.applyPasses(fusionPasses(['skip-layer-norm']))).toEqual({ 'skip-layer-norm': 0 });
  });
});

describe('the packed-qkv pass', () => {
  it('projects q, k and v with one MatMul whose result, viewed as [B, S, heads, 3, head size], holds each projection per head', () => {
    const weights = new RandomWeights(5);
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights });
    const [tokens, dim, heads] = [6, 64, 4];
    const headSize = dim / heads;
    const x = b.input('x', 'float32', [1, tokens, dim]);
    b.output(selfAttention(b, x, 'attn', heads, { qkvBias: false }), 'y', [1, tokens, dim]);
    expect(b.applyPasses(fusionPasses(['packed-qkv']))).toEqual({ 'packed-qkv': 1 });
    const { graph, values, ints, producer } = written(b);
    const mha = graph.node!.find((n) => n.opType === 'MultiHeadAttention')!;
    expect(mha.input).toHaveLength(1);
    expect(Number(mha.attribute!.find((a) => a.name === 'num_heads')!.i)).toBe(heads);
    const view = producer(mha.input![0]!);
    expect(view.opType).toBe('Reshape');
    expect(ints(view.input![1]!)).toEqual([0, 0, heads, 3, headSize]);
    const matmul = producer(view.input![0]!);
    expect(matmul.opType).toBe('MatMul');
    expect(matmul.input![0]).toBe('x');
    const w = values(matmul.input![1]!);
    expect(w.dims).toEqual([dim, 3 * dim]);
    // On random tokens, the joined product viewed per head and part equals each separate projection.
    const xs = Float32Array.from({ length: tokens * dim }, (_, i) => Math.sin(i * 1.3));
    const project = (weight: (i: number, o: number) => number, width: number) =>
      Array.from({ length: tokens * width }, (_, k) => {
        const [t, o] = [Math.floor(k / width), k % width];
        let sum = 0;
        for (let i = 0; i < dim; i++) sum += xs[t * dim + i]! * weight(i, o);
        return sum;
      });
    const packed = project((i, o) => w.data[i * 3 * dim + o]!, 3 * dim);
    ['to_q', 'to_k', 'to_v'].forEach((name, part) => {
      const torch = weights.load(`attn.${name}.weight`, [dim, dim]); // [out, in]
      const separate = project((i, o) => torch[o * dim + i]!, dim);
      const fromPacked = separate.map((_, k) => {
        const [t, o] = [Math.floor(k / dim), k % dim];
        const [head, h] = [Math.floor(o / headSize), o % headSize];
        return packed[t * 3 * dim + (head * 3 + part) * headSize + h]!;
      });
      expect(Math.max(...fromPacked.map((v, k) => Math.abs(v - separate[k]!)))).toBeLessThan(1e-5);
    });
  });

  it('leaves attention with biased projections (CLIP) and cross-attention alone', () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new RandomWeights(5) });
    const x = b.input('x', 'float32', [1, 6, 64]);
    b.output(selfAttention(b, x, 'attn', 4, { qkvBias: true }), 'y', [1, 6, 64]);
    expect(b.applyPasses(fusionPasses(['packed-qkv']))).toEqual({ 'packed-qkv': 0 });
  });
});

describe('the bias-add pass', () => {
  it("adds a residual and a projection's bias in one BiasAdd on the projection", () => {
    const weights = new RandomWeights(9);
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights });
    const x = b.input('x', 'float32', [1, 5, 320]);
    b.output(b.add(x, linear(b, x, 'proj', 320)), 'y', [1, 5, 320]);
    expect(b.applyPasses(fusionPasses(['bias-add']))).toEqual({ 'bias-add': 1 });
    const { graph, values, producer, ops } = written(b);
    expect(ops).not.toContain('Add');
    const fused = graph.node!.find((n) => n.opType === 'BiasAdd')!;
    expect(fused.domain).toBe('com.microsoft');
    const [input, bias, skip] = fused.input!;
    expect(skip).toBe('x');
    expect(Array.from(values(bias!).data)).toEqual(Array.from(weights.load('proj.bias', [320])));
    const view = producer(input!);
    expect([view.opType, producer(view.input![0]!).opType]).toEqual(['Reshape', 'MatMul']);
  });

  it('keeps the standard operators where the kernel does not take the width or the shapes differ', () => {
    for (const [dims, outF] of [
      [[1, 5, 64], 64],
      [[1, 1, 320], 320],
    ] as const) {
      const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new RandomWeights(9) });
      const x = b.input('x', 'float32', [1, 5, dims[2]]);
      const other = b.input('other', 'float32', [...dims]);
      b.output(b.add(x, linear(b, other, 'proj', outF)), 'y', [1, 5, outF]);
      expect(b.applyPasses(fusionPasses(['bias-add']))).toEqual({ 'bias-add': 0 });
    }
  });
});

describe('the conv-bias-add pass', () => {
  const resnets = (channels: number, temb: boolean) => {
    const weights = new RandomWeights(4);
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights });
    const x = b.input('x', 'float32', [2, channels, 6, 8]);
    const t = temb ? b.silu(b.input('temb', 'float32', [2, 32])) : undefined;
    // Two blocks: the layout pass leaves the last convolution before an NCHW output as it is.
    b.output(resnetBlock2d(b, resnetBlock2d(b, x, 'r', channels, 1e-5, t), 's', channels, 1e-5, t), 'y', [2, channels, 6, 8]);
    return { b, weights };
  };
  const passes = formPasses({ ...PORTABLE_FORMS, imageLayout: 'nhwc', fusions: ['nhwc-conv', 'conv-bias-add'] });

  it("adds a resnet's residual and conv2's bias in one BiasAdd on [N, H·W, C] views, the convolution left without its bias", () => {
    const { b, weights } = resnets(320, true);
    expect(b.applyPasses(passes)['conv-bias-add']).toBe(2);
    const { graph, values, ints, producer } = written(b);
    const fused = graph.node!.filter((n) => n.opType === 'BiasAdd');
    expect(fused.map((n) => n.domain)).toEqual(['com.microsoft', 'com.microsoft']);
    fused.forEach((node, i) => {
      const [input, bias, skip] = node.input!;
      expect(Array.from(values(bias!).data)).toEqual(Array.from(weights.load(`${['r', 's'][i]}.conv2.bias`, [320])));
      const rows = producer(input!);
      expect(rows.opType).toBe('Reshape');
      expect(ints(rows.input![1]!)).toEqual([0, -1, 320]);
      const conv = producer(rows.input![0]!);
      expect([conv.opType, conv.input!.length]).toEqual(['NhwcConv', 2]);
      // The skip is the block's input in channels-last order, viewed as rows.
      expect(producer(skip!).opType).toBe('Reshape');
    });
    // Block s adds block r's sum, back in the residual's shape.
    const back = graph.node!.find((n) => n.opType === 'Reshape' && n.input![0] === fused[0]!.output![0])!;
    expect(producer(back.input![1]!).opType).toBe('Shape');
    // conv1 lost its bias to the time embedding's projection: no channels-last convolution adds a bias.
    expect(graph.node!.filter((n) => n.opType === 'NhwcConv').map((n) => n.input!.length)).toEqual([2, 2, 2, 2]);
  });

  it('keeps the standard operators where the width is not one the kernel takes', () => {
    const { b } = resnets(64, true);
    expect(b.applyPasses(passes)['conv-bias-add']).toBe(0);
  });

  it('leaves a convolution whose result something else also reads', () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new RandomWeights(4) });
    const x = b.input('x', 'float32', [1, 320, 4, 4]);
    const conv = conv2d(b, x, 'c', 320, 3);
    b.output(b.add(x, conv), 'y', [1, 320, 4, 4]);
    b.output(conv, 'z', [1, 320, 4, 4]);
    expect(b.applyPasses(passes)['conv-bias-add']).toBe(0);
  });
});

describe('the skip-group-norm pass', () => {
  it("folds the time embedding's Add, and a block's residual before the next norm, into SkipGroupNorm", () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new RandomWeights(2) });
    const x = b.input('x', 'float32', ['n', 64, 'h', 'w']);
    const temb = b.silu(b.input('temb', 'float32', ['n', 32]));
    const h = resnetBlock2d(b, resnetBlock2d(b, x, 'a', 64, 1e-5, temb), 'b', 64, 1e-5, temb);
    b.output(h, 'y', ['n', 64, 'h', 'w']);
    const applied = b.applyPasses(formPasses({ ...PORTABLE_FORMS, imageLayout: 'nhwc', fusions: ['nhwc-conv', 'group-norm-nhwc', 'skip-group-norm'] }));
    expect(applied['skip-group-norm']).toBe(3);
    const { graph, producer } = written(b);
    const fused = graph.node!.filter((n) => n.opType === 'SkipGroupNorm');
    const shape = (n: (typeof fused)[number]) => [producer(n.input![0]!).opType, producer(n.input![3]!).opType, n.output!.length];
    // Two time embeddings ([N, 1, 1, C] skips after the first conv), one residual whose sum block b's shortcut still reads.
    expect(fused.map(shape)).toEqual([
      ['NhwcConv', 'Unsqueeze', 1],
      ['Transpose', 'NhwcConv', 2],
      ['NhwcConv', 'Unsqueeze', 1],
    ]);
    // Of the four norms only block a's first stays a GroupNorm: it reads the input, no sum.
    expect(graph.node!.filter((n) => n.opType === 'GroupNorm')).toHaveLength(1);
  });
});

describe('SVD_GRAPH_FORMS', () => {
  it('names the fusions to use: none, all, or names joined by +', () => {
    expect(parseGraphForms('fusions=none', cuda).fusions).toEqual([]);
    expect(parseGraphForms('fusions=all', PORTABLE_FORMS).fusions).toEqual(ALL_FUSIONS);
    expect(parseGraphForms('fusions=nhwc-conv+bias-split-gelu, imageLayout=nhwc', PORTABLE_FORMS)).toMatchObject({ fusions: ['nhwc-conv', 'bias-split-gelu'], imageLayout: 'nhwc' });
    expect(() => parseGraphForms('fusions=nhwc-conv+flash', cuda)).toThrow(
      /"fusions=nhwc-conv\+flash" is not .*fusions=none\|all\|<nhwc-conv\|conv-bias-add\|group-norm-nhwc\|skip-group-norm\|skip-layer-norm\|bias-split-gelu\|bias-gelu\|bias-add\|packed-qkv>/,
    );
  });
});
