// Per-module build functions shared by the SVD networks, one per diffusers/transformers module.
// Each takes the checkpoint name prefix of its module, so weights are found by the same names
// as in the safetensors files.
import { staticDim, transform, type AttentionImpl, type GraphBuilder, type Value, type WeightTransform } from '../onnx/graph-builder.js';

export interface FrameDims {
  /** Videos in the batch, [1] int64. */
  batch: Value;
  /** Frames per video, [1] int64. */
  frames: Value;
}

/**
 * torch `Linear` (weights [out, in], stored transposed), reading `in` from x's last axis.
 * `biasFold` transforms apply to the bias (another bias added to the result folded in).
 */
export function linear(b: GraphBuilder, x: Value, name: string, outF: number, opts: { bias?: boolean; biasFold?: readonly WeightTransform[] } = {}): Value {
  const inF = staticDim(x, -1, name);
  const w = b.weight(`${name}.weight`, [outF, inF], transform.transpose());
  const bias = opts.bias === false ? undefined : b.weight(`${name}.bias`, [outF], ...(opts.biasFold ?? []));
  return b.linear(x, w, { bias });
}

/** The channel count of an image tensor [N, C, ...]. */
export function channelsOf(x: Value, what: string): number {
  return staticDim(x, 1, what);
}

/** Joins image tensors along their channels. */
export function concatChannels(b: GraphBuilder, xs: Value[]): Value {
  return b.concat(xs, 1);
}

/** torch `Conv2d` with a square kernel ("same" padding unless `pads` says). */
export function conv2d(b: GraphBuilder, x: Value, name: string, outC: number, k: number, opts: { stride?: number; pads?: number[]; bias?: boolean } = {}): Value {
  const inC = channelsOf(x, name);
  const bias = opts.bias === false ? undefined : b.weight(`${name}.bias`, [outC]);
  const p = (k - 1) / 2;
  const stride = opts.stride ?? 1;
  return b.conv2d(x, b.weight(`${name}.weight`, [outC, inC, k, k]), { bias, strides: [stride, stride], pads: opts.pads ?? [p, p, p, p] });
}

/**
 * A (k,1,1) Conv3d over frames, run as a 2-D conv on one tensor per video (3-D convs are missing
 * on some providers): [B, C, F, H·W]. `fold` transforms apply
 * to the weights and the bias alike (a blend factor folded in).
 */
export function temporalConv(b: GraphBuilder, x: Value, name: string, outC: number, k: number, opts: { bias?: boolean; fold?: readonly WeightTransform[] } = {}): Value {
  const inC = channelsOf(x, name);
  const fold = opts.fold ?? [];
  const bias = opts.bias === false ? undefined : b.weight(`${name}.bias`, [outC], ...fold);
  const p = (k - 1) / 2;
  const w = b.weight(`${name}.weight`, [outC, inC, k, 1, 1], transform.reshape([outC, inC, k, 1]), ...fold);
  return b.conv2d(x, w, { bias, pads: [p, 0, p, 0] });
}

/** torch `GroupNorm` with affine over the channels, followed by SiLU where `silu` says (one fused operator where a pass makes it one). */
export function groupNorm(b: GraphBuilder, x: Value, name: string, eps: number, opts: { groups?: number; silu?: boolean } = {}): Value {
  const groups = opts.groups ?? 32;
  const channels = channelsOf(x, name);
  if (channels % groups !== 0) throw new Error(`${name}: ${channels} channels cannot be split into ${groups} groups`);
  const view = transform.reshape([channels, ...new Array(x.shape!.length - 2).fill(1)]);
  const y = b.groupNorm(x, { groups, scale: b.weight(`${name}.weight`, [channels], view), bias: b.weight(`${name}.bias`, [channels], view), epsilon: eps });
  return opts.silu ? b.silu(y) : y;
}

/** Image tensor [N, C, H, W] → tokens [N, H·W, C]. */
export function imageToTokens(b: GraphBuilder, x: Value): Value {
  return b.transpose(b.reshape(x, [0, channelsOf(x, 'image to tokens'), -1]), [0, 2, 1]);
}

/** Tokens [N, H·W, C] → an image tensor shaped like `like`. */
export function tokensToImage(b: GraphBuilder, tokens: Value, like: Value): Value {
  return b.reshape(b.transpose(tokens, [0, 2, 1]), b.shape(like));
}

