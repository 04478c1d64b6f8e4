// EulerDiscreteScheduler as SVD configures it (Karras sigmas, v-prediction, EDM scaling),
// in the diffusers shape: setTimesteps → scaleModelInput / step per timestep.
import type { EulerSchedulerConfig } from '../configs.js';
import type { Scheduler, StepExtras } from './interface.js';

const f = Math.fround;

export class EulerKarrasScheduler implements Scheduler {
  readonly className = 'EulerDiscreteScheduler';
  /** σ_0 … σ_N (float32 values); σ_N is the final 0 unless custom sigmas were given. */
  sigmas: Float32Array = new Float32Array(0);
  /** 0.25·ln σ_i, the UNet's timestep input, for i < N. */
  timesteps: Float32Array = new Float32Array(0);

  constructor(readonly config: Pick<EulerSchedulerConfig, 'sigma_min' | 'sigma_max' | 'timestep_spacing' | 'final_sigmas_type'>) {}

  get numInferenceSteps(): number {
    return this.timesteps.length;
  }

  /** Standard deviation of the initial noise. */
  get initNoiseSigma(): number {
    const max = this.sigmas.reduce((a, b) => Math.max(a, b), 0);
    if (this.config.timestep_spacing === 'linspace' || this.config.timestep_spacing === 'trailing') return max;
    return f(Math.sqrt(f(f(max * max) + 1)));
  }

  /** Karras schedule with `steps` steps, or a custom σ list used verbatim (include a trailing 0 to end on x0). */
  setTimesteps(steps: number | { sigmas: readonly number[] }): void {
    let sigmas: number[];
    if (typeof steps === 'number') {
      if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
      const rho = 7;
      const minInv = this.config.sigma_min ** (1 / rho);
      const maxInv = this.config.sigma_max ** (1 / rho);
      sigmas = Array.from({ length: steps }, (_, i) => {
        const ramp = steps === 1 ? 0 : i / (steps - 1);
        return (maxInv + ramp * (minInv - maxInv)) ** rho;
      });
      const final = this.config.final_sigmas_type === 'sigma_min' ? this.config.sigma_min : 0;
      this.timesteps = Float32Array.from(sigmas, (s) => f(0.25 * f(Math.log(f(s)))));
      this.sigmas = Float32Array.from([...sigmas, final]);
    } else {
      sigmas = [...steps.sigmas];
      if (sigmas.length < 2) throw new RangeError('custom sigmas need at least two values (the last is where sampling ends, usually 0)');
      if (sigmas.some((s, i) => !(s >= 0) || (i > 0 && s >= sigmas[i - 1]!))) throw new RangeError('custom sigmas must be non-negative and strictly decreasing');
      if (sigmas.slice(0, -1).some((s) => s === 0)) throw new RangeError('only the last custom sigma may be 0');
      this.sigmas = Float32Array.from(sigmas);
      this.timesteps = Float32Array.from(this.sigmas.subarray(0, -1), (s) => f(0.25 * f(Math.log(s))));
    }
  }

  /** x / √(σ_i² + 1) */
  scaleModelInput(sample: Float32Array, stepIndex: number, out = new Float32Array(sample.length)): Float32Array {
    const s = this.sigmas[stepIndex]!;
    const c = f(Math.sqrt(f(f(s * s) + 1)));
    for (let i = 0; i < sample.length; i++) out[i] = sample[i]! / c;
    return out;
  }

  /** An ODE sampler: no noise between steps. */
  drawsNoise(): boolean {
    return false;
  }

  /** One Euler step from σ_i to σ_{i+1} with the v-prediction `modelOutput`; returns x_{i+1}. */
  step(modelOutput: Float32Array, stepIndex: number, sample: Float32Array, { predOriginal, out = new Float32Array(sample.length) }: StepExtras = {}): Float32Array {
    const s = this.sigmas[stepIndex]!;
    const next = this.sigmas[stepIndex + 1]!;
    const s2p1 = f(f(s * s) + 1);
    const cOut = f(-s / f(Math.sqrt(s2p1)));
    const dt = f(next - s);
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i]!;
      const x0 = f(f(modelOutput[i]! * cOut) + f(x / s2p1));
      if (predOriginal) predOriginal[i] = x0;
      const d = f(f(x - x0) / s);
      out[i] = x + d * dt;
    }
    return out;
  }
}
