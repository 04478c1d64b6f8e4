// The CLIP preprocessing against the loops it was first written as (kept here as the reference):
// every value bit for bit, on sizes where the blur reaches past both borders, odd sizes, the
// full-size video frames both ways, a size no multiple of the output's, and upscaling.
import { describe, expect, it } from 'vitest';
import { clipPixelValues, clipPixelValuesOf, type Planar, resizeWithAntialiasing, rgbToSigned } from '../models/pipeline/clip-preprocess.js';
import { NormalGenerator } from '../models/pipeline/random.js';

const f = Math.fround;
const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

// ---- The reference: clip-preprocess.ts as first written, one value at a time. ----

function refRgbToSigned(rgb: Uint8Array, width: number, height: number): Planar {
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) data[c * plane + i] = f(f(rgb[i * 3 + c]! / 255) * 2 - 1);
  return { data, channels: 3, height, width };
}

function refGaussianKernel(size: number, sigma: number): Float32Array {
  const k = new Float32Array(size);
  const s2 = f(2 * f(sigma * sigma));
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const x = i - Math.floor(size / 2) + (size % 2 === 0 ? 0.5 : 0);
    k[i] = f(Math.exp(f(-f(x * x) / s2)));
    sum += k[i]!;
  }
  for (let i = 0; i < size; i++) k[i] = f(k[i]! / f(sum));
  return k;
}

function refReflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - j;
  return j;
}

function refBlurAxis(src: Planar, kernel: Float32Array, horizontal: boolean): Planar {
  const { channels, height, width } = src;
  const out = new Float32Array(src.data.length);
  const half = (kernel.length - 1) / 2;
  for (let c = 0; c < channels; c++) {
    const base = c * height * width;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let acc = 0;
        for (let t = 0; t < kernel.length; t++) {
          const sx = horizontal ? refReflect(x + t - half, width) : x;
          const sy = horizontal ? y : refReflect(y + t - half, height);
          acc += kernel[t]! * src.data[base + sy * width + sx]!;
        }
        out[base + y * width + x] = acc;
      }
    }
  }
  return { ...src, data: out };
}

function refCubicWeights(t: number): [number, number, number, number] {
  const A = -0.75;
  const near = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const far = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

function refBicubicAlignCorners(src: Planar, outH: number, outW: number): Planar {
  const { channels, height: inH, width: inW } = src;
  const out = new Float32Array(channels * outH * outW);
  const scaleY = outH > 1 ? f((inH - 1) / (outH - 1)) : 0;
  const scaleX = outW > 1 ? f((inW - 1) / (outW - 1)) : 0;
  const clampY = (i: number) => Math.min(Math.max(i, 0), inH - 1);
  const clampX = (i: number) => Math.min(Math.max(i, 0), inW - 1);
  const xs = Array.from({ length: outW }, (_, x) => {
    const real = f(scaleX * x);
    const i = Math.floor(real);
    return { i, w: refCubicWeights(f(real - i)) };
  });
  for (let c = 0; c < channels; c++) {
    const base = c * inH * inW;
    for (let y = 0; y < outH; y++) {
      const realY = f(scaleY * y);
      const iy = Math.floor(realY);
      const wy = refCubicWeights(f(realY - iy));
      for (let x = 0; x < outW; x++) {
        const { i: ix, w: wx } = xs[x]!;
        let acc = 0;
        for (let m = 0; m < 4; m++) {
          const row = base + clampY(iy - 1 + m) * inW;
          let r = 0;
          for (let n = 0; n < 4; n++) r += wx[n]! * src.data[row + clampX(ix - 1 + n)]!;
          acc += wy[m]! * r;
        }
        out[c * outH * outW + y * outW + x] = acc;
      }
    }
  }
  return { channels, height: outH, width: outW, data: out };
}

function refResizeWithAntialiasing(src: Planar, outH: number, outW: number): Planar {
  const sigmaY = Math.max((src.height / outH - 1) / 2, 0.001);
  const sigmaX = Math.max((src.width / outW - 1) / 2, 0.001);
  const odd = (k: number) => (k % 2 === 0 ? k + 1 : k);
  const kY = odd(Math.trunc(Math.max(2 * 2 * sigmaY, 3)));
  const kX = odd(Math.trunc(Math.max(2 * 2 * sigmaX, 3)));
  const blurred = refBlurAxis(refBlurAxis(src, refGaussianKernel(kX, f(sigmaX)), true), refGaussianKernel(kY, f(sigmaY)), false);
  return refBicubicAlignCorners(blurred, outH, outW);
}

function refClipPixelValues(rgb: Uint8Array, width: number, height: number, size: number, mean: readonly number[], std: readonly number[]): Float32Array {
  const resized = refResizeWithAntialiasing(refRgbToSigned(rgb, width, height), size, size);
  const plane = size * size;
  const out = resized.data;
  for (let c = 0; c < 3; c++) {
    const m = f(mean[c]!);
    const s = f(std[c]!);
    for (let i = 0; i < plane; i++) out[c * plane + i] = f(f(f(out[c * plane + i]! + 1) / 2) - m) / s;
  }
  return out;
}

// ---- The comparisons. ----

/** An image with every 8-bit value likely, the extremes included, and smooth parts (where sums cancel). */
function testImage(width: number, height: number, seed: number): Uint8Array {
  const rng = new NormalGenerator(seed);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < rgb.length; i++) {
    const x = Math.floor(i / 3) % width;
    const u = rng.nextUint32();
    // A quarter noise, a quarter flat at the extremes, half a ramp.
    rgb[i] = u % 4 === 0 ? u >>> 24 : u % 4 === 1 ? (u & 16 ? 255 : 0) : Math.round((x / Math.max(width - 1, 1)) * 255);
  }
  return rgb;
}

