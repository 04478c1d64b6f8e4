// The samplers' one interface, in diffusers' shape (set_timesteps → scale_model_input → UNet →
// step per step). The pipeline calls only this; scheduler.ts picks the implementation.
import type { SchedulerConfig } from '../configs.js';

export interface StepExtras {
  /** Filled with the step's estimate of the clean latents (for previews). */
  predOriginal?: Float32Array;
  /** Standard normal noise of `n` values, for samplers that add fresh noise between steps. */
  noise?: (n: number) => Float32Array;
  /** Where the new sample goes: may be `sample` itself (each value is read before it is written); a new array if not given. */
  out?: Float32Array;
}

/**
 * `scaleModelInput` and `step` are elementwise: each value they write depends only on the values
 * at the same index of their inputs (and the step index). The pipeline relies on it to run them
 * on parts of the arrays, on several threads (models/pipeline/step-work.ts).
 */
export interface Scheduler {
  /** The `_class_name` this sampler implements. */
  readonly className: SchedulerConfig['_class_name'];
  /** σ_0 … σ_N: the noise level before each step and after the last. */
  readonly sigmas: Float32Array;
  /** The UNet's `timestep` input (c_noise) for each step. */
  readonly timesteps: Float32Array;
  readonly numInferenceSteps: number;
  /** Standard deviation of the initial noise. */
  readonly initNoiseSigma: number;
  /** A step count, or (where the sampler allows it) an explicit σ list ending where sampling ends. */
  setTimesteps(steps: number | { sigmas: readonly number[] }): void;
  /** The UNet's input for step `stepIndex` from the current sample. */
  scaleModelInput(sample: Float32Array, stepIndex: number, out?: Float32Array): Float32Array;
  /** Whether step(`stepIndex`) asks for fresh noise (as many values as the sample has), so that it can be drawn ahead. */
  drawsNoise(stepIndex: number): boolean;
  /** The sample after step `stepIndex` from the UNet's (guided) output. */
  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, extras?: StepExtras): Float32Array;
}
