// The channels-last pass on small graphs: the values it computes are the standard graph's (run
// on the CPU), transposes that cancel are gone, and what it cannot follow stays correct.
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { channelsLast } from '../models/onnx/channels-last.js';
import { fusionPasses } from '../models/networks/fusions.js';
import { GraphBuilder, type Value } from '../models/onnx/graph-builder.js';
import { RandomWeights } from '../models/onnx/weights.js';
import { concatChannels, conv2d, groupNorm, imageToTokens, linear, resnetBlock2d, spatioTemporalResBlock, tokensToImage } from '../models/networks/layers.js';
import { relL2, tempDir } from './helpers.js';

const out = tempDir('svd-channels-last-');
const sessions: ort.InferenceSession[] = [];
afterAll(async () => {
  for (const s of sessions) await s.release();
});

const randn = (dims: number[], seed: number) => {
  let s = seed;
  const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1);
  return new ort.Tensor('float32', data, dims);
};

/**
 * Runs the graph `define` makes, as defined and after the channels-last pass, on the CPU; returns
 * how far apart the results are, and the operators of the channels-last graph once the CUDA
 * fusions (NhwcConv, GroupNorm) have replaced its convolutions and norms.
 */
async function bothWays(define: (b: GraphBuilder) => void, feeds: Record<string, ort.Tensor>) {
  const fused = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new RandomWeights(3) });
  define(fused);
  fused.applyPasses([channelsLast, ...fusionPasses(['nhwc-conv', 'group-norm-nhwc'])]);
  const results: ort.Tensor[] = [];
  for (const pass of [false, true]) {
    const b = new GraphBuilder({ dtype: 'float32', attention: 'mha', weights: new RandomWeights(3) });
    define(b);
    if (pass) b.applyPasses([channelsLast]);
    const path = join(out, `g${sessions.length}.onnx`);
    b.save(path);
    const s = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
    sessions.push(s);
    results.push((await s.run(feeds)).y!);
  }
  const [standard, last] = results as [ort.Tensor, ort.Tensor];
  expect(last.dims).toEqual(standard.dims);
  return { err: relL2(last.data as Float32Array, standard.data as Float32Array), fused: fused.operatorCounts() };
}

describe('channels-last pass', () => {
  it('cancels transposes that undo each other, also around elementwise operators', async () => {
    const r = await bothWays(
      (b) => {
        const x = b.input('x', 'float32', ['n', 8, 'h', 'w']);
        const there = b.sigmoid(b.transpose(x, [0, 2, 3, 1]));
        const back = b.transpose(b.transpose(b.transpose(there, [0, 3, 1, 2]), [0, 2, 3, 1]), [0, 3, 1, 2]);
        b.output(b.mul(back, 2), 'y', ['n', 8, 'h', 'w']);
      },
      { x: randn([2, 8, 3, 5], 1) },
    );
    expect(r.err).toBe(0);
    expect(r.fused.Transpose ?? 0).toBe(0);
  });

  it('keeps resnet, GroupNorm, tokens, channel joins, upsampling and temporal layers channels last between the convolutions', async () => {
    const r = await bothWays(
      (b) => {
        const x = b.input('x', 'float32', ['videos', 'frames', 8, 'h', 'w']);
        const temb = b.input('temb', 'float32', ['videos', 'frames', 32]);
        const [videos, frames] = [b.dim(x, 0), b.dim(x, 1)];
        const bf = b.mulDims(videos, frames);
        const embPerFrame = b.silu(b.reshape(temb, [bf, 32]));
        let h = conv2d(b, b.reshape(x, [bf, 8, b.dim(x, 3), b.dim(x, 4)]), 'conv_in', 64, 3);
        h = spatioTemporalResBlock(b, h, 'st', 64, { eps: 1e-5, temporalEps: 1e-5, switchMix: false, frames: { batch: videos, frames }, temb: embPerFrame });
        const tokens = linear(b, imageToTokens(b, groupNorm(b, h, 'norm', 1e-6, { groups: 4 })), 'proj', 64);
        h = b.add(tokensToImage(b, tokens, h), h);
        h = resnetBlock2d(b, concatChannels(b, [h, conv2d(b, h, 'skip', 64, 1)]), 'res', 64, 1e-5, embPerFrame);
        h = conv2d(b, b.upsampleNearest2x(h), 'up', 64, 3);
        h = conv2d(b, groupNorm(b, h, 'norm_out', 1e-5, { groups: 4, silu: true }), 'conv_out', 4, 3);
        b.output(h, 'y', ['n', 4, 'h2', 'w2']);
      },
      { x: randn([1, 3, 8, 4, 6], 2), temb: randn([1, 3, 32], 3) },
    );
    expect(r.err).toBeLessThan(1e-6);
    // Every convolution and GroupNorm fused; what stays transposed: the input (to channels last),
    // and the 4-channel output convolution (too narrow for NhwcConv) with its weights.
    expect(r.fused).toMatchObject({ 'com.microsoft:NhwcConv': 10, Conv: 1, 'com.microsoft:GroupNorm': 8, Transpose: 3 });
    expect(r.fused.InstanceNormalization ?? 0).toBe(0);
  });

  it('transposes back where a Reshape mixes the channels with other axes', async () => {
    const r = await bothWays(
      (b) => {
        const x = b.input('x', 'float32', ['n', 8, 4, 4]);
        const h: Value = conv2d(b, x, 'c', 8, 3);
        b.output(b.reshape(b.sigmoid(h), [0, 8 * 4, 4]), 'y', ['n', 32, 4]);
      },
      { x: randn([2, 8, 4, 4], 4) },
    );
    expect(r.err).toBeLessThan(1e-6);
  });
});
