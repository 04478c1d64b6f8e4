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
 * For each of the n + 2·half positions of a reflect-padded axis, the sample it reads: the taps
 * of output i are entries i … i + 2·half.
 */
function paddedIndex(n: number, half: number): Int32Array {
  return Int32Array.from({ length: n + 2 * half }, (_, p) => reflect(p - half, n));
}

/**
 * A plane's rows made one at a time in increasing order, the last `slots` kept: each stage of
 * the resize reads a few neighbouring rows of the one before, so none needs a whole plane in
 * between (each fresh plane is megabytes of new pages on every job).
 */
class RowWindow {
  private readonly rows: Float32Array[];
  private made = -1;

  constructor(
    width: number,
    private readonly slots: number,
    private readonly make: (r: number, into: Float32Array) => void,
  ) {
    const data = new Float32Array(width * slots);
    this.rows = Array.from({ length: slots }, (_, i) => data.subarray(i * width, (i + 1) * width));
  }

  /** Row r, made (with the rows before it not made yet) when first asked. */
  row(r: number): Float32Array {
    while (this.made < r) {
      this.made++;
      this.make(this.made, this.rows[this.made % this.slots]!);
    }
    if (r <= this.made - this.slots) throw new Error(`row ${r} is no longer kept (row ${this.made} made, ${this.slots} kept)`);
    return this.rows[r % this.slots]!;
  }
}

