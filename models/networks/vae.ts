// AutoencoderKLTemporalDecoder (diffusers): the image encoder half (→ mode of the latent
// distribution) and the temporal decoder (frames from latents, frame count from the input shape).
import type { VaeConfig } from '../configs.js';
import type { GraphBuilder, Value } from '../onnx/graph-builder.js';
import { conv2d, groupNorm, inFrameHalves, linear, resnetBlock2d, spatioTemporalResBlock, temporalConv, temporalHalf, type FrameDims, type SpatioTemporalOptions } from './layers.js';

/** `Attention` with GroupNorm and residual on [N, C, H, W], one head of the full width (VAE mid block). */
function spatialSelfAttention(b: GraphBuilder, x: Value, name: string, channels: number, groups: number): Value {
  return b.scope(name, () => {
    const tokens = b.transpose(b.reshape(groupNorm(b, x, `${name}.group_norm`, channels, 1e-6, 4, groups), [0, channels, -1]), [0, 2, 1]);
    const q = linear(b, tokens, `${name}.to_q`, channels, channels);
    const k = linear(b, tokens, `${name}.to_k`, channels, channels);
    const v = linear(b, tokens, `${name}.to_v`, channels, channels);
    const out = linear(b, b.attention(q, k, v, 1, channels), `${name}.to_out.0`, channels, channels);
    return b.add(b.reshape(b.transpose(out, [0, 2, 1]), b.shape(x)), x);
  });
}

export function buildVaeEncoder(b: GraphBuilder, cfg: VaeConfig): void {
  const ch = cfg.block_out_channels;
  const groups = cfg.norm_num_groups;
  const image = b.input('image', 'float32', ['batch', cfg.in_channels, 'height', 'width']);
  let h = conv2d(b, b.cast(image, b.dtype), 'encoder.conv_in', cfg.in_channels, ch[0]!, 3);
  let inC = ch[0]!;
  ch.forEach((outC, i) => {
    for (let j = 0; j < cfg.layers_per_block; j++) {
      h = resnetBlock2d(b, h, `encoder.down_blocks.${i}.resnets.${j}`, j === 0 ? inC : outC, outC, 1e-6);
    }
    // Downsample2D with padding 0 pads right/bottom by one before a stride-2 conv.
    if (i < ch.length - 1) h = conv2d(b, h, `encoder.down_blocks.${i}.downsamplers.0.conv`, outC, outC, 3, { stride: 2, pads: [0, 0, 1, 1] });
    inC = outC;
  });
  const top = ch[ch.length - 1]!;
  h = resnetBlock2d(b, h, 'encoder.mid_block.resnets.0', top, top, 1e-6);
  h = spatialSelfAttention(b, h, 'encoder.mid_block.attentions.0', top, groups);
  h = resnetBlock2d(b, h, 'encoder.mid_block.resnets.1', top, top, 1e-6);
  h = conv2d(b, b.silu(groupNorm(b, h, 'encoder.conv_norm_out', top, 1e-6, 4, groups)), 'encoder.conv_out', top, 2 * cfg.latent_channels, 3);
  const moments = conv2d(b, h, 'quant_conv', 2 * cfg.latent_channels, 2 * cfg.latent_channels, 1);
  // The mode of a diagonal Gaussian is its mean: the first latent_channels channels. Not scaled.
  const mean = b.slice(moments, [0], [cfg.latent_channels], [1]);
  b.output(b.cast(mean, 'float32'), 'latent', ['batch', cfg.latent_channels, 'latent_height', 'latent_width']);
}

export function buildVaeDecoder(b: GraphBuilder, cfg: VaeConfig): void {
  const ch = cfg.block_out_channels;
  const groups = cfg.norm_num_groups;
  const latents = b.input('latents', 'float32', ['frames', cfg.latent_channels, 'latent_height', 'latent_width']);
  // One video per call: the temporal layers mix all frames of the input.
  const frames: FrameDims = { batch: b.ints([1]), frames: b.dim(latents, 0) };
  const stOpts: SpatioTemporalOptions = { eps: 1e-6, temporalEps: 1e-5, switchMix: true, frames };
  const st = (x: Value, name: string, inC: number, outC: number) => spatioTemporalResBlock(b, x, name, inC, outC, stOpts);

  const top = ch[ch.length - 1]!;
  let h = conv2d(b, b.cast(latents, b.dtype), 'decoder.conv_in', cfg.latent_channels, top, 3);
  h = st(h, 'decoder.mid_block.resnets.0', top, top);
  // MidBlockTemporalDecoder zips resnets[1:] with its single attention: one attention, one more resnet.
  if (cfg.layers_per_block >= 2) {
    h = spatialSelfAttention(b, h, 'decoder.mid_block.attentions.0', top, groups);
    h = st(h, 'decoder.mid_block.resnets.1', top, top);
  }
  const rCh = [...ch].reverse();
  let prevC = top;
  const last = rCh.length - 1;
  rCh.forEach((outC, i) => {
    for (let j = 0; j < cfg.layers_per_block + 1; j++) {
      const name = `decoder.up_blocks.${i}.resnets.${j}`;
      const inC = j === 0 ? prevC : outC;
      if (i === last && j === 0 && last > 0 && b.forms.decoderFrameHalves) {
        // The last upsampler and this block's spatial half run at full resolution with the
        // previous level's (wider) channels: per frame, so in two halves of the chunk (see
        // inFrameHalves); the temporal half needs every frame and has the narrower width.
        const spatial = inFrameHalves(b, h, (part) =>
          resnetBlock2d(b, conv2d(b, b.upsampleNearest2x(part), `decoder.up_blocks.${i - 1}.upsamplers.0.conv`, inC, inC, 3), `${name}.spatial_res_block`, inC, outC, stOpts.eps),
        );
        h = b.scope(name, () => temporalHalf(b, spatial, name, outC, stOpts));
      } else {
        h = st(h, name, inC, outC);
      }
    }
    // With frame halves, the last upsampler runs inside the next block's halves (above).
    const upsamplerInside = i === last - 1 && b.forms.decoderFrameHalves;
    if (i < last && !upsamplerInside) h = conv2d(b, b.upsampleNearest2x(h), `decoder.up_blocks.${i}.upsamplers.0.conv`, outC, outC, 3);
    prevC = outC;
  });
  h = conv2d(b, b.silu(groupNorm(b, h, 'decoder.conv_norm_out', ch[0]!, 1e-6, 4, groups)), 'decoder.conv_out', ch[0]!, cfg.out_channels, 3);
  // time_conv_out: Conv3d (3,1,1) over frames, as a 2-D conv on [1, C, F, H·W].
  const [hgt, wid] = [b.dim(h, 2), b.dim(h, 3)];
  const byVideo = b.transpose(b.reshape(h, b.shapeOf([1, frames.frames, cfg.out_channels, -1])), [0, 2, 1, 3]);
  const mixed = temporalConv(b, byVideo, 'decoder.time_conv_out', cfg.out_channels, cfg.out_channels, 3);
  const out = b.reshape(b.transpose(mixed, [0, 2, 1, 3]), b.shapeOf([-1, cfg.out_channels, hgt, wid]));
  b.output(b.cast(out, 'float32'), 'frames', ['frames', cfg.out_channels, 'height', 'width']);
}

/** Pixels per latent: 2^(levels − 1). */
export function vaeScaleFactor(cfg: VaeConfig): number {
  return 2 ** (cfg.block_out_channels.length - 1);
}
