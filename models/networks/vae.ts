// AutoencoderKLTemporalDecoder (diffusers): the image encoder half (→ mode of the latent
// distribution) and the temporal decoder (frames from latents, frame count from the input shape).
import type { VaeConfig } from '../configs.js';
import { staticDim, type GraphBuilder, type Value } from '../onnx/graph-builder.js';
import { PORTABLE_FORMS, type GraphForms } from './forms.js';
import {
  conv2d,
  groupNorm,
  linear,
  resnetBlock2d,
  runFrameSteps,
  spatioTemporalResBlock,
  spatioTemporalSteps,
  temporalConv,
  type FrameDims,
  type FrameStep,
  type SpatioTemporalOptions,
} from './layers.js';

/** `Attention` with GroupNorm and residual on [N, C, H, W], one head of the full width (VAE mid block). */
function spatialSelfAttention(b: GraphBuilder, x: Value, name: string, groups: number): Value {
  return b.scope(name, () => {
    const channels = staticDim(x, 1, name);
    const tokens = b.transpose(b.reshape(groupNorm(b, x, `${name}.group_norm`, 1e-6, groups), [0, channels, -1]), [0, 2, 1]);
    const q = linear(b, tokens, `${name}.to_q`, channels);
    const k = linear(b, tokens, `${name}.to_k`, channels);
    const v = linear(b, tokens, `${name}.to_v`, channels);
    const out = linear(b, b.attention(q, k, v, { heads: 1 }), `${name}.to_out.0`, channels);
    return b.add(b.reshape(b.transpose(out, [0, 2, 1]), b.shape(x)), x);
  });
}

/** `Upsample2D` with a conv: nearest 2×, then a 3×3 conv of the same width. */
function upsample2d(b: GraphBuilder, x: Value, name: string): Value {
  return conv2d(b, b.upsampleNearest2x(x), `${name}.conv`, staticDim(x, 1, name), 3);
}

export function buildVaeEncoder(b: GraphBuilder, cfg: VaeConfig): void {
  const ch = cfg.block_out_channels;
  const groups = cfg.norm_num_groups;
  const image = b.input('image', 'float32', ['batch', cfg.in_channels, 'height', 'width']);
  let h = conv2d(b, b.cast(image, b.dtype), 'encoder.conv_in', ch[0]!, 3);
  ch.forEach((outC, i) => {
    for (let j = 0; j < cfg.layers_per_block; j++) {
      h = resnetBlock2d(b, h, `encoder.down_blocks.${i}.resnets.${j}`, outC, 1e-6);
    }
    // Downsample2D with padding 0 pads right/bottom by one before a stride-2 conv.
    if (i < ch.length - 1) h = conv2d(b, h, `encoder.down_blocks.${i}.downsamplers.0.conv`, outC, 3, { stride: 2, pads: [0, 0, 1, 1] });
  });
  const top = ch[ch.length - 1]!;
  h = resnetBlock2d(b, h, 'encoder.mid_block.resnets.0', top, 1e-6);
  h = spatialSelfAttention(b, h, 'encoder.mid_block.attentions.0', groups);
  h = resnetBlock2d(b, h, 'encoder.mid_block.resnets.1', top, 1e-6);
  h = conv2d(b, b.silu(groupNorm(b, h, 'encoder.conv_norm_out', 1e-6, groups)), 'encoder.conv_out', 2 * cfg.latent_channels, 3);
  const moments = conv2d(b, h, 'quant_conv', 2 * cfg.latent_channels, 1);
  // The mode of a diagonal Gaussian is its mean: the first latent_channels channels. Not scaled.
  const mean = b.slice(moments, [0], [cfg.latent_channels], [1]);
  b.output(b.cast(mean, 'float32'), 'latent', ['batch', cfg.latent_channels, 'latent_height', 'latent_width']);
}

export function buildVaeDecoder(b: GraphBuilder, cfg: VaeConfig, opts: { forms?: GraphForms } = {}): void {
  const forms = opts.forms ?? PORTABLE_FORMS;
  const ch = cfg.block_out_channels;
  const groups = cfg.norm_num_groups;
  const latents = b.input('latents', 'float32', ['frames', cfg.latent_channels, 'latent_height', 'latent_width']);
  // One video per call: the temporal layers mix all frames of the input.
  const frames: FrameDims = { batch: b.ints([1]), frames: b.dim(latents, 0) };
  const stOpts: SpatioTemporalOptions = { eps: 1e-6, temporalEps: 1e-5, switchMix: true, frames };

  const top = ch[ch.length - 1]!;
  let h = conv2d(b, b.cast(latents, b.dtype), 'decoder.conv_in', top, 3);
  h = spatioTemporalResBlock(b, h, 'decoder.mid_block.resnets.0', top, stOpts);
  // MidBlockTemporalDecoder zips resnets[1:] with its single attention: one attention, one more resnet.
  if (cfg.layers_per_block >= 2) {
    h = spatialSelfAttention(b, h, 'decoder.mid_block.attentions.0', groups);
    h = spatioTemporalResBlock(b, h, 'decoder.mid_block.resnets.1', top, stOpts);
  }

  // UpBlockTemporalDecoder per level: layers_per_block + 1 SpatioTemporalResBlocks, then an
  // upsampler (none after the last level), as steps that each work per frame or across frames.
  const up: FrameStep[] = [];
  let lastUpsampler: FrameStep | undefined;
  const levels = [...ch].reverse();
  levels.forEach((outC, i) => {
    for (let j = 0; j < cfg.layers_per_block + 1; j++) up.push(...spatioTemporalSteps(b, `decoder.up_blocks.${i}.resnets.${j}`, outC, stOpts));
    if (i < levels.length - 1) up.push((lastUpsampler = { perFrame: (x) => upsample2d(b, x, `decoder.up_blocks.${i}.upsamplers.0`) }));
  });
  // With decoderFrameHalves, the per-frame run from the last upsampler to the next temporal step
  // (full resolution at the previous level's width, the widest tensors) runs on two halves of the chunk.
  h = runFrameSteps(b, h, up, (run) => forms.decoderFrameHalves && lastUpsampler !== undefined && run.includes(lastUpsampler));

  h = conv2d(b, b.silu(groupNorm(b, h, 'decoder.conv_norm_out', 1e-6, groups)), 'decoder.conv_out', cfg.out_channels, 3);
  // time_conv_out: Conv3d (3,1,1) over frames, as a 2-D conv on [1, C, F, H·W].
  const [hgt, wid] = [b.dim(h, 2), b.dim(h, 3)];
  const byVideo = b.transpose(b.reshape(h, [1, frames.frames, cfg.out_channels, -1]), [0, 2, 1, 3]);
  const mixed = temporalConv(b, byVideo, 'decoder.time_conv_out', cfg.out_channels, 3);
  const out = b.reshape(b.transpose(mixed, [0, 2, 1, 3]), [-1, cfg.out_channels, hgt, wid]);
  b.output(b.cast(out, 'float32'), 'frames', ['frames', cfg.out_channels, 'height', 'width']);
}

/** Pixels per latent: 2^(levels − 1). */
export function vaeScaleFactor(cfg: VaeConfig): number {
  return 2 ** (cfg.block_out_channels.length - 1);
}
