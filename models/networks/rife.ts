// RIFE 4.25 (Practical-RIFE's train_log/IFNet_HDv3.py, the flow network `IFNet` run by
// RIFE_HDv3.Model.inference): the frame at time t between two frames, from five flow blocks that
// refine a bidirectional flow from 1/16 of the image up to full size, each warping both frames
// (and their Head features) by the flow so far, then a sigmoid mask that blends the two warped
// frames. Weights by the checkpoint's state-dict names, "module." taken off (as load_model does).
//
// Two forms of the same network: the tensor form takes [N, 3, H, W] in [0, 1] with H and W
// multiples of 64 (the coarsest block sees the image at 1/64 after its two stride-2
// convolutions), as IFNet does, and is held to the reference's golden tensors; the video form
// takes two stored frames as bytes and gives bytes, doing inside the graph what Practical-RIFE's
// inference_video.py does around the network (scale to [0, 1], pad, crop, back to 8 bits), so
// the caller only copies memory.
import type { WeightSource } from '../onnx/weights.js';
import type { GraphBuilder, Value } from '../onnx/graph-builder.js';
import { declareInputs, declareOutput, type NetworkContract } from './contracts.js';
import { channelsOf } from './layers.js';

/** The widths that tell RIFE checkpoints apart (4.25: blocks of 192, 128, 96, 64 and 32 channels, Head 3 → 16 → 4). */
export interface RifeConfig {
  /** Channels inside each flow block, coarsest first. */
  blockWidths: readonly number[];
  /** Head's hidden channels. */
  headWidth: number;
  /** Feature channels Head gives each frame. */
  featureChannels: number;
}

export const RIFE_4_25: RifeConfig = { blockWidths: [192, 128, 96, 64, 32], headWidth: 16, featureChannels: 4 };

/** Each block works at 1/scale of the image (RIFE_HDv3.inference's scale_list for scale 1). */
export const RIFE_SCALES = [16, 8, 4, 2, 1] as const;

/** Inputs must be multiples of this (1/16 for the first block, then two stride-2 convolutions). */
export const RIFE_SIZE_MULTIPLE = 64;

/** The video form pads frames to multiples of this, as inference_video.py does for scale 1 (its `max(128, 128 / scale)`). */
export const RIFE_PAD_MULTIPLE = 128;

/** The tensor form's edges: both frames [N, 3, H, W] in [0, 1] and each item's time → the frame at that time. */
export const RIFE_CONTRACT = {
  inputs: [
    { name: 'img0', dtype: 'float32', dims: ['batch', 3, 'height', 'width'] },
    { name: 'img1', dtype: 'float32', dims: ['batch', 3, 'height', 'width'] },
    { name: 'timestep', dtype: 'float32', dims: ['batch'] },
  ],
  outputs: [{ name: 'frame', dtype: 'float32', dims: ['batch', 3, 'height', 'width'] }],
} as const satisfies NetworkContract;

/** The video form's edges: two consecutive frames as stored (RGB bytes) and the times wanted between them → one frame per time. */
export const RIFE_VIDEO_CONTRACT = {
  inputs: [
    { name: 'frames', dtype: 'uint8', dims: [2, 'height', 'width', 3] },
    { name: 'timestep', dtype: 'float32', dims: ['batch'] },
  ],
  outputs: [{ name: 'between', dtype: 'uint8', dims: ['batch', 'height', 'width', 3] }],
} as const satisfies NetworkContract;

/** Channels a block's last layer gives after PixelShuffle: flow (4), mask (1) and features passed on (8). */
const BLOCK_OUT = 13;
const NEGATIVE_SLOPE = 0.2;

/** The widths of the checkpoint in `weights` (shapes read from the file); 4.25's where the source has no shapes (random weights). */
export function rifeConfigOf(weights: WeightSource): RifeConfig {
  const shape = (name: string) => weights.shapeOf(name);
  if (!shape('encode.cnn0.weight')) return RIFE_4_25;
  const need = (name: string, axis: number) => {
    const s = shape(name);
    if (!s) throw new Error(`${weights.description} is not a RIFE 4.25 flow network: it has no tensor ${name}`);
    return s[axis]!;
  };
  return {
    blockWidths: RIFE_SCALES.map((_, i) => need(`block${i}.conv0.1.0.weight`, 0)),
    headWidth: need('encode.cnn0.weight', 0),
    featureChannels: need('encode.cnn3.weight', 1),
  };
}

/** torch `Conv2d` (square kernel k, padding (k − 1) / 2) from [N, C, H, W]. */
function conv(b: GraphBuilder, x: Value, name: string, outC: number, stride = 1): Value {
  const inC = channelsOf(x, name);
  const w = b.weight(`${name}.weight`, [outC, inC, 3, 3]);
  return b.conv2d(x, w, { bias: b.weight(`${name}.bias`, [outC]), strides: [stride, stride], pads: [1, 1, 1, 1] });
}

