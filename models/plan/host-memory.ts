// The host memory a job takes on the CPU provider, and whether it fits what this machine has
// free: the CPU's counterpart of gpu-memory.ts, one part of the job planner (job-plan.ts).
// onnxruntime's CPU arena grows by powers of two and keeps what it took, so the constants are
// an upper envelope of measured peaks, not live tensors.
import { freemem, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import type { PlanModel } from '../../common/job-plan.js';
import { MemoryPlanError } from './gpu-memory.js';

/**
 * Bytes a CPU job takes above the loaded model. Activations scale with the width of the layers
 * that run at full size, so they are given per channel of the UNet's first block and of the
 * decoder's full-resolution level: measured on the demo model (32 and 32), carried to wider
 * models by that width (how, and the runs: BENCHMARKS.md, "Host memory of a CPU job").
 */
export interface HostEstimates {
  /** onnxruntime's and the job's fixed buffers. */
  fixedMiB: number;
  /** UNet activations the arena keeps, per video · frame · output pixel · UNet channel. */
  unetBytesPerVideoFramePixelChannel: number;
  /** Decoder activations per decoded frame · pixel · decoder channel. */
  decoderBytesPerFramePixelChannel: number;
  /** What runs once per job at full size (the VAE encoder, the decoder's chunk-independent buffers), per pixel · decoder channel. */
  fullSizeBytesPerPixelChannel: number;
  /** The video itself: float and 8-bit frames, latents and their copies, per frame · pixel. */
  outputBytesPerFramePixel: number;
}

export const CPU_ESTIMATES: HostEstimates = {
  fixedMiB: 48,
  unetBytesPerVideoFramePixelChannel: 1.5,
  decoderBytesPerFramePixelChannel: 25,
  fullSizeBytesPerPixelChannel: 62.5,
  outputBytesPerFramePixel: 16,
};

const MiB = 2 ** 20;
const gib = (mib: number) => `${(mib / 1024).toFixed(1)} GiB`;

export interface HostJob {
  width: number;
  height: number;
  frames: number;
  videos: 1 | 2;
  /** 'auto': the most that fit, up to `autoLimit`. */
  decodeChunk: number | 'auto';
  /**
   * 8-bit frames the video chain holds beside the segment being made (the segments made so far and
   * their joined copy, or the joined video and its interpolated one); 0 for a single clip.
   */
  heldFrames?: number;
  /** The chained video's frames in the end, for the message. */
  videoFrames?: number;
}

/** The job's peak above the loaded model, MiB, decoding `chunk` frames at a time. */
export function hostPeakMiB(job: Omit<HostJob, 'decodeChunk'>, chunk: number, model: Pick<PlanModel, 'unetChannels' | 'decoderChannels'>, est: HostEstimates = CPU_ESTIMATES): number {
  const pixels = job.width * job.height;
  const decoder = model.decoderChannels[0]!;
  const perPixel =
    job.frames * (job.videos * est.unetBytesPerVideoFramePixelChannel * model.unetChannels + est.outputBytesPerFramePixel) +
    chunk * est.decoderBytesPerFramePixelChannel * decoder +
    est.fullSizeBytesPerPixelChannel * decoder +
    3 * (job.heldFrames ?? 0);
  return est.fixedMiB + (pixels * perPixel) / MiB;
}

export interface HostPlan {
  decodeChunk: number;
  peakMiB: number;
}

/**
 * The decode chunk for a CPU job that must stay within `availableMiB`: the one asked for, or with
 * 'auto' the most that fit up to `autoLimit`; a MemoryPlanError that says what to lower when the
 * job does not fit.
 */
export function planHostMemory(availableMiB: number, job: HostJob, model: Pick<PlanModel, 'unetChannels' | 'decoderChannels'>, autoLimit: number, est: HostEstimates = CPU_ESTIMATES): HostPlan {
  const peak = (chunk: number) => hostPeakMiB(job, chunk, model, est);
  const chain = job.heldFrames ? ` making a video of ${job.videoFrames} frames (its segments and interpolation held in memory)` : '';
  const size = `${job.frames} frames at ${job.width}x${job.height}${chain}`;
  const free = `and ${gib(availableMiB)} of this machine's memory is free for it`;
  if (peak(1) > availableMiB) {
    throw new MemoryPlanError(
      `Not enough memory for this job on the CPU: ${size} need about ${gib(peak(1))} even decoding one frame at a time, ${free}. Lower the frames or the size, or close other programs.`,
    );
  }
  if (job.decodeChunk === 'auto') {
    let chunk = Math.max(1, Math.min(autoLimit, job.frames));
    while (chunk > 1 && peak(chunk) > availableMiB) chunk--;
    return { decodeChunk: chunk, peakMiB: Math.round(peak(chunk)) };
  }
  const chunk = Math.max(1, Math.min(job.decodeChunk, job.frames));
  if (peak(chunk) > availableMiB) {
    let fits = chunk;
    while (fits > 1 && peak(fits) > availableMiB) fits--;
    throw new MemoryPlanError(
      `Not enough memory for this job on the CPU: ${size} with a decode chunk of ${chunk} need about ${gib(peak(chunk))}, ${free}. Lower the decode chunk to ${fits} or less (or auto), or the frames or the size.`,
    );
  }
  return { decodeChunk: chunk, peakMiB: Math.round(peak(chunk)) };
}

/** What the machine keeps free for everything else: a tenth of its memory, at least 512 MiB. */
export function hostReserveMiB(totalMiB = totalmem() / MiB): number {
  return Math.max(512, totalMiB / 10);
}

/** This process's resident memory, MiB (Linux: /proc; elsewhere Node's own count). */
export function residentMiB(pid: number | 'self' = 'self'): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux, or the process is gone
  }
  return pid === 'self' ? process.memoryUsage().rss / MiB : undefined;
}

/**
 * Memory a CPU job of a worker may take now, MiB: what the machine (or its container) has
 * available, plus what the worker holds above its loaded model from earlier jobs (its arenas
 * reuse it), less the reserve.
 */
export function hostAvailableMiB(workerResidentMiB: number | undefined, baselineMiB: number | undefined): number {
  const available = (process.availableMemory?.() ?? freemem()) / MiB;
  const held = workerResidentMiB !== undefined && baselineMiB !== undefined ? Math.max(0, workerResidentMiB - baselineMiB) : 0;
  return Math.max(0, available + held - hostReserveMiB());
}