/** torch `LayerNorm` over the last axis. */
export function layerNorm(b: GraphBuilder, x: Value, name: string, eps: number): Value {
  const channels = staticDim(x, -1, name);
  return b.layerNorm(x, { scale: b.weight(`${name}.weight`, [channels]), bias: b.weight(`${name}.bias`, [channels]), epsilon: eps });
}

/**
 * Sinusoidal embedding of diffusers' `Timesteps(dim, flip_sin_to_cos=True, shift=0)`:
 * [N] float32 → [N, dim] float32 as cat(cos, sin).
 */
export function sinusoidalEmbedding(b: GraphBuilder, t: Value, dim: number): Value {
  const half = Math.floor(dim / 2);
  const freqs = new Float32Array(half);
  const negLog = Math.fround(-Math.log(10000));
  for (let i = 0; i < half; i++) freqs[i] = Math.fround(Math.exp(Math.fround(Math.fround(negLog * i) / half)));
  const args = b.mul(b.unsqueeze(b.cast(t, 'float32'), [1]), b.constant(freqs, 'float32', [1, half]));
  let emb = b.concat([b.cos(args), b.sin(args)], 1);
  if (dim % 2 === 1) emb = b.concat([emb, b.expand(b.constant([0], 'float32', [1, 1]), [b.dim(emb, 0), 1])], 1);
  return emb;
}

/** diffusers `TimestepEmbedding`: linear_1 → SiLU → linear_2. */
export function timestepMlp(b: GraphBuilder, x: Value, name: string, hidden: number, outF = hidden): Value {
  return linear(b, b.silu(linear(b, x, `${name}.linear_1`, hidden)), `${name}.linear_2`, outF);
}

/**
 * A resnet's time-embedding projection, conv1's bias folded into its bias: conv1(x) + b₁ +
 * proj(temb) + b_t is the same sum with conv1 built without its bias, one pass over the image
 * fewer (onnxruntime's CUDA convolution adds a bias in a kernel of its own).
 */
function timeEmbeddingProjection(b: GraphBuilder, temb: Value, name: string, channels: number): Value {
  return linear(b, temb, `${name}.time_emb_proj`, channels, { biasFold: [transform.plus(`${name}.conv1.bias`)] });
}

/** diffusers `ResnetBlock2D` (pre-norm, SiLU, output scale 1) on an image tensor. `temb` is SiLU(temb) [N, T]. */
export function resnetBlock2d(b: GraphBuilder, x: Value, name: string, outC: number, eps: number, temb?: Value): Value {
  return b.scope(name, () => {
    let h = conv2d(b, groupNorm(b, x, `${name}.norm1`, eps, { silu: true }), `${name}.conv1`, outC, 3, { bias: !temb });
    if (temb) h = b.add(h, b.unsqueeze(timeEmbeddingProjection(b, temb, name, outC), [2, 3]));
    h = conv2d(b, groupNorm(b, h, `${name}.norm2`, eps, { silu: true }), `${name}.conv2`, outC, 3);
    const shortcut = channelsOf(x, name) === outC ? x : conv2d(b, x, `${name}.conv_shortcut`, outC, 1);
    return b.add(shortcut, h);
  });
}

/**
 * diffusers `TemporalResnetBlock` on [B, C, F, H·W] followed by the block's `AlphaBlender`
 * (`mixer`), folded together: the temporal branch is x + h and the blend is α·x + (1 − α)·(x + h)
 * (or the switched form), so the result is x + c·h with c = 1 − α (switched: α), and c is folded
 * into conv2's weights and bias. `temb` is SiLU(emb) [B·F, C_t].
 */
function temporalResnetBlockBlended(b: GraphBuilder, x: Value, name: string, opts: { mixer: string; eps: number; switchMix: boolean; frames: FrameDims; temb?: Value }): Value {
  const channels = channelsOf(x, name);
  // conv1 is plain (the blend is folded into conv2 only), so its bias moves into the projection's as it is.
  let h = temporalConv(b, groupNorm(b, x, `${name}.norm1`, opts.eps, { silu: true }), `${name}.conv1`, channels, 3, { bias: !opts.temb });
  if (opts.temb) {
    // [B·F, C_t] → [B, F, C] → [B, C, F, 1]
    const proj = timeEmbeddingProjection(b, opts.temb, name, channels);
    const perVideo = b.reshape(proj, [opts.frames.batch, opts.frames.frames, channels]);
    h = b.add(h, b.unsqueeze(b.transpose(perVideo, [0, 2, 1]), [3]));
  }
  const blend = transform.scaleBy(`${opts.mixer}.mix_factor`, opts.switchMix ? 'sigmoid' : 'oneMinusSigmoid');
  h = temporalConv(b, groupNorm(b, h, `${name}.norm2`, opts.eps, { silu: true }), `${name}.conv2`, channels, 3, { fold: [blend] });
  return b.add(x, h);
}

