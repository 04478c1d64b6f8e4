// The denoising loop of diffusers' StableVideoDiffusionPipeline.__call__ (steps 4–5 there): per
// step, the scaled latents and the image latents into the UNet's input for the guidance batch,
// the UNet, the guidance mix, the scheduler's step. The UNet is the caller's (a session in the
// pipeline, a stand-in in bench/bench-step-host.ts), so the host work between two UNet runs is
// this one code path wherever it is measured. No video-sized array is made per step, and those
// of a DenoiseBuffers are kept from job to job: a fresh multi-megabyte array costs its page
// faults each time (BENCHMARKS.md, host work between UNet runs).
import type { Scheduler } from '../schedulers/interface.js';
import type { StepNoise } from './step-noise.js';

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
  /** The noise for the steps that add it, in the order the scheduler asks. */
  stepNoise: StepNoise;
  /**
   * The UNet on `sample` ([n, F, 2C, h, w]: entries from … from + n − 1 of the guidance batch,
   * unconditional first) at step `stepIndex`; its output is [n, F, C, h, w] (kept by the loop
   * until the step is done, never written).
   */
  unet: (sample: Float32Array, from: number, n: number, stepIndex: number) => Promise<Float32Array>;
  /** Called before each step (throws to stop). */
  checkCancelled?: () => void;
  /**
   * Called after each step, with the step's estimate of the clean latents [F, C, h, w] where
   * `previews` is set (the loop's own array: read it during the call, copy it to keep it).
   */
  onStep?: (stepIndex: number, denoised: Float32Array | undefined) => void;
  previews?: boolean;
  /** Arrays kept from an earlier run (the pipeline's); fresh ones if not given. */
  buffers?: DenoiseBuffers;
}

/** The loop's working arrays, kept for the next run; a run that finds them held by another gets fresh ones. */
export class DenoiseBuffers {
  private readonly arrays = new Map<string, Float32Array>();
  private held = false;

  /** Runs `fn` with a getter of arrays by name and length: this set's (with whatever they held) where it is free. */
  async use<T>(fn: (array: (name: string, n: number) => Float32Array) => Promise<T>): Promise<T> {
    if (this.held) return fn((_, n) => new Float32Array(n));
    this.held = true;
    try {
      return await fn((name, n) => {
        let a = this.arrays.get(name);
        if (a?.length !== n) this.arrays.set(name, (a = new Float32Array(n)));
        return a;
      });
    } finally {
      this.held = false;
    }
  }
}

/** The latents [F, C, h, w] after the scheduler's last step (an array of the caller's from then on). */
export function denoise(a: DenoiseLoop): Promise<Float32Array> {
  return (a.buffers ?? new DenoiseBuffers()).use((array) => loop(a, array));
}

async function loop(a: DenoiseLoop, array: (name: string, n: number) => Float32Array): Promise<Float32Array> {
  const { scheduler, guidance, stepNoise } = a;
  const { F, C, h, w } = a.dims;
  const frameSize = C * h * w;
  const videoSize = F * frameSize;
  const sigma0 = f(scheduler.initNoiseSigma);
  const latents = new Float32Array(videoSize);
  for (let i = 0; i < videoSize; i++) latents[i] = f(a.initialNoise[i]! * sigma0);

  // Guidance batch: unconditional first, as diffusers orders it. Each frame of the UNet's input
  // is the frame's scaled latents (written at each step), then the image latent (zeros for the
  // unconditional video).
  const B = guidance ? 2 : 1;
  const sampleIn = array('sample', B * F * 2 * frameSize);
  for (let b = 0; b < B; b++)
    for (let f_ = 0; f_ < F; f_++) {
      const at = (b * F + f_) * 2 * frameSize + frameSize;
      if (b === B - 1) sampleIn.set(a.imageLatent, at);
      else sampleIn.fill(0, at, at + frameSize);
    }
  const unet = (from: number, n: number, i: number) => a.unet(sampleIn.subarray(from * F * 2 * frameSize, (from + n) * F * 2 * frameSize), from, n, i);
  const guided = guidance ? array('guided', videoSize) : undefined;
  const denoised = a.previews ? array('denoised', videoSize) : undefined;

  for (let i = 0; i < scheduler.numInferenceSteps; i++) {
    a.checkCancelled?.();
    for (let f_ = 0; f_ < F; f_++) {
      const at = f_ * 2 * frameSize;
      scheduler.scaleModelInput(latents.subarray(f_ * frameSize, (f_ + 1) * frameSize), i, sampleIn.subarray(at, at + frameSize));
      if (B === 2) sampleIn.copyWithin((F + f_) * 2 * frameSize, at, at + frameSize);
    }
    const noise = scheduler.drawsNoise(i) ? stepNoise.draw(videoSize) : undefined;
    // Its failure is reported where it is awaited, after the UNet run.
    noise?.catch(() => {});
    let v: Float32Array;
    if (guidance && guided) {
      // split: one video at a time, the same results with half the UNet's activations on the GPU
      // (WebGPU's 'lean' mode always; CUDA where planMemory finds the joint batch does not fit;
      // what it saves and costs: BENCHMARKS.md, WebGPU attempt 15).
      const [uncond, cond] = a.split ? [await unet(0, 1, i), await unet(1, 1, i)] : halves(await unet(0, 2, i), videoSize);
      v = guide(uncond, cond, guidance, frameSize, guided);
    } else {
      v = await unet(0, 1, i);
    }
    const z = noise && (await noise);
    scheduler.step(v, i, latents, { out: latents, predOriginal: denoised, noise: z && (() => z) });
    a.onStep?.(i, denoised);
  }
  return latents;
}

function halves(out: Float32Array, n: number): [Float32Array, Float32Array] {
  return [out.subarray(0, n), out.subarray(n, 2 * n)];
}

/** uncond + g·(cond − uncond) per frame, each operation rounded to float32 as the reference's fp32 tensors are. */
function guide(uncond: Float32Array, cond: Float32Array, guidance: Float32Array, frameSize: number, out: Float32Array): Float32Array {
  for (let f_ = 0; f_ < guidance.length; f_++) {
    const g = guidance[f_]!;
    const end = (f_ + 1) * frameSize;
    for (let k = f_ * frameSize; k < end; k++) {
      const u = uncond[k]!;
      out[k] = f(u + f(g * f(cond[k]! - u)));
    }
  }
  return out;
}