/** torch `ConvTranspose2d(C, M, 4, 2, 1)`: doubles the image side. */
function upConv(b: GraphBuilder, x: Value, name: string, outC: number): Value {
  const inC = channelsOf(x, name);
  return b.convTranspose2d(x, b.weight(`${name}.weight`, [inC, outC, 4, 4]), { bias: b.weight(`${name}.bias`, [outC]), stride: 2, pad: 1 });
}

/** `Head`: per-frame features at full size (a stride-2 conv, two convs, a transposed conv back up). */
function head(b: GraphBuilder, x: Value, cfg: RifeConfig): Value {
  return b.scope('encode', () => {
    let h = b.leakyRelu(conv(b, x, 'encode.cnn0', cfg.headWidth, 2), NEGATIVE_SLOPE);
    h = b.leakyRelu(conv(b, h, 'encode.cnn1', cfg.headWidth), NEGATIVE_SLOPE);
    h = b.leakyRelu(conv(b, h, 'encode.cnn2', cfg.headWidth), NEGATIVE_SLOPE);
    return upConv(b, h, 'encode.cnn3', cfg.featureChannels);
  });
}

/** `ResConv`: leaky_relu(conv(x) · beta + x), beta one factor per channel. */
function resConv(b: GraphBuilder, x: Value, name: string): Value {
  const c = channelsOf(x, name);
  const y = b.mul(conv(b, x, `${name}.conv`, c), b.weight(`${name}.beta`, [1, c, 1, 1]));
  return b.leakyRelu(b.add(y, x), NEGATIVE_SLOPE);
}

interface BlockOut {
  flow: Value;
  mask: Value;
  features: Value;
}

/**
 * `IFBlock`: at 1/scale of the image, from `x` (and the flow so far, resized and rescaled to that
 * size), a flow update, a mask and features for the next block, back at full size.
 */
function ifBlock(b: GraphBuilder, x: Value, flow: Value | null, name: string, width: number, scale: number): BlockOut {
  return b.scope(name, () => {
    let input = b.resizeBilinear(x, 1 / scale);
    if (flow) input = b.concat([input, b.mul(b.resizeBilinear(flow, 1 / scale), 1 / scale)], 1);
    let feat = b.leakyRelu(conv(b, input, `${name}.conv0.0.0`, width / 2, 2), NEGATIVE_SLOPE);
    feat = b.leakyRelu(conv(b, feat, `${name}.conv0.1.0`, width, 2), NEGATIVE_SLOPE);
    for (let j = 0; j < 8; j++) feat = resConv(b, feat, `${name}.convblock.${j}`);
    const tmp = b.resizeBilinear(b.pixelShuffle(upConv(b, feat, `${name}.lastconv.0`, 4 * BLOCK_OUT), 2), scale);
    return {
      flow: b.mul(b.slice(tmp, [0], [4], [1]), scale),
      mask: b.slice(tmp, [4], [5], [1]),
      features: b.slice(tmp, [5], [BLOCK_OUT], [1]),
    };
  });
}

/** The sampling grid's parts for images like `like`: each axis's linspace(−1, 1) and the flow's divisors ((side − 1) / 2). */
function warpGrid(b: GraphBuilder, like: Value) {
  const axis = (i: 2 | 3) => {
    const n = b.dim(like, i);
    const half = b.div(b.sub(b.cast(n, 'float32'), 1), 2);
    return { base: b.sub(b.div(b.rangeFloat(n), half), 1), half };
  };
  const [x, y] = [axis(3), axis(2)];
  return { baseX: b.reshape(x.base, [1, 1, 1, -1]), baseY: b.reshape(y.base, [1, 1, -1, 1]), halfW: x.half, halfH: y.half };
}

/** `warp` (model/warplayer.py): `image` sampled at each pixel moved by `flow` [N, 2, H, W] (in pixels), border-clamped. */
function warp(b: GraphBuilder, image: Value, flow: Value, grid: ReturnType<typeof warpGrid>): Value {
  const gx = b.add(grid.baseX, b.div(b.slice(flow, [0], [1], [1]), grid.halfW));
  const gy = b.add(grid.baseY, b.div(b.slice(flow, [1], [2], [1]), grid.halfH));
  return b.gridSampleBorder(image, b.transpose(b.concat([gx, gy], 1), [0, 2, 3, 1]));
}

/** Both frames of each item [N, 3, H, W] and their Head features [N, featureChannels, H, W]. */
interface FramePair {
  img0: Value;
  img1: Value;
  f0: Value;
  f1: Value;
}

/**
 * IFNet.forward for inference from the frames, their features and timestep [N]: the blend of
 * both frames warped to each item's timestep, [N, 3, H, W].
 */
