// The interpolator's video form (bytes in, bytes out, padding and cropping inside the graph)
// against its tensor form fed and read the way FrameInterpolator did before: the frames
// converted to padded float planes in JavaScript, the result truncated back to bytes. Demo
// interpolator (random weights), CPU provider, at a size that needs padding on both axes.
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInterpolatorFile, convertInterpolator } from '../models/interpolator.js';
import { RIFE_PAD_MULTIPLE } from '../models/networks/rife.js';
import { DEMO_INTERPOLATOR } from '../models/paths.js';
import { FrameInterpolator, type RgbFrames } from '../models/pipeline/interpolate.js';
import { GenerationCancelled } from '../models/pipeline/pipeline.js';
import { tempDir } from './helpers.js';

// 72x48 pads to 128x128: 56 columns and 80 rows of zeros.
const [W, H, F] = [72, 48, 3];
const [PW, PH] = [Math.ceil(W / RIFE_PAD_MULTIPLE) * RIFE_PAD_MULTIPLE, Math.ceil(H / RIFE_PAD_MULTIPLE) * RIFE_PAD_MULTIPLE];
const FRAME_BYTES = W * H * 3;

/** F frames of a pattern that moves from frame to frame, with seeded noise so no two bytes are related simply. */
function movingFrames(): Uint8Array {
  const rgb = new Uint8Array(F * FRAME_BYTES);
  let seed = 7;
  const noise = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed / 2 ** 32 - 0.5) * 40;
  };
  for (let f = 0; f < F; f++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        for (let c = 0; c < 3; c++) rgb[f * FRAME_BYTES + (y * W + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(128 + 90 * Math.sin((x + 4 * f) / (6 + c) + y / 9) + noise())));
      }
    }
  }
  return rgb;
}

/** Frame `index` as [3, PH, PW] in [0, 1], zeros right and below (the JavaScript conversion the video form replaces). */
function paddedPlanes(rgb: Uint8Array, index: number): Float32Array {
  const out = new Float32Array(3 * PH * PW);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < 3; c++) out[c * PH * PW + y * PW + x] = rgb[index * FRAME_BYTES + (y * W + x) * 3 + c]! / 255;
    }
  }
  return out;
}

/** Item `item` of [N, 3, PH, PW] → the top-left H×W as RGB bytes, clamped and truncated (the old toRgb). */
function planesToRgb(planes: Float32Array, item: number): Uint8Array {
  const out = new Uint8Array(FRAME_BYTES);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < 3; c++) out[(y * W + x) * 3 + c] = Math.min(255, Math.max(0, Math.trunc(planes[(item * 3 + c) * PH * PW + y * PW + x]! * 255)));
    }
  }
  return out;
}

/** Largest |a − b| and how many bytes differ at all. */
function byteDiff(a: Uint8Array, b: Uint8Array): { max: number; differing: number } {
  expect(a.length).toBe(b.length);
  let max = 0;
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    max = Math.max(max, d);
    if (d) differing++;
  }
  return { max, differing };
}

const dir = tempDir('rife-video-');
const rgb = movingFrames();
let tensorForm: ort.InferenceSession;
let videoForm: ort.InferenceSession;

/** The frames between `pair` and `pair` + 1 at `times`, by the tensor form fed and read as before. */
async function theOldWay(pair: number, times: number[]): Promise<Uint8Array[]> {
  const n = times.length;
  const [a, b] = [paddedPlanes(rgb, pair), paddedPlanes(rgb, pair + 1)];
  const [img0, img1] = [new Float32Array(n * a.length), new Float32Array(n * b.length)];
  for (let j = 0; j < n; j++) {
    img0.set(a, j * a.length);
    img1.set(b, j * b.length);
  }
  const dims = [n, 3, PH, PW];
  const { frame } = await tensorForm.run({
    img0: new ort.Tensor('float32', img0, dims),
    img1: new ort.Tensor('float32', img1, dims),
    timestep: new ort.Tensor('float32', Float32Array.from(times), [n]),
  });
  return times.map((_, j) => planesToRgb(frame!.data as Float32Array, j));
}

beforeAll(async () => {
  buildInterpolatorFile(DEMO_INTERPOLATOR, join(dir, 'tensors.onnx'), 'tensors');
  buildInterpolatorFile(DEMO_INTERPOLATOR, join(dir, 'video.onnx'), 'video');
  tensorForm = await ort.InferenceSession.create(join(dir, 'tensors.onnx'), { executionProviders: ['cpu'] });
  videoForm = await ort.InferenceSession.create(join(dir, 'video.onnx'), { executionProviders: ['cpu'] });
});
afterAll(async () => {
  await tensorForm?.release();
  await videoForm?.release();
});