function cubicWeights(t: number): [number, number, number, number] {
  const A = -0.75;
  const near = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const far = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/** One axis of the bicubic resize: each output position's four source samples (clamped to the edge) and their weights. */
function cubicTaps(inN: number, outN: number): { at: Int32Array; weight: Float64Array } {
  const scale = outN > 1 ? f((inN - 1) / (outN - 1)) : 0;
  const at = new Int32Array(4 * outN);
  const weight = new Float64Array(4 * outN);
  for (let o = 0; o < outN; o++) {
    const real = f(scale * o);
    const i = Math.floor(real);
    weight.set(cubicWeights(f(real - i)), 4 * o);
    for (let m = 0; m < 4; m++) at[4 * o + m] = Math.min(Math.max(i - 1 + m, 0), inN - 1);
  }
  return { at, weight };
}

// Every sum below runs in float64 from 0, first term first, and is rounded to float32 where the
// first loops stored it (the Gaussian blur along rows, then along columns, then the bicubic):
// the values the port was checked against the reference's tensors with. Another order changes
// last bits; test/clip-preprocess.test.ts keeps those loops and compares.

/** Gaussian blur along rows, then columns (reflect padding), then torch's bicubic with align_corners, one plane. */
function blurAndResize(src: Float32Array, width: number, height: number, kX: Float32Array, kY: Float32Array, out: Float32Array, outH: number, outW: number): void {
  const halfX = (kX.length - 1) / 2;
  const halfY = (kY.length - 1) / 2;
  const columnAt = paddedIndex(width, halfX);
  const rowAt = paddedIndex(height, halfY);
  const kx = Float64Array.from(kX);
  const padded = new Float64Array(width + 2 * halfX);
  const acc = new Float64Array(width);

  const alongRows = new RowWindow(width, kY.length, (y, into) => {
    const at = y * width;
    for (let p = 0; p < padded.length; p++) padded[p] = src[at + columnAt[p]!]!;
    // Four outputs at a time, each its own sum: four chains of additions run side by side.
    let x = 0;
    for (; x + 4 <= width; x += 4) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let t = 0; t < kx.length; t++) {
        const w = kx[t]!;
        s0 += w * padded[x + t]!;
        s1 += w * padded[x + t + 1]!;
        s2 += w * padded[x + t + 2]!;
        s3 += w * padded[x + t + 3]!;
      }
      into[x] = s0;
      into[x + 1] = s1;
      into[x + 2] = s2;
      into[x + 3] = s3;
    }
    for (; x < width; x++) {
      let sum = 0;
      for (let t = 0; t < kx.length; t++) sum += kx[t]! * padded[x + t]!;
      into[x] = sum;
    }
  });
  // Output row y reads rows y − halfY … y + halfY of the row blur, reflected into the image:
  // all within the last kY.length rows made once row min(y + halfY, H − 1) is.
  const blurred = new RowWindow(width, 4, (y, into) => {
    alongRows.row(Math.min(y + halfY, height - 1));
    acc.fill(0);
    for (let t = 0; t < kY.length; t++) {
      const w = kY[t]!;
      const row = alongRows.row(rowAt[y + t]!);
      for (let x = 0; x < width; x++) acc[x] = acc[x]! + w * row[x]!;
    }
    into.set(acc);
  });

  // The bicubic's four rows of output row y lie within four consecutive rows, the last made first.
  const ys = cubicTaps(height, outH);
  const xs = cubicTaps(width, outW);
  for (let y = 0; y < outH; y++) {
    const q = 4 * y;
    blurred.row(ys.at[q + 3]!);
    const row0 = blurred.row(ys.at[q]!);
    const row1 = blurred.row(ys.at[q + 1]!);
    const row2 = blurred.row(ys.at[q + 2]!);
    const row3 = blurred.row(ys.at[q + 3]!);
    const wy0 = ys.weight[q]!;
    const wy1 = ys.weight[q + 1]!;
    const wy2 = ys.weight[q + 2]!;
    const wy3 = ys.weight[q + 3]!;
    for (let x = 0; x < outW; x++) {
      const p = 4 * x;
      const x0 = xs.at[p]!;
      const x1 = xs.at[p + 1]!;
      const x2 = xs.at[p + 2]!;
      const x3 = xs.at[p + 3]!;
      const w0 = xs.weight[p]!;
      const w1 = xs.weight[p + 1]!;
      const w2 = xs.weight[p + 2]!;
      const w3 = xs.weight[p + 3]!;
      // From 0 as the first loop summed (a sum of -0 terms is +0 there, and so here).
      const r0 = 0 + w0 * row0[x0]! + w1 * row0[x1]! + w2 * row0[x2]! + w3 * row0[x3]!;
      const r1 = 0 + w0 * row1[x0]! + w1 * row1[x1]! + w2 * row1[x2]! + w3 * row1[x3]!;
      const r2 = 0 + w0 * row2[x0]! + w1 * row2[x1]! + w2 * row2[x2]! + w3 * row2[x3]!;
      const r3 = 0 + w0 * row3[x0]! + w1 * row3[x1]! + w2 * row3[x2]! + w3 * row3[x3]!;
      out[y * outW + x] = 0 + wy0 * r0 + wy1 * r1 + wy2 * r2 + wy3 * r3;
    }
  }
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
  const kernelX = gaussianKernel(kX, f(sigmaX));
  const kernelY = gaussianKernel(kY, f(sigmaY));
  const { channels, height, width } = src;
  const out = new Float32Array(channels * outH * outW);
  for (let c = 0; c < channels; c++) {
    const plane = src.data.subarray(c * height * width, (c + 1) * height * width);
    blurAndResize(plane, width, height, kernelX, kernelY, out.subarray(c * outH * outW, (c + 1) * outH * outW), outH, outW);
  }
  return { channels, height: outH, width: outW, data: out };
}

/** Full CLIP preprocessing: 8-bit RGB → [1, 3, size, size] normalised pixel values. */
export function clipPixelValues(rgb: Uint8Array, width: number, height: number, size: number, mean: readonly number[], std: readonly number[]): Float32Array {
  return clipPixelValuesOf(rgbToSigned(rgb, width, height), size, mean, std);
}

/** clipPixelValues from the image already in [-1, 1] (rgbToSigned), which it leaves as it was: the VAE's input is made from it next. */
export function clipPixelValuesOf(signed: Planar, size: number, mean: readonly number[], std: readonly number[]): Float32Array {
  const resized = resizeWithAntialiasing(signed, size, size);
  const plane = size * size;
  const out = resized.data;
  for (let c = 0; c < 3; c++) {
    const m = f(mean[c]!);
    const s = f(std[c]!);
    for (let i = 0; i < plane; i++) out[c * plane + i] = f(f(f(out[c * plane + i]! + 1) / 2) - m) / s;
  }
  return out;
}
