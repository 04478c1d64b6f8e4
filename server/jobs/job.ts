// What a job is, as stored in its folder's job.json and sent to clients.
import { z } from 'zod';
import { generationSettingsSchema } from '../../models/pipeline/settings.js';
import { videoFormats } from '../media/ffmpeg.js';
import type { JobRecordOf } from '../api-types.js';

export type { JobProgress, JobStatus } from '../api-types.js';

/** Settings a client sends: generation settings plus what to do with the result. */
export const jobSettingsSchema = generationSettingsSchema.and(
  z.object({
    formats: z.array(z.enum(videoFormats)).min(1).refine((f) => new Set(f).size === f.length, 'name each format once').default(['mp4']),
    /** Times the clip repeats inside the file (1 = once). */
    loops: z.number().int().min(1).max(10).default(1),
    pingPong: z.boolean().default(false),
    /** Copy the result to the server's save folder (Drive), when one is set. */
    saveToFolder: z.boolean().default(true),
    /** Which installed model to run (GET /api/health lists them); the server's default when absent. */
    model: z.string().max(200).optional(),
  }),
);
export type JobSettings = z.output<typeof jobSettingsSchema>;

export type JobRecord = JobRecordOf<JobSettings>;

export const JOB_ID = /^[a-z0-9]{16}$/;
