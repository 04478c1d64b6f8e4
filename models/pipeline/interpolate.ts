// Frame interpolation after decoding, as Practical-RIFE's inference_video.py does it: K − 1 new
// frames between each pair at times 1/K … (K − 1)/K. The interpolator's video-form graph does the
// rest of that script's work (to [0, 1], padding to multiples of 128, cropping, truncation to 8
// bits), so here each pair is a view of the stored frames and each result a copy into the video.
// F frames become (F − 1)·K + 1.
import * as ort from 'onnxruntime-node';
import { interpolatedCount, interpolationFactors } from '../../common/video-chain.js';
import { convertInterpolator } from '../interpolator.js';
import { checkFeeds, checkSessionNames } from '../networks/contracts.js';
import { RIFE_VIDEO_CONTRACT } from '../networks/rife.js';
import { GenerationCancelled } from './pipeline.js';
import { sessionOptions, type Provider } from '../runtime/runtime.js';

/** 8-bit RGB frames [F, H, W, 3]. */
export interface RgbFrames {
  rgb: Uint8Array;
  frameCount: number;
  width: number;
  height: number;
}

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

  /** Opens an already-built video-form graph (the benchmark builds one with random full-size weights). */
  static async open(onnxPath: string, opts: { provider: Provider; deviceId?: number }): Promise<FrameInterpolator> {
    const session = await ort.InferenceSession.create(onnxPath, sessionOptions(opts.provider, { deviceId: opts.deviceId }));
    try {
      // A graph of the tensor form, or built by an older version, fails here by name.
      checkSessionNames('interpolator', RIFE_VIDEO_CONTRACT, session);
    } catch (err) {
      await session.release();
      throw err;
    }
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
    const frameBytes = H * W * 3;
    const total = interpolatedCount(F, factor);
    const out = new Uint8Array(total * frameBytes);
    const between = factor - 1;
    const timestep = new ort.Tensor(
      'float32',
      Float32Array.from({ length: between }, (_, j) => (j + 1) / factor),
      [between],
    );
    for (let i = 0; i < F - 1; i++) {
      if (opts.signal?.aborted) throw new GenerationCancelled();
      // Frames i and i + 1 are adjacent in the video: one view of both, nothing copied.
      const feeds = { frames: new ort.Tensor('uint8', frames.rgb.subarray(i * frameBytes, (i + 2) * frameBytes), [2, H, W, 3]), timestep };
      checkFeeds('interpolator', RIFE_VIDEO_CONTRACT, feeds);
      const result = await this.session.run(feeds);
      const base = i * factor;
      out.set(frames.rgb.subarray(i * frameBytes, (i + 1) * frameBytes), base * frameBytes);
      out.set(result.between!.data as Uint8Array, (base + 1) * frameBytes);
      opts.onProgress?.({ stage: 'interpolating', pair: i + 1, pairs: F - 1 });
    }
    out.set(frames.rgb.subarray((F - 1) * frameBytes), (total - 1) * frameBytes);
    return { rgb: out, frameCount: total, width: W, height: H };
  }
}
