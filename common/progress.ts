// Progress as the pipeline reports it, and as a job carries it to the page (which adds the queue
// and the writing of the files around the pipeline's stages). The stages a worker reports are a
// schema: the server checks a worker's messages with it.
import { z } from 'zod';
import type { VideoFormat } from './video-formats.js';

/** The pipeline's stages while it works (a worker sends these). */
export const pipelineProgressSchema = z.discriminatedUnion('stage', [
  z.object({ stage: z.literal('loading'), message: z.string() }),
  z.object({ stage: z.literal('encoding') }),
  z.object({ stage: z.literal('sampling'), step: z.number(), steps: z.number(), elapsedMs: z.number(), etaMs: z.number() }),
  z.object({ stage: z.literal('decoding'), chunk: z.number(), chunks: z.number() }),
]);

export type GenerationProgress = z.infer<typeof pipelineProgressSchema> | { stage: 'done'; elapsedMs: number };

/**
 * The server's estimate for the whole job from this point (encode, sampling, decode, writing),
 * from the times of earlier jobs on this machine (server/jobs/eta.ts); absent when it has none.
 */
export interface Remaining {
  remainingMs?: number;
}

export type JobProgress =
  | ({ stage: 'queued'; position: number /** Until the jobs ahead of it are done. */; startsInMs?: number } & Remaining)
  | ({ stage: 'loading' | 'encoding'; message?: string } & Remaining)
  | ({ stage: 'writing'; message?: string /** The video file being written now. */; format?: VideoFormat } & Remaining)
  | (Extract<GenerationProgress, { stage: 'sampling' | 'decoding' }> & Remaining)
  | { stage: 'done' };
