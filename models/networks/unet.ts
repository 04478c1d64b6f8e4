// UNetSpatioTemporalConditionModel (diffusers) as an ONNX graph. Every size comes from the
// config; batch, frames, height and width stay dynamic.
import { perLevelValue, type UNetConfig } from '../configs.js';
import { staticDim, type GraphBuilder, type Value } from '../onnx/graph-builder.js';
import { declareInputs, declareOutput, type NetworkContract } from './contracts.js';
import { PORTABLE_FORMS, type GraphForms } from './forms.js';
import {
  alphaBlend,
  channelsOf,
  concatChannels,
  conv2d,
  feedForwardGeglu,
  groupNorm,
  imageToTokens,
  layerNorm,
  linear,
  selfAttention,
  sinusoidalEmbedding,
  singleTokenCrossAttention,
  spatioTemporalResBlock,
  timestepMlp,
  tokensToImage,
  type FrameDims,
} from './layers.js';

interface Ctx {
  b: GraphBuilder;
  forms: GraphForms;
  frames: FrameDims;
  /** SiLU of the time embedding per frame, [B·F, T]. */
  temb: Value;
  /** CLIP embedding per video [B, 1, D] and repeated per frame [B·F, 1, D]. */
  context: Value;
  contextPerFrame: Value;
}

/** diffusers `BasicTransformerBlock` (self-attn, cross-attn, GEGLU FF) on [B·F, S, C]. */
function basicTransformerBlock(c: Ctx, x: Value, name: string, heads: number): Value {
  const { b } = c;
  const dim = staticDim(x, -1, name);
  layerNormWeightsCheck(b, `${name}.norm2`, dim);
  // x + attn1 + attn2, the cross-attention's one vector per frame added first: the sum norm3 reads
  // is then one Add of two same-shape tensors (a residual and a branch), the pattern the
  // `skip-layer-norm` pass fuses into the norm.
  const attn1 = selfAttention(b, layerNorm(b, x, `${name}.norm1`, 1e-5), `${name}.attn1`, heads, { qkvBias: false });
  const crossed = b.add(x, singleTokenCrossAttention(b, c.contextPerFrame, `${name}.attn2`, dim));
  const h = b.add(crossed, attn1);
  return b.add(h, feedForwardGeglu(b, layerNorm(b, h, `${name}.norm3`, 1e-5), `${name}.ff`));
}

/** With a one-token context the normalised query never reaches the output, but its weights must still match. */
function layerNormWeightsCheck(b: GraphBuilder, name: string, dim: number) {
  b.checkWeight(`${name}.weight`, [dim]);
  b.checkWeight(`${name}.bias`, [dim]);
}

/** diffusers `TemporalBasicTransformerBlock` on [B, S, F, C] (attention runs over frames). */
function temporalTransformerBlock(c: Ctx, x: Value, name: string, heads: number): Value {
  const { b } = c;
  const dim = staticDim(x, -1, name);
  let h = b.add(x, feedForwardGeglu(b, layerNorm(b, x, `${name}.norm_in`, 1e-5), `${name}.ff_in`));
  const normed = layerNorm(b, h, `${name}.norm1`, 1e-5);
  const seqs = b.reshape(normed, [-1, b.dim(normed, 2), dim]);
  const attn = selfAttention(b, seqs, `${name}.attn1`, heads, { qkvBias: false, impl: c.forms.temporalAttention });
  layerNormWeightsCheck(b, `${name}.norm2`, dim);
  // time_context: the first frame's embedding of each video, [B, 1, D] → [B, 1, 1, C]; added
  // before attn1's output, as in the spatial block (one same-shape Add before norm3).
  const crossed = b.add(h, b.unsqueeze(singleTokenCrossAttention(b, c.context, `${name}.attn2`, dim), [1]));
  h = b.add(crossed, b.reshape(attn, b.shape(h)));
  return b.add(h, feedForwardGeglu(b, layerNorm(b, h, `${name}.norm3`, 1e-5), `${name}.ff`));
}

