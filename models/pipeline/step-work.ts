// The host work of one denoising step, on a range of the video's latent values: what
// denoise-loop.ts runs on the main thread over the whole video and each StepThreads worker
// (step-threads.ts) over its share. Every operation is elementwise (the schedulers' step and
// scale_model_input are: Scheduler's contract), so any split of the range gives the same bits.
import type { Scheduler } from '../schedulers/interface.js';

const f = Math.fround;

export interface StepArrays {
  /** The latents before the step ([F, C, h, w]). */
  latents: Float32Array;
  /** Where the step's latents go (another array than `latents`, so that a step can be run again). */
  next: Float32Array;
  /** The UNet's output [B, F, C, h, w] (unconditional first). */
  unetOut: Float32Array;
  /** The guided output [F, C, h, w] (with guidance). */
  guided?: Float32Array;
  /** The step's estimate of the clean latents (previews). */
  denoised?: Float32Array;
  /** The step's fresh noise (samplers that add it). */
  noise?: Float32Array;
}

export interface StepShape {
  /** Frames and values per frame (C·h·w). */
  frames: number;
  frameSize: number;
  /** Videos in the guidance batch (2 with guidance: unconditional, conditional). */
  batch: number;
  /** Guidance scale per frame (with guidance). */
  guidance?: Float32Array;
}

/** scale_model_input of step `i` for the latent values [from, to): `scaled` [F, C, h, w] from `latents`. */
export function scaleInput(scheduler: Scheduler, i: number, latents: Float32Array, scaled: Float32Array, from: number, to: number): void {
  scheduler.scaleModelInput(latents.subarray(from, to), i, scaled.subarray(from, to));
}

/** The scaled latents into the UNet's input [B, F, 2C, h, w], each frame's beside its image latent, for every video of the batch. */
export function placeInput(scaled: Float32Array, sample: Float32Array, shape: StepShape): void {
  const { frames, frameSize, batch } = shape;
  for (let b = 0; b < batch; b++) for (let fr = 0; fr < frames; fr++) sample.set(scaled.subarray(fr * frameSize, (fr + 1) * frameSize), (b * frames + fr) * 2 * frameSize);
}

/** The guidance mix and the scheduler's step `i` for the latent values [from, to): `next` (and `denoised`) from `latents` and the UNet's output. */
export function finishStep(scheduler: Scheduler, i: number, a: StepArrays, shape: StepShape, from: number, to: number): void {
  const { guidance, frames, frameSize } = shape;
  let v = a.unetOut.subarray(from, to);
  if (guidance) {
    const { unetOut: out, guided } = a;
    if (!guided) throw new Error('a guided step needs an array for the guided output');
    const video = frames * frameSize;
    // Frame by frame, each with its own guidance scale.
    for (let fr = Math.floor(from / frameSize); fr * frameSize < to; fr++) {
      const g = guidance[fr]!;
      const end = Math.min(to, (fr + 1) * frameSize);
      for (let k = Math.max(from, fr * frameSize); k < end; k++) {
        const u = out[k]!;
        guided[k] = f(u + f(g * f(out[video + k]! - u)));
      }
    }
    v = guided.subarray(from, to);
  }
  const z = a.noise?.subarray(from, to);
  scheduler.step(v, i, a.latents.subarray(from, to), {
    out: a.next.subarray(from, to),
    predOriginal: a.denoised?.subarray(from, to),
    noise: z && (() => z),
  });
}
