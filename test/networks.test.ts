// The four networks, built from the fixture's config and fp16 weights, in float32 on the CPU
// provider, against the reference tensors.
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { buildNetworkFile, defineNetwork, type NetworkName } from '../models/build.js';
import { openModelDir, type SvdModelDir } from '../models/model-dir.js';
import { GraphBuilder, type AttentionImpl, type Value } from '../models/onnx/graph-builder.js';
import { PORTABLE_FORMS, type GraphForms } from '../models/networks/forms.js';
import { graphFormsFor } from '../models/runtime/runtime.js';
import { inFrameHalves } from '../models/networks/layers.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { FIXTURE_MODEL, fixtureCopy, goldenFile, goldenTensor, relL2, tempDir } from './helpers.js';
import { readFileSync, writeFileSync } from 'node:fs';

const out = tempDir('svd-networks-');
const sessions: ort.InferenceSession[] = [];
afterAll(async () => {
  for (const s of sessions) await s.release();
});

async function session(model: string | SvdModelDir, network: NetworkName, attention: AttentionImpl, forms: GraphForms = PORTABLE_FORMS) {
  const path = join(out, `${network}-${attention}-${sessions.length}.onnx`);
  buildNetworkFile(model, network, path, { dtype: 'float32', attention, forms });
  const s = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
  sessions.push(s);
  return s;
}

// The CUDA provider's forms (fused temporal attention, whole-chunk decoder, channels last) run
// here on the CPU, which implements the same operators (channels last through the standard ones
// between transposes instead of the CUDA-only NhwcConv and GroupNorm), so they are held to the
// same reference.
describe.each<{ attention: AttentionImpl; forms: GraphForms; label: string }>([
  { attention: 'mha', forms: PORTABLE_FORMS, label: 'mha attention, portable forms' },
  { attention: 'matmul', forms: PORTABLE_FORMS, label: 'matmul attention, portable forms' },
  { attention: 'mha', forms: { ...graphFormsFor('cuda'), fusions: [] }, label: "mha attention, the CUDA provider's forms" },
  // The fusions whose operator the CPU provider also implements.
  { attention: 'mha', forms: { ...PORTABLE_FORMS, fusions: ['bias-gelu'] }, label: 'mha attention, BiasGelu' },
  { attention: 'mha', forms: { ...graphFormsFor('cuda'), fusions: ['skip-layer-norm'] }, label: "mha attention, the CUDA provider's forms with SkipLayerNormalization" },
])('fixture networks, fp32 CPU, $label', ({ attention, forms }) => {
  const check = (actual: ort.Tensor, golden: string) => {
    const ref = goldenFile();
    expect(actual.dims).toEqual(ref.info(golden).shape);
    const err = relL2(actual.data as Float32Array, ref.readFloat32(golden));
    // Observed about 1e-7 to 2e-6; anything above 1e-5 is a bug, not rounding.
    expect(err).toBeLessThan(1e-5);
  };

  it('image encoder → image_embeds', async () => {
    const s = await session(FIXTURE_MODEL, 'image_encoder', attention, forms);
    const { image_embeds } = await s.run({ pixel_values: goldenTensor('clip_pixel_values') });
    check(new ort.Tensor('float32', image_embeds!.data as Float32Array, [1, 1, image_embeds!.dims[1]!]), 'image_embeddings');
  });

  it('VAE encoder → latent mode', async () => {
    const s = await session(FIXTURE_MODEL, 'vae_encoder', attention, forms);
    const { latent } = await s.run({ image: goldenTensor('vae_encoder_input') });
    check(latent!, 'image_latents');
  });

  it('UNet at step 0 (guidance batch 2, 5 frames)', async () => {
    const s = await session(FIXTURE_MODEL, 'unet', attention, forms);
    const { model_output } = await s.run({
      sample: goldenTensor('unet_step0_sample'),
      timestep: goldenTensor('unet_step0_timestep'),
      encoder_hidden_states: goldenTensor('unet_step0_encoder_hidden_states'),
      added_time_ids: goldenTensor('unet_step0_added_time_ids'),
    });
    check(model_output!, 'unet_step0_out');
  });

  it('temporal decoder on each chunk (2, 2, 1 frames)', async () => {
    const s = await session(FIXTURE_MODEL, 'vae_decoder', attention, forms);
    for (const k of [0, 1, 2]) {
      const { frames } = await s.run({ latents: goldenTensor(`vae_decode_${k}_in`) });
      check(frames!, `vae_decode_${k}_out`);
    }
  });
});

