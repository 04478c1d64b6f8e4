// The worker boxes behind a front server with --queue (server/queue/): what each says about itself
// in Redis every few seconds, and what /api/health and the page show of them. Browser-safe.
import { z } from 'zod';
import { chainProgressSchema } from './progress.js';
import { videoFormats } from './video-formats.js';
import { workerStatusSchema } from './worker-protocol.js';

/** A box's own report (the box writes it; the front server checks it before use). */
export const boxReportSchema = z.object({
  name: z.string().min(1).max(64),
  /** When the box wrote it (ms since 1970, the box's clock). */
  at: z.number(),
  startedAt: z.string(),
  /** The NVIDIA cards nvidia-smi lists on the box (none on a CPU box). */
  cards: z.array(z.object({ index: z.number().int(), name: z.string().max(200), memoryTotalMiB: z.number() })).max(64),
  workers: z.array(workerStatusSchema).max(64),
});
export type BoxReport = z.infer<typeof boxReportSchema>;

/** A box as /api/health lists it: `gone` when it has not reported for a while (stopped, or cut off). */
export type BoxStatus = BoxReport & { gone: boolean };

/** Where a job ran, when a worker box made it. */
export const ranOnSchema = z.object({ box: z.string().max(64), worker: z.string().max(100) });
export type RanOn = z.infer<typeof ranOnSchema>;

/** Progress a box reports for a job through BullMQ: the chain's stages (segments, interpolation), and its own writing and upload. */
export const boxProgressSchema = z.union([chainProgressSchema, z.object({ stage: z.literal('writing'), message: z.string().max(500), format: z.enum(videoFormats).optional() })]);
export type BoxProgress = z.infer<typeof boxProgressSchema>;
