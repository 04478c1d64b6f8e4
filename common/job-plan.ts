// What the job planner (models/plan/) is given and what it answers, as data: a worker describes its
// device and loaded model once (the plan basis, sent with 'model-ready'), and the server and the
// worker plan every job from it with the same function, so the page shows the plan the worker
// will follow. Browser-safe: the page reads the plan with these types.
import { z } from 'zod';
import { providers } from './runtime-choices.js';

const mib = z.number().nonnegative();

export const planDeviceSchema = z.object({
  provider: z.enum(providers).exclude(['auto']),
  /** GPU memory the worker may use, MiB (CUDA: the card's free memory at load less a margin); absent where it is not known. */
  gpuBudgetMiB: mib.optional(),
  /** The largest tensor the provider can hold, bytes (WebGPU's buffer limit); absent: no limit. */
  maxTensorBytes: z.number().positive().optional(),
  /** The layout the worker was started with (WebGPU's memory mode, the benchmark's overrides). */
  guidanceBatch: z.enum(['joint', 'split']),
  sessions: z.enum(['shared', 'separate']),
  /** CUDA: all the worker's sessions draw on one memory arena (models/runtime/cuda-arena.ts), so open stages hold the largest stage's peak, not the sum. */
  sharedArena: z.boolean().optional(),
  /** CPU: the worker's resident memory with its model loaded, before any job, MiB. */
  hostBaselineMiB: mib.optional(),
});
export type PlanDevice = z.infer<typeof planDeviceSchema>;

export const planModelSchema = z.object({
  /** The UNet's trained frame count: a job's frames when it does not say. */
  frames: z.number().int().positive(),
  /** Each stage's weights as the worker's graphs hold them, MiB. */
  weightsMiB: z.object({ unet: mib, vae_decoder: mib, encoders: mib }),
  /** 2 for fp16 graphs, 4 for fp32. */
  valueBytes: z.union([z.literal(2), z.literal(4)]),
  /** The UNet's first (full latent resolution) block width. */
  unetChannels: z.number().int().positive(),
  /** The VAE's block_out_channels: the decoder's full-resolution level is the first. */
  decoderChannels: z.array(z.number().int().positive()).nonempty(),
  /** The decoder graph runs its widest layers on two halves of a chunk (WebGPU's form). */
  decoderFrameHalves: z.boolean(),
});
export type PlanModel = z.infer<typeof planModelSchema>;

export const planBasisSchema = z.object({ device: planDeviceSchema, model: planModelSchema });
export type PlanBasis = z.infer<typeof planBasisSchema>;

/** How one job runs on one worker: chosen before anything runs, and explained. */
export interface JobPlan {
  provider: PlanDevice['provider'];
  width: number;
  height: number;
  frames: number;
  /** Frames decoded together. */
  decodeChunk: number;
  /** The setting was `auto`: the planner chose decodeChunk. */
  decodeChunkAuto: boolean;
  guidanceBatch: 'joint' | 'split';
  sessions: 'shared' | 'separate';
  /**
   * A decoder session per chunk length (25 frames in chunks of 8 end with a chunk of 1): on CUDA
   * a session whose input shape changes pays for each change, every job (BENCHMARKS.md, CUDA attempt 4).
   */
  decoderPerShape: boolean;
  /** The memory the plan was checked against: the GPU's budget, or the host's for the CPU; absent where none is known. */
  memory?: { kind: 'gpu' | 'host'; peakMiB: number; availableMiB: number };
  /** What was chosen and why, in the user's words (empty when nothing had to give). */
  notes: string[];
}

/** POST /api/plan: the plan, or why the job would be refused (the message the job would fail with). */
export type PlanAnswer = { plan: JobPlan } | { refused: string };