function ifNet(b: GraphBuilder, cfg: RifeConfig, { img0, img1, f0, f1 }: FramePair, t: Value): Value {
  if (cfg.blockWidths.length !== RIFE_SCALES.length) throw new Error(`RIFE 4.25 has ${RIFE_SCALES.length} flow blocks, the config lists ${cfg.blockWidths.length}`);
  // (x[:, :1] * 0 + 1) * timestep: one plane per item holding its time.
  const plane = b.expand(b.reshape(t, [-1, 1, 1, 1]), b.shapeOf([b.dim(img0, 0), 1, b.dim(img0, 2), b.dim(img0, 3)]));
  const grid = warpGrid(b, img0);
  let out = ifBlock(b, b.concat([img0, img1, f0, f1, plane], 1), null, 'block0', cfg.blockWidths[0]!, RIFE_SCALES[0]);
  let flow = out.flow;
  let mask = out.mask;
  let warped0 = warp(b, img0, b.slice(flow, [0], [2], [1]), grid);
  let warped1 = warp(b, img1, b.slice(flow, [2], [4], [1]), grid);
  for (let i = 1; i < RIFE_SCALES.length; i++) {
    const wf0 = warp(b, f0, b.slice(flow, [0], [2], [1]), grid);
    const wf1 = warp(b, f1, b.slice(flow, [2], [4], [1]), grid);
    out = ifBlock(b, b.concat([warped0, warped1, wf0, wf1, plane, mask, out.features], 1), flow, `block${i}`, cfg.blockWidths[i]!, RIFE_SCALES[i]!);
    flow = b.add(flow, out.flow);
    mask = out.mask;
    warped0 = warp(b, img0, b.slice(flow, [0], [2], [1]), grid);
    warped1 = warp(b, img1, b.slice(flow, [2], [4], [1]), grid);
  }
  const m = b.sigmoid(mask);
  return b.add(b.mul(warped0, m), b.mul(warped1, b.sub(b.scalar(1, m), m)));
}

/** The tensor form (RIFE_CONTRACT): IFNet as the reference runs it, on frames already in [0, 1] and padded. */
export function buildRife(b: GraphBuilder, cfg: RifeConfig): void {
  const { img0, img1, timestep } = declareInputs(b, RIFE_CONTRACT);
  declareOutput(b, RIFE_CONTRACT, 'frame', ifNet(b, cfg, { img0, img1, f0: head(b, img0, cfg), f1: head(b, img1, cfg) }, timestep));
}

/**
 * The video form (RIFE_VIDEO_CONTRACT): inference_video.py's steps around IFNet, in the graph.
 * The frames go in as bytes [2, H, W, 3], to [0, 1] NCHW, zero-padded right and below to
 * multiples of 128, each (with its features) repeated over the batch of timesteps; the frames
 * between come out cropped back to H×W as bytes [N, H, W, 3], truncated as the reference's
 * `(mid * 255).byte()`.
 */
export function buildRifeVideo(b: GraphBuilder, cfg: RifeConfig): void {
  const { frames, timestep } = declareInputs(b, RIFE_VIDEO_CONTRACT);
  const [height, width] = [b.dim(frames, 1), b.dim(frames, 2)];
  // Transposed while still bytes (a quarter of the traffic of floats). A division rather than a
  // multiplication by 1/255: float32 x / 255 is exactly what JavaScript's `byte / 255` stored in
  // a Float32Array gives, so both forms see the same inputs bit for bit.
  const unit = b.div(b.cast(b.transpose(frames, [0, 3, 1, 2]), 'float32'), 255);
  const padding = (side: Value) => b.sub(b.mul(b.div(b.add(side, RIFE_PAD_MULTIPLE - 1), RIFE_PAD_MULTIPLE), RIFE_PAD_MULTIPLE), side);
  const padded = b.pad(unit, [0, 0, 0, 0, 0, 0, padding(height), padding(width)]);
  // Head's features depend on the frame alone, not on the time: made once per frame, then repeated as the frames are.
  const features = head(b, padded, cfg);
  const batch = b.shapeOf([b.dim(timestep, 0), 1, 1, 1]);
  const item = (x: Value, i: number) => b.expand(b.slice(x, [i], [i + 1], [0]), batch);
  const frame = ifNet(b, cfg, { img0: item(padded, 0), img1: item(padded, 1), f0: item(features, 0), f1: item(features, 1) }, timestep);
  const zero = b.ints([0]);
  const cropped = b.sliceAt(b.sliceAt(frame, zero, height, 2), zero, width, 3);
  // Clamped, then truncated as torch's .byte() (Floor: on values ≥ 0 it is truncation, and it
  // leaves nothing to how a runtime's Cast converts fractions). Round (halves to even) would be
  // up to 1 higher on every value whose fraction is ½ or more. What remains of a difference from
  // JavaScript's Math.trunc(v * 255): the product is rounded to float32 here and to a double
  // there, so where v·255 lies within float32 rounding below an integer (1 ulp, about 1e-5 at
  // 255) this gives that integer and JavaScript one less: at most 1, on rare values.
  const bytes = b.cast(b.floor(b.clip(b.mul(cropped, 255), 0, 255)), 'uint8');
  declareOutput(b, RIFE_VIDEO_CONTRACT, 'between', b.transpose(bytes, [0, 2, 3, 1]));
}
