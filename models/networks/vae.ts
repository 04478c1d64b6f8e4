// AutoencoderKLTemporalDecoder (diffusers): the image encoder half (→ mode of the latent
// distribution) and the temporal decoder (frames from latents, frame count from the input shape).
import type { VaeConfig } from '../configs.js';
import type { GraphBuilder, Value } from '../onnx/graph-builder.js';
import { declareInputs, declareOutput, type NetworkContract } from './contracts.js';
import { PORTABLE_FORMS, type GraphForms } from './forms.js';
import {
  channelsOf,
  conv2d,
  framesBack,
  framesByVideo,
  groupNorm,
  imageToTokens,
  linear,
  resnetBlock2d,
  runFrameSteps,
  spatioTemporalResBlock,
  spatioTemporalSteps,
  temporalConv,
  tokensToImage,
  type FrameDims,
  type FrameStep,
  type SpatioTemporalOptions,
} from './layers.js';

/** `Attention` with GroupNorm and residual on an image tensor, one head of the full width (VAE mid block). */
function spatialSelfAttention(b: GraphBuilder, x: Value, name: string, groups: number): Value {
  return b.scope(name, () => {
    const channels = channelsOf(x, name);
    const tokens = imageToTokens(b, groupNorm(b, x, `${name}.group_norm`, 1e-6, { groups }));
    const q = linear(b, tokens, `${name}.to_q`, channels);
    const k = linear(b, tokens, `${name}.to_k`, channels);
    const v = linear(b, tokens, `${name}.to_v`, channels);
    const out = linear(b, b.attention(q, k, v, { heads: 1 }), `${name}.to_out.0`, channels);
    return b.add(tokensToImage(b, out, x), x);
  });
}

/** `Upsample2D` with a conv: nearest 2×, then a 3×3 conv of the same width. */
function upsample2d(b: GraphBuilder, x: Value, name: string): Value {
  return conv2d(b, b.upsampleNearest2x(x), `${name}.conv`, channelsOf(x, name), 3);
}

/** The encoder's edges: an image in [-1, 1] to the mode of its latent distribution (unscaled). */
export function vaeEncoderContract(cfg: VaeConfig) {
  return {
    inputs: [{ name: 'image', dtype: 'float32', dims: ['batch', cfg.in_channels, 'height', 'width'] }],
    outputs: [{ name: 'latent', dtype: 'float32', dims: ['batch', cfg.latent_channels, 'latent_height', 'latent_width'] }],
  } as const satisfies NetworkContract;
}

/**
 * The decoder's edges: one video's latents (unscaled) to its frames, as the VAE gives them
 * ([-1, 1], channels first) and after diffusers' postprocess (`video`: [0, 1], frame-major RGB;
 * `rgb`: the same in 8 bits).
 */
export function vaeDecoderContract(cfg: VaeConfig) {
  return {
    inputs: [{ name: 'latents', dtype: 'float32', dims: ['frames', cfg.latent_channels, 'latent_height', 'latent_width'] }],
    outputs: [
      { name: 'frames', dtype: 'float32', dims: ['frames', cfg.out_channels, 'height', 'width'] },
      { name: 'video', dtype: 'float32', dims: ['frames', 'height', 'width', cfg.out_channels] },
      { name: 'rgb', dtype: 'uint8', dims: ['frames', 'height', 'width', cfg.out_channels] },
    ],
  } as const satisfies NetworkContract;
}

export function buildVaeEncoder(b: GraphBuilder, cfg: VaeConfig): void {
  const ch = cfg.block_out_channels;
  const groups = cfg.norm_num_groups;
  const contract = vaeEncoderContract(cfg);
  const { image } = declareInputs(b, contract);
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
  h = conv2d(b, groupNorm(b, h, 'encoder.conv_norm_out', 1e-6, { groups, silu: true }), 'encoder.conv_out', 2 * cfg.latent_channels, 3);
  const moments = conv2d(b, h, 'quant_conv', 2 * cfg.latent_channels, 1);
  // The mode of a diagonal Gaussian is its mean: the first latent_channels channels. Not scaled.
  const mean = b.slice(moments, [0], [cfg.latent_channels], [1]);
  declareOutput(b, contract, 'latent', b.cast(mean, 'float32'));
}

export function buildVaeDecoder(b: GraphBuilder, cfg: VaeConfig, opts: { forms?: GraphForms } = {}): void {
  const forms = opts.forms ?? PORTABLE_FORMS;
  const ch = cfg.block_out_channels;
  const groups = cfg.norm_num_groups;
  const contract = vaeDecoderContract(cfg);
  const { latents } = declareInputs(b, contract);
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

  h = conv2d(b, groupNorm(b, h, 'decoder.conv_norm_out', 1e-6, { groups, silu: true }), 'decoder.conv_out', cfg.out_channels, 3);
  // time_conv_out: Conv3d (3,1,1) over frames, as a 2-D conv on one tensor per video.
  const mixed = temporalConv(b, framesByVideo(b, h, frames), 'decoder.time_conv_out', cfg.out_channels, 3);
  const out = b.cast(framesBack(b, mixed, h), 'float32');
  declareOutput(b, contract, 'frames', out);
  // diffusers' postprocess as well, so the pipeline fetches finished frames instead of making a
  // pass over every value on the CPU: (x / 2 + 0.5) clamped to [0, 1], frame-major RGB
  // [F, H, W, 3] (what video encoders take), and its 8-bit form, ×255 rounded half to even.
  const video = b.clip(b.add(b.mul(b.transpose(out, [0, 2, 3, 1]), 0.5), 0.5), 0, 1);
  declareOutput(b, contract, 'video', video);
  declareOutput(b, contract, 'rgb', b.cast(b.round(b.mul(video, 255)), 'uint8'));
}

/** Pixels per latent: 2^(levels − 1). */
export function vaeScaleFactor(cfg: VaeConfig): number {
  return 2 ** (cfg.block_out_channels.length - 1);
}
