// The reference pipeline's CLIP input: [-1,1] → antialiasing Gaussian blur (kornia port,
// reflect padding, horizontal then vertical) → bicubic resize (a = −0.75, align_corners) to the
// encoder's size → [0,1] → CLIP mean/std. Arrays are planar float32 [3, H, W].

const f = Math.fround;

export interface Planar {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** Each 8-bit value's float32 in [-1, 1], made once: a pixel is then one lookup. */
const SIGNED = Float32Array.from({ length: 256 }, (_, v) => f(f(v / 255) * 2 - 1));

/** Interleaved 8-bit RGB [H, W, 3] → planar float32 in [-1, 1]. */
export function rgbToSigned(rgb: Uint8Array, width: number, height: number): Planar {
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const out = data.subarray(c * plane, (c + 1) * plane);
    for (let i = 0, j = c; i < plane; i++, j += 3) out[i] = SIGNED[rgb[j]!]!;
  }
  return { data, channels: 3, height, width };
}

function gaussianKernel(size: number, sigma: number): Float32Array {
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

/** torch's reflect padding: mirror without repeating the edge sample. */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - j;
  return j;
}

/**
 * For each of the n + 2·half positions of a reflect-padded axis, the sample it reads, times
 * `stride`: the taps of output i are entries i … i + 2·half.
 */
function paddedIndex(n: number, half: number, stride: number): Int32Array {
  return Int32Array.from({ length: n + 2 * half }, (_, p) => reflect(p - half, n) * stride);
}

// Both passes sum each output's taps in float64 from 0, first tap first, and round the sum to
// float32 once: the sums the port was checked against the reference's tensors with (another
// order changes last bits; test/clip-preprocess.test.ts keeps that first loop and compares).

/** The blur along rows: each row reflect-padded once, so the taps run without index checks. */
function blurRows(src: Planar, kernel: Float32Array): Planar {
  const { channels, height, width } = src;
  const out = new Float32Array(src.data.length);
  const taps = kernel.length;
  const half = (taps - 1) / 2;
  const k = Float64Array.from(kernel);
  const index = paddedIndex(width, half, 1);
  const padded = new Float64Array(width + 2 * half);
  for (let row = 0; row < channels * height; row++) {
    const at = row * width;
    for (let p = 0; p < padded.length; p++) padded[p] = src.data[at + index[p]!]!;
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let t = 0; t < taps; t++) acc += k[t]! * padded[x + t]!;
      out[at + x] = acc;
    }
  }
  return { ...src, data: out };
}

/** The blur along columns, a row at a time: each tap adds a whole source row to the row's sums. */
function blurColumns(src: Planar, kernel: Float32Array): Planar {
  const { channels, height, width } = src;
  const out = new Float32Array(src.data.length);
  const taps = kernel.length;
  const half = (taps - 1) / 2;
  const rowAt = paddedIndex(height, half, width);
  const acc = new Float64Array(width);
  for (let c = 0; c < channels; c++) {
    const base = c * height * width;
    for (let y = 0; y < height; y++) {
      acc.fill(0);
      for (let t = 0; t < taps; t++) {
        const w = kernel[t]!;
        const from = base + rowAt[y + t]!;
        for (let x = 0; x < width; x++) acc[x]! += w * src.data[from + x]!;
      }
      out.set(acc, base + y * width);
    }
  }
  return { ...src, data: out };
}

