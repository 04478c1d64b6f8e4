// The denoising loop of diffusers' StableVideoDiffusionPipeline.__call__ (steps 4–5 there): per
// step, the scaled latents and the image latents into the UNet's input for the guidance batch,
// the UNet, the guidance mix, the scheduler's step. The UNet is the caller's (a session in the
// pipeline, a stand-in in bench/bench-step-host.ts), so the host work between two UNet runs is
// this one code path wherever it is measured.
import type { Scheduler } from '../schedulers/interface.js';

const f = Math.fround;

export interface DenoiseDims {
  /** Frames, latent channels, latent height and width. */
  F: number;
  C: number;
  h: number;
  w: number;
}

export interface DenoiseLoop {
  /** Timesteps already set. */
  scheduler: Scheduler;
  dims: DenoiseDims;
  /** The conditioning image's latent [C, h, w], beside every frame's latents in the UNet's input. */
  imageLatent: Float32Array;
  /** [F, C, h, w] noise before scaling by the initial sigma. */
  initialNoise: Float32Array;
  /** Guidance scale per frame; undefined: no classifier-free guidance (a batch of one). */
  guidance: Float32Array | undefined;
  /** Run the guidance batch's two videos one after the other instead of together. */
  split: boolean;
  /** `n` standard normals, in the order the scheduler asks for them. */
  stepNoise: (n: number) => Float32Array;
  /**
   * The UNet on `sample` ([n, F, 2C, h, w]: entries from … from + n − 1 of the guidance batch,
   * unconditional first) at step `stepIndex`; its output is [n, F, C, h, w].
   */
  unet: (sample: Float32Array, from: number, n: number, stepIndex: number) => Promise<Float32Array>;
  /** Called before each step (throws to stop). */
  checkCancelled?: () => void;
  /** Called after each step, with the step's estimate of the clean latents [F, C, h, w] where `previews` is set. */
  onStep?: (stepIndex: number, denoised: Float32Array | undefined) => void;
  previews?: boolean;
}

/** The latents [F, C, h, w] after the scheduler's last step. */
export async function denoise(a: DenoiseLoop): Promise<Float32Array> {
  const { scheduler, guidance } = a;
  const { F, C, h, w } = a.dims;
  const sigma0 = f(scheduler.initNoiseSigma);
  let latents: Float32Array = Float32Array.from(a.initialNoise, (v) => f(v * sigma0));

  // Guidance batch: unconditional first, as diffusers orders it.
  const cfg = guidance !== undefined;
  const B = cfg ? 2 : 1;
  const frameSize = C * h * w;
  const sampleIn = new Float32Array(B * F * 2 * frameSize);
  // Image-latent half of the UNet input never changes: fill it once (zeros for the unconditional video).
  for (let f_ = 0; f_ < F; f_++) sampleIn.set(a.imageLatent, ((B - 1) * F + f_) * 2 * frameSize + frameSize);
  const unet = (from: number, n: number, i: number) => a.unet(sampleIn.subarray(from * F * 2 * frameSize, (from + n) * F * 2 * frameSize), from, n, i);

  const scaled = new Float32Array(latents.length);
  for (let i = 0; i < scheduler.numInferenceSteps; i++) {
    a.checkCancelled?.();
    scheduler.scaleModelInput(latents, i, scaled);
    for (let b = 0; b < B; b++) for (let f_ = 0; f_ < F; f_++) sampleIn.set(scaled.subarray(f_ * frameSize, (f_ + 1) * frameSize), (b * F + f_) * 2 * frameSize);
    let out: Float32Array;
    if (a.split && B === 2) {
      // One video at a time: the same results with half the UNet's activations on the GPU
      // (WebGPU's 'lean' mode always; CUDA where planMemory finds the joint batch does not fit;
      // what it saves and costs: BENCHMARKS.md, WebGPU attempt 15).
      out = new Float32Array(2 * F * frameSize);
      out.set(await unet(0, 1, i), 0);
      out.set(await unet(1, 1, i), F * frameSize);
    } else {
      out = await unet(0, B, i);
    }
    let v: Float32Array = out;
    if (guidance) {
      v = new Float32Array(F * frameSize);
      for (let f_ = 0; f_ < F; f_++) {
        const g = guidance[f_]!;
        for (let k = 0; k < frameSize; k++) {
          const idx = f_ * frameSize + k;
          const u = out[idx]!;
          v[idx] = f(u + f(g * f(out[F * frameSize + idx]! - u)));
        }
      }
    }
    const denoised = a.previews ? new Float32Array(latents.length) : undefined;
    latents = scheduler.step(v, i, latents, { predOriginal: denoised, noise: a.stepNoise });
    a.onStep?.(i, denoised);
  }
  return latents;
}