/** The index of the first value whose bits differ (Object.is: -0 and +0 differ, NaN equals NaN), or -1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

const cases: [width: number, height: number, outH: number, outW: number][] = [
  [2, 2, 1, 1], // the smallest the 3-tap blur takes
  [5, 3, 1, 1], // every tap of every pixel reflected, past both borders
  [9, 7, 2, 3],
  [37, 23, 11, 7], // odd sizes, odd factors
  [7, 200, 3, 5], // down along one axis, up along the other
  [300, 40, 224, 224],
  [64, 64, 224, 224], // upscaling: the narrowest blur
  [128, 64, 224, 224], // the fixture's size
  [1000, 333, 224, 224], // no multiple of the output's size
  [1024, 576, 224, 224], // SVD-XT's frames, both ways
  [576, 1024, 224, 224],
];

describe('CLIP preprocessing, bit for bit as the first loops', () => {
  for (const [width, height, outH, outW] of cases) {
    it(`${width}x${height} → ${outW}x${outH}`, () => {
      const rgb = testImage(width, height, width * 7 + height);
      const signed = rgbToSigned(rgb, width, height);
      expect(firstDifference(signed.data, refRgbToSigned(rgb, width, height).data)).toBe(-1);
      const got = resizeWithAntialiasing(signed, outH, outW);
      const ref = refResizeWithAntialiasing(refRgbToSigned(rgb, width, height), outH, outW);
      expect([got.channels, got.height, got.width]).toEqual([3, outH, outW]);
      expect(firstDifference(got.data, ref.data)).toBe(-1);
      if (outH === outW) expect(firstDifference(clipPixelValues(rgb, width, height, outH, CLIP_MEAN, CLIP_STD), refClipPixelValues(rgb, width, height, outH, CLIP_MEAN, CLIP_STD))).toBe(-1);
    });
  }

  it('maps every 8-bit value as the first loop did', () => {
    const rgb = Uint8Array.from({ length: 256 * 3 }, (_, i) => i % 256);
    expect(firstDifference(rgbToSigned(rgb, 256, 1).data, refRgbToSigned(rgb, 256, 1).data)).toBe(-1);
  });

  it('leaves the [-1, 1] image as it was (the pipeline makes the VAE input from it next)', () => {
    const rgb = testImage(40, 30, 1);
    const src = rgbToSigned(rgb, 40, 30);
    const copy = Float32Array.from(src.data);
    const fromSigned = clipPixelValuesOf(src, 8, CLIP_MEAN, CLIP_STD);
    expect(firstDifference(src.data, copy)).toBe(-1);
    expect(firstDifference(fromSigned, refClipPixelValues(rgb, 40, 30, 8, CLIP_MEAN, CLIP_STD))).toBe(-1);
  });

  it('refuses an image too small for its blur', () => {
    expect(() => resizeWithAntialiasing(rgbToSigned(new Uint8Array(4 * 1 * 3), 4, 1), 1, 1)).toThrow(/too small for the CLIP antialiasing filter/);
  });
});