describe('other configurations build unchanged', () => {
  // Random weights, a config unlike the fixture's: both attention forms and both image layouts
  // must agree, shapes follow the input.
  const variants = [
    { attention: 'mha', forms: PORTABLE_FORMS },
    { attention: 'matmul', forms: PORTABLE_FORMS },
    { attention: 'mha', forms: { ...PORTABLE_FORMS, imageLayout: 'nhwc' } },
  ] as const;
  async function runBoth(model: SvdModelDir, network: NetworkName, feeds: Record<string, ort.Tensor>) {
    const results: ort.Tensor[] = [];
    for (const { attention, forms } of variants) {
      const path = join(out, `${network}-random-${attention}-${sessions.length}.onnx`);
      defineNetwork(model, network, new RandomWeights(7), { dtype: 'float32', attention, forms }).save(path);
      const s = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
      sessions.push(s);
      const r = await s.run(feeds);
      results.push(Object.values(r)[0]!);
    }
    const [a, ...others] = results as [ort.Tensor, ...ort.Tensor[]];
    expect((a.data as Float32Array).every(Number.isFinite)).toBe(true);
    for (const o of others) expect(relL2(a.data as Float32Array, o.data as Float32Array)).toBeLessThan(1e-5);
    return a;
  }
  const randn = (dims: number[], seed = 1) => {
    let s = seed;
    const n = dims.reduce((x, y) => x * y, 1);
    const data = Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1);
    return new ort.Tensor('float32', data, dims);
  };
  const edited = (edit: (m: Record<string, Record<string, unknown>>) => void) => {
    const dir = fixtureCopy();
    const configs: Record<string, Record<string, unknown>> = {};
    for (const c of ['unet', 'vae', 'image_encoder']) configs[c] = JSON.parse(readFileSync(join(dir, c, 'config.json'), 'utf8'));
    edit(configs);
    for (const c of Object.keys(configs)) writeFileSync(join(dir, c, 'config.json'), JSON.stringify(configs[c]));
    return openModelDir(dir);
  };

  it('UNet: 4 levels, other widths and heads, 2 transformer layers, 3 frames, portrait', async () => {
    const model = edited(({ unet }) => {
      Object.assign(unet!, {
        block_out_channels: [32, 64, 64, 96],
        down_block_types: ['CrossAttnDownBlockSpatioTemporal', 'CrossAttnDownBlockSpatioTemporal', 'CrossAttnDownBlockSpatioTemporal', 'DownBlockSpatioTemporal'],
        up_block_types: ['UpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal', 'CrossAttnUpBlockSpatioTemporal'],
        num_attention_heads: [1, 2, 4, 3],
        layers_per_block: 1,
        transformer_layers_per_block: 2,
        cross_attention_dim: 24,
        addition_time_embed_dim: 16,
        projection_class_embeddings_input_dim: 48,
        in_channels: 8,
        num_frames: 3,
      });
    });
    const y = await runBoth(model, 'unet', {
      sample: randn([1, 3, 8, 16, 8]),
      timestep: new ort.Tensor('float32', Float32Array.from([0.5]), [1]),
      encoder_hidden_states: randn([1, 1, 24], 2),
      added_time_ids: new ort.Tensor('float32', Float32Array.from([6, 127, 0.02]), [1, 3]),
    });
    expect(y.dims).toEqual([1, 3, 4, 16, 8]);
  });

  it('VAE: 3 levels, one layer per block, portrait, 3 frames', async () => {
    const model = edited(({ vae }) => {
      Object.assign(vae!, { block_out_channels: [32, 64, 64], down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'], layers_per_block: 1 });
    });
    const lat = await runBoth(model, 'vae_encoder', { image: randn([1, 3, 32, 16]) });
    expect(lat.dims).toEqual([1, 4, 8, 4]);
    const frames = await runBoth(model, 'vae_decoder', { latents: randn([3, 4, 8, 4]) });
    expect(frames.dims).toEqual([3, 3, 32, 16]);
  });

  it('image encoder: other width, heads, patch, image size and quick_gelu', async () => {
    const model = edited(({ image_encoder }) => {
      Object.assign(image_encoder!, { hidden_size: 48, num_attention_heads: 3, num_hidden_layers: 3, patch_size: 8, image_size: 32, projection_dim: 20, hidden_act: 'quick_gelu' });
    });
    const y = await runBoth(model, 'image_encoder', { pixel_values: randn([2, 3, 32, 32]) });
    expect(y.dims).toEqual([2, 20]);
  });
});

describe('weights that do not fit the config', () => {
  it('names the file, the tensor and both shapes', () => {
    const dir = fixtureCopy();
    const path = join(dir, 'unet/config.json');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), cross_attention_dim: 48 }));
    expect(() => buildNetworkFile(dir, 'unet', join(tempDir(), 'u.onnx'), { dtype: 'float32', attention: 'mha' })).toThrow(
      /unet\/diffusion_pytorch_model\.fp16\.safetensors: tensor "down_blocks\.0\.attentions\.0\.transformer_blocks\.0\.attn2\.to_k\.weight" has shape \[32, 32\] but config\.json implies \[32, 48\]/,
    );
  });

  it('reports a tensor the config needs but the file lacks', () => {
    const dir = fixtureCopy();
    const path = join(dir, 'vae/config.json');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), layers_per_block: 3 }));
    expect(() => buildNetworkFile(dir, 'vae_encoder', join(tempDir(), 'v.onnx'), { dtype: 'float32', attention: 'mha' })).toThrow(
      /vae\/diffusion_pytorch_model\.fp16\.safetensors: missing tensor "encoder\.down_blocks\.0\.resnets\.2\.norm1\.weight"/,
    );
  });
});

