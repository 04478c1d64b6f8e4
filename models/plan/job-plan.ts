// The job planner: how one job runs on one worker's device (decode chunk, guidance batch, which
// networks stay open), checked against the memory there is before anything runs. Every provider
// goes through it; the worker plans each job with it and the server answers the page's
// POST /api/plan with it, from the same basis (common/job-plan.ts), so both say the same.
import type { JobPlan, PlanDevice, PlanModel } from '../../common/job-plan.js';
import type { GenerationSettings } from '../../common/settings.js';
import { chainFrameCount, interpolatedCount } from '../../common/video-chain.js';
import { PORTABLE_FORMS, maxDecoderChunk } from '../networks/forms.js';
import type { VaeConfig } from '../configs.js';
import { MemoryPlanError, planMemory } from './gpu-memory.js';
import { hostAvailableMiB, planHostMemory } from './host-memory.js';

export { MemoryPlanError } from './gpu-memory.js';

/** What of a job's settings the plan depends on (the size is the video's; the chain's settings where the whole job is planned, not one segment). */
export type PlanJob = Pick<GenerationSettings, 'width' | 'height' | 'frames' | 'maxGuidance' | 'decodeChunk'> & Partial<Pick<GenerationSettings, 'extend' | 'interpolate'>>;

/**
 * 8-bit frames a chained job holds in host memory beside the segment being made: the segments so
 * far and their joined copy, then the joined video and its interpolated one (video-chain.ts).
 */
export function chainHeldFrames(job: PlanJob, defaultFrames: number): number {
  const extend = job.extend ?? 1;
  const interpolate = job.interpolate ?? 1;
  if (extend === 1 && interpolate === 1) return 0;
  const joined = chainFrameCount({ frames: job.frames, extend, interpolate: 1 }, defaultFrames);
  return joined + (interpolate > 1 ? interpolatedCount(joined, interpolate) : joined);
}

/** A device as planned for now: the basis, with the host memory free at this moment (CPU). */
export type PlanningDevice = PlanDevice & { hostAvailableMiB?: number };

/**
 * The device as planned for at this moment: a CPU job (without a GPU budget) is checked against
 * the memory free now, counting what the worker process (resident now: `workerResidentMiB`) holds
 * from earlier jobs, which its arenas reuse.
 */
export function deviceNow(device: PlanDevice, workerResidentMiB: () => number | undefined): PlanningDevice {
  if (device.provider !== 'cpu' || device.gpuBudgetMiB !== undefined) return device;
  return { ...device, hostAvailableMiB: hostAvailableMiB(workerResidentMiB(), device.hostBaselineMiB) };
}

/**
 * 'auto' where the memory does not bound the chunk more tightly: the reference decodes every
 * frame at once, which on the CPU (or a GPU whose free memory is not known) takes several GB more
 * for a small gain, so auto stops at the setting's former default there.
 */
export const AUTO_CHUNK_LIMIT = 8;

/** WebGPU fails a convolution whose output passes about 2 GiB (seen on an H100 with 8 frames of 256 channels at 1024x576). */
export const WEBGPU_MAX_TENSOR_BYTES = 1.9e9;

/**
 * onnxruntime's CUDA kernels count a tensor's values in a 32-bit int: the decoder's Resize failed
 * with "output element count exceeds int range" on 25 frames of 256 channels at 1024x576 (H200).
 */
export const CUDA_MAX_TENSOR_VALUES = 2 ** 31 - 1;

/** The largest tensor the device's provider can hold, bytes, and how to say so; undefined where there is no limit. */
function tensorCap(device: PlanDevice, valueBytes: number): { bytes: number; why: string } | undefined {
  if (device.provider === 'cuda') return { bytes: CUDA_MAX_TENSOR_VALUES * valueBytes, why: "onnxruntime's CUDA kernels take at most 2^31 values in one tensor" };
  if (device.maxTensorBytes === undefined) return undefined;
  return { bytes: device.maxTensorBytes, why: `${device.provider} holds at most ${(device.maxTensorBytes / 1e9).toFixed(1)} GB in one tensor` };
}

export function planJob(device: PlanningDevice, model: PlanModel, job: PlanJob): JobPlan {
  const frames = job.frames ?? model.frames;
  const videos = job.maxGuidance > 1 ? 2 : 1;
  const { width, height } = job;
  const auto = job.decodeChunk === 'auto';
  // The provider's largest tensor bounds the chunk before memory does.
  // maxDecoderChunk reads only the decoder's widths and the halves form.
  const vae = { block_out_channels: model.decoderChannels } as VaeConfig;
  const cap = tensorCap(device, model.valueBytes);
  const tensorLimit = maxDecoderChunk({ ...PORTABLE_FORMS, decoderFrameHalves: model.decoderFrameHalves }, cap?.bytes, vae, width, height, model.valueBytes);
  const asked = auto ? frames : Math.min(job.decodeChunk as number, frames);
  const upTo = Math.min(asked, tensorLimit);
  const base = { provider: device.provider, width, height, frames, decodeChunkAuto: auto };
  /** Says so where the tensor limit is what set the chunk. */
  const notes = (chunk: number): string[] => (chunk === tensorLimit && asked > tensorLimit ? [`decoding ${chunk} frames at a time${auto ? '' : ` instead of ${asked}`}: ${cap!.why}`] : []);

  if (device.gpuBudgetMiB !== undefined) {
    const plan = planMemory(device.gpuBudgetMiB, { width, height, frames, videos, decodeChunk: auto ? 'auto' : upTo, maxDecodeChunk: upTo }, model.weightsMiB, { sharedArena: device.sharedArena });
    return {
      ...base,
      decodeChunk: plan.decodeChunk,
      guidanceBatch: plan.guidanceBatch,
      sessions: plan.sessions,
      decoderPerShape: plan.decoderPerShape,
      memory: { kind: 'gpu', peakMiB: plan.peakMiB, availableMiB: Math.round(device.gpuBudgetMiB) },
      notes: [...notes(plan.decodeChunk), ...plan.notes],
    };
  }

  const layout = { guidanceBatch: device.guidanceBatch, sessions: device.sessions, decoderPerShape: device.provider === 'cuda' && device.sessions === 'shared' };
  if (device.provider === 'cpu' && device.hostAvailableMiB !== undefined) {
    const heldFrames = chainHeldFrames(job, model.frames);
    const videoFrames = chainFrameCount({ frames: job.frames, extend: job.extend ?? 1, interpolate: job.interpolate ?? 1 }, model.frames);
    const plan = planHostMemory(device.hostAvailableMiB, { width, height, frames, videos, decodeChunk: auto ? 'auto' : upTo, heldFrames, videoFrames }, model, Math.min(AUTO_CHUNK_LIMIT, upTo));
    return { ...base, ...layout, decodeChunk: plan.decodeChunk, memory: { kind: 'host', peakMiB: plan.peakMiB, availableMiB: Math.round(device.hostAvailableMiB) }, notes: notes(plan.decodeChunk) };
  }
  const decodeChunk = auto ? Math.min(AUTO_CHUNK_LIMIT, upTo) : upTo;
  return { ...base, ...layout, decodeChunk, notes: notes(decodeChunk) };
}

/** The plan, or the refusal's message; other errors are the planner's own faults and are thrown. */
export function tryPlanJob(device: PlanningDevice, model: PlanModel, job: PlanJob): { plan: JobPlan } | { refused: string } {
  try {
    return { plan: planJob(device, model, job) };
  } catch (err) {
    if (err instanceof MemoryPlanError) return { refused: err.message };
    throw err;
  }
}
