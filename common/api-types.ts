// The shapes the HTTP API and socket.io send, shared by the server and the page.
import { z } from 'zod';
import { ranOnSchema, type BoxStatus } from './boxes.js';
import type { JobProgress } from './progress.js';
import { jobSettingsSchema } from './settings.js';
import { videoFormats } from './video-formats.js';
import type { WorkerStatus } from './worker-protocol.js';

export const jobStatuses = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'] as const;
export type JobStatus = (typeof jobStatuses)[number];

/** A job as its folder's job.json keeps it (the server checks each one it reads back with this). */
export const jobRecordSchema = z.object({
  id: z.string(),
  status: z.enum(jobStatuses),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  settings: jobSettingsSchema,
  /** The seed actually used (set once generation starts). */
  seed: z.number().int().optional(),
  /** Each segment's seed, when the job has several (settings.extend). */
  seeds: z.array(z.number().int()).optional(),
  error: z.string().optional(),
  /** Video files written, by format. */
  videos: z.partialRecord(z.enum(videoFormats), z.string()),
  inputName: z.string(),
  saved: z.object({ status: z.enum(['pending', 'saved', 'failed']), files: z.array(z.string()).optional(), error: z.string().optional() }).optional(),
  /** The job this one re-runs, if any. */
  rerunOf: z.string().optional(),
  /** The job whose last frame is this one's input ("Continue from the last frame"). */
  continues: z.string().optional(),
  /** One of several videos asked for together (settings.variations): the first job's id, this one's place and how many. */
  variation: z.object({ group: z.string(), index: z.number().int().positive(), of: z.number().int().positive() }).optional(),
  provider: z.string().optional(),
  timings: z.object({ totalMs: z.number() }).optional(),
  /** The worker box and worker that made it (a front server with --queue). */
  ranOn: ranOnSchema.optional(),
  /** A digest of the client id of the browser (or API user) that made it; absent for jobs made
   * before jobs had owners, or by API users who send no id. Never sent to clients. */
  owner: z.string().optional(),
});

/** A job: its stored record and, while it is known, where it stands. */
export type JobRecord = z.infer<typeof jobRecordSchema> & { progress?: JobProgress };

/** A job as the API and socket.io send it: the record plus where it stands in the queue. */
export type JobSnapshot = Omit<JobRecord, 'owner'> & { position: number; queueLength: number };

export interface HealthInfo {
  /** The model loaded now (or loading); `demo`: the tiny random-weight model, whose output is noise. */
  model: { path: string; demo: boolean; frames?: number };
  /** Every model a job may ask for by name (settings.model). */
  /** `fast`: a consistency-distilled model (AnimateLCM), run with fastModelDefaults; `interpolator`: a frame interpolator is installed for its jobs. */
  models: { name: string; demo: boolean; frames: number; fast: boolean; interpolator: boolean }[];
  status: 'loading' | 'ready' | 'error';
  provider?: string;
  error?: string;
  gpu?: { name: string; memoryTotalMiB: number; memoryUsedMiB: number };
  ffmpeg: { ok: boolean; error?: string };
  /** Whether a Drive-style save folder is configured. */
  saveDir: boolean;
  /** The save folder is a mounted Google Drive (on Colab), not a folder on the server's disk. */
  saveDirOnDrive?: boolean;
  /** The inference worker processes (one per GPU) and what each is doing. */
  workers: WorkerStatus[];
  /** Whether every visitor sees every job (--shared-history) or each browser only its own. */
  sharedHistory?: boolean;
  /** The worker boxes taking jobs from the queue in Redis (a front server with --queue). */
  boxes?: BoxStatus[];
}

export type HealthResponse = HealthInfo & { queue: { waiting: number; running: string | null } };

/** `202` from POST /api/jobs and POST /api/jobs/:id/rerun. */
export interface Submitted {
  id: string;
  position: number;
  /** Every job made, first to last, where the settings asked for several variations. */
  ids?: string[];
}