describe('inFrameHalves', () => {
  it('gives the same frames, in order, for every chunk length (odd ones share the middle frame)', async () => {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new RandomWeights() });
    const x = b.input('x', 'float32', ['n', 2, 3]);
    // A per-frame function that depends on the whole frame: x − mean(x) + 10·x[0, 0].
    const perFrame = (v: Value) => b.add(b.sub(v, b.node('ReduceMean', [v], { axes: { ints: [1, 2] }, keepdims: { i: 1 } })[0]!), b.mul(b.slice(b.slice(v, [0], [1], [1]), [0], [1], [2]), 10));
    b.output(inFrameHalves(b, x, perFrame), 'halves', ['n', 2, 3]);
    b.output(perFrame(x), 'whole', ['n', 2, 3]);
    const dir = tempDir();
    b.save(join(dir, 'halves.onnx'));
    const s = await ort.InferenceSession.create(join(dir, 'halves.onnx'));
    for (let n = 1; n <= 6; n++) {
      const data = Float32Array.from({ length: n * 6 }, (_, i) => Math.sin(i * 1.7) * (1 + i));
      const out = await s.run({ x: new ort.Tensor('float32', data, [n, 2, 3]) });
      expect(out.halves!.dims).toEqual([n, 2, 3]);
      expect(Array.from(out.halves!.data as Float32Array)).toEqual(Array.from(out.whole!.data as Float32Array));
    }
    await s.release();
  });
});