/**
 * `AlphaBlender` with image_only_indicator = 0: alpha = sigmoid(mix_factor) for both the
 * `learned` and `learned_with_images` strategies; `switch` swaps the roles (decoder).
 */
export function alphaBlend(b: GraphBuilder, name: string, spatial: Value, temporal: Value, switchSpatialToTemporal: boolean): Value {
  const alpha = b.weight(`${name}.mix_factor`, [1], transform.map('sigmoid'));
  const [keep, other] = switchSpatialToTemporal ? [temporal, spatial] : [spatial, temporal];
  // alpha·keep + (1 − alpha)·other
  return b.add(other, b.mul(b.sub(keep, other), alpha));
}

export interface SpatioTemporalOptions {
  eps: number;
  temporalEps: number;
  switchMix: boolean;
  frames: FrameDims;
  /** SiLU of the time embedding per frame, [B·F, C_t]. */
  temb?: Value;
}

/**
 * One step of a network on [B·F, C, H, W]: per frame (the spatial layers), or mixing the frames
 * of each video (the temporal layers).
 */
export type FrameStep = { perFrame: (x: Value) => Value } | { acrossFrames: (x: Value) => Value };

/** diffusers `SpatioTemporalResBlock` as its two steps: the spatial resnet, then the temporal one blended in. */
export function spatioTemporalSteps(b: GraphBuilder, name: string, outC: number, opts: SpatioTemporalOptions): FrameStep[] {
  return [
    { perFrame: (x) => b.scope(name, () => resnetBlock2d(b, x, `${name}.spatial_res_block`, outC, opts.eps, opts.temb)) },
    { acrossFrames: (x) => b.scope(name, () => temporalHalf(b, x, name, opts)) },
  ];
}

/** diffusers `SpatioTemporalResBlock` on [B·F, C, H, W]. */
export function spatioTemporalResBlock(b: GraphBuilder, x: Value, name: string, outC: number, opts: SpatioTemporalOptions): Value {
  return runFrameSteps(b, x, spatioTemporalSteps(b, name, outC, opts));
}

/** The temporal half of a `SpatioTemporalResBlock`, given its spatial block's output. */
function temporalHalf(b: GraphBuilder, spatial: Value, name: string, opts: SpatioTemporalOptions): Value {
  const mixed = temporalResnetBlockBlended(b, framesByVideo(b, spatial, opts.frames), `${name}.temporal_res_block`, {
    mixer: `${name}.time_mixer`,
    eps: opts.temporalEps,
    switchMix: opts.switchMix,
    frames: opts.frames,
    temb: opts.temb,
  });
  return framesBack(b, mixed, spatial);
}

/**
 * Per-frame image tensors [B·F, C, H, W] as one tensor per video for the temporal layers,
 * [B, C, F, H·W] (channels last, the channels-last pass keeps it one Reshape: the frames of a
 * video already sit apart).
 */
export function framesByVideo(b: GraphBuilder, x: Value, frames: FrameDims): Value {
  const channels = channelsOf(x, 'frames by video');
  return b.transpose(b.reshape(x, [frames.batch, frames.frames, channels, -1]), [0, 2, 1, 3]);
}

/** `framesByVideo` undone: back to per-frame tensors shaped like `like`. */
export function framesBack(b: GraphBuilder, byVideo: Value, like: Value): Value {
  return b.reshape(b.transpose(byVideo, [0, 2, 1, 3]), b.shape(like));
}

/**
 * Runs the steps in order. Each run of consecutive per-frame steps for which `inHalves` says so
 * goes through `inFrameHalves` as one function; the results are the same either way.
 */
export function runFrameSteps(b: GraphBuilder, x: Value, steps: readonly FrameStep[], inHalves: (run: readonly FrameStep[]) => boolean = () => false): Value {
  let h = x;
  for (let i = 0; i < steps.length; ) {
    const step = steps[i]!;
    if ('acrossFrames' in step) {
      h = step.acrossFrames(h);
      i++;
      continue;
    }
    let end = i;
    while (end < steps.length && 'perFrame' in steps[end]!) end++;
    const run = steps.slice(i, end) as { perFrame: (x: Value) => Value }[];
    const perFrame = (v: Value) => run.reduce((acc, s) => s.perFrame(acc), v);
    h = inHalves(run) ? inFrameHalves(b, h, perFrame) : perFrame(h);
    i = end;
  }
  return h;
}

