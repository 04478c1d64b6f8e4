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

/** Interleaved 8-bit RGB [H, W, 3] → planar float32 in [-1, 1]. */
export function rgbToSigned(rgb: Uint8Array, width: number, height: number): Planar {
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) data[c * plane + i] = f(f(rgb[i * 3 + c]! / 255) * 2 - 1);
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

function blurAxis(src: Planar, kernel: Float32Array, horizontal: boolean): Planar {
  const { channels, height, width } = src;
  const out = new Float32Array(src.data.length);
  const half = (kernel.length - 1) / 2;
  for (let c = 0; c < channels; c++) {
    const base = c * height * width;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let acc = 0;
        for (let t = 0; t < kernel.length; t++) {
          const sx = horizontal ? reflect(x + t - half, width) : x;
          const sy = horizontal ? y : reflect(y + t - half, height);
          acc += kernel[t]! * src.data[base + sy * width + sx]!;
        }
        out[base + y * width + x] = acc;
      }
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

/** torch.nn.functional.interpolate(mode='bicubic', align_corners=True). */
function bicubicAlignCorners(src: Planar, outH: number, outW: number): Planar {
  const { channels, height: inH, width: inW } = src;
  const out = new Float32Array(channels * outH * outW);
  const scaleY = outH > 1 ? f((inH - 1) / (outH - 1)) : 0;
  const scaleX = outW > 1 ? f((inW - 1) / (outW - 1)) : 0;
  const clampY = (i: number) => Math.min(Math.max(i, 0), inH - 1);
  const clampX = (i: number) => Math.min(Math.max(i, 0), inW - 1);
  const xs = Array.from({ length: outW }, (_, x) => {
    const real = f(scaleX * x);
    const i = Math.floor(real);
    return { i, w: cubicWeights(f(real - i)) };
  });
  for (let c = 0; c < channels; c++) {
    const base = c * inH * inW;
    for (let y = 0; y < outH; y++) {
      const realY = f(scaleY * y);
      const iy = Math.floor(realY);
      const wy = cubicWeights(f(realY - iy));
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
  const blurred = blurAxis(blurAxis(src, gaussianKernel(kX, f(sigmaX)), true), gaussianKernel(kY, f(sigmaY)), false);
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
