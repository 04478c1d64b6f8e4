// The messages between the server and its inference workers (child processes, one per GPU). Both
// sides parse what they receive with these schemas: a worker is a separate program that can die or
// misbehave, so nothing it sends is trusted by shape alone. Browser-safe (zod only), so the page
// can show the workers' status from /api/health with the same types.
import { z } from 'zod';
import { chainProgressSchema } from './progress.js';
import { gpuMemoryModes, providers } from './runtime-choices.js';
import { generationSettingsSchema } from './settings.js';

export const workerRuntimeSchema = z.object({
  provider: z.enum(providers),
  gpuMemory: z.enum(gpuMemoryModes),
  /** The CUDA device this worker runs on; undefined for CPU workers and single-card machines. */
  deviceId: z.number().int().min(0).optional(),
});
export type WorkerRuntime = z.infer<typeof workerRuntimeSchema>;

/** A model the worker may load, and the frame interpolator its jobs use (absent: interpolation is refused). */
export const workerModelSchema = z.object({ name: z.string(), path: z.string(), interpolator: z.string().optional() });

const jobId = z.string().min(1).max(64);

/** The progress events a job shows (all but 'done', which the result message says): each segment's pipeline stages and the interpolator's. */
export const workerProgressSchema = chainProgressSchema;
export type WorkerProgress = z.infer<typeof workerProgressSchema>;

export const toWorkerSchema = z.discriminatedUnion('type', [
  /** First message after the worker said 'started': what it runs and the model to load now. */
  z.object({ type: z.literal('init'), name: z.string(), runtime: workerRuntimeSchema, models: z.array(workerModelSchema).min(1), load: z.string() }),
  /**
   * One job at a time. The worker reads the input from imagePath and writes the 8-bit RGB frames
   * [F, H, W, 3] to framesPath (a file in the job folder: 44 MB at 1024x576 x 25 frames, which the
   * IPC channel would carry far more slowly than the disk, see BENCHMARKS.md).
   */
  z.object({ type: z.literal('run'), jobId, model: z.string().optional(), imagePath: z.string(), framesPath: z.string(), settings: generationSettingsSchema }),
  z.object({ type: z.literal('cancel'), jobId }),
  /** Release the GPU and exit. */
  z.object({ type: z.literal('shutdown') }),
]);
export type ToWorker = z.infer<typeof toWorkerSchema>;
export type ToWorkerInput = z.input<typeof toWorkerSchema>;

export const fromWorkerSchema = z.discriminatedUnion('type', [
  /** The worker listens for messages now. */
  z.object({ type: z.literal('started'), pid: z.number().int() }),
  z.object({ type: z.literal('model-loading'), name: z.string(), message: z.string() }),
  z.object({ type: z.literal('model-ready'), name: z.string(), provider: z.string() }),
  z.object({ type: z.literal('model-error'), name: z.string(), error: z.string() }),
  z.object({ type: z.literal('progress'), jobId, progress: workerProgressSchema }),
  /** A JPEG data URL of the middle frame's current estimate. */
  z.object({ type: z.literal('preview'), jobId, url: z.string().startsWith('data:image/jpeg;base64,').max(2_000_000) }),
  z.object({
    type: z.literal('result'),
    jobId,
    /** The frames are in the run message's framesPath. */
    frameCount: z.number().int().positive(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    fps: z.number().positive(),
    seed: z.number().int(),
    /** Each segment's seed, when the job has several (extend). */
    seeds: z.array(z.number().int()).optional(),
    /** e.g. "cpu (float32)". */
    provider: z.string(),
    totalMs: z.number(),
  }),
  z.object({ type: z.literal('job-failed'), jobId, cancelled: z.boolean(), error: z.string() }),
]);
export type FromWorker = z.infer<typeof fromWorkerSchema>;

/** What /api/health says about each worker (a worker box reports the same for its own, checked by the front server). */
export const workerStatusSchema = z.object({
  name: z.string().max(100),
  /** CUDA device id, when the worker was given a card. */
  deviceId: z.number().int().min(0).optional(),
  pid: z.number().int().optional(),
  /** starting: the process is coming up; restarting: it stopped (see message) and comes back. */
  state: z.enum(['starting', 'loading', 'ready', 'error', 'restarting', 'stopped']),
  /** The model loaded or loading. */
  model: z.string().optional(),
  provider: z.string().optional(),
  /** The last loading step, the load error, or why the worker restarted. */
  message: z.string().optional(),
  /** The job it runs now. */
  job: jobId.nullable(),
  /** That job's stage. */
  stage: z.custom<WorkerProgress['stage']>((v) => workerProgressSchema.options.some((o) => o.shape.stage.value === v)).optional(),
});
export type WorkerStatus = z.infer<typeof workerStatusSchema>;
