// Frame interpolation after decoding, as Practical-RIFE's inference_video.py does it: K − 1 new
// frames between each pair at times 1/K … (K − 1)/K, the frames padded with zeros to multiples of
// 128 (its `max(128, 128 / scale)` for scale 1) and cropped back, the result to 8 bits by
// truncation (its `(mid * 255).byte()`). F frames become (F − 1)·K + 1.
import * as ort from 'onnxruntime-node';
import { interpolatedCount, interpolationFactors } from '../../common/video-chain.js';
import { convertInterpolator } from '../interpolator.js';
import { GenerationCancelled } from './pipeline.js';
import { sessionOptions, type Provider } from '../runtime/runtime.js';

/** 8-bit RGB frames [F, H, W, 3]. */
export interface RgbFrames {
  rgb: Uint8Array;
  frameCount: number;
  width: number;
  height: number;
}

/** The reference's padding for scale 1. */
const PAD_MULTIPLE = 128;

export interface InterpolateOptions {
  signal?: AbortSignal;
  /** After each pair of input frames. */
  onProgress?: (e: { stage: 'interpolating'; pair: number; pairs: number }) => void;
}

export class FrameInterpolator {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly provider: Provider,
  ) {}

  /** Builds (once, cached) and opens the interpolator in `dir` on `provider`. */
  static async load(dir: string, opts: { provider: Provider; cacheDir?: string; deviceId?: number }): Promise<FrameInterpolator> {
    return FrameInterpolator.open(convertInterpolator(dir, opts.cacheDir).path, opts);
  }

  /** Opens an already-built graph (the benchmark builds one with random full-size weights). */
  static async open(onnxPath: string, opts: { provider: Provider; deviceId?: number }): Promise<FrameInterpolator> {
    const session = await ort.InferenceSession.create(onnxPath, sessionOptions(opts.provider, { deviceId: opts.deviceId }));
    return new FrameInterpolator(session, opts.provider);
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  /** `frames` with `factor` − 1 new frames between each pair; factor 1 returns them as they are. */
  async interpolate(frames: RgbFrames, factor: number, opts: InterpolateOptions = {}): Promise<RgbFrames> {
    if (!(interpolationFactors as readonly number[]).includes(factor)) throw new Error(`interpolate must be one of ${interpolationFactors.join(', ')}, got ${factor}`);
    const { frameCount: F, width: W, height: H } = frames;
    if (factor === 1 || F < 2) return frames;
    const [PH, PW] = [Math.ceil(H / PAD_MULTIPLE) * PAD_MULTIPLE, Math.ceil(W / PAD_MULTIPLE) * PAD_MULTIPLE];
    const frameBytes = H * W * 3;
    const total = interpolatedCount(F, factor);
    const out = new Uint8Array(total * frameBytes);
    const between = factor - 1;
    const timestep = Float32Array.from({ length: between }, (_, j) => (j + 1) / factor);
    let next = padded(frames.rgb, 0, W, H, PW, PH);
    for (let i = 0; i < F - 1; i++) {
      if (opts.signal?.aborted) throw new GenerationCancelled();
      const img0 = next;
      next = padded(frames.rgb, i + 1, W, H, PW, PH);
      const planeSize = 3 * PH * PW;
      const batch0 = new Float32Array(between * planeSize);
      const batch1 = new Float32Array(between * planeSize);
      for (let j = 0; j < between; j++) {
        batch0.set(img0, j * planeSize);
        batch1.set(next, j * planeSize);
      }
      const dims = [between, 3, PH, PW];
      const result = await this.session.run({
        img0: new ort.Tensor('float32', batch0, dims),
        img1: new ort.Tensor('float32', batch1, dims),
        timestep: new ort.Tensor('float32', timestep, [between]),
      });
      const mids = result.frame!.data as Float32Array;
      const base = i * factor;
      out.set(frames.rgb.subarray(i * frameBytes, (i + 1) * frameBytes), base * frameBytes);
      for (let j = 0; j < between; j++) toRgb(mids, j * planeSize, W, H, PW, PH, out, (base + 1 + j) * frameBytes);
      opts.onProgress?.({ stage: 'interpolating', pair: i + 1, pairs: F - 1 });
    }
    out.set(frames.rgb.subarray((F - 1) * frameBytes), (total - 1) * frameBytes);
    return { rgb: out, frameCount: total, width: W, height: H };
  }
}

/** Frame `index` of [F, H, W, 3] bytes as [3, PH, PW] in [0, 1], zeros right and below. */
function padded(rgb: Uint8Array, index: number, W: number, H: number, PW: number, PH: number): Float32Array {
  const out = new Float32Array(3 * PH * PW);
  const src = index * H * W * 3;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const s = src + (y * W + x) * 3;
      const d = y * PW + x;
      out[d] = rgb[s]! / 255;
      out[PH * PW + d] = rgb[s + 1]! / 255;
      out[2 * PH * PW + d] = rgb[s + 2]! / 255;
    }
  }
  return out;
}

/** [3, PH, PW] at `from` → the top-left H×W as RGB bytes at `at`, truncated as torch's .byte() (clamped first). */
function toRgb(planes: Float32Array, from: number, W: number, H: number, PW: number, PH: number, out: Uint8Array, at: number): void {
  const plane = PH * PW;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const s = from + y * PW + x;
      const d = at + (y * W + x) * 3;
      for (let c = 0; c < 3; c++) out[d + c] = Math.min(255, Math.max(0, Math.trunc(planes[s + c * plane]! * 255)));
    }
  }
}