describe('RIFE video form: bytes in, bytes out', () => {
  it('gives the tensor form’s frames as the JavaScript conversion did, within 1 per byte, padding and cropping in the graph', async () => {
    expect([PW, PH]).toEqual([128, 128]);
    const times = [0.25, 0.5, 0.75];
    const { between } = await videoForm.run({
      frames: new ort.Tensor('uint8', rgb.subarray(0, 2 * FRAME_BYTES), [2, H, W, 3]),
      timestep: new ort.Tensor('float32', Float32Array.from(times), [3]),
    });
    expect(between!.type).toBe('uint8');
    expect(between!.dims).toEqual([3, H, W, 3]);
    const bytes = between!.data as Uint8Array;
    const expected = await theOldWay(0, times);
    let differing = 0;
    for (let j = 0; j < times.length; j++) {
      const frame = bytes.subarray(j * FRAME_BYTES, (j + 1) * FRAME_BYTES);
      const d = byteDiff(frame, expected[j]!);
      expect(d.max).toBeLessThanOrEqual(1);
      differing += d.differing;
      // A real new frame: neither input, and not flat or saturated.
      expect(byteDiff(frame, rgb.subarray(0, FRAME_BYTES)).max).toBeGreaterThan(1);
      expect(byteDiff(frame, rgb.subarray(FRAME_BYTES, 2 * FRAME_BYTES)).max).toBeGreaterThan(1);
      expect(new Set(frame).size).toBeGreaterThan(50);
    }
    // Only the rare float32-versus-double rounding of v·255 just below an integer may differ.
    expect(differing).toBeLessThan(bytes.length / 100);
    // The times are the batch: each item is its own frame.
    expect(byteDiff(bytes.subarray(0, FRAME_BYTES), bytes.subarray(2 * FRAME_BYTES)).max).toBeGreaterThan(1);
  });
});

describe('FrameInterpolator on the video form', () => {
  let interpolator: FrameInterpolator;
  beforeAll(async () => {
    interpolator = await FrameInterpolator.load(DEMO_INTERPOLATOR, { provider: 'cpu', cacheDir: join(dir, 'cache') });
  });
  afterAll(async () => {
    await interpolator?.release();
  });

  it('puts K − 1 frames between each pair, in order, the originals unchanged, reading each pair in place', async () => {
    // The frames at an offset inside a larger buffer, as a view of a decoded video would be.
    const backing = new Uint8Array(rgb.length + 5);
    backing.set(rgb, 5);
    const frames: RgbFrames = { rgb: backing.subarray(5), frameCount: F, width: W, height: H };
    const progress: string[] = [];
    const out = await interpolator.interpolate(frames, 4, { onProgress: (e) => progress.push(`${e.stage} ${e.pair}/${e.pairs}`) });
    expect(out).toMatchObject({ frameCount: 9, width: W, height: H });
    expect(out.rgb.length).toBe(9 * FRAME_BYTES);
    expect(progress).toEqual(['interpolating 1/2', 'interpolating 2/2']);
    const at = (k: number) => out.rgb.subarray(k * FRAME_BYTES, (k + 1) * FRAME_BYTES);
    for (let f = 0; f < F; f++) expect(byteDiff(at(4 * f), rgb.subarray(f * FRAME_BYTES, (f + 1) * FRAME_BYTES)).max).toBe(0);
    for (let pair = 0; pair < F - 1; pair++) {
      const expected = await theOldWay(pair, [0.25, 0.5, 0.75]);
      for (let j = 0; j < 3; j++) expect(byteDiff(at(4 * pair + 1 + j), expected[j]!).max).toBeLessThanOrEqual(1);
    }
    const twice = await interpolator.interpolate(frames, 2);
    expect(twice.frameCount).toBe(5);
    expect(byteDiff(twice.rgb.subarray(FRAME_BYTES, 2 * FRAME_BYTES), at(2)).max).toBe(0);
  });

  it('stops between pairs when cancelled', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const run = interpolator.interpolate({ rgb, frameCount: F, width: W, height: H }, 2, {
      signal: controller.signal,
      onProgress: (e) => {
        seen.push(e.pair);
        controller.abort();
      },
    });
    await expect(run).rejects.toBeInstanceOf(GenerationCancelled);
    expect(seen).toEqual([1]);
  });

  it('is cached apart from the tensor form, and refuses to open a tensor-form graph', async () => {
    const cache = join(dir, 'cache');
    const { path, built } = convertInterpolator(DEMO_INTERPOLATOR, cache);
    expect(built).toBe(false);
    expect(path).toMatch(/rife-video-[0-9a-f]{24}[/\\]rife\.onnx$/);
    await expect(FrameInterpolator.open(join(dir, 'tensors.onnx'), { provider: 'cpu' })).rejects.toThrow(
      /interpolator: the graph file takes img0, img1, timestep .*declares frames, timestep → between/,
    );
  });
});