/** diffusers `TransformerSpatioTemporalModel` on [B·F, C, H, W] (or [B·F, H, W, C]). */
function transformerSpatioTemporal(c: Ctx, x: Value, name: string, heads: number, layers: number): Value {
  const { b } = c;
  return b.scope(name, () => {
    const { batch, frames } = c.frames;
    const channels = channelsOf(x, name);
    const inner = channels; // heads × (channels / heads)
    let h = imageToTokens(b, groupNorm(b, x, `${name}.norm`, 1e-6));
    h = linear(b, h, `${name}.proj_in`, inner);

    // Frame-position embedding: sinusoid of 0..F-1 through an MLP, [F, C] broadcast over videos.
    const frameEmb = timestepMlp(b, b.cast(sinusoidalEmbedding(b, b.rangeFloat(frames), channels), b.dtype), `${name}.time_pos_embed`, channels * 4, channels);

    for (let i = 0; i < layers; i++) {
      h = basicTransformerBlock(c, h, `${name}.transformer_blocks.${i}`, heads);
      // [B·F, S, C] → [B, F, S, C] → [B, S, F, C], + the frame embedding [F, C] after the
      // transpose: the Add then sits right before the temporal block's first norm.
      const byVideo = b.reshape(h, [batch, frames, -1, inner]);
      const withPos = b.add(b.transpose(byVideo, [0, 2, 1, 3]), frameEmb);
      const temporal = temporalTransformerBlock(c, withPos, `${name}.temporal_transformer_blocks.${i}`, heads);
      const back = b.reshape(b.transpose(temporal, [0, 2, 1, 3]), b.shape(h));
      h = alphaBlend(b, `${name}.time_mixer`, h, back, false);
    }
    h = linear(b, h, `${name}.proj_out`, channels);
    return b.add(tokensToImage(b, h, x), x);
  });
}

/** The UNet's edges: noisy latents beside the image latent (channel-joined), the timestep, the CLIP embedding and the micro-conditioning ids. */
export function unetContract(cfg: UNetConfig) {
  const contextDim = Array.isArray(cfg.cross_attention_dim) ? cfg.cross_attention_dim[0]! : cfg.cross_attention_dim;
  return {
    inputs: [
      { name: 'sample', dtype: 'float32', dims: ['batch', 'frames', cfg.in_channels, 'height', 'width'] },
      { name: 'timestep', dtype: 'float32', dims: [1] },
      { name: 'encoder_hidden_states', dtype: 'float32', dims: ['batch', 1, contextDim] },
      { name: 'added_time_ids', dtype: 'float32', dims: ['batch', 3] },
    ],
    outputs: [{ name: 'model_output', dtype: 'float32', dims: ['batch', 'frames', cfg.out_channels, 'height', 'width'] }],
  } as const satisfies NetworkContract;
}

