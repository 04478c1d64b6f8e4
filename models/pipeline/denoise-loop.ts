// The denoising loop of diffusers' StableVideoDiffusionPipeline.__call__ (steps 4–5 there): per
// step, the scaled latents and the image latents into the UNet's input for the guidance batch,
// the UNet, the guidance mix, the scheduler's step. The UNet is the caller's (a session in the
// pipeline, a stand-in in bench/bench-step-host.ts), so the host work between two UNet runs is
// this one code path wherever it is measured. No video-sized array is made per step, and those
// of a DenoiseBuffers are kept from job to job: a fresh multi-megabyte array costs its page
// faults each time (BENCHMARKS.md, host work between UNet runs).
import type { SchedulerConfig } from '../configs.js';
import type { Scheduler } from '../schedulers/interface.js';
import type { StepNoise } from './step-noise.js';
import { PHASE, type StepThreads } from './step-threads.js';
import { finishStep, placeInput, scaleInput, type StepShape } from './step-work.js';

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
  /**
   * Worker threads for the host work between UNet runs, with what they need to make the same
   * scheduler (its config and the argument its timesteps were set with); the main thread does it
   * where not given or where they fail.
   */
  threads?: { pool: StepThreads; scheduler: SchedulerConfig; timesteps: number | { sigmas: readonly number[] } };
}

/** The loop's working arrays, kept for the next run; a run that finds them held by another gets fresh ones. */
export class DenoiseBuffers {
  private readonly arrays = new Map<string, Float32Array>();
  private held = false;

  /**
   * Runs `fn` with a getter of arrays by name and length: this set's (with whatever they held)
   * where it is free. Shared arrays (in a SharedArrayBuffer of their exact size) are for the
   * step threads; the others for onnxruntime, whose tensors take no shared memory.
   */
  async use<T>(fn: (array: ArrayGetter) => Promise<T>): Promise<T> {
    const fresh = (n: number, shared?: boolean) => new Float32Array(shared ? new SharedArrayBuffer(4 * n) : new ArrayBuffer(4 * n));
    if (this.held) return fn((_, n, shared) => fresh(n, shared));
    this.held = true;
    try {
      return await fn((name, n, shared = false) => {
        const key = `${name}${shared ? ' (shared)' : ''}`;
        let a = this.arrays.get(key);
        if (a?.length !== n) this.arrays.set(key, (a = fresh(n, shared)));
        return a;
      });
    } finally {
      this.held = false;
    }
  }
}

type ArrayGetter = (name: string, n: number, shared?: boolean) => Float32Array;

/** The latents [F, C, h, w] after the scheduler's last step (an array of the caller's from then on). */
export function denoise(a: DenoiseLoop): Promise<Float32Array> {
  return (a.buffers ?? new DenoiseBuffers()).use((array) => loop(a, array));
}

