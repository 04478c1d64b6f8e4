// The job planner (models/plan/job-plan.ts) on the devices it plans for: CUDA cards of 16 and
// 80 GB with SVD-XT's weights, the CPU against the host memory free, WebGPU's tensor limit.
import { describe, expect, it } from 'vitest';
import type { PlanDevice, PlanModel } from '../common/job-plan.js';
import { parseSettings } from '../common/settings.js';
import { hostPeakMiB } from '../models/plan/host-memory.js';
import { chainHeldFrames, MemoryPlanError, planJob, WEBGPU_MAX_TENSOR_BYTES } from '../models/plan/job-plan.js';
import { SvdPipeline, type ProgressEvent } from '../models/pipeline/pipeline.js';
import { prepareImage } from '../models/pipeline/prepare-image.js';
import { FIXTURE_INPUT, FIXTURE_MODEL, tempDir } from './helpers.js';

// SVD-XT as the converter writes it (fp16 weights, MiB) and the demo model on the CPU (fp32).
const XT: PlanModel = { frames: 25, weightsMiB: { unet: 2816, vae_decoder: 190, encoders: 1300 }, valueBytes: 2, unetChannels: 320, decoderChannels: [128, 256, 512, 512], decoderFrameHalves: false };
const TINY: PlanModel = { frames: 5, weightsMiB: { unet: 3, vae_decoder: 1, encoders: 1 }, valueBytes: 4, unetChannels: 32, decoderChannels: [32, 32, 32, 64], decoderFrameHalves: true };
const cuda = (gpuBudgetMiB: number): PlanDevice => ({ provider: 'cuda', gpuBudgetMiB, guidanceBatch: 'joint', sessions: 'shared' });
const cpu = (hostAvailableMiB: number) => ({ provider: 'cpu' as const, guidanceBatch: 'joint' as const, sessions: 'shared' as const, hostBaselineMiB: 200, hostAvailableMiB });
const job = (s: Parameters<typeof parseSettings>[0] = {}) => parseSettings(s);

describe('planJob on CUDA', () => {
  it('an 80 GB card keeps everything open; auto decodes as many frames as fit with the rest (12 of 25), a number is kept', () => {
    const auto = planJob(cuda(78_000), XT, job());
    expect(auto).toMatchObject({ provider: 'cuda', frames: 25, decodeChunk: 12, decodeChunkAuto: true, sessions: 'shared', guidanceBatch: 'joint', decoderPerShape: true, notes: [] });
    expect(auto.memory).toMatchObject({ kind: 'gpu', availableMiB: 78_000 });
    expect(auto.memory!.peakMiB).toBeLessThanOrEqual(78_000);
    expect(planJob(cuda(78_000), XT, job({ decodeChunk: 8 }))).toMatchObject({ decodeChunk: 8, decodeChunkAuto: false, sessions: 'shared' });
  });

  it('a 16 GB card runs SVD-XT stage by stage with a smaller chunk, and says so when a number had to give', () => {
    const budget = 15 * 1024 - 512;
    const asked = planJob(cuda(budget), XT, job({ decodeChunk: 8 }));
    expect(asked).toMatchObject({ sessions: 'separate', guidanceBatch: 'joint', decoderPerShape: false });
    expect(asked.decodeChunk).toBeGreaterThanOrEqual(1);
    expect(asked.decodeChunk).toBeLessThan(8);
    expect(asked.memory!.peakMiB).toBeLessThanOrEqual(budget);
    expect(asked.notes.join('; ')).toMatch(new RegExp(`decoding ${asked.decodeChunk} frames at a time instead of 8`));
    // auto picks the same largest chunk that fits, without calling it a reduction.
    const auto = planJob(cuda(budget), XT, job());
    expect(auto).toMatchObject({ decodeChunk: asked.decodeChunk, sessions: 'separate' });
    expect(auto.notes.join('; ')).not.toMatch(/instead of/);
  });

  it('auto keeps the networks open with a smaller chunk where that still decodes 8 frames or more', () => {
    // Room for everything open with about 10 frames per chunk, not 25.
    const budget = 600 + 1600 + 2816 + (317 * 2 * 25 * 1024 * 576) / 2 ** 20 + 190 + (6130 * 12 * 1024 * 576) / 2 ** 20;
    const plan = planJob(cuda(budget), XT, job());
    expect(plan.sessions).toBe('shared');
    expect(plan.decodeChunk).toBeGreaterThanOrEqual(8);
    expect(plan.decodeChunk).toBeLessThan(25);
  });

  it('refuses a job that cannot fit, naming the stage and what to lower', () => {
    expect(() => planJob(cuda(5 * 1024), XT, job())).toThrow(MemoryPlanError);
    expect(() => planJob(cuda(5 * 1024), XT, job())).toThrow(/Not enough GPU memory for sampling: .*25 frames at 1024x576.*Lower the frames or the resolution/);
  });
});