function cubicWeights(t: number): [number, number, number, number] {
  const A = -0.75;
  const near = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const far = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/**
 * One axis of the bicubic resize: for each output position, its four source samples (clamped to
 * the edge, times `stride`) and their weights.
 */
function cubicTaps(inN: number, outN: number, stride: number): { at: Int32Array; weight: Float64Array } {
  const scale = outN > 1 ? f((inN - 1) / (outN - 1)) : 0;
  const at = new Int32Array(4 * outN);
  const weight = new Float64Array(4 * outN);
  for (let o = 0; o < outN; o++) {
    const real = f(scale * o);
    const i = Math.floor(real);
    weight.set(cubicWeights(f(real - i)), 4 * o);
    for (let m = 0; m < 4; m++) at[4 * o + m] = Math.min(Math.max(i - 1 + m, 0), inN - 1) * stride;
  }
  return { at, weight };
}

/** torch.nn.functional.interpolate(mode='bicubic', align_corners=True). */
function bicubicAlignCorners(src: Planar, outH: number, outW: number): Planar {
  const { channels, height: inH, width: inW } = src;
  const out = new Float32Array(channels * outH * outW);
  const ys = cubicTaps(inH, outH, inW);
  const xs = cubicTaps(inW, outW, 1);
  const s = src.data;
  for (let c = 0; c < channels; c++) {
    const base = c * inH * inW;
    for (let y = 0; y < outH; y++) {
      const row0 = base + ys.at[4 * y]!;
      const row1 = base + ys.at[4 * y + 1]!;
      const row2 = base + ys.at[4 * y + 2]!;
      const row3 = base + ys.at[4 * y + 3]!;
      const wy0 = ys.weight[4 * y]!;
      const wy1 = ys.weight[4 * y + 1]!;
      const wy2 = ys.weight[4 * y + 2]!;
      const wy3 = ys.weight[4 * y + 3]!;
      const to = (c * outH + y) * outW;
      for (let x = 0; x < outW; x++) {
        const q = 4 * x;
        const x0 = xs.at[q]!;
        const x1 = xs.at[q + 1]!;
        const x2 = xs.at[q + 2]!;
        const x3 = xs.at[q + 3]!;
        const w0 = xs.weight[q]!;
        const w1 = xs.weight[q + 1]!;
        const w2 = xs.weight[q + 2]!;
        const w3 = xs.weight[q + 3]!;
        // Sums from 0 in the reference's order (a sum of -0 terms is +0 there, and so here).
        const r0 = 0 + w0 * s[row0 + x0]! + w1 * s[row0 + x1]! + w2 * s[row0 + x2]! + w3 * s[row0 + x3]!;
        const r1 = 0 + w0 * s[row1 + x0]! + w1 * s[row1 + x1]! + w2 * s[row1 + x2]! + w3 * s[row1 + x3]!;
        const r2 = 0 + w0 * s[row2 + x0]! + w1 * s[row2 + x1]! + w2 * s[row2 + x2]! + w3 * s[row2 + x3]!;
        const r3 = 0 + w0 * s[row3 + x0]! + w1 * s[row3 + x1]! + w2 * s[row3 + x2]! + w3 * s[row3 + x3]!;
        out[to + x] = 0 + wy0 * r0 + wy1 * r1 + wy2 * r2 + wy3 * r3;
      }
    }
  }
  return { channels, height: outH, width: outW, data: out };
}

/** diffusers' `_resize_with_antialiasing` on a [-1,1] planar image. */
export function resizeWithAntialiasing(src: Planar, outH: number, outW: number): Planar {
  const sigmaY = Math.max((src.height / outH - 1) / 2, 0.001);
  const sigmaX = Math.max((src.width / outW - 1) / 2, 0.001);
  const odd = (k: number) => (k % 2 === 0 ? k + 1 : k);
  const kY = odd(Math.trunc(Math.max(2 * 2 * sigmaY, 3)));
  const kX = odd(Math.trunc(Math.max(2 * 2 * sigmaX, 3)));
  if ((kX - 1) / 2 >= src.width || (kY - 1) / 2 >= src.height) {
    throw new RangeError(`image ${src.width}x${src.height} is too small for the CLIP antialiasing filter`);
  }
  const blurred = blurColumns(blurRows(src, gaussianKernel(kX, f(sigmaX))), gaussianKernel(kY, f(sigmaY)));
  return bicubicAlignCorners(blurred, outH, outW);
}

/** Full CLIP preprocessing: 8-bit RGB → [1, 3, size, size] normalised pixel values. */
export function clipPixelValues(rgb: Uint8Array, width: number, height: number, size: number, mean: readonly number[], std: readonly number[]): Float32Array {
  const resized = resizeWithAntialiasing(rgbToSigned(rgb, width, height), size, size);
  const plane = size * size;
  const out = resized.data;
  for (let c = 0; c < 3; c++) {
    const m = f(mean[c]!);
    const s = f(std[c]!);
    for (let i = 0; i < plane; i++) out[c * plane + i] = f(f(f(out[c * plane + i]! + 1) / 2) - m) / s;
  }
  return out;
}
