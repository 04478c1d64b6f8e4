import { describe, expect, it } from 'vitest';
import { CUDA_SHARED_ARENA_ESTIMATES, planMemory, MemoryPlanError } from '../models/plan/gpu-memory.js';
import { SvdPipeline, type ProgressEvent } from '../models/pipeline/pipeline.js';
import { prepareImage } from '../models/pipeline/prepare-image.js';
import { parseSettings } from '../common/settings.js';
import { FIXTURE_MODEL, tempDir, FIXTURE_INPUT } from './helpers.js';

// SVD-XT's fp16 weights as the converter writes them, MiB.
const XT = { unet: 2816, vae_decoder: 190, encoders: 1300 };
const xt = (decodeChunk: number, frames = 25) => ({ width: 1024, height: 576, frames, videos: 2 as const, decodeChunk });

describe('planMemory (CUDA estimates)', () => {
  it('keeps everything open on a large card, with a decoder session per chunk length', () => {
    const plan = planMemory(78_000, xt(8), XT);
    expect(plan).toMatchObject({ sessions: 'shared', guidanceBatch: 'joint', decodeChunk: 8, decoderPerShape: true, notes: [] });
  });

  it('fits SVD-XT and SVD into a 16 GB card stage by stage, lowering the decode chunk and saying so', () => {
    const budget = 15 * 1024 - 512;
    const plan = planMemory(budget, xt(8), XT);
    expect(plan).toMatchObject({ sessions: 'separate', guidanceBatch: 'joint', decoderPerShape: false });
    expect(plan.decodeChunk).toBeGreaterThanOrEqual(1);
    expect(plan.decodeChunk).toBeLessThan(8);
    expect(plan.peakMiB).toBeLessThanOrEqual(budget);
    expect(plan.notes.join('; ')).toMatch(new RegExp(`decoding ${plan.decodeChunk} frames at a time instead of 8`));
    const svd = planMemory(budget, xt(8, 14), XT);
    expect(svd.peakMiB).toBeLessThanOrEqual(budget);
  });

  it('with one shared arena, keeps every network open on a 16 GB card: the stages draw on one pool, so only the weights add up', () => {
    const budget = 15 * 1024 - 512;
    const shared = planMemory(budget, xt(4), XT, { sharedArena: true });
    expect(shared).toMatchObject({ sessions: 'shared', guidanceBatch: 'joint', decodeChunk: 4, decoderPerShape: true, notes: [] });
    // Every weight (the decoder twice: a session for the last, shorter chunk) and the largest stage's activations, the UNet's here.
    const unetActivations = (CUDA_SHARED_ARENA_ESTIMATES.unetBytesPerVideoFramePixel * 2 * 25 * 1024 * 576) / 2 ** 20;
    expect(shared.peakMiB).toBe(Math.round(CUDA_SHARED_ARENA_ESTIMATES.contextMiB + XT.unet + XT.encoders + 2 * XT.vae_decoder + unetActivations));
    // The same card with an arena per session: the activations add up, and each job reopens its stages.
    expect(planMemory(budget, xt(4), XT)).toMatchObject({ sessions: 'separate' });
    // 'auto' takes the largest chunk that keeps everything open: 5 frames (25 in five chunks, no second decoder session).
    expect(planMemory(budget, { ...xt(4), decodeChunk: 'auto' }, XT, { sharedArena: true })).toMatchObject({ sessions: 'shared', decodeChunk: 5 });
    // Where even a 4-frame chunk does not fit beside every weight, the stages are opened one at a time again.
    expect(planMemory(11 * 1024, { ...xt(4), decodeChunk: 'auto' }, XT, { sharedArena: true })).toMatchObject({ sessions: 'separate' });
  });

  it('splits the guidance batch before giving up on sampling', () => {
    const plan = planMemory(9 * 1024, xt(2), XT);
    expect(plan.guidanceBatch).toBe('split');
    expect(plan.notes).toContain('running the guidance batch one video at a time');
  });

  it('refuses a job that cannot fit with the stage and what to lower', () => {
    expect(() => planMemory(5 * 1024, xt(25), XT)).toThrow(MemoryPlanError);
    expect(() => planMemory(5 * 1024, xt(25), XT)).toThrow(
      /Not enough GPU memory for sampling: the UNet needs about [\d.]+ GiB for 25 frames at 1024x576, and 5.0 GiB is free\. Lower the frames or the resolution/,
    );
    // Sampling fits in 8 GiB with the batch split, one decoded frame at 2048x2048 does not.
    expect(() => planMemory(8 * 1024, { width: 2048, height: 2048, frames: 2, videos: 2, decodeChunk: 1 }, XT)).toThrow(/Not enough GPU memory for decoding: one frame at 2048x2048 needs about/);
  });
});

describe('a memory budget on the fixture pipeline (CPU)', () => {
  it('refuses before sampling, then runs the next job', async () => {
    const image = await prepareImage(FIXTURE_INPUT, { width: 128, height: 64, framing: { mode: 'stretch' } });
    const settings = parseSettings({ width: 128, height: 64, frames: 3, steps: 2, decodeChunk: 2, seed: 1 });
    const small = await SvdPipeline.load(FIXTURE_MODEL, { provider: 'cpu', cacheDir: tempDir('svd-plan-'), memoryBudgetMiB: 100 });
    try {
      const events: ProgressEvent[] = [];
      await expect(small.generate(image, settings, { onProgress: (e) => events.push(e) })).rejects.toThrow(/Not enough GPU memory for sampling.*Lower the frames or the resolution/);
      expect(events.filter((e) => e.stage === 'sampling' || e.stage === 'encoding')).toEqual([]);
    } finally {
      await small.release();
    }
    const roomy = await SvdPipeline.load(FIXTURE_MODEL, { provider: 'cpu', cacheDir: tempDir('svd-plan-'), memoryBudgetMiB: 4096 });
    try {
      const r = await roomy.generate(image, settings);
      expect(r.frameCount).toBe(3);
      expect(r.plan?.sessions).toBe('shared');
    } finally {
      await roomy.release();
    }
  });
});