async function loop(a: DenoiseLoop, array: ArrayGetter): Promise<Float32Array> {
  const { scheduler, guidance, stepNoise } = a;
  const { F, C, h, w } = a.dims;
  const frameSize = C * h * w;
  const videoSize = F * frameSize;
  const B = guidance ? 2 : 1;
  const shape: StepShape = { frames: F, frameSize, batch: B, guidance };
  const steps = scheduler.numInferenceSteps;
  const pool = a.threads?.pool;
  const drawsNoise = Array.from({ length: steps }, (_, i) => scheduler.drawsNoise(i));
  // What the threads read and write lives in shared memory; the UNet's input and output stay in
  // onnxruntime's own arrays and are copied across.
  const shared = pool?.usable === true;
  // Step i reads latents[i % 2] and writes latents[(i + 1) % 2]: a step can always be run again.
  const latents = [array('latents', videoSize, shared), array('latents next', videoSize, shared)] as const;
  const scaled = array('scaled', videoSize, shared);
  const guided = guidance ? array('guided', videoSize, shared) : undefined;
  const denoised = a.previews ? array('denoised', videoSize, shared) : undefined;
  const unetOut = shared || a.split ? array('unet output', B * videoSize, shared) : undefined;
  const noiseIn = shared && drawsNoise.some(Boolean) ? array('noise', videoSize, true) : undefined;

  const sigma0 = f(scheduler.initNoiseSigma);
  for (let i = 0; i < videoSize; i++) latents[0][i] = f(a.initialNoise[i]! * sigma0);

  // Guidance batch: unconditional first, as diffusers orders it. Each frame of the UNet's input
  // is the frame's scaled latents (placed at each step), then the image latent (zeros for the
  // unconditional video).
  const sampleIn = array('sample', B * F * 2 * frameSize);
  for (let b = 0; b < B; b++)
    for (let f_ = 0; f_ < F; f_++) {
      const at = (b * F + f_) * 2 * frameSize + frameSize;
      if (b === B - 1) sampleIn.set(a.imageLatent, at);
      else sampleIn.fill(0, at, at + frameSize);
    }
  const unet = (from: number, n: number, i: number) => a.unet(sampleIn.subarray(from * F * 2 * frameSize, (from + n) * F * 2 * frameSize), from, n, i);

  let threaded =
    shared &&
    (await pool!.begin({
      scheduler: a.threads!.scheduler,
      timesteps: a.threads!.timesteps,
      shape: { frames: F, frameSize, batch: B, guidance: guidance && Float32Array.from(guidance) },
      latents: [latents[0].buffer as SharedArrayBuffer, latents[1].buffer as SharedArrayBuffer],
      scaled: scaled.buffer as SharedArrayBuffer,
      unetOut: unetOut!.buffer as SharedArrayBuffer,
      guided: guided?.buffer as SharedArrayBuffer | undefined,
      denoised: denoised?.buffer as SharedArrayBuffer | undefined,
      noise: noiseIn?.buffer as SharedArrayBuffer | undefined,
      values: videoSize,
    }));
  /** Runs a phase on the threads; where they fail, `here` does it on this thread (from inputs the phase leaves as they were). */
  const phase = (bits: number, i: number, here: () => void) => {
    if (threaded && pool!.run(bits, i)) return;
    threaded = false;
    here();
  };
  try {
    phase(PHASE.prepare, 0, () => scaleInput(scheduler, 0, latents[0], scaled, 0, videoSize));
    placeInput(scaled, sampleIn, shape);
    for (let i = 0; i < steps; i++) {
      a.checkCancelled?.();
      const noise = drawsNoise[i] ? stepNoise.draw(videoSize) : undefined;
      // Its failure is reported where it is awaited, after the UNet run.
      noise?.catch(() => {});
      let out: Float32Array;
      if (a.split) {
        // split: one video at a time, the same results with half the UNet's activations on the GPU
        // (WebGPU's 'lean' mode always; CUDA where planMemory finds the joint batch does not fit;
        // what it saves and costs: BENCHMARKS.md, WebGPU attempt 15).
        for (let b = 0; b < B; b++) unetOut!.set(await unet(b, 1, i), b * videoSize);
        out = unetOut!;
      } else {
        out = await unet(0, B, i);
        if (threaded) unetOut!.set(out);
      }
      const z = noise && (await noise);
      if (z && threaded) noiseIn!.set(z);
      const more = i + 1 < steps;
      const bits = PHASE.finish | (more ? PHASE.prepare : 0) | (z ? PHASE.noise : 0) | (denoised ? PHASE.previews : 0);
      const [now, next] = [latents[i % 2]!, latents[(i + 1) % 2]!];
      phase(bits, i, () => {
        finishStep(scheduler, i, { latents: now, next, unetOut: out, guided, denoised, noise: z }, shape, 0, videoSize);
        if (more) scaleInput(scheduler, i + 1, next, scaled, 0, videoSize);
      });
      if (more) placeInput(scaled, sampleIn, shape);
      a.onStep?.(i, denoised);
    }
  } finally {
    if (threaded) pool!.end();
  }
  return Float32Array.from(latents[steps % 2]!);
}
