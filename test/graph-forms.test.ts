// The CUDA forms as graph passes: the full-size SVD-XT graphs of every network and form must keep
// the operator counts recorded before the fused operators moved out of the network definitions
// (test/fixtures/graph-operator-counts.json), and pass selection follows the support table.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { buildNetworkFile } from '../models/build.js';
import { openModelDir } from '../models/model-dir.js';
import { formPasses, PORTABLE_FORMS, type GraphForms } from '../models/networks/forms.js';
import { ALL_FUSIONS, compareVersions, fusionPasses, fusionsFor, FUSED_OPERATOR_SUPPORT } from '../models/networks/fusions.js';
import { buildImageEncoder } from '../models/networks/image-encoder.js';
import { feedForwardGeglu } from '../models/networks/layers.js';
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

const cuda = graphFormsFor('cuda', { provider: 'cuda', onnxruntime: FUSED_OPERATOR_SUPPORT.GroupNorm.minOnnxruntime });
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
  it('uses every fusion in the CUDA form on the release the support table names', () => {
    expect(cuda.fusions).toEqual(ALL_FUSIONS);
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
    const support = {
      ...FUSED_OPERATOR_SUPPORT,
      BiasSplitGelu: { providers: ['cuda'] as const, minOnnxruntime: '1.27.0' },
      GroupNorm: { providers: ['cuda'] as const, minOnnxruntime: '1.19.0', minComputeCapability: 8.0 },
      NhwcConv: { providers: ['cuda'] as const, minOnnxruntime: '1.19.0' },
    };
    expect(fusionsFor({ provider: 'cuda', onnxruntime: '1.26.0', computeCapability: 7.5 }, support)).toEqual(['nhwc-conv']);
    expect(fusionsFor({ provider: 'cuda', onnxruntime: '1.26.0', computeCapability: 9.0 }, support)).toEqual(['nhwc-conv', 'group-norm-nhwc']);
    expect(fusionsFor({ provider: 'cuda', onnxruntime: '1.30.0' }, support)).toEqual(['nhwc-conv', 'bias-split-gelu']);
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
      const defined = new Set([...graph.input!.map((i) => i.name!), ...graph.initializer!.map((i) => i.name!), ...graph.node!.flatMap((n) => n.output!)]);
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
    const joined = concatInitializers('ab', a, b, 1);
    expect(joined.dims).toEqual([2, 3]);
    expect(Array.from(new Float32Array(joined.bytes().buffer))).toEqual([1, 2, 5, 3, 4, 6]);
    expect(Array.from(new Float32Array(concatInitializers('aa', a, a, 0).bytes().buffer))).toEqual([1, 2, 3, 4, 1, 2, 3, 4]);
    expect(() => concatInitializers('x', a, tensor('c', [3, 1], [0, 0, 0]), 1)).toThrow(/cannot join/);
  });
});

describe('the bias-split-gelu pass', () => {
  it("joins the GEGLU projection halves back into the checkpoint's proj, transposed, and its bias", () => {
    const weights = new RandomWeights(7);
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights });
    const x = b.input('x', 'float32', [1, 4, 320]);
    b.output(feedForwardGeglu(b, x, 'ff'), 'y', [1, 4, 320]);
    expect(b.applyPasses(fusionPasses(['bias-split-gelu']))).toEqual({ 'bias-split-gelu': 1 });
    const path = join(tempDir('svd-geglu-'), 'geglu.onnx');
    b.save(path);
    const graph = onnxProto.onnx.ModelProto.decode(readFileSync(path)).graph!;
    const data = readFileSync(`${path}_data`);
    const values = (name: string) => {
      const init = graph.initializer!.find((i) => i.name === name)!;
      const at = (key: string) => Number(init.externalData!.find((e) => e.key === key)!.value);
      return { dims: init.dims!.map(Number), data: new Float32Array(data.buffer.slice(data.byteOffset + at('offset'), data.byteOffset + at('offset') + at('length'))) };
    };
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

describe('SVD_GRAPH_FORMS', () => {
  it('names the fusions to use: none, all, or names joined by +', () => {
    expect(parseGraphForms('fusions=none', cuda).fusions).toEqual([]);
    expect(parseGraphForms('fusions=all', PORTABLE_FORMS).fusions).toEqual(ALL_FUSIONS);
    expect(parseGraphForms('fusions=nhwc-conv+bias-split-gelu, imageLayout=nhwc', PORTABLE_FORMS)).toMatchObject({ fusions: ['nhwc-conv', 'bias-split-gelu'], imageLayout: 'nhwc' });
    expect(() => parseGraphForms('fusions=nhwc-conv+flash', cuda)).toThrow(/"fusions=nhwc-conv\+flash" is not .*fusions=none\|all\|<nhwc-conv\|group-norm-nhwc\|bias-split-gelu>/);
  });
});