describe('planJob on the CPU', () => {
  const shape = { width: 256, height: 256, frames: 128 } as const;

  it('auto decodes up to 8 frames at a time, fewer where the memory is short', () => {
    expect(planJob(cpu(16_000), TINY, job({ ...shape }))).toMatchObject({ decodeChunk: 8, decodeChunkAuto: true, memory: { kind: 'host', availableMiB: 16_000 } });
    expect(planJob(cpu(16_000), TINY, job({ width: 256, height: 128 }))).toMatchObject({ frames: 5, decodeChunk: 5 });
    const tight = hostPeakMiB({ ...shape, videos: 2 }, 3, TINY);
    const plan = planJob(cpu(tight + 1), TINY, job({ ...shape }));
    expect(plan.decodeChunk).toBe(3);
    expect(plan.memory!.peakMiB).toBeLessThanOrEqual(tight + 1);
  });

  it("refuses the hostile probe's 256x256 x 128 frames x chunk 128 on a small machine, saying what to lower", () => {
    const s = job({ ...shape, decodeChunk: 128 });
    // The probe saw 5.5 GB: the estimate must not be below what was measured.
    expect(hostPeakMiB({ ...shape, videos: 2 }, 128, TINY)).toBeGreaterThan(5.5 * 1000);
    expect(() => planJob(cpu(3000), TINY, s)).toThrow(MemoryPlanError);
    expect(() => planJob(cpu(3000), TINY, s)).toThrow(
      /^Not enough memory for this job on the CPU: 128 frames at 256x256 with a decode chunk of 128 need about [\d.]+ GiB, and 2\.9 GiB of this machine's memory is free for it\. Lower the decode chunk to \d+ or less \(or auto\), or the frames or the size\.$/,
    );
    expect(() => planJob(cpu(300), TINY, s)).toThrow(/need about [\d.]+ GiB even decoding one frame at a time.*Lower the frames or the size/);
    expect(planJob(cpu(16_000), TINY, s)).toMatchObject({ decodeChunk: 128 });
  });

  it('counts the whole video a chained job holds: its segments, then the interpolated frames', () => {
    const clip = job({ width: 1024, height: 576, frames: 25, decodeChunk: 1 });
    const chained = job({ width: 1024, height: 576, frames: 25, decodeChunk: 1, extend: 8, interpolate: 8 });
    // 8 segments of 25 frames join to 193; interpolated by 8 they become 1537.
    expect(chainHeldFrames(clip, 25)).toBe(0);
    expect(chainHeldFrames(chained, 25)).toBe(193 + 1537);
    const alone = planJob(cpu(16_000), TINY, clip).memory!.peakMiB;
    expect(planJob(cpu(16_000), TINY, chained).memory!.peakMiB - alone).toBeCloseTo((1024 * 576 * 3 * (193 + 1537)) / 2 ** 20, 0);
    // Enough for one clip, not for the chain: refused before anything runs, saying why.
    expect(() => planJob(cpu(alone + 500), TINY, chained)).toThrow(/1024x576 making a video of 1537 frames \(its segments and interpolation held in memory\).*Lower the frames or the size/);
  });
});

