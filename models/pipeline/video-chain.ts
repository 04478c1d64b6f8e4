// One job's video from SVD clips and the frame interpolator: `extend` segments, each conditioned
// on the last frame of the one before (at the job's size) and joined sharing that frame once
// (N segments of F frames: N·F − (N − 1)), then `interpolate` − 1 new frames between each pair
// ((F − 1)·K + 1) at K times the fps.
import { MAX_SEED, type GenerationSettings } from '../../common/settings.js';
import type { ChainProgress } from '../../common/progress.js';
import { INSTALL_INTERPOLATOR_COMMAND } from '../../common/video-chain.js';
import type { FrameInterpolator, RgbFrames } from './interpolate.js';
import type { GenerateOptions, GenerateResult, SvdPipeline } from './pipeline.js';
import type { RgbImage } from './prepare-image.js';
import { randomSeed } from './random.js';

/** Segment k's seed: the job's for the first, then steps of the golden ratio's 32-bit fraction (apart from the seeds variations use, seed + 1, …). */
export function segmentSeed(seed: number, k: number): number {
  return (seed + k * 0x9e3779b9) % (MAX_SEED + 1);
}

export interface ChainOptions extends Omit<GenerateOptions, 'onProgress'> {
  onProgress?: (e: ChainProgress) => void;
  /** Needed when settings.interpolate > 1. */
  interpolator?: FrameInterpolator;
}

export interface ChainResult extends RgbFrames {
  fps: number;
  /** The first segment's seed (the job's). */
  seed: number;
  /** Each segment's seed, in order. */
  seeds: number[];
  provider: GenerateResult['provider'];
  dtype: GenerateResult['dtype'];
  /** [F, H, W, 3] in [0, 1] before 8-bit conversion: a single segment without interpolation only (the reference replay). */
  frames?: Float32Array;
  timings: { totalMs: number; interpolateMs: number };
}

export async function generateChain(pipeline: SvdPipeline, image: RgbImage, settings: GenerationSettings, opts: ChainOptions = {}): Promise<ChainResult> {
  const started = performance.now();
  if (settings.interpolate > 1 && !opts.interpolator) throw new Error(`interpolate > 1 needs a frame interpolator (${INSTALL_INTERPOLATOR_COMMAND})`);
  const segments = settings.extend;
  // The whole video is planned before its first segment: a chain too long for this machine's
  // memory is refused before anything runs (each segment is planned again as it starts).
  if (segments > 1 || settings.interpolate > 1) pipeline.planJob({ ...settings, width: image.width, height: image.height });
  const seed = settings.seed ?? randomSeed();
  const seeds = Array.from({ length: segments }, (_, k) => segmentSeed(seed, k));
  const frameBytes = image.width * image.height * 3;
  const parts: Uint8Array[] = [];
  let conditioning = image;
  let last: GenerateResult | undefined;
  const single = segments === 1 && settings.interpolate === 1;
  for (let k = 0; k < segments; k++) {
    const tag = segments > 1 ? { segment: k + 1, segments } : {};
    last = await pipeline.generate(
      conditioning,
      { ...settings, seed: seeds[k] },
      {
        ...opts,
        // Float frames are returned for a single clip only (below): no segment of a chain fetches them.
        floatFrames: single && (opts.floatFrames ?? true),
        // Replayed noise is for one clip: later segments draw their own from their seeds.
        noise: k === 0 ? opts.noise : undefined,
        onProgress: (e) => {
          if (e.stage !== 'done') opts.onProgress?.({ ...e, ...tag });
        },
      },
    );
    // The shared frame is kept once: the end of segment k, which segment k + 1 started from.
    parts.push(k === 0 ? last.rgb : last.rgb.subarray(frameBytes));
    conditioning = { data: last.rgb.slice((last.frameCount - 1) * frameBytes), width: image.width, height: image.height };
  }
  const joined = parts.length === 1 ? parts[0]! : concatBytes(parts);
  let video: RgbFrames = { rgb: joined, frameCount: joined.length / frameBytes, width: image.width, height: image.height };
  const interpolateStart = performance.now();
  if (settings.interpolate > 1) video = await opts.interpolator!.interpolate(video, settings.interpolate, { signal: opts.signal, onProgress: opts.onProgress });
  return {
    ...video,
    fps: settings.fps * settings.interpolate,
    seed,
    seeds,
    provider: last!.provider,
    dtype: last!.dtype,
    ...(single && last!.frames ? { frames: last!.frames } : {}),
    timings: { totalMs: performance.now() - started, interpolateMs: performance.now() - interpolateStart },
  };
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
