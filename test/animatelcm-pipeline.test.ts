// The 4-step mode end to end on the tiny AnimateLCM demo (svd-tiny's networks, AnimateLCM's
// sampler). Its first step sees exactly the reference run's UNet input (σ_0 = 700: the same
// initial scale, input scale and timestep as Euler's when σ_data = 1), so the reference UNet
// output in the svd-tiny golden file fixes what the pipeline's first estimate must be. (At σ = 700
// that estimate equals Euler's; the sampler's later steps are held to the reference code in
// scheduler-animatelcm.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSettings } from '../common/settings.js';
import { openModelDir } from '../models/model-dir.js';
import { DEMO_ANIMATELCM_MODEL } from '../models/paths.js';
import { SvdPipeline } from '../models/pipeline/pipeline.js';
import { prepareImage } from '../models/pipeline/prepare-image.js';
import { AnimateLcmScheduler } from '../models/schedulers/animatelcm.js';
import { FIXTURE_INPUT, goldenFile, relL2, tempDir } from './helpers.js';

const call = { width: 128, height: 64, frames: 5, steps: 4, fps: 7, motionBucket: 127, noiseAug: 0.02, minGuidance: 1, maxGuidance: 3, decodeChunk: 2, resize: 'stretch' as const };
let pipeline: SvdPipeline;

beforeAll(async () => {
  pipeline = await SvdPipeline.load(DEMO_ANIMATELCM_MODEL, { provider: 'cpu', cacheDir: tempDir('svd-cache-') });
});
afterAll(async () => {
  await pipeline?.release();
});

describe('AnimateLCM on the tiny demo (fp32, CPU)', () => {
  it('feeds the UNet as the reference does: the first estimate comes from the reference UNet output; it asks for noise between steps', async () => {
    const g = goldenFile();
    const image = await prepareImage(FIXTURE_INPUT, { width: 128, height: 64, mode: 'stretch' });
    const initial = g.readFloat32('initial_noise');
    const stepNoise = [1, 2, 3].map((k) => Float32Array.from(initial, (_, i) => Math.sin(i * k)));
    const previews: Float32Array[] = [];
    const r = await pipeline.generate(image, parseSettings(call), {
      noise: { condAug: g.readFloat32('cond_aug_noise'), initial, steps: stepNoise },
      onPreview: (d) => previews.push(Float32Array.from(d)),
    });
    expect(r.frames.every(Number.isFinite)).toBe(true);
    expect(previews).toHaveLength(4);

    const s = new AnimateLcmScheduler(openModelDir(DEMO_ANIMATELCM_MODEL).scheduler.config as ConstructorParameters<typeof AnimateLcmScheduler>[0]);
    s.setTimesteps(4);
    const x = Float32Array.from(initial, (v) => Math.fround(v * Math.fround(s.initNoiseSigma)));
    const out = g.readFloat32('unet_step0_out');
    const F = 5;
    const frame = out.length / 2 / F;
    const guidance = [1, 1.5, 2, 2.5, 3];
    const v = Float32Array.from({ length: out.length / 2 }, (_, i) => out[i]! + guidance[Math.floor(i / frame)]! * (out[out.length / 2 + i]! - out[i]!));
    const x0 = new Float32Array(x.length);
    s.step(v, 0, x, { predOriginal: x0, noise: () => stepNoise[0]! });
    expect(relL2(previews[0]!, x0)).toBeLessThan(1e-5);
    // Fresh noise between the 4 steps, none after the last.
    await expect(pipeline.generate(image, parseSettings(call), { noise: { steps: stepNoise.slice(0, 2) } })).rejects.toThrow(/asked for step noise 3 times but 2 step noise tensors were given/);
  });

  it('takes a seed: the same seed gives the same video, another seed another', async () => {
    const image = await prepareImage(FIXTURE_INPUT, { width: 128, height: 64, mode: 'stretch' });
    const settings = (seed: number) => parseSettings({ ...call, frames: 2, seed });
    const a = await pipeline.generate(image, settings(3));
    const b = await pipeline.generate(image, settings(3));
    const c = await pipeline.generate(image, settings(4));
    expect(a.frames).toEqual(b.frames);
    expect(relL2(a.frames, c.frames)).toBeGreaterThan(1e-3);
  });

  it('refuses more steps than its training schedule, saying why', async () => {
    const image = await prepareImage(FIXTURE_INPUT, { width: 128, height: 64, mode: 'stretch' });
    await expect(pipeline.generate(image, parseSettings({ ...call, frames: 2, steps: 50 }))).rejects.toThrow(/at most 40 steps/);
  });
});
