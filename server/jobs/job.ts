// What a job is, as stored in its folder's job.json and sent to clients.
import { z } from 'zod';
import { generationSettingsSchema } from '../../models/pipeline/settings.js';
import { videoFormats } from '../media/ffmpeg.js';

export const jobStatuses = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'] as const;
export type JobStatus = (typeof jobStatuses)[number];

/** Settings a client sends: generation settings plus what to do with the result. */
export const jobSettingsSchema = generationSettingsSchema.and(
  z.object({
    formats: z.array(z.enum(videoFormats)).min(1).default(['mp4']),
    /** Times the clip repeats inside the file (1 = once). */
    loops: z.number().int().min(1).max(10).default(1),
    pingPong: z.boolean().default(false),
    /** Copy the result to the server's save folder (Drive), when one is set. */
    saveToFolder: z.boolean().default(true),
  }),
);
export type JobSettings = z.output<typeof jobSettingsSchema>;

export type JobProgress =
  | { stage: 'queued'; position: number }
  | { stage: 'loading' | 'encoding' | 'writing'; message?: string }
  | { stage: 'sampling'; step: number; steps: number; elapsedMs: number; etaMs: number }
  | { stage: 'decoding'; chunk: number; chunks: number }
  | { stage: 'done' };

export interface JobRecord {
  id: string;
  status: JobStatus;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  settings: JobSettings;
  /** The seed actually used (set once generation starts). */
  seed?: number;
  progress?: JobProgress;
  error?: string;
  /** Video files written, by format. */
  videos: Partial<Record<(typeof videoFormats)[number], string>>;
  inputName: string;
  saved?: { status: 'pending' | 'saved' | 'failed'; files?: string[]; error?: string };
  /** The job this one re-runs, if any. */
  rerunOf?: string;
  provider?: string;
  timings?: { totalMs: number };
}

export const JOB_ID = /^[a-z0-9]{16}$/;