/**
 * Applies a per-frame function to two halves of the batch (axis 0) and joins the results: the
 * same values, but no tensor inside holds more than ⌈N/2⌉ frames. WebGPU fails convolutions whose
 * output passes ~2 GiB (8 frames × 256 channels at 1024x576). With N odd the halves share the
 * middle frame, kept once, so neither half is ever empty (N = 1 included).
 */
export function inFrameHalves(b: GraphBuilder, x: Value, fn: (part: Value) => Value): Value {
  const n = b.dim(x, 0);
  const half = b.div(b.add(n, b.ints([1])), b.ints([2]));
  const rest = b.sub(n, half);
  const joined = b.concat([fn(b.sliceAt(x, b.ints([0]), half, 0)), fn(b.sliceAt(x, rest, n, 0))], 0);
  // Frames 0..half-1 of the first part, then the last n - half of the second (2·half frames in all).
  const twice = b.add(half, half);
  const keep = b.concat([b.rangeInt(b.ints([0]), half), b.rangeInt(b.sub(twice, rest), twice)], 0);
  return b.gather(joined, keep, 0);
}

/** Self-attention over [N, S, C] with separate q/k/v projections (diffusers `Attention`). */
export function selfAttention(b: GraphBuilder, x: Value, name: string, heads: number, opts: { qkvBias: boolean; names?: AttentionNames; impl?: AttentionImpl }): Value {
  const n = opts.names ?? DIFFUSERS_ATTENTION;
  const dim = staticDim(x, -1, name);
  const q = linear(b, x, `${name}.${n.q}`, dim, { bias: opts.qkvBias });
  const k = linear(b, x, `${name}.${n.k}`, dim, { bias: opts.qkvBias });
  const v = linear(b, x, `${name}.${n.v}`, dim, { bias: opts.qkvBias });
  return linear(b, b.attention(q, k, v, { heads, impl: opts.impl }), `${name}.${n.out}`, dim);
}

export interface AttentionNames {
  q: string;
  k: string;
  v: string;
  out: string;
}
export const DIFFUSERS_ATTENTION: AttentionNames = { q: 'to_q', k: 'to_k', v: 'to_v', out: 'to_out.0' };

/**
 * Cross-attention of queries `dim` wide to a context of exactly one token (SVD's CLIP image
 * embedding): softmax over a single key is 1, so the result is out(v(context)) for every query.
 * to_q/to_k are checked but not computed. Returns [N, 1, dim] to broadcast over the queries.
 */
export function singleTokenCrossAttention(b: GraphBuilder, context: Value, name: string, dim: number): Value {
  b.checkWeight(`${name}.to_q.weight`, [dim, dim]);
  b.checkWeight(`${name}.to_k.weight`, [dim, staticDim(context, -1, name)]);
  const v = linear(b, context, `${name}.to_v`, dim, { bias: false });
  return linear(b, v, `${name}.to_out.0`, dim);
}

/** diffusers `FeedForward` with GEGLU: proj to 2·inner, value · gelu(gate), back to `dimOut` (default: x's width). */
export function feedForwardGeglu(b: GraphBuilder, x: Value, name: string, opts: { dimOut?: number; mult?: number } = {}): Value {
  const dim = staticDim(x, -1, name);
  const inner = dim * (opts.mult ?? 4);
  const dimOut = opts.dimOut ?? dim;
  // The checkpoint's proj is [2·inner, dim]: rows 0..inner are the value, the rest the gate.
  // Two projections from the halves avoid slicing the large 2·inner-wide activation (the
  // `bias-split-gelu` graph pass joins them into one projection and a fused gate where it can).
  const half = (part: 0 | 1) => {
    const rows = transform.rows(part * inner, (part + 1) * inner);
    const w = b.weight(`${name}.net.0.proj.weight`, [inner * 2, dim], rows, transform.transpose());
    const bias = b.weight(`${name}.net.0.proj.bias`, [inner * 2], rows);
    return b.linear(x, w, { bias });
  };
  return linear(b, b.mul(half(0), b.geluFused(half(1))), `${name}.net.2`, dimOut);
}
