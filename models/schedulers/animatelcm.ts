// AnimateLCM-SVD's consistency sampler (AnimateLCMSVDStochasticIterativeScheduler in
// G-U-N/AnimateLCM animatelcm_svd/animatelcm_scheduler.py, MIT): a Karras schedule taken at
// `steps` of the `num_train_timesteps` training points, the EDM boundary-condition scalings with
// σ_data, and fresh noise at σ_{i+1} after each step. Float32 where the reference computes in
// float32 (its sigmas tensor), float64 where it uses numpy (the schedule and the timesteps).
import type { AnimateLcmSchedulerConfig } from '../configs.js';
import type { Scheduler, StepExtras } from './interface.js';

const f = Math.fround;

export class AnimateLcmScheduler implements Scheduler {
  readonly className = 'AnimateLCMSVDStochasticIterativeScheduler';
  sigmas: Float32Array = new Float32Array(0);
  timesteps: Float32Array = new Float32Array(0);

  constructor(readonly config: AnimateLcmSchedulerConfig) {}

  get numInferenceSteps(): number {
    return this.timesteps.length;
  }

  /** √(σ_max² + 1) from the config, not from the schedule (as the reference). */
  get initNoiseSigma(): number {
    return Math.sqrt(this.config.sigma_max ** 2 + 1);
  }

  setTimesteps(steps: number | { sigmas: readonly number[] }): void {
    const { num_train_timesteps: train } = this.config;
    if (typeof steps !== 'number') throw new RangeError('custom sigmas are for the Euler sampler; the AnimateLCM sampler takes a step count (its schedule is fixed by the distillation)');
    if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
    if (steps > train) throw new RangeError(`the AnimateLCM sampler takes at most ${train} steps (its training schedule has ${train} points); got ${steps} (it is made for 2–8)`);
    // Training points 0, r, 2r, … (r = ⌊train/steps⌋), from the noisiest: ramp t / (train − 1).
    const ratio = Math.floor(train / steps);
    const sigmas = Array.from({ length: steps }, (_, i) => this.karras((i * ratio) / (train - 1)));
    this.timesteps = Float32Array.from(sigmas, (s) => 0.25 * Math.log(s + 1e-44));
    this.sigmas = Float32Array.from([...sigmas, 0]);
  }

  /** x / √(σ_i² + σ_data²) */
  scaleModelInput(sample: Float32Array, stepIndex: number, out = new Float32Array(sample.length)): Float32Array {
    const s = this.sigmas[stepIndex]!;
    const c = f(Math.sqrt(f(f(s * s) + this.config.sigma_data ** 2)));
    for (let i = 0; i < sample.length; i++) out[i] = sample[i]! / c;
    return out;
  }

  /** Fresh noise at σ_{i+1} where it is above 0, and only where there is more than one step. */
  drawsNoise(stepIndex: number): boolean {
    return this.numInferenceSteps > 1 && this.sigmaHat(stepIndex) > 0;
  }

  /** x0 = c_out·F + c_skip·x, then x0 + s_noise·σ_{i+1}·z (z where drawsNoise). */
  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, { predOriginal, noise, out = new Float32Array(sample.length) }: StepExtras = {}): Float32Array {
    const { sigma_data: sd, s_noise, clip_denoised } = this.config;
    const s = this.sigmas[stepIndex]!;
    const sd2 = sd ** 2;
    const denom = f(f(s * s) + sd2);
    const cSkip = f(sd2 / denom);
    const cOut = f(f(-s * sd) / f(Math.sqrt(denom)));
    const sigmaHat = this.sigmaHat(stepIndex);
    const z = this.drawsNoise(stepIndex) ? noiseOf(noise, sample.length) : undefined;
    for (let i = 0; i < sample.length; i++) {
      let x0 = f(f(cOut * modelOutput[i]!) + f(cSkip * sample[i]!));
      if (clip_denoised) x0 = Math.min(Math.max(x0, -1), 1);
      if (predOriginal) predOriginal[i] = x0;
      out[i] = z ? x0 + f(f(z[i]! * s_noise) * sigmaHat) : x0;
    }
    return out;
  }

  /** σ_{i+1} clamped to [0, σ_max]: the noise level the step goes to. */
  private sigmaHat(stepIndex: number): number {
    return Math.min(Math.max(this.sigmas[stepIndex + 1]!, 0), this.config.sigma_max);
  }

  private karras(ramp: number): number {
    const { sigma_min, sigma_max, rho } = this.config;
    const minInv = sigma_min ** (1 / rho);
    const maxInv = sigma_max ** (1 / rho);
    return (maxInv + ramp * (minInv - maxInv)) ** rho;
  }
}

function noiseOf(noise: StepExtras['noise'], n: number): Float32Array {
  if (!noise) throw new Error('the AnimateLCM sampler adds fresh noise between steps: pass step() a noise source');
  const z = noise(n);
  if (z.length !== n) throw new Error(`step noise has ${z.length} values, expected ${n}`);
  return z;
}
