import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type AnimateLcmSchedulerConfig, schedulerConfigSchema } from '../models/configs.js';
import { ANIMATELCM_SVD_XT_SCHEDULER } from '../models/reference-configs.js';
import { AnimateLcmScheduler } from '../models/schedulers/animatelcm.js';
import { createScheduler } from '../models/schedulers/scheduler.js';
import { openModelDir } from '../models/model-dir.js';
import { fixtureCopy, relL2 } from './helpers.js';

// Made by scripts/fixtures/make_animatelcm_fixture.py from the reference sampler's own code.
const reference = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'scheduler-animatelcm.json'), 'utf8')) as {
  config: Omit<AnimateLcmSchedulerConfig, '_class_name'>;
  schedules: Record<string, { sigmas: number[]; timesteps: number[]; init_noise_sigma: number }>;
  rollouts: {
    steps: number;
    config: Omit<AnimateLcmSchedulerConfig, '_class_name'>;
    initial: number[];
    steps_out: { scaled: number[]; model_output: number[]; noise: number[] | null; prev_sample: number[] }[];
  }[];
};
const f32 = (a: number[]) => Float32Array.from(a);

describe('AnimateLCM scheduler', () => {
  it('has the reference app settings', () => {
    expect(ANIMATELCM_SVD_XT_SCHEDULER).toEqual({ _class_name: 'AnimateLCMSVDStochasticIterativeScheduler', ...reference.config });
  });

  it.each(Object.keys(reference.schedules))('matches the reference schedule for %s steps', (n) => {
    const s = new AnimateLcmScheduler(ANIMATELCM_SVD_XT_SCHEDULER);
    s.setTimesteps(Number(n));
    const ref = reference.schedules[n]!;
    expect([...s.sigmas]).toEqual(ref.sigmas);
    expect([...s.timesteps]).toEqual(ref.timesteps.map(Math.fround));
    expect(s.initNoiseSigma).toBe(ref.init_noise_sigma);
  });

  it.each(reference.rollouts.map((r, i) => [`${r.steps} steps${r.config.clip_denoised ? ', clipped' : ''}`, i] as const))('reproduces the reference steps (%s)', (_, k) => {
    const r = reference.rollouts[k]!;
    const s = createScheduler({ _class_name: 'AnimateLCMSVDStochasticIterativeScheduler', ...r.config });
    s.setTimesteps(r.steps);
    let x: Float32Array = Float32Array.from(r.initial);
    r.steps_out.forEach((ref, i) => {
      const scaled = s.scaleModelInput(x, i);
      expect(relL2(scaled, f32(ref.scaled))).toBeLessThan(1e-7);
      let asked = 0;
      const predOriginal = new Float32Array(x.length);
      const inPlace = Float32Array.from(x);
      x = s.step(f32(ref.model_output), i, x, {
        predOriginal,
        noise: (n) => {
          asked++;
          expect(ref.noise).not.toBeNull();
          expect(n).toBe(ref.noise!.length);
          return f32(ref.noise!);
        },
      });
      expect(relL2(x, f32(ref.prev_sample))).toBeLessThan(1e-7);
      // Noise is drawn only where it is added: between steps of a multi-step run.
      expect(asked).toBe(r.steps > 1 && i < r.steps - 1 ? 1 : 0);
      // It says so before the step (the pipeline draws the noise while the UNet runs).
      expect(s.drawsNoise(i)).toBe(asked === 1);
      // Written over its input, the step gives the same values.
      expect(s.step(f32(ref.model_output), i, inPlace, { out: inPlace, noise: () => f32(ref.noise!) })).toBe(inPlace);
      expect(inPlace).toEqual(x);
      if (i === r.steps - 1) expect([...predOriginal]).toEqual([...x]);
    });
  });

  it('refuses what the distillation cannot do, saying why', () => {
    const s = new AnimateLcmScheduler(ANIMATELCM_SVD_XT_SCHEDULER);
    expect(() => s.setTimesteps(41)).toThrow(/at most 40 steps/);
    expect(() => s.setTimesteps(0)).toThrow(/positive integer/);
    expect(() => s.setTimesteps({ sigmas: [700, 1, 0] })).toThrow(/takes a step count/);
    s.setTimesteps(2);
    expect(() => s.step(new Float32Array(3), 0, new Float32Array(3))).toThrow(/noise source/);
  });
});

describe('scheduler choice by _class_name', () => {
  it('reads each supported class and fills the reference defaults', () => {
    expect(schedulerConfigSchema.parse({ _class_name: 'AnimateLCMSVDStochasticIterativeScheduler' })).toEqual(ANIMATELCM_SVD_XT_SCHEDULER);
    expect(createScheduler(ANIMATELCM_SVD_XT_SCHEDULER).className).toBe('AnimateLCMSVDStochasticIterativeScheduler');
  });

  it('a model directory with another sampler is refused, naming the file and the supported ones', () => {
    const dir = fixtureCopy();
    const path = join(dir, 'scheduler', 'scheduler_config.json');
    writeFileSync(path, JSON.stringify({ _class_name: 'DPMSolverMultistepScheduler', num_train_timesteps: 1000 }));
    expect(() => openModelDir(dir)).toThrow(
      `${path}: "_class_name": scheduler DPMSolverMultistepScheduler is not supported; supported: EulerDiscreteScheduler, AnimateLCMSVDStochasticIterativeScheduler`,
    );
  });

  it('names the supported samplers for an unknown one', () => {
    const r = schedulerConfigSchema.safeParse({ _class_name: 'DDIMScheduler', num_train_timesteps: 1000 });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.message).toBe('scheduler DDIMScheduler is not supported; supported: EulerDiscreteScheduler, AnimateLCMSVDStochasticIterativeScheduler');
    expect(r.error!.issues).toHaveLength(1);
  });
});