describe('planJob without a known memory budget (WebGPU)', () => {
  it("caps the chunk by the provider's largest tensor and says why", () => {
    const webgpu: PlanDevice = { provider: 'webgpu', maxTensorBytes: WEBGPU_MAX_TENSOR_BYTES, guidanceBatch: 'split', sessions: 'separate' };
    const halves = { ...XT, decoderFrameHalves: true };
    const plan = planJob(webgpu, halves, job({ decodeChunk: 25 }));
    expect(plan).toMatchObject({ decodeChunk: 12, guidanceBatch: 'split', sessions: 'separate', decoderPerShape: false });
    expect(plan.notes).toEqual(['decoding 12 frames at a time instead of 25: webgpu holds at most 1.9 GB in one tensor']);
    expect(plan.memory).toBeUndefined();
    expect(planJob(webgpu, halves, job())).toMatchObject({ decodeChunk: 8, decodeChunkAuto: true, notes: [] });
  });

  it('on CUDA, auto never decodes more frames than 2^31 values of the widest full-size layer, however large the card', () => {
    // 25 frames x 256 channels x 1024x576 is 3.8e9 values: the CUDA Resize refused it on an H200.
    const big = planJob({ ...cuda(130_000), sharedArena: true }, XT, job());
    expect(big).toMatchObject({
      decodeChunk: 14,
      decodeChunkAuto: true,
      sessions: 'shared',
      notes: ["decoding 14 frames at a time: onnxruntime's CUDA kernels take at most 2^31 values in one tensor"],
    });
    expect(14 * 256 * 1024 * 576).toBeLessThan(2 ** 31);
    expect(15 * 256 * 1024 * 576).toBeGreaterThan(2 ** 31);
    expect(planJob(cuda(130_000), XT, job({ decodeChunk: 25 })).notes).toEqual(["decoding 14 frames at a time instead of 25: onnxruntime's CUDA kernels take at most 2^31 values in one tensor"]);
    // Smaller videos are not held back: 25 frames of 512x320 fit in one chunk.
    expect(planJob(cuda(130_000), XT, job({ width: 512, height: 320 }))).toMatchObject({ decodeChunk: 25, notes: [] });
  });
});

describe('the pipeline plans every job with it (CPU, the demo model)', () => {
  it('refuses a job too big for the free memory before anything runs, then runs one that fits with the chunk auto chose', async () => {
    const pipeline = await SvdPipeline.load(FIXTURE_MODEL, { provider: 'cpu', cacheDir: tempDir('svd-job-plan-') });
    try {
      expect(pipeline.planBasis.device).toMatchObject({ provider: 'cpu', sessions: 'shared' });
      expect(pipeline.planBasis.device.hostBaselineMiB).toBeGreaterThan(0);
      const big = { data: new Uint8Array(2048 * 1024 * 3), width: 2048, height: 1024 };
      const events: ProgressEvent[] = [];
      await expect(pipeline.generate(big, parseSettings({ width: 2048, height: 1024, frames: 128, steps: 1 }), { onProgress: (e) => events.push(e) })).rejects.toThrow(
        /^Not enough memory for this job on the CPU: 128 frames at 2048x1024 need about/,
      );
      expect(events).toEqual([]);
      const image = await prepareImage(FIXTURE_INPUT, { width: 128, height: 64, framing: { mode: 'stretch' } });
      const r = await pipeline.generate(image, parseSettings({ width: 128, height: 64, frames: 3, steps: 1, seed: 1 }));
      expect(r.plan).toMatchObject({ decodeChunk: 3, decodeChunkAuto: true, memory: { kind: 'host' } });
    } finally {
      await pipeline.release();
    }
  });
});