export function buildUNet(b: GraphBuilder, cfg: UNetConfig, opts: { forms?: GraphForms; file?: string } = {}): void {
  const file = opts.file ?? 'unet/config.json';
  const levels = cfg.block_out_channels.length;
  if (cfg.down_block_types.length !== levels || cfg.up_block_types.length !== levels) {
    throw new Error(`${file}: block_out_channels has ${levels} entries but down_block_types ${cfg.down_block_types.length} and up_block_types ${cfg.up_block_types.length}`);
  }
  const ch = cfg.block_out_channels;
  const heads = perLevelValue(cfg.num_attention_heads, levels, 'num_attention_heads', file);
  const crossDims = perLevelValue(cfg.cross_attention_dim, levels, 'cross_attention_dim', file);
  const layersPer = perLevelValue(cfg.layers_per_block, levels, 'layers_per_block', file);
  const tLayers = perLevelValue(cfg.transformer_layers_per_block, levels, 'transformer_layers_per_block', file);
  if (new Set(crossDims).size !== 1) throw new Error(`${file}: cross_attention_dim must be the same at every level (one CLIP embedding input)`);
  const contextDim = crossDims[0]!;
  if (cfg.addition_time_embed_dim * 3 !== cfg.projection_class_embeddings_input_dim) {
    throw new Error(`${file}: addition_time_embed_dim × 3 (${cfg.addition_time_embed_dim * 3}) must equal projection_class_embeddings_input_dim (${cfg.projection_class_embeddings_input_dim})`);
  }
  ch.forEach((c, i) => {
    if (c % heads[i]! !== 0) throw new Error(`${file}: block_out_channels[${i}] = ${c} is not divisible by num_attention_heads[${i}] = ${heads[i]}`);
  });

  const contract = unetContract(cfg);
  const { sample, timestep, encoder_hidden_states: ehs, added_time_ids: addedTimeIds } = declareInputs(b, contract);

  const frames: FrameDims = { batch: b.dim(sample, 0), frames: b.dim(sample, 1) };
  const bf = b.mulDims(frames.batch, frames.frames);
  const timeDim = ch[0]! * 4;

  // Time and micro-conditioning embeddings, computed in float32, then repeated per frame.
  const tEmb = timestepMlp(b, b.cast(sinusoidalEmbedding(b, timestep, ch[0]!), b.dtype), 'time_embedding', timeDim);
  const idsEmb = b.reshape(sinusoidalEmbedding(b, b.reshape(addedTimeIds, [-1]), cfg.addition_time_embed_dim), [-1, cfg.projection_class_embeddings_input_dim]);
  const augEmb = timestepMlp(b, b.cast(idsEmb, b.dtype), 'add_embedding', timeDim);
  const emb = b.add(tEmb, augEmb); // [B, T]
  const embPerFrame = b.reshape(b.expand(b.unsqueeze(emb, [1]), [frames.batch, frames.frames, timeDim]), [bf, timeDim]);
  const context = b.cast(ehs, b.dtype);
  const contextPerFrame = b.reshape(b.expand(b.unsqueeze(context, [1]), [frames.batch, frames.frames, 1, contextDim]), [bf, 1, contextDim]);
  const c: Ctx = { b, forms: opts.forms ?? PORTABLE_FORMS, frames, temb: b.silu(embPerFrame), context, contextPerFrame };

  const stBlock = (x: Value, name: string, outC: number, eps: number) => spatioTemporalResBlock(b, x, name, outC, { eps, temporalEps: eps, switchMix: false, frames, temb: c.temb });

  const x5 = b.cast(sample, b.dtype);
  let h = b.reshape(x5, [bf, cfg.in_channels, b.dim(x5, 3), b.dim(x5, 4)]);
  h = conv2d(b, h, 'conv_in', ch[0]!, 3);

  const skips: Value[] = [h];
  cfg.down_block_types.forEach((type, i) => {
    const outC = ch[i]!;
    const cross = type === 'CrossAttnDownBlockSpatioTemporal';
    for (let j = 0; j < layersPer[i]!; j++) {
      const name = `down_blocks.${i}`;
      h = stBlock(h, `${name}.resnets.${j}`, outC, cross ? 1e-6 : 1e-5);
      if (cross) h = transformerSpatioTemporal(c, h, `${name}.attentions.${j}`, heads[i]!, tLayers[i]!);
      skips.push(h);
    }
    if (i < levels - 1) {
      h = conv2d(b, h, `down_blocks.${i}.downsamplers.0.conv`, outC, 3, { stride: 2 });
      skips.push(h);
    }
  });

  const top = ch[levels - 1]!;
  h = stBlock(h, 'mid_block.resnets.0', top, 1e-5);
  // The mid block is resnet → transformer → resnet whatever the transformer depth.
  h = transformerSpatioTemporal(c, h, 'mid_block.attentions.0', heads[levels - 1]!, tLayers[levels - 1]!);
  h = stBlock(h, 'mid_block.resnets.1', top, 1e-5);

  const rCh = [...ch].reverse();
  const rHeads = [...heads].reverse();
  const rLayers = [...layersPer].reverse();
  const rTLayers = [...tLayers].reverse();
  cfg.up_block_types.forEach((type, i) => {
    const outC = rCh[i]!;
    const cross = type === 'CrossAttnUpBlockSpatioTemporal';
    const n = rLayers[i]! + 1;
    for (let j = 0; j < n; j++) {
      const skip = skips.pop();
      if (!skip) throw new Error(`${file}: up blocks need more skip connections than the down blocks make`);
      h = stBlock(concatChannels(b, [h, skip]), `up_blocks.${i}.resnets.${j}`, outC, 1e-6);
      if (cross) h = transformerSpatioTemporal(c, h, `up_blocks.${i}.attentions.${j}`, rHeads[i]!, rTLayers[i]!);
    }
    if (i < levels - 1) h = conv2d(b, b.upsampleNearest2x(h), `up_blocks.${i}.upsamplers.0.conv`, outC, 3);
  });

  h = conv2d(b, groupNorm(b, h, 'conv_norm_out', 1e-5, { silu: true }), 'conv_out', cfg.out_channels, 3);
  const out = b.reshape(h, [frames.batch, frames.frames, cfg.out_channels, b.dim(h, 2), b.dim(h, 3)]);
  declareOutput(b, contract, 'model_output', b.cast(out, 'float32'));
}
