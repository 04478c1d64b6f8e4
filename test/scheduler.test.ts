import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EulerKarrasScheduler } from '../models/schedulers/euler-karras.js';
import { createScheduler } from '../models/schedulers/scheduler.js';
import { linspace } from '../models/pipeline/pipeline.js';
import { openModelDir } from '../models/model-dir.js';
import { FIXTURE_MODEL, goldenFile, relL2 } from './helpers.js';

const reference = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'scheduler-svd-xt.json'), 'utf8')) as {
  steps: Record<string, { sigmas: number[]; timesteps: number[]; init_noise_sigma: number }>;
};
const config = { sigma_min: 0.002, sigma_max: 700, timestep_spacing: 'leading' as const, final_sigmas_type: 'zero' as const };

describe('Euler/Karras scheduler', () => {
  it.each(Object.keys(reference.steps))('matches the reference schedule for %s steps', (n) => {
    const s = new EulerKarrasScheduler(config);
    s.setTimesteps(Number(n));
    const ref = reference.steps[n]!;
    expect([...s.sigmas]).toEqual(ref.sigmas.map(Math.fround));
    expect([...s.timesteps]).toEqual(ref.timesteps.map(Math.fround));
    expect(Math.fround(s.initNoiseSigma)).toBe(Math.fround(ref.init_noise_sigma));
  });

  it('accepts a custom sigma list verbatim, without appending 0', () => {
    const s = new EulerKarrasScheduler(config);
    s.setTimesteps({ sigmas: [700, 54.5, 0.002] });
    expect(s.numInferenceSteps).toBe(2);
    expect(s.sigmas[2]).toBe(Math.fround(0.002));
    expect(s.timesteps[1]).toBeCloseTo(0.25 * Math.log(54.5), 6);
    expect(() => s.setTimesteps({ sigmas: [1, 2] })).toThrow(/strictly decreasing/);
    expect(() => s.setTimesteps(0)).toThrow(/positive integer/);
  });

  it('guided step 0 reproduces the reference latents from the reference UNet output', () => {
    const g = goldenFile();
    const model = openModelDir(FIXTURE_MODEL);
    const s = createScheduler(model.scheduler.config);
    expect(s).toBeInstanceOf(EulerKarrasScheduler);
    s.setTimesteps(4);
    expect([...s.sigmas]).toEqual([...g.readFloat32('sigmas')]);
    const noise = g.readFloat32('initial_noise');
    const x = Float32Array.from(noise, (v) => Math.fround(v * Math.fround(s.initNoiseSigma)));
    const out = g.readFloat32('unet_step0_out');
    const F = 5;
    const frame = out.length / 2 / F;
    const gscale = linspace(1, 3, F);
    const v = new Float32Array(out.length / 2);
    for (let i = 0; i < v.length; i++) {
      const u = out[i]!;
      v[i] = u + gscale[Math.floor(i / frame)]! * (out[v.length + i]! - u);
    }
    const next = s.step(v, 0, x);
    expect(relL2(next, g.readFloat32('latents_after_step_0'))).toBeLessThan(1e-6);
    // Written over its input, the step gives the same values; it never asks for noise.
    const inPlace = Float32Array.from(x);
    expect(s.step(v, 0, inPlace, { out: inPlace })).toEqual(next);
    expect(s.drawsNoise(0)).toBe(false);
    // The UNet input at step 0 is the scaled latents next to the image latent.
    const scaled = s.scaleModelInput(x, 0);
    const sample = g.readFloat32('unet_step0_sample');
    expect(relL2(scaled.subarray(0, frame), sample.subarray(0, frame))).toBeLessThan(1e-6);
  });

  it('linspace follows torch in float32', () => {
    expect([...linspace(1, 3, 5)]).toEqual([1, 1.5, 2, 2.5, 3]);
    expect([...linspace(1, 3, 1)]).toEqual([1]);
    expect(linspace(1, 3, 25)[24]).toBe(3);
  });
});
